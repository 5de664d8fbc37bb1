/**
 * The capture commit runs on the capture writer thread (src/store/capture-writer.ts): the proxy's
 * loop hands each exchange over and releases the response only when that thread says it
 * committed. Held back through a real SQLite write lock taken by a second connection.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { httpsThroughProxy } from "./helpers/client.js";
import { startTestProxy, type TestProxy } from "./helpers/proxy.js";
import { openDatabase, type Db } from "../src/store/database.js";
import { checkStore } from "./helpers/durability.js";
import { makeExchange } from "./helpers/exchange.js";
import { exhaustError } from "../src/errors.js";
import { CaptureStore } from "../src/store/capture-store.js";
import { CaptureWriterThread, type CaptureWriterOptions } from "../src/store/capture-writer.js";
import { WriterPriority } from "../src/store/writer-priority.js";
import { rmSync } from "node:fs";
import { join } from "node:path";
import type { Worker } from "node:worker_threads";
import { tempDir } from "./helpers/proxy.js";

const HOST = "v10.events.data.microsoft.com";

describe("capture writer thread", () => {
  let p: TestProxy;
  beforeAll(async () => {
    p = await startTestProxy({ mode: "sinkhole" });
  });
  afterAll(() => p?.close());

  const upload = (body: string) =>
    httpsThroughProxy({
      proxyPort: p.port,
      host: HOST,
      path: "/OneCollector/1.0/",
      method: "POST",
      body,
      headers: { "Content-Type": "application/x-json-stream" },
      ca: [p.caPem],
    });
  const stored = (db: Db, marker: string) =>
    (
      db
        .prepare(
          "SELECT COUNT(*) AS n FROM exchanges x JOIN blobs b ON b.sha256 = x.request_body_sha256 WHERE instr(CAST(b.data AS TEXT), ?) > 0",
        )
        .get(marker) as { n: number }
    ).n;

  it("releases no response while another connection holds the write lock, then 200 once the commit went through", async () => {
    // Warm: the connection and the leaf exist, so the wait below is the commit's alone.
    expect((await upload('{"name":"warm"}')).status).toBe(200);
    const other = openDatabase(p.dbFile);
    try {
      other.prepare("BEGIN IMMEDIATE").run();
      const marker = `held-${Date.now()}`;
      let answeredAt: number | undefined;
      const sentAt = Date.now();
      const answer = upload(`{"name":"${marker}"}`).then((r) => {
        answeredAt = Date.now();
        return r;
      });
      // The proxy's loop keeps turning (timers fire on time) while the writer thread waits ...
      let ticks = 0;
      const ticker = setInterval(() => ticks++, 10);
      await new Promise((r) => setTimeout(r, 1000));
      clearInterval(ticker);
      expect(ticks).toBeGreaterThan(50);
      // ... and nothing was released, nothing is stored.
      expect(answeredAt).toBeUndefined();
      expect(stored(other, marker)).toBe(0);
      other.prepare("COMMIT").run();
      const r = await answer;
      expect(r.status).toBe(200);
      expect(answeredAt! - sentAt).toBeGreaterThanOrEqual(1000);
      // Acknowledged means stored, and the chain is whole.
      expect(stored(other, marker)).toBe(1);
      expect(checkStore(p.dbFile, "test").chainProblems).toEqual([]);
    } finally {
      if (other.inTransaction) other.prepare("ROLLBACK").run();
      other.close();
    }
  });

  it("commits many parallel uploads in chain order, each acknowledged only once stored", async () => {
    const markers = Array.from({ length: 24 }, (_, i) => `par-${i}-${Date.now()}`);
    const answers = await Promise.all(markers.map((m) => upload(`{"name":"${m}"}`)));
    expect(answers.map((r) => r.status)).toEqual(markers.map(() => 200));
    const db = openDatabase(p.dbFile);
    try {
      for (const m of markers) expect(stored(db, m)).toBe(1);
      expect(checkStore(p.dbFile, "test").chainProblems).toEqual([]);
    } finally {
      db.close();
    }
  });
});

describe("capture writer thread, on its own", () => {
  /** A store with a session, and a writer thread on it (real SQLite file). */
  const startWriter = async (options: Partial<CaptureWriterOptions> = {}) => {
    const file = join(tempDir(), "x.db");
    const db = openDatabase(file);
    const session = new CaptureStore(db).openSession("s", { toolVersion: "test" });
    const priority = new WriterPriority();
    const writer = await CaptureWriterThread.start({
      dbFile: file,
      priority,
      autoCheckpoint: true,
      onStoreGone: () => exhaustError("EXH_STORE_GONE", { file }),
      ...options,
    });
    return { file, db, session, priority, writer };
  };

  it("raises the writer priority from its thread while its commit waits for the lock, and lowers it once committed", async () => {
    const { file, db, session, priority, writer } = await startWriter();
    const other = openDatabase(file);
    try {
      other.prepare("BEGIN IMMEDIATE").run();
      let settled = false;
      const committed = Promise.all([writer.commitExchange(session, makeExchange("a")), writer.commitExchange(session, makeExchange("b"))]);
      void committed.then(() => (settled = true));
      // Background writers yield from the hand-over on, before the writer thread has the writes ...
      expect(priority.captureWaiting()).toBe(true);
      // ... and the flag the processing thread yields to is raised by the thread holding the commits.
      const until = Date.now() + 2000;
      while (Atomics.load(priority.signal, 0) !== 1 && Date.now() < until) await new Promise((r) => setTimeout(r, 5));
      expect(Atomics.load(priority.signal, 0)).toBe(1);
      await new Promise((r) => setTimeout(r, 200));
      expect(settled).toBe(false);
      other.prepare("COMMIT").run();
      await committed;
      expect(Atomics.load(priority.signal, 0)).toBe(0);
      expect(priority.captureWaiting()).toBe(false);
      const check = checkStore(file, "s");
      expect(check.exchanges).toBe(2);
      expect(check.chainProblems).toEqual([]);
    } finally {
      if (other.inTransaction) other.prepare("ROLLBACK").run();
      other.close();
      await writer.close();
      db.close();
    }
  });

  it("refuses what it had not answered when its thread dies, and starts again with the chain continued", async () => {
    const exits: string[] = [];
    const { file, db, session, priority, writer } = await startWriter({ onThreadExit: (reason) => exits.push(reason) });
    try {
      await writer.commitExchange(session, makeExchange("first", { id: "first" }));
      // Held by a lock so that the write is still unanswered when the thread is ended.
      const other = openDatabase(file);
      other.prepare("BEGIN IMMEDIATE").run();
      const pending = writer.commitExchange(session, makeExchange("lost", { id: "lost" }));
      // The thread's CaptureStore has the write queued: its flag is up.
      const until = Date.now() + 2000;
      while (Atomics.load(priority.signal, 0) !== 1 && Date.now() < until) await new Promise((r) => setTimeout(r, 5));
      expect(Atomics.load(priority.signal, 0)).toBe(1);
      const worker = (writer as unknown as { worker: Worker }).worker;
      // A write handed over in the very turn the thread dies, not posted to it yet.
      let orphan: Promise<void> | undefined;
      worker.prependOnceListener("exit", () => {
        orphan = writer.commitExchange(session, makeExchange("orphan", { id: "orphan" }));
      });
      await writer.kill();
      await expect(pending).rejects.toThrow(/capture writer thread exited/);
      await expect(orphan).rejects.toThrow(/capture writer thread exited/);
      // No capture flag stays raised by the dead thread: background writers do not wait for it.
      expect(Atomics.load(priority.signal, 0)).toBe(0);
      expect(Atomics.load(priority.signal, 2)).toBe(0);
      expect(priority.captureWaiting()).toBe(false);
      other.prepare("ROLLBACK").run();
      other.close();
      expect(exits).toHaveLength(1);
      await writer.commitExchange(session, makeExchange("after", { id: "after" }));
      // The refused write was not handed to the new thread with the next one.
      const check = checkStore(file, "s");
      expect(check.exchanges).toBe(2);
      expect(check.chainProblems).toEqual([]);
      const ids = db.prepare("SELECT id FROM exchanges ORDER BY seq").pluck().all();
      expect(ids).toEqual(["first", "after"]);
    } finally {
      await writer.close();
      db.close();
    }
  });

  it("commits and answers every write handed over just before close(), before its thread exits", async () => {
    const { file, db, session, writer } = await startWriter();
    try {
      let answered = 0;
      const writes = Array.from({ length: 20 }, (_, i) => writer.commitExchange(session, makeExchange(`w${i}`)).then(() => answered++));
      // Not awaited in between: close() is called in the same turn as the hand-over.
      const closed = writer.close().then(() => answered);
      expect(await closed).toBe(20);
      await Promise.all(writes);
      await expect(writer.commitExchange(session, makeExchange("late"))).rejects.toThrow(/closed/);
      const check = checkStore(file, "s");
      expect(check.exchanges).toBe(20);
      expect(check.chainProblems).toEqual([]);
    } finally {
      await writer.close();
      db.close();
    }
  });

  it("refuses every write once the thread finds the store deleted, telling the owner exactly once", async () => {
    let told = 0;
    const { file, db, session, writer } = await startWriter({
      onStoreGone: () => {
        told++;
        return exhaustError("EXH_STORE_GONE", { file });
      },
    });
    db.close();
    try {
      await writer.commitExchange(session, makeExchange("before"));
      for (const f of [file, `${file}-wal`, `${file}-shm`]) rmSync(f, { force: true });
      // Two in one commit, refused by the thread, then one more later.
      const refused = [writer.commitExchange(session, makeExchange("a")), writer.commitExchange(session, makeExchange("b"))];
      for (const r of refused) await expect(r).rejects.toMatchObject({ code: "EXH_STORE_GONE" });
      await expect(writer.commitExchange(session, makeExchange("c"))).rejects.toMatchObject({ code: "EXH_STORE_GONE" });
      await expect(writer.flush()).rejects.toMatchObject({ code: "EXH_STORE_GONE" });
      expect(told).toBe(1);
    } finally {
      await writer.close();
    }
  });
});
