/**
 * Decode + classify + store, end to end, on this thread: stored uploads of 100 Bond events with
 * 40 fields each (envelope and Part A included) go through the same ExchangeProcessor the
 * processing thread runs, into a real SQLite file. Reports events/s and fields/s.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { decodeUpload } from "../src/decode/registry.js";
import { ExchangeProcessor } from "../src/pipeline/process.js";
import { CaptureStore } from "../src/store/capture-store.js";
import { Checkpointer } from "../src/store/checkpointer.js";
import { openDatabase, type Db } from "../src/store/database.js";
import { ROWS_PER_TRANSACTION_ALONE } from "../src/store/event-store.js";
import { encodeCsRecords, makeCsRecord } from "../test/helpers/bond-writer.js";
import { makeExchange } from "../test/helpers/exchange.js";
import { round } from "./load.js";
import { cpuTicks, threadCpuNanos } from "../test/helpers/proc.js";

/** Part C properties per event so that, with the envelope and Part A, an event has ~40 fields. */
const PART_C_FOR_40_FIELDS = 17;

/**
 * A database in a temp dir holding `uploads` captured uploads of Bond events, its checkpoints on
 * their own thread as in the proxy and `exhaust reprocess`; `run` gets it and the uploads' exchange
 * ids. Everything is removed afterwards.
 */
async function withBenchUploads<T>(uploads: number, eventsPerUpload: number, run: (db: Db, ids: string[]) => T): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), "exhaust-bench-pipeline-"));
  try {
    const dbFile = join(dir, "bench.db");
    const db = openDatabase(dbFile);
    const checkpointer = Checkpointer.start(db, dbFile);
    try {
      return run(db, await storeBenchUploads(db, uploads, eventsPerUpload));
    } finally {
      await checkpointer.stop();
      db.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Stores `uploads` captured uploads of Bond events (a session "bench"); returns their exchange ids. */
async function storeBenchUploads(db: Db, uploads: number, eventsPerUpload: number): Promise<string[]> {
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
  return ids;
}

/**
 * `rowsPerTransaction` as `exhaust reprocess` uses it (alone) and as the processing thread uses it
 * beside a running proxy, where transactions are kept short so captures never wait long.
 */
export async function pipelineThroughput(
  uploads = 300,
  eventsPerUpload = 100,
  rowsPerTransaction = ROWS_PER_TRANSACTION_ALONE,
): Promise<object> {
  return withBenchUploads(uploads, eventsPerUpload, (db, ids) => {
    const processor = new ExchangeProcessor(db, { rowsPerTransaction });
    const t0 = performance.now();
    const ticks0 = cpuTicks(process.pid, process.pid);
    for (const id of ids) {
      processor.process(id);
    }
    const seconds = (performance.now() - t0) / 1000;
    // This thread's CPU time (10 ms ticks): events per CPU-second holds on a busy machine.
    const cpuSeconds = (cpuTicks(process.pid, process.pid) - ticks0) / 100;
    const { events, fields } = db
      .prepare("SELECT (SELECT COUNT(*) FROM events) AS events, (SELECT COUNT(*) FROM fields) AS fields")
      .get() as {
      events: number;
      fields: number;
    };
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
  });
}

/**
 * The same pipeline with each stage's CPU time on this thread read on its own (issue 19, goal 4):
 * for every upload in turn, load, decode, classify and store, as ExchangeProcessor.process runs
 * them, the thread's CPU clock read between the stages (one upload of 100 events at a time, so memory
 * behaves as in the pipeline; the four readings per upload, about 5 µs each, add about 0.2 µs per event). The uploads and the rows
 * stored are those of pipelineThroughput. `storeOnlyEventsPerCpuSecond` is what the pipeline could
 * reach on this machine, with this storage shape, if loading, decoding and classifying cost nothing:
 * the ceiling of the one-thread rate goal 4 asks for; `withoutStoreEventsPerCpuSecond` the same for
 * a store that cost nothing.
 */
export async function pipelineStages(uploads = 300, eventsPerUpload = 100): Promise<object> {
  return withBenchUploads(uploads, eventsPerUpload, (db, ids) => {
    const processor = new ExchangeProcessor(db);
    const ns = { load: 0, decode: 0, classify: 0, store: 0 };
    // One reading between two stages: each stage's time runs from the reading before it.
    let last = threadCpuNanos();
    const lap = (stage: keyof typeof ns) => {
      const now = threadCpuNanos();
      ns[stage] += now - last;
      last = now;
    };
    for (const id of ids) {
      const upload = processor.loadUpload(id)!;
      lap("load");
      const decoded = decodeUpload(upload);
      lap("decode");
      const results = processor.classifyUpload(upload, decoded);
      lap("classify");
      processor.storeResults(upload, results);
      lap("store");
    }
    const events = (db.prepare("SELECT COUNT(*) AS n FROM events").get() as { n: number }).n;
    const total = ns.load + ns.decode + ns.classify + ns.store;
    const perEvent = (n: number) => round(n / 1000 / Math.max(1, events), 1);
    const perCpuSecond = (n: number) => (n > 0 ? Math.round(events / (n / 1e9)) : null);
    return {
      uploads,
      events,
      cpuMicrosPerEvent: {
        load: perEvent(ns.load),
        decode: perEvent(ns.decode),
        classify: perEvent(ns.classify),
        store: perEvent(ns.store),
        total: perEvent(total),
      },
      storeShare: round(ns.store / total),
      storeOnlyEventsPerCpuSecond: perCpuSecond(ns.store),
      withoutStoreEventsPerCpuSecond: perCpuSecond(total - ns.store),
    };
  });
}
