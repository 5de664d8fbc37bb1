/**
 * Decode + classify + store, end to end, on this thread: stored uploads of 100 Bond events with
 * 40 fields each (envelope and Part A included) go through the same ExchangeProcessor the
 * processing thread runs, into a real SQLite file. Reports events/s and fields/s.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { ExchangeProcessor } from "../src/pipeline/process.js";
import { CaptureStore } from "../src/store/capture-store.js";
import { Checkpointer } from "../src/store/checkpointer.js";
import { openDatabase } from "../src/store/database.js";
import { ROWS_PER_TRANSACTION_ALONE } from "../src/store/event-store.js";
import { encodeCsRecords, makeCsRecord } from "../test/helpers/bond-writer.js";
import { makeExchange } from "../test/helpers/exchange.js";
import { round } from "./load.js";
import { cpuTicks } from "../test/helpers/proc.js";

/** Part C properties per event so that, with the envelope and Part A, an event has ~40 fields. */
const PART_C_FOR_40_FIELDS = 17;

/**
 * `rowsPerTransaction` as `exhaust reprocess` uses it (alone) and as the processing thread uses it
 * beside a running proxy, where transactions are kept short so captures never wait long.
 */
export async function pipelineThroughput(
  uploads = 300,
  eventsPerUpload = 100,
  rowsPerTransaction = ROWS_PER_TRANSACTION_ALONE,
): Promise<object> {
  const dir = mkdtempSync(join(tmpdir(), "exhaust-bench-pipeline-"));
  try {
    const dbFile = join(dir, "bench.db");
    const db = openDatabase(dbFile);
    // As in the proxy and `exhaust reprocess`: checkpoints run on their own thread.
    const checkpointer = Checkpointer.start(db, dbFile);
    const store = new CaptureStore(db);
    const session = store.openSession("bench", { toolVersion: "bench" });
    const ids: string[] = [];
    for (let u = 0; u < uploads; u++) {
      // Every upload different (event numbers shift), as a real capture would be.
      const records = Array.from({ length: eventsPerUpload }, (_, e) => makeCsRecord(u * eventsPerUpload + e, PART_C_FOR_40_FIELDS));
      const body = Buffer.from(encodeCsRecords(records));
      const x = makeExchange(body, {
        requestHeaders: [
          ["Content-Type", "application/bond-compact-binary"],
          ["APIKey", "0123456789abcdef0123456789abcdef-aaaa-7000"],
        ],
      });
      await store.commitExchange(session, x);
      ids.push(x.id);
    }
    const processor = new ExchangeProcessor(db, { rowsPerTransaction });
    let events = 0;
    let fields = 0;
    const t0 = performance.now();
    const ticks0 = cpuTicks(process.pid, process.pid);
    for (const id of ids) {
      processor.process(id);
    }
    const seconds = (performance.now() - t0) / 1000;
    // This thread's CPU time (10 ms ticks): events per CPU-second holds on a busy machine.
    const cpuSeconds = (cpuTicks(process.pid, process.pid) - ticks0) / 100;
    const counts = db.prepare("SELECT (SELECT COUNT(*) FROM events) AS events, (SELECT COUNT(*) FROM fields) AS fields").get() as {
      events: number;
      fields: number;
    };
    events = counts.events;
    fields = counts.fields;
    await checkpointer.stop();
    db.close();
    return {
      uploads,
      rowsPerTransaction,
      events,
      fieldsPerEvent: round(fields / Math.max(1, events), 1),
      seconds: round(seconds),
      eventsPerSec: Math.round(events / seconds),
      cpuSeconds: round(cpuSeconds),
      eventsPerCpuSecond: cpuSeconds > 0 ? Math.round(events / cpuSeconds) : null,
      fieldsPerSec: Math.round(fields / seconds),
      targetEventsPerSec: 10_000,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
