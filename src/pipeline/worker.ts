/**
 * The processing thread: decodes (and later classifies) every captured exchange off the proxy's
 * event loop. It is told exchange ids as they are committed, and on start it catches up on any
 * left undecoded (a crash, a stop with a backlog, an older decoder).
 */
import { parentPort, workerData } from "node:worker_threads";
import { openDatabase } from "../store/database.js";
import { ExchangeProcessor } from "./process.js";

const port = parentPort!;
const db = openDatabase((workerData as { dbFile: string }).dbFile);
const processor = new ExchangeProcessor(db);
const queue: string[] = processor.pending();
let running = false;
let stopped = false;
/** Ids received by message, reported with "idle" so the proxy side knows what is done. */
let received = 0;

function drain(): void {
  if (running) return;
  running = true;
  // One exchange per turn, so "stop" and new ids are seen between them.
  const step = () => {
    const id = queue.shift();
    if (stopped) return;
    if (id === undefined) {
      running = false;
      port.postMessage({ type: "idle", received });
      return;
    }
    try {
      processor.process(id);
    } catch (e) {
      port.postMessage({ type: "error", exchangeId: id, message: (e as Error).message });
    }
    setImmediate(step);
  };
  step();
}

port.on("message", (m: { type: "exchange"; id: string } | { type: "stop" }) => {
  if (m.type === "exchange") {
    received++;
    queue.push(m.id);
    drain();
  } else if (m.type === "stop") {
    // Leave the backlog: the next start (or `exhaust reprocess`) catches up on undecoded exchanges.
    stopped = true;
    queue.length = 0;
    db.close();
    port.close();
  }
});
drain();
