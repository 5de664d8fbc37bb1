import { Worker } from "node:worker_threads";
import { join } from "node:path";
import { exhaustError } from "../errors.js";
import { PACKAGE_ROOT } from "../paths.js";
import type { ConnectionRecord, Exchange } from "../types.js";
import type { CaptureSink, ExchangeCompletion, SessionInfo } from "./capture-store.js";

export type WorkerOp =
  | "openSession"
  | "endSession"
  | "discardSessionIfEmpty"
  | "commitExchange"
  | "completeExchange"
  | "openConnection"
  | "closeConnection"
  | "flush"
  | "close";

export interface WorkerRequest {
  id: number;
  op: WorkerOp;
  args: unknown[];
}

export interface WorkerReply {
  id: number;
  result?: unknown;
  error?: { message: string; code?: string };
}

/**
 * The worker runs compiled code (dist/), also under vitest: `npm test` builds first. A worker
 * cannot load the .ts sources without a loader, and shipping one for this is not worth it.
 */
const WORKER_FILE = join(PACKAGE_ROOT, "dist", "src", "store", "capture-worker.js");

/** The proxy side of the capture worker: the same writes as CaptureStore, answered across threads. */
export class CaptureWorkerClient implements CaptureSink {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();

  private constructor(private readonly worker: Worker) {
    worker.on("message", (reply: WorkerReply) => {
      const waiter = this.pending.get(reply.id);
      if (!waiter) return;
      this.pending.delete(reply.id);
      if (reply.error) waiter.reject(Object.assign(new Error(reply.error.message), { code: reply.error.code }));
      else waiter.resolve(reply.result);
    });
    worker.on("error", (e) => this.failAll(e));
    worker.on("exit", (code) => this.failAll(new Error(`capture worker exited with code ${code}`)));
  }

  static async start(dbFile: string): Promise<CaptureWorkerClient> {
    const worker = new Worker(WORKER_FILE, { workerData: { dbFile } });
    const ready = await new Promise<WorkerReply>((resolve, reject) => {
      worker.once("message", resolve);
      worker.once("error", reject);
    });
    if (ready.error) {
      await worker.terminate();
      throw exhaustError("EXH_DB_OPEN", { file: dbFile, reason: ready.error.message });
    }
    return new CaptureWorkerClient(worker);
  }

  openSession(name: string, meta: { toolVersion: string; caFingerprint?: string; options?: object }): Promise<SessionInfo> {
    return this.call("openSession", [name, meta]) as Promise<SessionInfo>;
  }

  async endSession(session: SessionInfo): Promise<void> {
    await this.call("endSession", [session]);
  }

  async discardSessionIfEmpty(session: SessionInfo): Promise<void> {
    await this.call("discardSessionIfEmpty", [session]);
  }

  async commitExchange(session: SessionInfo, x: Exchange): Promise<void> {
    // Send a private copy of the body and transfer it (no second copy); the proxy keeps its own.
    const body = new Uint8Array(x.requestBody);
    const { response, ...rest } = x;
    const snapshot = { ...rest, requestBody: body, response: response && { ...response, body: undefined } };
    await this.call("commitExchange", [session, snapshot], [body.buffer]);
  }

  async completeExchange(c: ExchangeCompletion): Promise<void> {
    const body = c.responseBody ? new Uint8Array(c.responseBody) : undefined;
    await this.call("completeExchange", [{ ...c, responseBody: body }], body ? [body.buffer] : []);
  }

  async openConnection(session: SessionInfo, c: ConnectionRecord): Promise<void> {
    await this.call("openConnection", [session, c]);
  }

  async closeConnection(c: ConnectionRecord): Promise<void> {
    await this.call("closeConnection", [c]);
  }

  async flush(): Promise<void> {
    await this.call("flush", []);
  }

  /** Commits what is queued, closes the database and ends the thread. */
  async close(): Promise<void> {
    await this.call("close", []);
    await this.worker.terminate();
  }

  private call(op: WorkerOp, args: unknown[], transfer: ArrayBuffer[] = []): Promise<unknown> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ id, op, args } satisfies WorkerRequest, transfer);
    });
  }

  private failAll(e: Error): void {
    for (const waiter of this.pending.values()) waiter.reject(e);
    this.pending.clear();
  }
}
