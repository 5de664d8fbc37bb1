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
import { Unpacker, type PackedUpload } from "./packing.js";

const WORKER_FILE = join(PACKAGE_ROOT, "dist", "src", "import", "classify-worker.js");
export const MAX_IMPORT_THREADS = 2;

/** Uploads go to a thread, and come back, several to a message: each message wakes the other thread. */
export const UPLOADS_PER_MESSAGE = 8;

export type DecoderRequest = Array<{ n: number; upload: StoredUpload }>;

export type DecoderReply = Array<{ n: number; packed: PackedUpload } | { n: number; failed: string }>;

/** What a decode thread produced for one upload (as ExchangeProcessor has it before storing). */
export interface Decoded {
  decoded: DecodedUpload;
  classified: ClassifiedEvent[];
  request: ClassifiedRequestItem[];
}

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
  /** Uploads gathered for the next message, and the thread it goes to. */
  private outgoing: DecoderRequest = [];
  private next = 0;

  constructor(threads: number) {
    for (let i = 0; i < threads; i++) {
      // The import thread's own heap caps (a payload up to --max-body is decoded here).
      const worker = new Worker(WORKER_FILE, { resourceLimits: resourceLimits });
      const unpacker = new Unpacker();
      worker.on("message", (m: DecoderReply) => this.reply(m, unpacker));
      worker.on("error", (e) => this.fail(e));
      worker.on("exit", (code) => this.fail(new Error(`a decode thread of the import ended with code ${code}`)));
      worker.unref();
      this.workers.push(worker);
    }
  }

  /**
   * Decodes and classifies one upload on a thread; resolves with what it produced. The upload waits
   * for UPLOADS_PER_MESSAGE others, or for flush(), which whoever awaits the result must call first.
   */
  submit(upload: StoredUpload): { n: number; done: Promise<Decoded> } {
    const n = this.n++;
    if (this.failure) return { n, done: Promise.reject(this.failure) };
    // Only while something is waiting do the threads keep the import's event loop alive.
    if (this.waiting.size === 0) for (const w of this.workers) w.ref();
    const done = new Promise<Decoded>((resolve, reject) => this.waiting.set(n, { resolve, reject }));
    this.outgoing.push({ n, upload });
    if (this.outgoing.length >= UPLOADS_PER_MESSAGE) this.flush();
    return { n, done };
  }

  /** Whether upload number `n` waits in the message being gathered: then flush() before awaiting it. */
  holds(n: number): boolean {
    return this.outgoing.length > 0 && this.outgoing[0].n <= n;
  }

  /** Sends the uploads gathered so far (to the next thread in turn). */
  flush(): void {
    if (this.outgoing.length === 0 || this.failure) return;
    this.workers[this.next++ % this.workers.length].postMessage(this.outgoing);
    this.outgoing = [];
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

  private reply(m: DecoderReply, unpacker: Unpacker): void {
    for (const r of m) {
      if ("failed" in r) {
        this.settled(r.n)?.reject(new Error(r.failed));
        continue;
      }
      // Unpacked as it arrives, waited for or not: the thread's tables grow message by message.
      const decoded = unpacker.unpack(r.packed);
      this.settled(r.n)?.resolve(decoded);
    }
  }

  private fail(e: Error): void {
    this.failure ??= e;
    for (const n of [...this.waiting.keys()]) this.settled(n)?.reject(this.failure);
  }
}
