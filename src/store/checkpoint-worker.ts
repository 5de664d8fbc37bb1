/**
 * Checkpoints the WAL of the capture database from a thread of its own (PASSIVE: never waits for
 * the writer, never blocks it), so the proxy's commits stay short. Started by Checkpointer.
 */
import { parentPort, workerData } from "node:worker_threads";
import Database from "better-sqlite3";
import { lowerThreadPriority } from "../thread-priority.js";

const { file, intervalMs, nice } = workerData as { file: string; intervalMs: number; nice: number };
lowerThreadPriority(nice, "exhaust-ckpt");
const db = new Database(file, { fileMustExist: true });
db.pragma("busy_timeout = 1000");
const timer = setInterval(() => {
  try {
    db.pragma("wal_checkpoint(PASSIVE)");
  } catch {
    // Busy or locked: the next round catches up.
  }
}, intervalMs);
parentPort!.on("message", (m: string) => {
  if (m === "stop") {
    clearInterval(timer);
    db.close();
    parentPort!.close();
  }
});
