/**
 * The processing thread: decodes and classifies every captured exchange off the proxy's
 * event loop. It is told exchange ids as they are committed, and on start it catches up on any
 * left undecoded (a crash, a stop with a backlog, an older decoder).
 */
import { parentPort, workerData } from "node:worker_threads";
import { openDatabase } from "../store/database.js";
import { ROWS_PER_TRANSACTION_BESIDE_PROXY } from "../store/event-store.js";
import { dieIfTold } from "../store/thread-exit.js";
import { StopRequested, StopSignal, WriterPriority } from "../store/writer-priority.js";
import { lowerThreadPriority } from "../thread-priority.js";
import { LullGate } from "./lull.js";
import { ExchangeProcessor } from "./process.js";

const port = parentPort!;
const { dbFile, prioritySignal, stopSignal, sessionId, notify, nice } = workerData as {
  dbFile: string;
  prioritySignal: Int32Array;
  /** Raised by ProcessingThread.stop: end between two transactions, even inside an exchange. */
  stopSignal: Int32Array;
  sessionId?: number;
  notify?: boolean;
  /** The nice value of this thread (Linux; `--background-nice`); 0 leaves it at the process's. */
  nice: number;
};
// Under load the kernel gives the proxy's thread the CPU; this one catches up when traffic lulls,
// and what it has not reached at the stop is decoded there, on the main thread.
lowerThreadPriority(nice, "exhaust-decode");
// The proxy created the file: never create one here (a deleted store is not silently replaced).
const db = openDatabase(dbFile, { mustExist: true });
// The proxy runs a Checkpointer thread beside this one (both are compiled JavaScript, so where this
// worker runs, that one does too): commits here should not also stop to checkpoint.
db.pragma("wal_autocheckpoint = 0");
// Beside the proxy: short transactions, and none while the proxy has captures to commit.
const priority = new WriterPriority(prioritySignal);
const processor = new ExchangeProcessor(db, {
  rowsPerTransaction: ROWS_PER_TRANSACTION_BESIDE_PROXY,
  priority,
  stop: new StopSignal(stopSignal),
});
// Decode in the lulls of capture traffic (the thread's loop stays free meanwhile: ids and "stop" arrive).
const lull = new LullGate(priority);
// Catch up on the proxy's own session only: another proxy may be capturing (and processing) another
// session of the same database, and two threads processing one exchange would interleave its events.
const queue: string[] = processor.pending({ sessionId });
// An exchange committed while this thread started is both in the catch-up list and told by the
// proxy: process it once. (A second pass later would re-process it if something made it stale in
// between, such as a test marking it classified with older rules.)
const caughtUp = new Set(queue);
let running = false;
let stopped = false;

function drain(): void {
  if (running) return;
  running = true;
  // One exchange per turn, so "stop" and new ids are seen between them.
  const step = () => {
    if (stopped) return;
    if (queue.length === 0) {
      running = false;
      return;
    }
    const wait = lull.wait();
    if (wait > 0) {
      setTimeout(step, wait);
      return;
    }
    const id = queue.shift()!;
    try {
      const outcome = processor.process(id, { onlyIfPending: true });
      if (notify) {
        const notice = {
          exchangeId: id,
          events: outcome?.events ?? 0,
          contentFields: outcome?.contentFields ?? 0,
          processed: outcome !== undefined,
        };
        port.postMessage({ type: "processed", notice });
      }
    } catch (e) {
      if (e instanceof StopRequested) {
        // The exchange in hand stays undecoded; the next start or `exhaust reprocess` takes it up.
        end();
        return;
      }
      port.postMessage({ type: "error", exchangeId: id, message: (e as Error).message });
    }
    setImmediate(step);
  };
  step();
}

/** Ends the thread by closing what holds it: the database and the port. */
function end(): void {
  if (stopped) return;
  stopped = true;
  queue.length = 0;
  db.close();
  port.close();
}

port.on("message", (m: { type: "exchange"; id: string } | { type: "stop" } | { type: "die" }) => {
  // Tests: end as a crash would, from this thread's own loop (ProcessingThread.kill, thread-exit.ts).
  dieIfTold(m);
  if (m.type === "exchange") {
    if (caughtUp.delete(m.id)) return;
    queue.push(m.id);
    drain();
  } else if (m.type === "stop") {
    // Leave the backlog: the next start (or `exhaust reprocess`) catches up on undecoded exchanges.
    end();
  }
});
drain();
