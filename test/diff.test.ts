import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { rmSync } from "node:fs";
import { join } from "node:path";
import { runCli } from "./helpers/cli.js";
import { captureSession } from "./helpers/capture-session.js";
import { jsonLines, renderJsonEvent } from "./helpers/json-events.js";
import { tempDir } from "./helpers/proxy.js";
import { openDatabase } from "../src/store/database.js";
import type { SessionDiff } from "../src/verify/diff.js";

const HOST = "browser.events.data.microsoft.com";
const IKEY = "o:0123456789abcdef0123456789abcdef";
const ev = (name: string, data: Record<string, string | boolean | number>) =>
  renderJsonEvent({ name, time: "2026-11-24T08:00:00.000Z", iKey: IKEY, ext: { app: { name: "Word" } }, data });

describe("exhaust diff between a baseline and a session with fewer events", () => {
  const dir = tempDir("exhaust-diff-");
  const db = join(dir, "lab.db");
  beforeAll(async () => {
    const save = ev("Office.Word.FileIO.Save", { "Data.Doc.Ext": "docx", "Activity.Success": true, "Data.Doc.SizeBytes": 2048 });
    await captureSession(db, "baseline", [
      {
        host: HOST,
        body: jsonLines([
          save,
          ev("Office.Word.Spelling.Check", {
            "Data.Language": "nl-NL",
            "Data.Sentence": "Please review the attached budget before Friday because numbers look wrong",
          }),
          ev("Office.Word.Ribbon.Click", { "Data.Control": "Bold" }),
        ]),
      },
    ]);
    await captureSession(db, "policy", [
      { host: HOST, body: jsonLines([ev("Office.Word.FileIO.Save", { "Data.Doc.Ext": "docx", "Activity.Success": true })]) },
    ]);
  }, 60_000);
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("lists exactly the removed event names and fields, and nothing as appeared", () => {
    const r = runCli(["diff", "baseline", "policy", "--db", db, "--json"]);
    expect(r.status).toBe(0);
    const d = JSON.parse(r.stdout) as SessionDiff;
    expect(d.events.disappeared.map((e) => e.name)).toEqual(["Office.Word.Ribbon.Click", "Office.Word.Spelling.Check"]);
    expect(d.events.appeared).toEqual([]);
    // Every field path the baseline had for the removed events, and the one field the remaining event lost.
    const rw = openDatabase(db);
    const removedEventFields = (
      rw
        .prepare(
          `SELECT DISTINCT e.name, f.path FROM events e JOIN sessions s ON s.id = e.session_id JOIN fields f ON f.event_id = e.id
            WHERE s.name = 'baseline' AND e.name IN ('Office.Word.Ribbon.Click', 'Office.Word.Spelling.Check')`,
        )
        .all() as Array<{ name: string; path: string }>
    ).map((x) => `${x.name} ${x.path}`);
    rw.close();
    expect(removedEventFields).toEqual(
      expect.arrayContaining(["Office.Word.Spelling.Check Data.Sentence", "Office.Word.Ribbon.Click Data.Control"]),
    );
    const expected = [...removedEventFields, "Office.Word.FileIO.Save Data.Doc.SizeBytes"].sort();
    expect(d.fields.disappeared.map((f) => `${f.event} ${f.path}`).sort()).toEqual(expected);
    expect(d.fields.appeared).toEqual([]);
    expect(d.fields.categoryChanged).toEqual([]);
    // The sentence was content in the baseline; the policy session has no content field left.
    expect(d.fields.disappeared.find((f) => f.path === "Data.Sentence")?.categories).toEqual(["content"]);
    expect(d.categories.a.content).toBeGreaterThan(0);
    expect(d.categories.b.content ?? 0).toBe(0);
    // The per-category counts are every field of each session, as the fields_by_category view has them.
    const ro = openDatabase(db, { readonly: true });
    const byCategory = (session: string) =>
      Object.fromEntries(
        (
          ro
            .prepare("SELECT category, SUM(fields) AS n FROM fields_by_category WHERE session = ? GROUP BY category")
            .all(session) as Array<{ category: string; n: number }>
        ).map((x) => [x.category ?? "unclassified", x.n]),
      );
    expect(d.categories.a).toEqual(byCategory("baseline"));
    expect(d.categories.b).toEqual(byCategory("policy"));
    ro.close();
    expect(d.events.countChanged).toEqual([]);
    expect(d.endpoints.appeared).toEqual([]);
    expect(d.endpoints.disappeared).toEqual([]);
  });

  it("prints text that opens with its summary (categories, groups, names) and lists fields only with --fields", () => {
    const r = runCli(["diff", "baseline", "policy", "--db", db]);
    expect(r.status).toBe(0);
    const d = JSON.parse(runCli(["diff", "baseline", "policy", "--db", db, "--json"]).stdout) as SessionDiff;
    const lines = r.stdout.split("\n");
    expect(lines.slice(0, 6)).toEqual([
      "diff  baseline → policy",
      "",
      "summary",
      "  events     3 → 1; names +0 -2, 0 changed count, 0 changed category",
      "  endpoints  +0 -0, 0 changed",
      `  fields     +0 -${d.fields.disappeared.length}, 0 changed category (listed with --fields)`,
    ]);
    // Categories and groups come before any list of names, and no field line is printed.
    const at = (re: RegExp) => lines.findIndex((l) => re.test(l));
    expect(at(/^fields per category/)).toBeLessThan(at(/^event names disappeared/));
    expect(at(/^events per group/)).toBeLessThan(at(/^event names disappeared/));
    expect(r.stdout).toMatch(new RegExp(`^ {2}content +${d.categories.a.content} → 0$`, "m"));
    expect(d.groups).toEqual({ a: { unknown: 3 }, b: { unknown: 1 } });
    expect(r.stdout).toMatch(/^ {2}unknown +3 → 1$/m);
    expect(r.stdout).toMatch(/^event names disappeared \(2\)$/m);
    expect(r.stdout).toMatch(/^ {2}- Office\.Word\.Spelling\.Check {2}×1 {2}content$/m);
    expect(r.stdout).toMatch(/^event names appeared \(0\)$/m);
    expect(r.stdout).not.toMatch(/Data\.Doc\.SizeBytes/);
    expect(r.stdout).not.toMatch(/^fields disappeared/m);

    const withFields = runCli(["diff", "baseline", "policy", "--db", db, "--fields"]).stdout;
    expect(withFields).toMatch(new RegExp(`^fields disappeared \\(${d.fields.disappeared.length}\\)$`, "m"));
    expect(withFields).toMatch(/^ {2}- Office\.Word\.FileIO\.Save {2}Data\.Doc\.SizeBytes/m);
    expect(withFields.indexOf("fields disappeared")).toBeGreaterThan(withFields.indexOf("event names disappeared"));
    // Reversed, the same names appear.
    const back = JSON.parse(runCli(["diff", "policy", "baseline", "--db", db, "--json"]).stdout) as SessionDiff;
    expect(back.events.appeared.map((e) => e.name)).toEqual(["Office.Word.Ribbon.Click", "Office.Word.Spelling.Check"]);
  });

  it("exits 2 for an unknown session", () => {
    const r = runCli(["diff", "baseline", "nope", "--db", db]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/no session named nope/);
  });
});
