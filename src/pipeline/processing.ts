import { existsSync } from "node:fs";
import { join } from "node:path";
import { Worker } from "node:worker_threads";
import type { Logger } from "../log.js";
import { PACKAGE_ROOT } from "../paths.js";
import type { Addon } from "../proxy/addons/addon.js";
import type { WriterPriority } from "../store/writer-priority.js";

/** The compiled worker (dist/); `npm test` and `npm start` build it first. */
const WORKER_FILE = join(PACKAGE_ROOT, "dist", "src", "pipeline", "worker.js");

/**
 * Runs the processing worker beside the proxy and feeds it every captured exchange once its
 * capture is complete.
 */
export class ProcessingThread {

  private constructor(
    private readonly worker: Worker,
    log: Logger,
  ) {
    worker.on("message", (m: { type: string; exchangeId?: string; message?: string }) => {
      if (m.type === "error") {
        log.error({ code: "EXH_PROCESS_FAILED", exchange: m.exchangeId, reason: m.message }, "processing an exchange failed");
      }
    });
    worker.on("error", (e) => log.error({ code: "EXH_PROCESS_FAILED", reason: e.message }, "processing thread failed"));
    worker.unref();
  }

  /** `priority` is the capture writer's: the thread's writes yield to the proxy's commits. */
  /** `sessionId`: the catch-up at start covers this session only (all sessions when not given). */
  static start(dbFile: string, log: Logger, priority: WriterPriority, sessionId?: number): ProcessingThread {
    if (!existsSync(WORKER_FILE)) {
      throw new Error(`processing worker not built: ${WORKER_FILE} (run npm run build)`);
    }
    return new ProcessingThread(new Worker(WORKER_FILE, { workerData: { dbFile, prioritySignal: priority.signal, sessionId } }), log);
  }

  submit(exchangeId: string): void {
    this.worker.postMessage({ type: "exchange", id: exchangeId });
  }

  /** Ends the thread after the exchange in hand; a backlog is picked up on the next start. */
  async stop(): Promise<void> {
    this.worker.ref();
    const exited = new Promise((r) => this.worker.once("exit", r));
    this.worker.postMessage({ type: "stop" });
    await exited;
  }

  /** The addon that hands each exchange over once its capture is complete. */
  addon(): Addon {
    return {
      name: "processing",
      onExchangeEnd: (x) => {
        if (x.capture) this.submit(x.id);
      },
    };
  }
}
