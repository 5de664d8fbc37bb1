import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createHash } from "node:crypto";
import { rmSync } from "node:fs";
import { join } from "node:path";
import { deflateRawSync } from "node:zlib";
import { XMLParser } from "fast-xml-parser";
import { rejectLeafWithAlert } from "./helpers/client.js";
import { runCli } from "./helpers/cli.js";
import { encodeCsRecords, V } from "./helpers/bond-writer.js";
import { captureSession, JSON_PATH } from "./helpers/capture-session.js";
import { jsonLines, renderJsonEvent, type JsonEventSpec } from "./helpers/json-events.js";
import { eventually, tempDir } from "./helpers/proxy.js";
import { openDatabase } from "../src/store/database.js";
import { latestVerdicts } from "../src/store/verdicts.js";
import { sessionByName } from "../src/store/sessions.js";
import type { RuleVerdict, VerdictReport } from "../src/verdict.js";

const OFFICE_HOST = "browser.events.data.microsoft.com";
const IKEY = "o:0123456789abcdef0123456789abcdef";
const ESSENTIAL = ["Office.Identity.SignOutEvent", "Office.Identity.FbaPromptWin32"];
const REQUIRED = "Office.Word.Accessibility.LearningTools.ReadAloud.PlayReadAloud";

const event = (name: string, data: JsonEventSpec["data"] = { "Activity.Success": true }): string =>
  renderJsonEvent({ name, time: "2026-11-24T08:00:00.000Z", iKey: IKEY, ext: { app: { name: "Word" } }, data });
const jsonUpload = (names: string[]) => ({ host: OFFICE_HOST, body: jsonLines(names.map((n) => event(n))) });

function verify(db: string, session: string, profile: string, format = "json") {
  const r = runCli(["verify", "--db", db, "--session", session, "--profile", profile, "--format", format]);
  return { ...r, report: format === "json" && r.stdout ? (JSON.parse(r.stdout) as VerdictReport) : undefined };
}
const rule = (report: VerdictReport | undefined, id: string): RuleVerdict => {
  const r = report?.rules.find((x) => x.id === id);
  if (!r) throw new Error(`no rule ${id} in report`);
  return r;
};

describe("exhaust verify against sessions captured through the proxy", () => {
  const dir = tempDir("exhaust-verify-");
  const db = join(dir, "lab.db");
  let token = "";
  beforeAll(async () => {
    token = (JSON.parse(runCli(["canary", "new", "--db", db, "--json", "--label", "budget.docx"]).stdout) as Array<{ token: string }>)[0]
      .token;
    await captureSession(db, "essential-only", [jsonUpload(ESSENTIAL)]);
    await captureSession(db, "one-required", [jsonUpload(ESSENTIAL), jsonUpload([REQUIRED])]);
    await captureSession(db, "uncatalogued", [jsonUpload([...ESSENTIAL, "Office.Lab.NeverDocumentedEvent"])]);
    // A made-up name in a namespace whose documented events are all essential services.
    await captureSession(db, "made-up-telemetry", [jsonUpload([...ESSENTIAL, "Office.Telemetry.MadeUpHealthEvent"])]);
    // The README's smoke test: bare envelopes whose names end like file names.
    await captureSession(db, "smoke", [{ host: OFFICE_HOST, body: Buffer.from('{"name":"test.one"}\n{"name":"test.two"}\n') }]);
    await captureSession(db, "pinned-diagtrack", [jsonUpload(ESSENTIAL)], async (p) => {
      // A pinned client (DiagTrack) trusts only Microsoft's root, never exhaust's CA: SChannel
      // answers the leaf with a fatal unknown_ca alert.
      await rejectLeafWithAlert(p.port, "v10c.events.data.microsoft.com");
      await eventually(() =>
        p.db.prepare("SELECT 1 FROM connections WHERE outcome = 'client-rejected-certificate' AND ended_at IS NOT NULL").get(),
      );
    });
    const base64Blob = Buffer.concat([Buffer.from([0x89, 0x50]), Buffer.from(`name=${token};`)]).toString("base64");
    await captureSession(db, "leaky", [
      { host: OFFICE_HOST, body: jsonLines([event("Office.Word.Comment.Typed", { "Data.Comment": `Remember ${token} before Friday` })]) },
      { host: OFFICE_HOST, body: jsonLines([event("Office.Word.Attachment", { "Data.Blob": base64Blob })]) },
      {
        host: OFFICE_HOST,
        body: jsonLines([event("Office.Word.DocHash", { "Data.DocHash": createHash("sha256").update(token).digest("hex") })]),
      },
      { host: OFFICE_HOST, path: `${JSON_PATH}?cors=true&q=${token}`, body: jsonLines([event(ESSENTIAL[0])]) },
      {
        host: "mobile.events.data.microsoft.com",
        headers: { "content-type": "application/bond-compact-binary", "content-encoding": "deflate" },
        body: deflateRawSync(
          encodeCsRecords([{ ver: "4.0", name: "Office.Word.Title", iKey: IKEY, data: { "Data.Title": V.str(token.toUpperCase()) } }]),
        ),
      },
    ]);
    await captureSession(db, "clean", [jsonUpload(ESSENTIAL)]);
  }, 120_000);
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("passes office-neither for a session with only essential-services events", () => {
    const r = verify(db, "essential-only", "office-neither");
    expect(r.status).toBe(0);
    expect(r.report!.status).toBe("pass");
    expect(rule(r.report, "office-neither.no-diagnostic-events")).toMatchObject({ status: "pass", count: 0, checked: 2 });
  });

  it("fails office-neither when one required-group event is added, with that event as the evidence", () => {
    const r = verify(db, "one-required", "office-neither");
    expect(r.status).toBe(1);
    const v = rule(r.report, "office-neither.no-diagnostic-events");
    expect(v).toMatchObject({ status: "fail", count: 1, evidenceOmitted: 0 });
    expect(v.evidence).toHaveLength(1);
    const rw = openDatabase(db);
    const ev = rw
      .prepare(
        "SELECT e.id, e.exchange_id AS x, x.request_body_sha256 AS sha FROM events e JOIN exchanges x ON x.id = e.exchange_id WHERE e.name = ?",
      )
      .get(REQUIRED) as { id: number; x: string; sha: string };
    rw.close();
    expect(v.evidence[0]).toMatchObject({ eventId: ev.id, eventName: REQUIRED, exchangeId: ev.x, bodySha256: ev.sha });
    expect(v.evidence[0].note).toMatch(/group required/);
    // Required events are allowed at the Required level.
    expect(verify(db, "one-required", "office-required").status).toBe(0);
  });

  it("warns (exit 0) on an Office event in no catalogue instead of passing it", () => {
    const r = verify(db, "uncatalogued", "office-neither");
    expect(r.status).toBe(0);
    expect(r.report!.status).toBe("warn");
    const v = rule(r.report, "office-neither.no-diagnostic-events");
    expect(v).toMatchObject({ status: "warn", count: 1 });
    expect(v.evidence[0]).toMatchObject({ eventName: "Office.Lab.NeverDocumentedEvent" });
  });

  it("never passes a made-up Office.Telemetry.* name as essential: it stays unknown and is listed for review", () => {
    const r = verify(db, "made-up-telemetry", "office-neither");
    expect(r.report!.status).toBe("warn");
    const v = rule(r.report, "office-neither.no-diagnostic-events");
    expect(v).toMatchObject({ status: "warn", count: 1, checked: 3 });
    expect(v.evidence[0]).toMatchObject({ eventName: "Office.Telemetry.MadeUpHealthEvent" });
    expect(v.evidence[0].note).toMatch(/group unknown/);
    const text = verify(db, "made-up-telemetry", "office-neither", "text");
    expect(text.stdout).toMatch(/^ {6}- event \d+ Office\.Telemetry\.MadeUpHealthEvent; .*group unknown/m);
  });

  it('passes no-content for the README\'s smoke test ({"name":"test.one"} is an event name, not a OneNote file)', () => {
    const r = verify(db, "smoke", "no-content");
    expect(r.report!.status).toBe("pass");
    expect(rule(r.report, "no-content.no-content-fields")).toMatchObject({ status: "pass", count: 0 });
  });

  it("fails windows-security on a pinned connection to v10c.events.data.microsoft.com, and passes without one", () => {
    const r = verify(db, "pinned-diagtrack", "windows-security");
    expect(r.status).toBe(1);
    const v = rule(r.report, "windows-security.no-diagtrack");
    expect(v).toMatchObject({ status: "fail", count: 1 });
    expect(v.evidence[0]).toMatchObject({ host: "v10c.events.data.microsoft.com" });
    expect(v.evidence[0].connectionId).toBeTruthy();
    expect(v.evidence[0].note).toMatch(/client-rejected-certificate/);
    expect(rule(r.report, "windows-security.no-error-reporting").status).toBe("pass");
    expect(verify(db, "essential-only", "windows-security").status).toBe(0);
  });

  it("finds a canary in a Part C string, a base64 field, a SHA-256 digest, a URL query and upper case in a deflated Bond body", () => {
    const r = verify(db, "leaky", "no-content");
    expect(r.status).toBe(1);
    const v = rule(r.report, "no-content.no-canaries");
    expect(v.status).toBe("fail");
    const found = v.evidence.map((e) => `${e.location} ${e.form}`);
    expect(found).toEqual(
      expect.arrayContaining([
        "field Data.Comment plain",
        "field Data.Blob base64",
        "field Data.DocHash sha256-hex",
        "url plain",
        "field Data.Title upper-case",
        "body upper-case", // found in the body after undoing raw DEFLATE
      ]),
    );
    for (const e of v.evidence) expect(e.note).toBe(`canary ${token}`);
    const comment = v.evidence.find((e) => e.fieldPath === "Data.Comment")!;
    expect(comment).toMatchObject({ eventName: "Office.Word.Comment.Typed" });
    expect(comment.excerpt).toContain(token);
    expect(comment.bodySha256).toMatch(/^[0-9a-f]{64}$/);
  });

  it("passes a session the canary never reached", () => {
    const r = verify(db, "clean", "no-content");
    expect(rule(r.report, "no-content.no-canaries")).toMatchObject({ status: "pass", count: 0 });
    expect(r.report!.status).toBe("pass");
    expect(r.status).toBe(0);
  });

  it("prints JUnit XML with one testcase per rule, a failure for each failing rule, and stores the verdict", () => {
    const r = verify(db, "one-required", "zero-exhaust", "junit");
    expect(r.status).toBe(1);
    const doc = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: "@" }).parse(r.stdout);
    const suite = doc.testsuites.testsuite;
    const cases = [suite.testcase].flat() as Array<{ "@name": string; failure?: unknown }>;
    const json = verify(db, "one-required", "zero-exhaust").report!;
    expect(cases.map((c) => c["@name"])).toEqual(json.rules.map((x) => x.id));
    expect(json.rules.length).toBeGreaterThanOrEqual(7);
    expect(cases.filter((c) => c.failure).map((c) => c["@name"])).toEqual(json.rules.filter((x) => x.status === "fail").map((x) => x.id));
    expect(Number(suite["@failures"])).toBe(json.counts.fail);
    const rw = openDatabase(db);
    const stored = latestVerdicts(rw, sessionByName(rw, "one-required")!.id);
    rw.close();
    expect(stored.find((s) => s.profile.name === "zero-exhaust")).toMatchObject({ status: "fail", session: { name: "one-required" } });
  });

  it("prints text and markdown with the verdict and evidence, and defaults to the latest session", () => {
    const text = runCli(["verify", "--db", db, "--profile", "office-neither", "--session", "one-required"]);
    expect(text.status).toBe(1);
    expect(text.stdout).toMatch(/^FAIL +office-neither\.no-diagnostic-events/m);
    expect(text.stdout).toContain(REQUIRED);
    expect(text.stdout).toMatch(/verdict: FAIL/);
    const md = runCli(["verify", "--db", db, "--profile", "office-neither", "--session", "one-required", "--format", "markdown"]);
    expect(md.stdout).toMatch(/^# Verification: office-neither — FAIL/m);
    const latest = runCli(["verify", "--db", db, "--profile", "office-neither", "--format", "json"]);
    expect((JSON.parse(latest.stdout) as VerdictReport).session.name).toBe("clean");
  });

  it("caps evidence and says how many items it left out", () => {
    const r = runCli(["verify", "--db", db, "--session", "leaky", "--profile", "no-content", "--format", "json", "--evidence", "2"]);
    const v = rule(JSON.parse(r.stdout) as VerdictReport, "no-content.no-canaries");
    expect(v.evidence).toHaveLength(2);
    expect(v.evidenceOmitted).toBe(v.count - 2);
    expect(v.count).toBeGreaterThan(2);
  });

  it("exits 2 with one line for an unknown profile, a bad format and an unknown session", () => {
    for (const args of [
      ["--profile", "no-such-profile"],
      ["--profile", "office-neither", "--format", "xml"],
      ["--profile", "office-neither", "--session", "nope"],
    ]) {
      const r = runCli(["verify", "--db", db, ...args]);
      expect(r.status).toBe(2);
      expect(r.stderr.trim().split("\n")).toHaveLength(1);
    }
  });
});
