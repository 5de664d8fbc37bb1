import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { Worker } from "node:worker_threads";
import type { Db } from "./database.js";

/**
 * Runs WAL checkpoints off the proxy's thread (see checkpoint-worker.ts). The worker is compiled
 * JavaScript; where it is not available (sources run by vitest), the database keeps SQLite's own
 * automatic checkpoints instead, so nothing grows without bound.
 */
export class Checkpointer {
  /** The thread ended on its own (it died): stop() must not wait for it. */
  private exited = false;

  private constructor(
    private readonly worker: Worker | undefined,
    private readonly db: Db,
  ) {
    worker?.once("exit", () => (this.exited = true));
    // A checkpoint thread that fails (out of descriptors) leaves the WAL to the final checkpoint.
    worker?.on("error", () => {});
  }

  /**
   * `nice`: the thread's nice value on Linux (a capture's `--background-nice`: the checkpoints
   * wait while the proxy's thread needs the CPU); 0, the default, leaves it at the process's.
   */
  static start(db: Db, file: string, intervalMs = 500, nice = 0): Checkpointer {
    const script = fileURLToPath(new URL("./checkpoint-worker.js", import.meta.url));
    if (!existsSync(script)) return new Checkpointer(undefined, db);
    db.pragma("wal_autocheckpoint = 0");
    const worker = new Worker(script, { workerData: { file, intervalMs, nice } });
    worker.unref();
    return new Checkpointer(worker, db);
  }

  /** Stops the thread and folds the whole WAL back into the database. */
  async stop(): Promise<void> {
    if (this.worker && !this.exited) {
      // Unref'd while running (it must not keep the proxy alive); held again while it winds down.
      this.worker.ref();
      const exited = new Promise((r) => this.worker!.once("exit", r));
      this.worker.postMessage("stop");
      await exited;
    }
    this.db.pragma("wal_checkpoint(TRUNCATE)");
  }
}
