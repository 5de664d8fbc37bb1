import { existsSync } from "node:fs";
import { join } from "node:path";
import { Worker } from "node:worker_threads";
import type { Logger } from "../log.js";
import { PACKAGE_ROOT } from "../paths.js";
import type { Addon } from "../proxy/addons/addon.js";
import { killThread } from "../store/thread-exit.js";
import { StopSignal, type WriterPriority } from "../store/writer-priority.js";

/** What the thread tells of each exchange it took up: the outcome, or null when it had nothing to do. */
export interface ProcessedNotice {
  exchangeId: string;
  events: number;
  contentFields: number;
  /** False when the exchange was already processed, not found, or failed. */
  processed: boolean;
  /** Processing threw (logged as EXH_PROCESS_FAILED). */
  failed?: boolean;
}

/** The compiled worker (dist/); `npm test` and `npm start` build it first. */
const WORKER_FILE = join(PACKAGE_ROOT, "dist", "src", "pipeline", "worker.js");

/** Waits before starting a worker again after it died, doubling up to the maximum. */
const RESTART_MIN_MS = 200;
const RESTART_MAX_MS = 10_000;
/**
 * How long a stop waits for the thread to end by itself. It ends between two transactions, so
 * this covers one lock wait (busy_timeout, 5 s) and one transaction; only then is it terminated.
 */
const STOP_GRACE_MS = 15_000;

/**
 * Runs the processing worker beside the proxy and feeds it every captured exchange once its
 * capture is complete. If the worker dies (out of descriptors or memory, a bug), it is started
 * again after a short, growing delay; on start it catches up on every exchange left undecoded, so
 * what was submitted to the dead one is not lost.
 */
export class ProcessingThread {
  private worker?: Worker;
  private stopping = false;
  private restartTimer?: NodeJS.Timeout;
  private delay = RESTART_MIN_MS;
  private readonly stopSignal = new StopSignal();
  /** Workers started in all (1 + restarts). */
  starts = 0;

  private constructor(
    private readonly dbFile: string,
    private readonly log: Logger,
    private readonly priority: WriterPriority,
    private readonly sessionId?: number,
    private readonly onProcessed?: (notice: ProcessedNotice) => void,
    private readonly nice = 0,
  ) {
    this.spawn();
  }

  /** `priority` is the capture writer's: the thread's writes yield to the proxy's commits. */
  /** `sessionId`: the catch-up at start covers this session only (all sessions when not given). */
  /** `onProcessed`: told each exchange the thread took up (the console's per-exchange line). */
  /** `nice`: the thread's nice value on Linux (`--background-nice`; 0 leaves it at the process's). */
  static start(
    dbFile: string,
    log: Logger,
    priority: WriterPriority,
    sessionId?: number,
    onProcessed?: (notice: ProcessedNotice) => void,
    nice?: number,
  ): ProcessingThread {
    if (!existsSync(WORKER_FILE)) {
      throw new Error(`processing worker not built: ${WORKER_FILE} (run npm run build)`);
    }
    return new ProcessingThread(dbFile, log, priority, sessionId, onProcessed, nice);
  }

  private spawn(): void {
    this.starts++;
    let worker: Worker;
    try {
      worker = new Worker(WORKER_FILE, {
        workerData: {
          dbFile: this.dbFile,
          prioritySignal: this.priority.signal,
          stopSignal: this.stopSignal.signal,
          sessionId: this.sessionId,
          notify: this.onProcessed !== undefined,
          nice: this.nice,
        },
      });
    } catch (e) {
      this.died((e as Error).message);
      return;
    }
    this.worker = worker;
    const startedAt = Date.now();
    worker.on("message", (m: { type: string; exchangeId?: string; message?: string; notice?: ProcessedNotice }) => {
      if (m.type === "processed" && m.notice) this.onProcessed?.(m.notice);
      if (m.type === "error") {
        if (m.exchangeId) this.onProcessed?.({ exchangeId: m.exchangeId, events: 0, contentFields: 0, processed: false, failed: true });
        this.log.error({ code: "EXH_PROCESS_FAILED", exchange: m.exchangeId, reason: m.message }, "processing an exchange failed");
      }
    });
    worker.on("error", (e) => this.log.error({ code: "EXH_PROCESS_FAILED", reason: e.message }, "processing thread failed"));
    worker.once("exit", (code) => {
      if (this.worker === worker) this.worker = undefined;
      if (this.stopping) return;
      // A worker that ran a while before dying starts again at once; a crash loop backs off.
      if (Date.now() - startedAt > RESTART_MAX_MS) this.delay = RESTART_MIN_MS;
      this.died(`exited with code ${code}`);
    });
    worker.unref();
  }

  private died(reason: string): void {
    if (this.stopping) return;
    this.log.error(
      { code: "EXH_PROCESS_FAILED", reason, restartInMs: this.delay },
      "processing thread stopped; restarting it (it catches up on undecoded exchanges)",
    );
    this.restartTimer = setTimeout(() => {
      this.restartTimer = undefined;
      if (!this.stopping) this.spawn();
    }, this.delay);
    this.restartTimer.unref();
    this.delay = Math.min(RESTART_MAX_MS, this.delay * 2);
  }

  submit(exchangeId: string): void {
    // While the thread is down, the id waits in the database: the next start catches up on it.
    this.worker?.postMessage({ type: "exchange", id: exchangeId });
  }

  /** For tests: ends the current worker as a crash would (killThread: from its own loop, between two exchanges). */
  kill(): Promise<void> {
    return killThread(this.worker);
  }

  /**
   * Ends the thread between two of its transactions, inside an exchange if need be; what it had
   * not finished stays undecoded and is picked up by the next start (or the stop's own decoding of
   * the backlog). Resolves to the thread's exit code (0 when it ended by itself).
   */
  async stop(): Promise<number | undefined> {
    this.stopping = true;
    clearTimeout(this.restartTimer);
    const worker = this.worker;
    if (!worker) return undefined;
    worker.ref();
    const exited = new Promise<number>((r) => worker.once("exit", r));
    this.stopSignal.request();
    worker.postMessage({ type: "stop" });
    // Last resort, for a thread stuck where no transaction ends (terminate() can abort the process
    // if it lands inside a failing SQLite call, which is why it is not the way to stop).
    const timer = setTimeout(() => {
      this.log.warn({ code: "EXH_PROCESS_FAILED", graceMs: STOP_GRACE_MS }, "processing thread did not stop; terminating it");
      void worker.terminate();
    }, STOP_GRACE_MS);
    const code = await exited;
    clearTimeout(timer);
    return code;
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
