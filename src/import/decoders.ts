/**
 * Decode + classify threads of `exhaust import`. The import thread parses the file, stores each
 * exchange's capture rows and hands its upload to one of these threads (round robin); it stores
 * the events they send back itself, in the order the exchanges came, so the database keeps one
 * writer. How many: EXHAUST_IMPORT_THREADS (at most 8; "auto": os.availableParallelism() - 1, at
 * least 1, at most MAX_IMPORT_THREADS, since each thread holds the rule packs and a V8 heap and the
 * import's RSS stays under 300 MB). The default is 0, decoding in the import thread itself: handing
 * the results back costs the import thread more than the decoding it is spared (docs/performance.md).
 */
import { availableParallelism } from "node:os";
import { join } from "node:path";
import { resourceLimits, Worker } from "node:worker_threads";
import type { ClassifiedEvent, ClassifiedRequestItem } from "../classify/types.js";
import type { DecodedUpload } from "../decode/registry.js";
import { PACKAGE_ROOT } from "../paths.js";
import type { StoredUpload } from "../store/event-store.js";

const WORKER_FILE = join(PACKAGE_ROOT, "dist", "src", "import", "classify-worker.js");
export const MAX_IMPORT_THREADS = 2;

export interface DecoderRequest {
  n: number;
  upload: StoredUpload;
}

export type DecoderReply =
  | { type: "done"; n: number; decoded: DecodedUpload; classified: ClassifiedEvent[]; request: ClassifiedRequestItem[] }
  | { type: "json"; n: number; json: string }
  | { type: "failed"; n: number; message: string };

export type Decoded = Omit<Extract<DecoderReply, { type: "done" }>, "type" | "n">;

/** Decode threads for an import: EXHAUST_IMPORT_THREADS (a number, or "auto" for the cores but one), else 0. */
export function importThreads(env: NodeJS.ProcessEnv = process.env): number {
  const set = env.EXHAUST_IMPORT_THREADS?.trim();
  if (set === "auto") return Math.max(1, Math.min(MAX_IMPORT_THREADS, availableParallelism() - 1));
  if (set !== undefined && /^\d+$/.test(set)) return Math.min(Number(set), 8);
  return 0;
}

interface Waiter {
  resolve: (d: Decoded) => void;
  reject: (e: Error) => void;
}

export class ImportDecoders {
  private readonly workers: Worker[] = [];
  private readonly waiting = new Map<number, Waiter>();
  private n = 0;
  private failure: Error | undefined;

  constructor(threads: number) {
    for (let i = 0; i < threads; i++) {
      // The import thread's own heap caps (a payload up to --max-body is decoded here).
      const worker = new Worker(WORKER_FILE, { resourceLimits: resourceLimits });
      worker.on("message", (m: DecoderReply) => this.reply(m));
      worker.on("error", (e) => this.fail(e));
      worker.on("exit", (code) => this.fail(new Error(`a decode thread of the import ended with code ${code}`)));
      worker.unref();
      this.workers.push(worker);
    }
  }

  /** Decodes and classifies one upload on the next thread; resolves with what it produced. */
  submit(upload: StoredUpload): Promise<Decoded> {
    if (this.failure) return Promise.reject(this.failure);
    const n = this.n++;
    const worker = this.workers[n % this.workers.length];
    // Only while something is waiting do the threads keep the import's event loop alive.
    if (this.waiting.size === 0) for (const w of this.workers) w.ref();
    const done = new Promise<Decoded>((resolve, reject) => this.waiting.set(n, { resolve, reject }));
    worker.postMessage({ n, upload } satisfies DecoderRequest);
    return done;
  }

  async stop(): Promise<void> {
    this.failure ??= new Error("the import's decode threads were stopped");
    await Promise.all(this.workers.map((w) => w.terminate()));
  }

  private settled(n: number): Waiter | undefined {
    const w = this.waiting.get(n);
    this.waiting.delete(n);
    if (this.waiting.size === 0) for (const worker of this.workers) worker.unref();
    return w;
  }

  private reply(m: DecoderReply): void {
    if (m.type === "done") this.settled(m.n)?.resolve({ decoded: m.decoded, classified: m.classified, request: m.request });
    else if (m.type === "json") this.settled(m.n)?.resolve(JSON.parse(m.json) as Decoded);
    else if (m.type === "failed") this.settled(m.n)?.reject(new Error(m.message));
  }

  private fail(e: Error): void {
    this.failure ??= e;
    for (const n of [...this.waiting.keys()]) this.settled(n)?.reject(this.failure);
  }
}
