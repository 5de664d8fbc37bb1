/**
 * Ending one of the SQLite-writing worker threads (the capture writer, the processing thread) as a
 * crash would, for tests: the thread is told to die and exits from its own loop, between two of
 * its turns, with DIE_EXIT_CODE. Not `Worker.terminate()`: a termination that lands while a SQLite
 * call is returning an error (SQLITE_BUSY in a busy retry) aborts the whole process, because
 * better-sqlite3 cannot make the exception on a terminating isolate (WiseLibs/better-sqlite3#842).
 */
import type { Worker } from "node:worker_threads";

/** The exit code of a thread that was told to die. */
export const DIE_EXIT_CODE = 70;

/** Main side: tells the thread to die; resolves once it has exited. */
export async function killThread(worker: Worker | undefined): Promise<void> {
  if (!worker) return;
  const exited = new Promise((r) => worker.once("exit", r));
  worker.postMessage({ type: "die" });
  await exited;
}

/** Thread side, in its message handler: exits at once when the message says to die. */
export function dieIfTold<M extends { type: string }>(message: M): asserts message is Exclude<M, { type: "die" }> {
  if (message.type === "die") process.exit(DIE_EXIT_CODE);
}
