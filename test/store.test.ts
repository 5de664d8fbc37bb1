import { describe, expect, it } from "vitest";
import Database from "better-sqlite3";
import { join } from "node:path";
import { copyFileSync, writeFileSync } from "node:fs";
import { createHash } from "node:crypto";
import { runCli } from "./helpers/cli.js";
import { harOfUploads } from "./helpers/har.js";
import { MIGRATIONS } from "../src/store/migrations.js";
import { ExchangeProcessor } from "../src/pipeline/process.js";
import { makeJsonLinesBatch } from "./helpers/json-events.js";
import { CaptureStore } from "../src/store/capture-store.js";
import { openDatabase } from "../src/store/database.js";
import { WriterPriority } from "../src/store/writer-priority.js";
import { ProcessingThread } from "../src/pipeline/processing.js";
import { createLogger } from "../src/log.js";
import { Writable } from "node:stream";
import { makeExchange } from "./helpers/exchange.js";
import { tempDir } from "./helpers/proxy.js";

const exchange = (body: string) => makeExchange(body);

/** A new database file with a capture store and an open session, as a proxy has them. */
function captureDatabase(name: string) {
  const file = join(tempDir(), name);
  const db = openDatabase(file);
  const priority = new WriterPriority();
  const store = new CaptureStore(db, priority);
  const session = store.openSession("s", { toolVersion: "test" });
  return { file, db, priority, store, session };
}

describe("capture store beside a background writer", () => {
  it("waits for another connection's write lock without blocking the event loop, then commits in chain order", async () => {
    const { file, db, priority, store, session } = captureDatabase("x.db");

    const other = openDatabase(file);
    other.prepare("BEGIN IMMEDIATE").run();
    const committed = Promise.all([store.commitExchange(session, exchange("a")), store.commitExchange(session, exchange("b"))]);
    let settled = false;
    void committed.then(() => (settled = true));

    // The event loop keeps running while the lock is held elsewhere ...
    const t0 = Date.now();
    await new Promise((r) => setTimeout(r, 30));
    expect(Date.now() - t0).toBeLessThan(200);
    expect(settled).toBe(false);
    // ... and the background side can see that the proxy is waiting.
    expect(Atomics.load(priority.signal, 0)).toBe(1);

    other.prepare("COMMIT").run();
    await committed;
    expect(Atomics.load(priority.signal, 0)).toBe(0);
    const rows = db.prepare("SELECT seq, prev_hash, hash FROM exchanges ORDER BY seq").all() as Array<{
      seq: number;
      prev_hash: string;
      hash: string;
    }>;
    expect(rows.map((r) => r.seq)).toEqual([1, 2]);
    expect(rows[1].prev_hash).toBe(rows[0].hash);
    other.close();
    db.close();
  });
});

describe("schema migrations", () => {
  it("moves fields stored by schema 3 into interned field rows, readable through the `fields` view", () => {
    const file = join(tempDir(), "old.db");
    const old = new Database(file);
    old.exec(MIGRATIONS.slice(0, 3).join(";\n"));
    old.pragma("user_version = 3");
    old.exec(`INSERT INTO sessions (id, name, started_at, tool_version) VALUES (1, 's', 0, 't');
      INSERT INTO blobs VALUES ('h', 0, x'');
      INSERT INTO exchanges (id, session_id, seq, scheme, method, host, port, path, http_version, request_headers,
        request_body_sha256, request_body_size, request_complete, mode, outcome, started_at, prev_hash, hash)
        VALUES ('x', 1, 1, 'https', 'POST', 'h', 443, '/', '1.1', '[]', 'h', 0, 1, 'sinkhole', 'sinkholed', 0, '', '');
      INSERT INTO events (id, exchange_id, session_id, idx, format, name, field_count) VALUES (7, 'x', 1, 0, 'f', 'E', 3);
      INSERT INTO fields (event_id, idx, part, path, value, type, category, personal, rule) VALUES
        (7, 0, 'C', 'Data.Doc.FileName', 'a.docx', 'string', 'content', 'none', 'detector.path'),
        (7, 1, 'A', 'ext.device.localId', 's:1', 'string', 'diagnostic', 'pseudonymous-id', 'field.cs.device-localid'),
        (7, 2, 'C', 'Activity.Success', 'true', 'bool', 'diagnostic', 'none', 'event.default');`);
    old.close();

    const db = openDatabase(file);
    expect(db.pragma("user_version", { simple: true })).toBe(MIGRATIONS.length);
    const rows = db
      .prepare("SELECT idx, part, path, value, type, category, personal, rule FROM fields WHERE event_id = 7 ORDER BY idx")
      .all();
    expect(rows).toEqual([
      {
        idx: 0,
        part: "C",
        path: "Data.Doc.FileName",
        value: "a.docx",
        type: "string",
        category: "content",
        personal: "none",
        rule: "detector.path",
      },
      {
        idx: 1,
        part: "A",
        path: "ext.device.localId",
        value: "s:1",
        type: "string",
        category: "diagnostic",
        personal: "pseudonymous-id",
        rule: "field.cs.device-localid",
      },
      {
        idx: 2,
        part: "C",
        path: "Activity.Success",
        value: "true",
        type: "bool",
        category: "diagnostic",
        personal: "none",
        rule: "event.default",
      },
    ]);
    expect(db.prepare("SELECT content_fields, personal_fields FROM events WHERE id = 7").get()).toEqual({
      content_fields: 1,
      personal_fields: 1,
    });
    expect(db.prepare("SELECT event_id, path FROM content_findings").all()).toEqual([{ event_id: 7, path: "Data.Doc.FileName" }]);
    db.close();
  });
});

describe("migration 11: bodies in a rowid table", () => {
  it("moves every body of an older database byte for byte, keeps the exchanges' references and turns foreign keys back on", async () => {
    const file = join(tempDir(), "blobs-old.db");
    const old = new Database(file);
    old.pragma("journal_mode = WAL");
    old.exec(MIGRATIONS.slice(0, 10).join(";\n"));
    old.pragma("user_version = 10");
    expect(old.prepare("SELECT sql FROM sqlite_master WHERE name = 'blobs'").pluck().get()).toMatch(/WITHOUT ROWID/);
    // Captured by the real capture store on the old schema: a decodable upload, a large body, an
    // empty one, and a body sent twice (stored once).
    const store = new CaptureStore(old);
    const session = store.openSession("s", { toolVersion: "test" });
    const upload = makeExchange(makeJsonLinesBatch(3, 10), { requestHeaders: [["Content-Type", "application/x-json-stream"]] });
    const large = makeExchange(Buffer.alloc(150_000, 7));
    const empty = makeExchange(Buffer.alloc(0));
    const again = makeExchange(Buffer.from(upload.requestBody));
    for (const x of [upload, large, empty, again]) await store.commitExchange(session, x);
    const before = old.prepare("SELECT sha256, size, data FROM blobs ORDER BY sha256").all();
    expect(before).toHaveLength(3);
    // Enough bodies that a copy beside the old table would show in the file's size.
    const addBody = old.prepare("INSERT INTO blobs (sha256, size, data) VALUES (?, ?, ?)");
    for (let i = 0; i < 300; i++) {
      const data = Buffer.alloc(20_000, i % 251);
      data.writeUInt32BE(i, 0);
      addBody.run(createHash("sha256").update(data).digest("hex"), data.length, data);
    }
    const moved = old.prepare("SELECT sha256, size, data FROM blobs ORDER BY sha256").all();
    old.pragma("wal_checkpoint(TRUNCATE)");
    const pagesBefore = old.pragma("page_count", { simple: true }) as number;
    old.close();

    // The CLI says why its first open of an older database takes a while, and only then.
    const copy = join(tempDir(), "blobs-cli.db");
    copyFileSync(file, copy);
    const first = runCli(["sessions", "--db", copy]);
    expect(first.status).toBe(0);
    expect(first.stderr).toMatch(/^exhaust: updating the schema of .*blobs-cli\.db \(version 10 to \d+\)/m);
    const second = runCli(["sessions", "--db", copy]);
    expect(second.status, second.stderr).toBe(0);
    expect(second.stderr).not.toMatch(/updating the schema/);
    // An import opens the database on its own thread; it says so too.
    const viaImport = join(tempDir(), "blobs-import.db");
    copyFileSync(file, viaImport);
    const har = join(tempDir(), "one.har");
    writeFileSync(
      har,
      JSON.stringify(
        harOfUploads([
          { url: "https://mobile.events.data.microsoft.com/OneCollector/1.0/", body: "{}", mimeType: "application/x-json-stream" },
        ]),
      ),
    );
    const imported = runCli(["import", har, "--db", viaImport, "--session", "imported"]);
    expect(imported.status, imported.stderr).toBe(0);
    expect(imported.stderr).toMatch(/^exhaust: updating the schema of .*blobs-import\.db \(version 10 to \d+\)/m);

    const db = openDatabase(file);
    expect(db.pragma("user_version", { simple: true })).toBe(MIGRATIONS.length);
    expect(db.prepare("SELECT sql FROM sqlite_master WHERE name = 'blobs'").pluck().get()).not.toMatch(/WITHOUT ROWID/);
    expect(db.prepare("SELECT sha256, size, data FROM blobs ORDER BY sha256").all()).toEqual(moved);
    // Each body took the pages the one before it freed: the file did not grow by the bodies' size.
    db.pragma("wal_checkpoint(TRUNCATE)");
    expect(db.pragma("page_count", { simple: true }) as number).toBeLessThan(pagesBefore * 1.1);
    expect(db.pragma("foreign_keys", { simple: true })).toBe(1);
    expect(db.pragma("foreign_key_check")).toEqual([]);
    // Every exchange still finds its body, and the pipeline reads it back.
    const joined = db.prepare("SELECT COUNT(*) FROM exchanges x JOIN blobs b ON b.sha256 = x.request_body_sha256").pluck().get();
    expect(joined).toBe(4);
    expect(new ExchangeProcessor(db).process(upload.id)?.events).toBe(3);
    // The references are enforced again: an exchange naming a body that is not stored is refused.
    expect(() =>
      db
        .prepare(
          `INSERT INTO exchanges (id, session_id, seq, scheme, method, host, port, path, http_version, request_headers,
             request_body_sha256, request_body_size, request_complete, mode, outcome, started_at, prev_hash, hash)
           VALUES ('orphan', 1, 99, 'https', 'POST', 'h', 443, '/', '1.1', '[]', 'missing', 0, 1, 'sinkhole', 'sinkholed', 0, '', '')`,
        )
        .run(),
    ).toThrow(/FOREIGN KEY/);
    // New captures go into the new table, and a body stored before is not stored twice.
    const store2 = new CaptureStore(db);
    const later = makeExchange(Buffer.from(upload.requestBody));
    await store2.commitExchange(store2.openSession("s", { toolVersion: "test" }), later);
    expect(db.prepare("SELECT COUNT(*) FROM blobs").pluck().get()).toBe(moved.length);
    db.close();
  });
});

describe("processing an exchange the processing thread was told of twice", () => {
  it("leaves an exchange already processed by the current decoders and rules alone, so its event ids stay", async () => {
    const db = openDatabase(join(tempDir(), "twice.db"));
    const store = new CaptureStore(db);
    const session = store.openSession("s", { toolVersion: "test" });
    const x = makeExchange(makeJsonLinesBatch(2, 10), { requestHeaders: [["Content-Type", "application/x-json-stream"]] });
    await store.commitExchange(session, x);
    const processor = new ExchangeProcessor(db);
    const ids = () => db.prepare("SELECT id FROM events WHERE exchange_id = ? ORDER BY idx").all(x.id);

    expect(processor.process(x.id, { onlyIfPending: true })?.events).toBe(2);
    const first = ids();
    expect(processor.process(x.id, { onlyIfPending: true })).toBeUndefined();
    expect(ids()).toEqual(first);
    // Without the option (`exhaust reprocess --all`) it is processed again.
    expect(processor.process(x.id)?.events).toBe(2);
    db.close();
  });
});

describe("writer priority between the proxy and the processing thread", () => {
  it("wakes a capture commit waiting for the lock as soon as the background transaction ends", async () => {
    const priority = new WriterPriority();
    // As if the processing thread were inside a transaction.
    Atomics.store(priority.signal, 1, 1);
    let woken = false;
    const t0 = Date.now();
    const waiting = priority.backgroundDone(10_000).then(() => (woken = true));
    await new Promise((r) => setTimeout(r, 30));
    expect(woken).toBe(false);
    // The transaction ends: writing() clears the mark and notifies.
    priority.writing(() => undefined);
    await waiting;
    expect(woken).toBe(true);
    expect(Date.now() - t0).toBeLessThan(5_000);
  });

  it("waits on a timer, not in a loop, when the lock is held by a connection that does not say so", async () => {
    const priority = new WriterPriority();
    let immediateRan = false;
    setImmediate(() => (immediateRan = true));
    await priority.backgroundDone(10_000);
    // A timer let the event loop turn (a microtask loop would not have).
    expect(immediateRan).toBe(true);
  });
});

describe("stopping the processing thread", () => {
  it("ends it between two transactions inside a long exchange, by itself, not by terminate()", async () => {
    const { file, db, priority, store, session } = captureDatabase("stop.db");
    const x = makeExchange(makeJsonLinesBatch(400, 10), { requestHeaders: [["Content-Type", "application/x-json-stream"]] });
    await store.commitExchange(session, x);
    const warnings: string[] = [];
    const log = createLogger({
      level: "warn",
      destination: new Writable({ write: (c, _e, cb) => (warnings.push(String(c)), cb()) }),
    });
    // The proxy keeps capture commits queued: the thread yields before every transaction and ends
    // each one after a single event, so the exchange takes minutes. Its "stop" message would only be
    // read after the exchange; Worker.terminate() (the old fallback) can abort the process when it
    // lands inside a failing SQLite call (better-sqlite3#842).
    priority.raise();
    const thread = ProcessingThread.start(file, log, priority, session.id);
    const stored = () => (db.prepare("SELECT COUNT(*) AS n FROM events WHERE exchange_id = ?").get(x.id) as { n: number }).n;
    for (const t0 = Date.now(); stored() === 0;) {
      expect(Date.now() - t0).toBeLessThan(20_000);
      await new Promise((r) => setTimeout(r, 20));
    }
    const t0 = Date.now();
    const code = await thread.stop();
    // Ended from its own loop (0), not terminated (1), well within one yield and one transaction.
    expect(code).toBe(0);
    expect(Date.now() - t0).toBeLessThan(5_000);
    expect(warnings.join("")).not.toContain("did not stop");
    // What it had not finished stays undecoded, and is decoded whole by the next processor.
    const partial = stored();
    expect(partial).toBeGreaterThan(0);
    expect(partial).toBeLessThan(400);
    const pending = db.prepare("SELECT decoder FROM exchanges WHERE id = ?").get(x.id) as { decoder: string | null };
    expect(pending.decoder).toBeNull();
    priority.lower();
    expect(new ExchangeProcessor(db).process(x.id, { onlyIfPending: true })?.events).toBe(400);
    expect(stored()).toBe(400);
    db.close();
  }, 40_000);

  it("kill() ends the thread as a crash would, and it is started again", async () => {
    const { file, db, priority, store, session } = captureDatabase("kill.db");
    const log = createLogger({ level: "silent", destination: new Writable({ write: (_c, _e, cb) => cb() }) });
    const thread = ProcessingThread.start(file, log, priority, session.id);
    await thread.kill();
    for (const t0 = Date.now(); thread.starts < 2;) {
      expect(Date.now() - t0).toBeLessThan(10_000);
      await new Promise((r) => setTimeout(r, 20));
    }
    const x = makeExchange(makeJsonLinesBatch(3, 5), { requestHeaders: [["Content-Type", "application/x-json-stream"]] });
    await store.commitExchange(session, x);
    thread.submit(x.id);
    for (
      const t0 = Date.now();
      !(db.prepare("SELECT decoder FROM exchanges WHERE id = ?").get(x.id) as { decoder: string | null }).decoder;
    ) {
      expect(Date.now() - t0).toBeLessThan(10_000);
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(await thread.stop()).toBe(0);
    db.close();
  }, 30_000);
});
