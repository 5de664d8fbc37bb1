/**
 * The capture worker: owns the SQLite connection and the group-commit writer on a thread of its
 * own, so that hashing and writing bodies never take time from the proxy's event loop. The proxy
 * talks to it through CaptureWorkerClient; a reply is sent only after the write committed.
 */
import { parentPort, workerData } from "node:worker_threads";
import { CaptureStore, type ExchangeCompletion, type SessionInfo } from "./capture-store.js";
import { openDatabase } from "./database.js";
import type { ConnectionRecord, Exchange } from "../types.js";
import type { WorkerReply, WorkerRequest } from "./capture-client.js";

const port = parentPort!;
const asBuffer = (u: Uint8Array | undefined) => (u ? Buffer.from(u.buffer, u.byteOffset, u.byteLength) : undefined);

let store: CaptureStore | undefined;
let db: ReturnType<typeof openDatabase> | undefined;
try {
  db = openDatabase((workerData as { dbFile: string }).dbFile);
  store = new CaptureStore(db);
  port.postMessage({ id: 0, result: "ready" } satisfies WorkerReply);
} catch (e) {
  port.postMessage({ id: 0, error: { message: (e as Error).message, code: (e as { code?: string }).code } } satisfies WorkerReply);
}

async function dispatch(m: WorkerRequest): Promise<unknown> {
  const s = store!;
  switch (m.op) {
    case "openSession":
      return s.openSession(...(m.args as Parameters<CaptureStore["openSession"]>));
    case "endSession":
      return s.endSession(m.args[0] as SessionInfo);
    case "discardSessionIfEmpty":
      return s.discardSessionIfEmpty(m.args[0] as SessionInfo);
    case "commitExchange": {
      const x = m.args[1] as Exchange;
      x.requestBody = asBuffer(x.requestBody)!;
      return s.commitExchange(m.args[0] as SessionInfo, x);
    }
    case "completeExchange": {
      const c = m.args[0] as ExchangeCompletion;
      c.responseBody = asBuffer(c.responseBody);
      return s.completeExchange(c);
    }
    case "openConnection":
      return s.openConnection(m.args[0] as SessionInfo, m.args[1] as ConnectionRecord);
    case "closeConnection":
      return s.closeConnection(m.args[0] as ConnectionRecord);
    case "flush":
      return s.flush();
    case "close":
      await s.close();
      db!.close();
      return undefined;
  }
}

port.on("message", (m: WorkerRequest) => {
  dispatch(m).then(
    (result) => port.postMessage({ id: m.id, result } satisfies WorkerReply),
    (e: Error & { code?: string }) => port.postMessage({ id: m.id, error: { message: e.message, code: e.code } } satisfies WorkerReply),
  );
});
