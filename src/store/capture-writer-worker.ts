/**
 * The capture writer thread: owns the capture's CaptureStore (its own SQLite connection, the group
 * commit, the chain heads, the body hashes and the store identity check) so that the proxy's event
 * loop only hands each write over and waits for the word that it committed. Started and spoken to
 * by CaptureWriterThread (capture-writer.ts), whose file documents the messages.
 */
import { parentPort, workerData } from "node:worker_threads";
import { exhaustError } from "../errors.js";
import { SharedMemoryReclaim } from "./capture-bytes.js";
import { CaptureStore } from "./capture-store.js";
import { openDatabase, watchStore, type Db } from "./database.js";
import { heartbeatWrite, type SessionOwner } from "./session-owner.js";
import { dieIfTold } from "./thread-exit.js";
import { WriterPriority } from "./writer-priority.js";
import { nameThread } from "../thread-priority.js";
import type { WriterData, WriterOp, WriterReply, WriterResult } from "./capture-writer.js";

const port = parentPort!;
const data = workerData as WriterData;
// Named, at the process's priority (clients wait for its commits): `top -H` and the bench tell it apart.
nameThread("exhaust-capture");

let db: Db;
let store: CaptureStore;
let beat: (() => void) | undefined;
try {
  // The proxy created the file and its session: never create one here (a deleted store is not
  // silently replaced).
  db = openDatabase(data.dbFile, { mustExist: true });
  // A checkpoint thread beside the proxy does the checkpoints: commits here do not stop for them.
  if (!data.autoCheckpoint) db.pragma("wal_autocheckpoint = 0");
  // Checked before every commit: a store whose files were deleted or replaced takes no more.
  // (CaptureStore keeps the first refusal: the guard is not asked again once it said so.)
  const sameStore = watchStore(data.dbFile);
  const guard = () => (sameStore() ? undefined : exhaustError("EXH_STORE_GONE", { file: data.dbFile }));
  store = new CaptureStore(db, new WriterPriority(data.prioritySignal), { guard });
  if (data.owner) beat = heartbeatWrite(db, data.owner as SessionOwner);
} catch (e) {
  port.postMessage({ type: "failed", message: (e as Error).message } satisfies WriterReply);
  process.exit(1);
}

/** Results waiting to be sent back: one message for everything a commit settled. */
let results: WriterResult[] = [];
let replyScheduled = false;

function settle(n: number, e?: unknown): void {
  if (e === undefined) results.push(n);
  else {
    const err = e as { message?: string; code?: string };
    results.push([n, String(err?.message ?? e), typeof err?.code === "string" ? err.code : undefined]);
  }
  if (!replyScheduled) {
    replyScheduled = true;
    // A group commit settles all its writes in one go: their reactions are queued already, so a
    // microtask queued now runs after the last of them.
    queueMicrotask(() => {
      replyScheduled = false;
      const done = results;
      results = [];
      port.postMessage({ type: "settled", results: done } satisfies WriterReply);
    });
  }
}

/**
 * Bodies from 64 KiB on arrive in shared memory (capture-writer.ts), which starts no garbage
 * collection here (capture-bytes.ts), and this thread allocates too little for one to run
 * otherwise: it collects after every RECLAIM_BYTES of bodies committed, so that what it stored is
 * freed as soon as the proxy's loop lets go of it too. Smaller bodies arrive as copies in ordinary
 * memory; V8 counts those, but would let up to its external-memory limit (64 MiB) of them lie dead
 * here before collecting, so they are counted too. A full collection of this small heap takes about
 * a millisecond, off the proxy's loop (once per 800 uploads of 20 KB; after each 32 MiB one).
 */
const RECLAIM_BYTES = 16 * 1024 * 1024;
const reclaim = new SharedMemoryReclaim(RECLAIM_BYTES);

/** A body as posted (a Uint8Array over shared memory, or this thread's copy): seen as a Buffer, without a copy. */
const asBuffer = (u: Uint8Array | undefined) => (u ? Buffer.from(u.buffer, u.byteOffset, u.byteLength) : undefined);

function run(op: WriterOp): Promise<void> {
  switch (op.k) {
    case "commit": {
      const x = op.x;
      x.requestBody = asBuffer(x.requestBody)!;
      return store.commitExchange(op.s, x);
    }
    case "complete": {
      const c = op.c;
      c.responseBody = asBuffer(c.responseBody);
      return store.completeExchange(c);
    }
    case "open":
      return store.openConnection(op.s, op.c);
    case "close":
      return store.closeConnection(op.c);
    case "beat":
      return beat ? store.write(beat) : Promise.resolve();
    case "flush":
      return store.flush();
  }
}

port.on("message", (m: { type: "ops"; ops: WriterOp[] } | { type: "stop" } | { type: "die" }) => {
  // Tests: the thread ends at once, as a crash would, but between two of its turns (thread-exit.ts).
  dieIfTold(m);
  if (m.type === "stop") {
    // What could not be committed was refused to its client already: closing goes on.
    void store
      .close()
      .catch(() => {})
      .then(() => {
        db.close();
        port.close();
      });
    return;
  }
  for (const op of m.ops) {
    const bytes = op.k === "commit" ? op.x.requestBody.byteLength : op.k === "complete" ? (op.c.responseBody?.byteLength ?? 0) : 0;
    run(op)
      .then(
        () => settle(op.n),
        (e: unknown) => settle(op.n, e),
      )
      .finally(() => bytes > 0 && reclaim.note(bytes));
  }
});
port.postMessage({ type: "ready" } satisfies WriterReply);
