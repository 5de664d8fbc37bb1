import { describe, expect, it } from "vitest";
import { join } from "node:path";
import { CaptureStore } from "../src/store/capture-store.js";
import { openDatabase } from "../src/store/database.js";
import { WriterPriority } from "../src/store/writer-priority.js";
import { makeExchange } from "./helpers/exchange.js";
import { tempDir } from "./helpers/proxy.js";

const exchange = (body: string) => makeExchange(body);

describe("capture store beside a background writer", () => {
  it("waits for another connection's write lock without blocking the event loop, then commits in chain order", async () => {
    const file = join(tempDir(), "x.db");
    const db = openDatabase(file);
    const priority = new WriterPriority();
    const store = new CaptureStore(db, priority);
    const session = store.openSession("s", { toolVersion: "test" });

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
    const rows = db.prepare("SELECT seq, prev_hash, hash FROM exchanges ORDER BY seq").all() as Array<{ seq: number; prev_hash: string; hash: string }>;
    expect(rows.map((r) => r.seq)).toEqual([1, 2]);
    expect(rows[1].prev_hash).toBe(rows[0].hash);
    other.close();
    db.close();
  });
});
