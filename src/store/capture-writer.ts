/**
 * The capture commit off the proxy's event loop. CaptureWriterThread is the CaptureSink the capture
 * addon writes through during a capture: each write is handed to a thread of its own
 * (capture-writer-worker.ts) that owns a CaptureStore on its own SQLite connection, and the write's
 * promise resolves only when that thread says the group commit holding it committed. So the engine,
 * which awaits the capture addon's onResponse before it releases a response, still releases
 * nothing that is not durable (WAL), and a failed commit still rejects (503, EXH_CAPTURE_FAILED);
 * what the loop no longer does is hash the bodies, build the chain link, run the INSERTs, check the
 * store's identity and commit.
 *
 * Messages (one per turn of each thread's loop, not one per write):
 * - to the thread: `{ type: "ops", ops }`, every write of this turn in order, each numbered; and
 *   `{ type: "stop" }` at the end.
 * - back: `{ type: "ready" }` once its connection is open (or `failed`), `{ type: "settled", results }`
 *   after each commit (a number: committed; `[n, message, code]`: refused). After a stop the
 *   thread closes its connection and exits.
 *
 * Bodies from 64 KiB on (SHARED_BODY_BYTES) are shared with the thread, neither cloned nor
 * transferred: such a body is made in a SharedArrayBuffer (capture-bytes.ts, used by proxy/body.ts
 * and the WebSocket reader), and posting a view of one hands the thread the same memory. The engine
 * and the addons after the capture addon (the relay upstream, the UI's live view, the exchange log)
 * go on reading the bytes the thread hashes and stores; nothing writes to a body once made. (A
 * clone held a second copy of every body on the thread until its commit: 40 concurrent 32 MiB
 * uploads then went past the containment bound. A transfer would take the bytes away from those
 * later readers.) A large body that is not in shared memory is copied into it here
 * (bodyForThread). A smaller body is in ordinary memory of its own and postMessage clones it: a
 * few microseconds of copying, and memory that V8's young-generation collections free and the C
 * heap hands out again without new pages (capture-bytes.ts says why that matters).
 *
 * Shared memory is not counted by V8 as an isolate's external memory, so no garbage collection
 * is started by it: the thread collects its own garbage after every RECLAIM_BYTES of committed
 * bodies (capture-writer-worker.ts), the proxy's loop after every LOOP_RECLAIM_BYTES of shared
 * bodies made (capture-bytes.ts), so that a body is freed soon after both let go of it.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { Worker } from "node:worker_threads";
import type { ExhaustError } from "../errors.js";
import { PACKAGE_ROOT } from "../paths.js";
import { SHARED_BODY_BYTES, sharedBytes } from "./capture-bytes.js";
import type { ConnectionRecord } from "../types.js";
import { headOf, type CaptureSink, type ExchangeCompletion, type ExchangeHead, type SessionInfo } from "./capture-store.js";
import type { SessionOwner } from "./session-owner.js";
import { killThread } from "./thread-exit.js";
import type { WriterPriority } from "./writer-priority.js";

/** The compiled thread (dist/), like the processing thread's; `npm test` and `npm start` build it first. */
export const CAPTURE_WRITER_FILE = join(PACKAGE_ROOT, "dist", "src", "store", "capture-writer-worker.js");

/** What the thread is started with. */
export interface WriterData {
  dbFile: string;
  /** The WriterPriority's shared flags: the thread that commits captures raises it. */
  prioritySignal: Int32Array;
  /** False when a Checkpointer thread checkpoints the WAL (this connection must not). */
  autoCheckpoint: boolean;
  /** The session claim whose heartbeat this thread writes with the captures. */
  owner?: Pick<SessionOwner, "session" | "token">;
}

export type WriterOp =
  | { k: "commit"; n: number; s: SessionInfo; x: ExchangeHead }
  | { k: "complete"; n: number; c: ExchangeCompletion }
  | { k: "open"; n: number; s: SessionInfo; c: ConnectionRecord }
  | { k: "close"; n: number; c: ConnectionRecord }
  | { k: "beat"; n: number }
  | { k: "flush"; n: number };

/** A committed write's number, or a refused one's with the reason. */
export type WriterResult = number | [n: number, message: string, code: string | undefined];

export type WriterReply = { type: "ready" } | { type: "failed"; message: string } | { type: "settled"; results: WriterResult[] };

export interface CaptureWriterOptions {
  dbFile: string;
  priority: WriterPriority;
  autoCheckpoint: boolean;
  owner?: SessionOwner;
  /**
   * Called when the thread finds the store's files deleted or replaced: returns the error every
   * write is refused with from then on (the owner logs it once and stops the capture).
   */
  onStoreGone: () => ExhaustError;
  /** Told when the thread dies (it is started again at the next write). */
  onThreadExit?: (reason: string) => void;
}

interface Pending {
  resolve: () => void;
  reject: (e: unknown) => void;
}

export class CaptureWriterThread implements CaptureSink {
  private worker: Worker | undefined;
  private ops: WriterOp[] = [];
  private postScheduled = false;
  private next = 1;
  private readonly pending = new Map<number, Pending>();
  private gone: ExhaustError | undefined;
  private stopped = false;

  private constructor(private readonly options: CaptureWriterOptions) {}

  /** Starts the thread; resolves once its connection is open, rejects with why it could not open. */
  static async start(options: CaptureWriterOptions): Promise<CaptureWriterThread> {
    if (!existsSync(CAPTURE_WRITER_FILE)) {
      throw new Error(`capture writer not built: ${CAPTURE_WRITER_FILE} (run npm run build)`);
    }
    const writer = new CaptureWriterThread(options);
    await writer.spawn();
    return writer;
  }

  commitExchange(session: SessionInfo, x: ExchangeHead): Promise<void> {
    const head = headOf(x);
    head.requestBody = bodyForThread(head.requestBody);
    return this.submit({ k: "commit", n: 0, s: session, x: head });
  }

  completeExchange(c: ExchangeCompletion): Promise<void> {
    return this.submit({ k: "complete", n: 0, c: { ...c, responseBody: c.responseBody && bodyForThread(c.responseBody) } });
  }

  openConnection(session: SessionInfo, c: ConnectionRecord): Promise<void> {
    return this.submit({ k: "open", n: 0, s: session, c: { ...c } });
  }

  closeConnection(c: ConnectionRecord): Promise<void> {
    return this.submit({ k: "close", n: 0, c: { ...c } });
  }

  /** The session owner's heartbeat, committed with the captures. */
  heartbeat(): Promise<void> {
    return this.submit({ k: "beat", n: 0 });
  }

  /** Resolves when everything handed over so far is committed (or refused). */
  flush(): Promise<void> {
    return this.submit({ k: "flush", n: 0 });
  }

  /**
   * For tests: the thread ends abruptly, as a crash would, without committing what it holds
   * (killThread: from its own loop); resolves once it has.
   */
  kill(): Promise<void> {
    return killThread(this.worker);
  }

  /** Commits what is queued and ends the thread (its connection closed). */
  async close(): Promise<void> {
    if (this.stopped) return;
    // After a death nothing is queued (refused at the exit): no thread is started just to stop it.
    if (!this.worker) {
      this.stopped = true;
      return;
    }
    await this.flush().catch(() => {});
    this.stopped = true;
    const worker = this.worker;
    if (!worker) return;
    worker.ref();
    const exited = new Promise((r) => worker.once("exit", r));
    worker.postMessage({ type: "stop" });
    await exited;
  }

  private submit(op: WriterOp): Promise<void> {
    if (this.gone) return Promise.reject(this.gone);
    if (this.stopped) return Promise.reject(new Error("capture store is closed"));
    if (!this.worker) void this.spawn().catch(() => {});
    const n = this.next++;
    op.n = n;
    return new Promise((resolve, reject) => {
      // Held while writes are out: the answers must arrive even when no socket holds the loop.
      if (this.pending.size === 0) {
        this.worker?.ref();
        this.options.priority.handedOver(true);
      }
      this.pending.set(n, { resolve, reject });
      this.ops.push(op);
      if (!this.postScheduled) {
        this.postScheduled = true;
        // Every write of this turn in one message; the thread commits them in one transaction.
        setImmediate(this.post);
      }
    });
  }

  private readonly post = () => {
    this.postScheduled = false;
    const ops = this.ops;
    this.ops = [];
    if (!this.worker) {
      this.refuse(
        ops.map((op) => op.n),
        new Error("capture writer thread is not running"),
      );
      return;
    }
    this.worker.postMessage({ type: "ops", ops });
  };

  private spawn(): Promise<void> {
    const o = this.options;
    const data: WriterData = {
      dbFile: o.dbFile,
      prioritySignal: o.priority.signal,
      autoCheckpoint: o.autoCheckpoint,
      owner: o.owner ? { session: o.owner.session, token: o.owner.token } : undefined,
    };
    const worker = new Worker(CAPTURE_WRITER_FILE, { workerData: data });
    this.worker = worker;
    worker.unref();
    return new Promise<void>((resolve, reject) => {
      let ready = false;
      worker.on("message", (m: WriterReply) => {
        if (m.type === "settled") this.settled(m.results);
        else if (m.type === "ready") {
          ready = true;
          resolve();
        } else if (m.type === "failed" && !ready) reject(new Error(m.message));
      });
      worker.on("error", (e) => {
        if (!ready) reject(e);
      });
      worker.once("exit", (code) => {
        if (this.worker === worker) this.worker = undefined;
        const reason = `capture writer thread exited with code ${code}`;
        if (!ready) reject(new Error(reason));
        // Whatever it had not answered is not known to be committed: refused (503 for an upload).
        // That includes writes of this turn not posted yet: they must not go to the next thread.
        this.ops = [];
        if (this.pending.size > 0) this.refuse([...this.pending.keys()], new Error(reason));
        // Its CaptureStore may have raised the flag and can no longer lower it.
        o.priority.lower();
        if (ready && !this.stopped) o.onThreadExit?.(reason);
      });
    });
  }

  private settled(results: WriterResult[]): void {
    for (const r of results) {
      if (typeof r === "number") {
        const p = this.pending.get(r);
        this.pending.delete(r);
        p?.resolve();
      } else {
        const [n, message, code] = r;
        let e: Error;
        if (code === "EXH_STORE_GONE") {
          this.gone ??= this.options.onStoreGone();
          e = this.gone;
        } else {
          e = Object.assign(new Error(message), code ? { code } : {});
        }
        const p = this.pending.get(n);
        this.pending.delete(n);
        p?.reject(e);
      }
    }
    if (this.pending.size === 0) this.idle();
  }

  /** Nothing handed over is unanswered: the thread may let the process exit, background writers go on. */
  private idle(): void {
    this.worker?.unref();
    this.options.priority.handedOver(false);
  }

  private refuse(ns: number[], e: Error): void {
    for (const n of ns) {
      const p = this.pending.get(n);
      this.pending.delete(n);
      p?.reject(e);
    }
    if (this.pending.size === 0) this.idle();
  }
}

/**
 * A body as it is posted to the thread. From SHARED_BODY_BYTES on: a view of shared memory as it
 * is (posting shares it, the same bytes on both threads, whatever part of its buffer it views), and
 * any other large body copied into shared memory once here rather than serialized and copied again
 * by postMessage. Below: ordinary memory, which postMessage clones with all of its ArrayBuffer, so
 * a view of part of a larger buffer (Node's pool, a socket read, a body cut short of its declared
 * length) is first copied into one of its own and only the body's bytes travel.
 */
export function bodyForThread(u: Uint8Array): Uint8Array {
  if (u.buffer instanceof SharedArrayBuffer) return u;
  if (u.byteLength >= SHARED_BODY_BYTES) return sharedBytes([u], u.byteLength);
  return u.byteOffset === 0 && u.byteLength === u.buffer.byteLength ? u : new Uint8Array(u);
}
