/**
 * Complete before it answers, and no answer over data it has not seen (issue 12, items 3–6): a
 * graceful stop decodes the processing thread's backlog; a read-only database with undecoded
 * exchanges, a session without traffic and an import killed halfway are INCONCLUSIVE (exit 3);
 * event ids a verdict names survive `exhaust reprocess --all`. Child processes, real SQLite files.
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { decodeUpload } from "../src/decode/registry.js";
import { ExchangeProcessor } from "../src/pipeline/process.js";
import { CaptureStore } from "../src/store/capture-store.js";
import { openDatabase } from "../src/store/database.js";
import { EventStore } from "../src/store/event-store.js";
import { latestVerdicts } from "../src/store/verdicts.js";
import { sessionByName } from "../src/store/sessions.js";
import { shippedProfiles } from "../src/verify/profile.js";
import type { VerdictReport } from "../src/verdict.js";
import { httpsThroughProxy } from "./helpers/client.js";
import { EXHAUST_BIN, spawnProxy, waitExit, type ProxyProcess } from "./helpers/cli.js";
import { captureSession, JSON_HEADERS, JSON_PATH } from "./helpers/capture-session.js";
import { makeExchange } from "./helpers/exchange.js";
import { jsonLines, makeJsonLinesBatch, renderJsonEvent } from "./helpers/json-events.js";
import { eventually, tempDir } from "./helpers/proxy.js";

const OFFICE_HOST = "browser.events.data.microsoft.com";
const IKEY = "o:0123456789abcdef0123456789abcdef";
const ESSENTIAL = "Office.Identity.SignOutEvent";
const REQUIRED = "Office.Word.Accessibility.LearningTools.ReadAloud.PlayReadAloud";
const EVENTS_PER_UPLOAD = 10;

/**
 * The built CLI, with more time than the shared helper gives (decoding competes with the busy loops).
 * `asUser` runs it under another uid: root writes any file whatever its mode, so a read-only file
 * is read-only only to someone else.
 */
function runCli(args: string[], asUser?: number): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [EXHAUST_BIN, ...args], {
    encoding: "utf8",
    timeout: 150_000,
    maxBuffer: 256 * 1024 * 1024,
    ...(asUser !== undefined ? { uid: asUser, gid: asUser } : {}),
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}
/** Whom to run a command as so a 0444 file is read-only to it: ourselves, or nobody when we are root. */
const READER = process.getuid?.() === 0 ? 65534 : undefined;

/** One upload of `EVENTS_PER_UPLOAD` essential-services events, numbered so each one is distinct. */
function upload(n: number, name = ESSENTIAL): Buffer {
  return jsonLines(
    Array.from({ length: EVENTS_PER_UPLOAD }, (_, i) =>
      renderJsonEvent({
        name,
        time: "2026-11-24T08:00:00.000Z",
        iKey: IKEY,
        ext: { app: { name: "Word" } },
        data: { "Activity.Success": true, "Data.Upload": n, "Data.Index": i, "Data.Padding": "x".repeat(200) },
      }),
    ),
  );
}

/** Two busy loops at normal priority: the proxy's (lower-priority) processing thread falls behind. */
function busyLoops(): ChildProcess[] {
  return [0, 1].map(() => spawn(process.execPath, ["-e", "for (;;) {}"], { stdio: "ignore" }));
}

async function sendUploads(port: number, ca: string, count: number, concurrency = 8): Promise<number> {
  let next = 0;
  let acknowledged = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < count) {
        const n = next++;
        const res = await httpsThroughProxy({
          proxyPort: port,
          host: OFFICE_HOST,
          path: JSON_PATH,
          headers: JSON_HEADERS,
          body: upload(n),
          ca: [ca],
        });
        if (res.status === 200) acknowledged++;
      }
    }),
  );
  return acknowledged;
}

/** `exhaust proxy` as a child (sinkhole) with `count` uploads sent through it, every one acknowledged. */
async function captureThroughChild(db: string, session: string, count: number): Promise<ProxyProcess> {
  const certs = join(dir, "certs");
  const proxy = await spawnProxy(["--db", db, "--certs", certs, "--session", session, "--mode", "sinkhole"]);
  const ca = readFileSync(join(certs, "exhaust-ca.pem"), "utf8");
  expect(await sendUploads(proxy.port, ca, count)).toBe(count);
  return proxy;
}

function undecoded(dbFile: string): { exchanges: number; undecoded: number } {
  const db = openDatabase(dbFile, { readonly: true });
  try {
    return db.prepare("SELECT COUNT(*) AS exchanges, COUNT(*) - COUNT(decoder) AS undecoded FROM exchanges").get() as {
      exchanges: number;
      undecoded: number;
    };
  } finally {
    db.close();
  }
}

const verifyJson = (args: string[], asUser?: number) => {
  const r = runCli(["verify", "--format", "json", ...args], asUser);
  return { ...r, report: r.stdout ? (JSON.parse(r.stdout) as VerdictReport) : undefined };
};

let dir: string;
beforeAll(() => {
  dir = tempDir("exhaust-complete-");
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("with the processing thread starved by two busy loops", () => {
  const UPLOADS = 80;
  // Only while a proxy captures and stops: the loops would slow every other test file running beside.
  let loops: ChildProcess[] = [];
  const stopLoops = () => {
    for (const l of loops) l.kill("SIGKILL");
    loops = [];
  };
  beforeEach(() => {
    loops = busyLoops();
  });
  afterEach(stopLoops);

  it("SIGINT decodes the backlog before exit (with a progress line), and verify/export cover every upload", async () => {
    const db = join(dir, "starved.db");
    const proxy = await captureThroughChild(db, "starved", UPLOADS);
    proxy.child.kill("SIGINT");
    await waitExit(proxy.child);
    stopLoops();
    expect(proxy.child.exitCode).toBe(0);
    // What the stop decoded, straight from the file (no reading command has run yet).
    expect(undecoded(db)).toEqual({ exchanges: UPLOADS, undecoded: 0 });
    expect(proxy.stderr()).toMatch(/decoding [\d,]+ pending exchanges?… \(Ctrl-C again to skip\)/);

    const v = verifyJson(["--db", db, "--session", "starved", "--profile", "office-neither"]);
    expect(v.stderr).toBe("");
    expect(v.report!.coverage).toMatchObject({
      exchanges: UPLOADS,
      decodedExchanges: UPLOADS,
      undecoded: 0,
      events: UPLOADS * EVENTS_PER_UPLOAD,
    });
    expect(v.report!.status).toBe("pass");
    expect(v.status).toBe(0);
    const out = join(dir, "starved.jsonl");
    const e = runCli(["export", "--db", db, "--session", "starved", "--format", "jsonl", "--out", out]);
    expect(e.status).toBe(0);
    expect(readFileSync(out, "utf8").split("\n").filter(Boolean)).toHaveLength(UPLOADS * EVENTS_PER_UPLOAD);
  }, 180_000);

  it("a second SIGINT skips the backlog and says how many exchanges are left undecoded; the next reading command decodes them", async () => {
    const db = join(dir, "skipped.db");
    const proxy = await captureThroughChild(db, "skipped", UPLOADS);
    proxy.child.kill("SIGINT");
    await eventually(() => /decoding [\d,]+ pending exchange/.test(proxy.stderr()), 30_000);
    proxy.child.kill("SIGINT");
    await waitExit(proxy.child);
    stopLoops();
    expect(proxy.child.exitCode).toBe(0);
    const left = undecoded(db).undecoded;
    expect(left).toBeGreaterThan(0);
    expect(proxy.stderr()).toContain(`${left.toLocaleString("en-US")} exchange${left === 1 ? "" : "s"} undecoded (decoding was stopped)`);
    // The session ended: `events` decodes what is pending in it before it lists.
    const ev = runCli(["events", "--db", db, "--session", "skipped", "--json", "--limit", "100000"]);
    expect(ev.status, ev.stderr).toBe(0);
    expect(ev.stdout.split("\n").filter(Boolean)).toHaveLength(UPLOADS * EVENTS_PER_UPLOAD);
    expect(ev.stderr).toMatch(/decoding [\d,]+ pending exchange/);
    expect(undecoded(db).undecoded).toBe(0);
  }, 180_000);

  it("a reading command run while the proxy still decodes waits for it: `events` right after the uploads lists every one", async () => {
    const db = join(dir, "live.db");
    const proxy = await captureThroughChild(db, "live", UPLOADS);
    try {
      const backlog = undecoded(db).undecoded;
      const ev = runCli(["events", "--db", db, "--session", "live", "--json", "--limit", "100000"]);
      expect(ev.status, ev.stderr).toBe(0);
      // It waited (the starved thread had a backlog) and did not decode under the live proxy itself.
      expect(backlog).toBeGreaterThan(0);
      expect(ev.stderr).toMatch(/waiting for the running proxy to decode [\d,]+ exchanges?… \(Ctrl-C to skip\)/);
      expect(ev.stderr).not.toMatch(/decoding [\d,]+ pending exchange|undecoded/);
      expect(ev.stdout.split("\n").filter(Boolean)).toHaveLength(UPLOADS * EVENTS_PER_UPLOAD);
    } finally {
      proxy.child.kill("SIGINT");
      await waitExit(proxy.child);
    }
  }, 180_000);

  it("a proxy that decodes nothing (stopped) is waited for only while it makes progress: the command then says what it left out", async () => {
    const db = join(dir, "stalled.db");
    const proxy = await captureThroughChild(db, "stalled", UPLOADS);
    proxy.child.kill("SIGSTOP");
    try {
      const left = undecoded(db).undecoded;
      expect(left).toBeGreaterThan(0);
      const started = Date.now();
      const ev = runCli(["events", "--db", db, "--session", "stalled", "--json", "--limit", "100000"]);
      const waitedMs = Date.now() - started;
      expect(ev.status, ev.stderr).toBe(0);
      expect(ev.stderr).toContain(`waiting for the running proxy to decode ${left.toLocaleString("en-US")} exchange`);
      expect(ev.stderr).toContain(
        `${left.toLocaleString("en-US")} exchange${left === 1 ? "" : "s"} undecoded (session stalled is still being written by another process`,
      );
      // WAIT_STALL_MS (10 s) without progress, not the heartbeat's 30 s and not forever.
      expect(waitedMs).toBeGreaterThanOrEqual(10_000);
      expect(waitedMs).toBeLessThan(30_000);
      expect(ev.stdout.split("\n").filter(Boolean)).toHaveLength((UPLOADS - left) * EVENTS_PER_UPLOAD);
    } finally {
      proxy.child.kill("SIGCONT");
      proxy.child.kill("SIGINT");
      await waitExit(proxy.child);
    }
  }, 180_000);

  it("a read-only copy of a database killed with a backlog is INCONCLUSIVE (exit 3) and says how many exchanges are undecoded", async () => {
    const db = join(dir, "killed.db");
    const proxy = await captureThroughChild(db, "killed", UPLOADS);
    proxy.child.kill("SIGKILL");
    await waitExit(proxy.child);
    stopLoops();
    // A read-only copy: files 0444 in a directory its reader cannot write.
    const roDir = join(dir, "read-only");
    mkdirSync(roDir);
    const copy = join(roDir, "killed-copy.db");
    for (const suffix of ["", "-wal", "-shm"]) if (existsSync(db + suffix)) copyFileSync(db + suffix, copy + suffix);
    const left = undecoded(copy).undecoded;
    expect(left).toBeGreaterThan(0);
    for (const suffix of ["", "-wal", "-shm"]) if (existsSync(copy + suffix)) chmodSync(copy + suffix, 0o444);
    chmodSync(dir, 0o755);
    chmodSync(roDir, 0o555);
    const ro = (args: string[]) => runCli([...args, "--db", copy], READER);

    const v = verifyJson(["--db", copy, "--session", "killed", "--profile", "office-neither"], READER);
    expect(v.status, v.stderr).toBe(3);
    expect(v.report!.status).toBe("inconclusive");
    expect(v.report!.coverage).toMatchObject({ exchanges: UPLOADS, decodedExchanges: UPLOADS - left, undecoded: left });
    expect(v.report!.inconclusive!.join("\n")).toContain(`${left} of ${UPLOADS} exchanges are undecoded`);
    expect(v.stderr).toContain(`${left.toLocaleString("en-US")} exchange${left === 1 ? "" : "s"} undecoded (the database is read-only)`);
    // The text, JUnit and Markdown forms say it too.
    const text = ro(["verify", "--session", "killed", "--profile", "office-neither"]);
    expect(text.status).toBe(3);
    expect(text.stdout).toMatch(/^verdict: INCONCLUSIVE/m);
    expect(text.stdout).toMatch(new RegExp(`^covered +${UPLOADS} exchanges \\(${UPLOADS - left} decoded\\)`, "m"));
    const junit = ro(["verify", "--session", "killed", "--profile", "office-neither", "--format", "junit"]);
    expect(junit.status).toBe(3);
    expect(junit.stdout).toMatch(/<testsuites [^>]*errors="1"/);
    expect(junit.stdout).toMatch(/<testcase [^>]*name="coverage">\s*<error type="inconclusive" message="[^"]*undecoded/);
    const md = ro(["verify", "--session", "killed", "--profile", "office-neither", "--format", "markdown"]);
    expect(md.stdout).toMatch(/^# Verification: office-neither — INCONCLUSIVE/m);
    // Other reading commands say it as well, and nothing was written to the copy.
    const ev = ro(["events", "--session", "killed", "--limit", "1"]);
    expect(ev.status).toBe(0);
    expect(ev.stderr).toContain(`${left.toLocaleString("en-US")} exchange${left === 1 ? "" : "s"} undecoded (the database is read-only)`);
    // The HTML report says it in the report itself.
    const outDir = join(dir, "out");
    mkdirSync(outDir);
    chmodSync(outDir, 0o777);
    const html = join(outDir, "killed.html");
    expect(ro(["report", "--session", "killed", "--out", html]).status).toBe(0);
    expect(readFileSync(html, "utf8")).toContain(`<dt>Undecoded exchanges</dt><dd>${left} (left out of everything below`);
    expect(undecoded(copy).undecoded).toBe(left);
  }, 180_000);
});

describe("a session with no traffic", () => {
  it("is INCONCLUSIVE for every shipped profile: no traffic reached the proxy", async () => {
    const db = join(dir, "empty.db");
    const proxy = await spawnProxy(["--db", db, "--certs", join(dir, "certs"), "--session", "idle", "--mode", "sinkhole"]);
    proxy.child.kill("SIGINT");
    await waitExit(proxy.child);
    const profiles = shippedProfiles();
    expect(profiles.length).toBeGreaterThanOrEqual(6);
    for (const profile of profiles) {
      const v = verifyJson(["--db", db, "--session", "idle", "--profile", profile]);
      expect(v.status, profile).toBe(3);
      expect(v.report!.status, profile).toBe("inconclusive");
      expect(v.report!.inconclusive, profile).toContain("no traffic reached the proxy: is the client configured?");
      expect(v.report!.coverage, profile).toMatchObject({ exchanges: 0, decodedExchanges: 0, events: 0, catalogueTraffic: 0 });
    }
    // Stored with the session as inconclusive.
    const rw = openDatabase(db);
    const stored = latestVerdicts(rw, sessionByName(rw, "idle")!.id);
    rw.close();
    expect(stored.map((s) => s.status)).toEqual(profiles.map(() => "inconclusive"));
  }, 120_000);
});

describe("stable references", () => {
  it("`reprocess --all` leaves every stored verdict's evidence resolvable: each event id still opens the same event", async () => {
    const db = join(dir, "refs.db");
    await captureSession(db, "one-required", [
      { host: OFFICE_HOST, body: upload(1) },
      { host: OFFICE_HOST, body: upload(2, REQUIRED) },
      { host: OFFICE_HOST, body: upload(3) },
    ]);
    // Another session in between, so ids freed by a re-decode would be taken by new rows.
    await captureSession(db, "other", [{ host: OFFICE_HOST, body: upload(4) }]);
    const v = verifyJson(["--db", db, "--session", "one-required", "--profile", "office-neither", "--evidence", "100"]);
    expect(v.status).toBe(1);
    const ids = v.report!.rules.flatMap((r) => r.evidence.map((e) => e.eventId)).filter((id): id is number => id !== undefined);
    expect(ids).toHaveLength(EVENTS_PER_UPLOAD);
    const show = (id: number) => {
      const r = runCli(["show", String(id), "--db", db, "--json"]);
      expect(r.status, r.stderr).toBe(0);
      return JSON.parse(r.stdout) as { id: number };
    };
    const before = ids.map(show);
    const r = runCli(["reprocess", "--db", db, "--all", "--json"]);
    expect(r.status).toBe(0);
    expect(JSON.parse(r.stdout).exchanges).toBe(4);
    const rw = openDatabase(db);
    const stored = latestVerdicts(rw, sessionByName(rw, "one-required")!.id)[0];
    rw.close();
    const storedIds = stored.rules.flatMap((x) => x.evidence.map((e) => e.eventId)).filter((id) => id !== undefined);
    expect(storedIds).toEqual(ids);
    expect(ids.map(show)).toEqual(before);
  }, 120_000);
});

describe("event ids across re-decoding (EventStore, in-process)", () => {
  it("keeps the id of every event still at its position, drops those past the new count, leaves other exchanges alone", async () => {
    const db = openDatabase(join(dir, "ids.db"));
    const capture = new CaptureStore(db);
    const session = capture.openSession("s", { toolVersion: "test" });
    const x = makeExchange(makeJsonLinesBatch(3, 5));
    const y = makeExchange(makeJsonLinesBatch(2, 5));
    await capture.commitExchange(session, x);
    await capture.commitExchange(session, y);
    const processor = new ExchangeProcessor(db);
    processor.process(x.id);
    processor.process(y.id);
    const ids = (exchangeId: string) =>
      db.prepare("SELECT idx, id FROM events WHERE exchange_id = ? ORDER BY idx").all(exchangeId) as Array<{ idx: number; id: number }>;
    const x0 = ids(x.id);
    const y0 = ids(y.id);
    expect(x0).toHaveLength(3);
    const events = new EventStore(db);
    const upload = events.loadUpload(x.id)!;
    const decoded = decodeUpload(upload);
    const first = (n: number) => ({
      decoded: { ...decoded, events: decoded.events.slice(0, n) },
      classified: [],
      request: [],
      rulesFingerprint: "rules:test",
    });
    events.replaceEvents(upload, first(1));
    expect(ids(x.id)).toEqual(x0.slice(0, 1));
    events.replaceEvents(upload, first(3));
    const x2 = ids(x.id);
    expect(x2[0]).toEqual(x0[0]);
    // Positions 1 and 2 were gone in between: they come back as new events, with new ids.
    for (const e of x2.slice(1)) expect(e.id).toBeGreaterThan(Math.max(...[...x0, ...y0].map((r) => r.id)));
    expect(ids(y.id)).toEqual(y0);
    const counts = db
      .prepare(
        `SELECT (SELECT COUNT(*) FROM field_values) AS rows, (SELECT SUM(field_count) FROM events) AS declared,
                (SELECT COUNT(*) FROM field_values v WHERE NOT EXISTS (SELECT 1 FROM events e WHERE e.id = v.event_id)) AS orphans`,
      )
      .get() as { rows: number; declared: number; orphans: number };
    expect(counts.orphans).toBe(0);
    expect(counts.rows).toBe(counts.declared);
    db.close();
  });
});

describe("an import killed halfway or failing", () => {
  function writeHar(file: string, entries: number): void {
    const entry = (n: number) =>
      JSON.stringify({
        startedDateTime: new Date(Date.UTC(2026, 10, 24, 8, 0, 0, n)).toISOString(),
        request: {
          method: "POST",
          url: `https://${OFFICE_HOST}${JSON_PATH}`,
          httpVersion: "HTTP/1.1",
          headers: [{ name: "Content-Type", value: "application/x-json-stream" }],
          postData: { mimeType: "application/x-json-stream", text: upload(n).toString("utf8") },
        },
        response: { status: 200, headers: [], content: { size: 0, text: "" } },
      });
    const parts = ['{"log":{"version":"1.2","creator":{"name":"test","version":"1"},"entries":['];
    for (let i = 0; i < entries; i++) parts.push(`${i ? "," : ""}${entry(i)}`);
    parts.push("]}}");
    writeFileSync(file, parts.join(""));
  }

  it("SIGKILL mid-import leaves the session marked incomplete: `sessions` shows it, verify is INCONCLUSIVE", async () => {
    const db = join(dir, "import-killed.db");
    const har = join(dir, "big.har");
    writeHar(har, 20_000);
    const child = spawn(process.execPath, [EXHAUST_BIN, "import", har, "--db", db, "--session", "big"], { stdio: "ignore" });
    try {
      // The import's worker creates and migrates the file first: until then it may not read.
      const stored = () => {
        try {
          return undecoded(db).exchanges;
        } catch {
          return 0;
        }
      };
      await eventually(() => existsSync(db) && stored() >= 500, 60_000);
    } finally {
      child.kill("SIGKILL");
      await waitExit(child);
    }
    const list = runCli(["sessions", "--db", db, "--json"]);
    expect(list.status).toBe(0);
    const [s] = JSON.parse(list.stdout) as Array<{ name: string; exchanges: number; incomplete: string | null }>;
    expect(s.name).toBe("big");
    expect(s.exchanges).toBeGreaterThanOrEqual(500);
    expect(s.exchanges).toBeLessThan(20_000);
    expect(s.incomplete).toMatch(/import of big\.har did not finish/);
    expect(runCli(["sessions", "--db", db]).stdout).toMatch(/^big .*INCOMPLETE/m);
    const v = verifyJson(["--db", db, "--session", "big", "--profile", "office-neither"]);
    expect(v.status).toBe(3);
    expect(v.report!.status).toBe("inconclusive");
    expect(v.report!.inconclusive!.join("\n")).toMatch(/the session is incomplete: import of big\.har did not finish/);
  }, 180_000);

  it("a HAR that breaks off after some entries leaves the session ended but marked incomplete with the failure", () => {
    const db = join(dir, "import-failed.db");
    const whole = join(dir, "whole.har");
    writeHar(whole, 300);
    const text = readFileSync(whole, "utf8");
    const cut = join(dir, "cut.har");
    writeFileSync(cut, text.slice(0, Math.floor(text.length * 0.8)));
    const r = runCli(["import", cut, "--db", db, "--session", "cut"]);
    expect(r.status).toBe(2);
    const [s] = JSON.parse(runCli(["sessions", "--db", db, "--json"]).stdout) as Array<{
      name: string;
      exchanges: number;
      endedAt: number | null;
      incomplete: string | null;
    }>;
    expect(s).toMatchObject({ name: "cut" });
    expect(s.exchanges).toBeGreaterThan(0);
    expect(s.endedAt).not.toBeNull();
    expect(s.incomplete).toMatch(/^import of cut\.har failed: /);
    const v = verifyJson(["--db", db, "--session", "cut", "--profile", "office-neither"]);
    expect(v.status).toBe(3);
    // The ended session's exchanges were decoded by verify itself; only the import's failure is left.
    expect(v.report!.coverage).toMatchObject({ undecoded: 0 });
    expect(v.report!.inconclusive).toEqual([expect.stringMatching(/^the session is incomplete: import of cut\.har failed/)]);
  }, 120_000);
});
