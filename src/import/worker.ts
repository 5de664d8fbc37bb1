/**
 * `exhaust import` runs here, on a worker thread whose V8 heap is capped (IMPORT_HEAP_LIMITS), so
 * streaming a 1 GB file keeps the process small: without a cap V8 lets garbage pile up to several
 * hundred MB before collecting it. The main thread only draws the progress bar and prints.
 */
import { parentPort, workerData } from "node:worker_threads";
import { isExhaustError } from "../errors.js";
import { Checkpointer } from "../store/checkpointer.js";
import { onSchemaUpdate, openDatabase, type SchemaUpdate } from "../store/database.js";
import { importFile } from "./index.js";
import { nameThread } from "../thread-priority.js";

export interface ImportWorkerData {
  files: string[];
  dbFile: string;
  session?: string;
  progress: boolean;
  /** Payload limit in bytes (exhaust import --max-body). */
  maxBodyBytes?: number;
  /** Trust anchor and heads a bundle is verified against (--ca, --fingerprint, --head). */
  verify?: import("../evidence/verify.js").VerifyOptions;
}

export type ImportWorkerMessage =
  | { type: "start"; label: string; total: number }
  | { type: "update"; done: number }
  | { type: "stop" }
  | { type: "summary"; summary: import("./session.js").ImportSummary }
  | { type: "error"; code?: string; params?: Record<string, string | number>; message: string }
  | ({ type: "schema" } & SchemaUpdate);

/**
 * Checkpoints every few seconds rather than the proxy's half second: each checkpoint copies the
 * pages written since the last one, and an import rewrites the same index pages all the time, so
 * frequent checkpoints copied them again and again (half the checkpoint thread's CPU at 4 s).
 */
const IMPORT_CHECKPOINT_INTERVAL_MS = 4000;

const data = workerData as ImportWorkerData;
// `top -H` tells the import's own thread from the checkpointer's and V8's.
nameThread("exhaust-import");
const post = (m: ImportWorkerMessage) => parentPort!.postMessage(m);

let db: ReturnType<typeof openDatabase> | undefined;
let checkpointer: Checkpointer | undefined;
// An import can be the first to open a database made by an older version: the command says why it waits.
onSchemaUpdate((update) => post({ type: "schema", ...update }));
try {
  db = openDatabase(data.dbFile);
  // WAL checkpoints on a thread of their own, as beside the proxy and in `exhaust reprocess`: SQLite's
  // automatic ones ran inside the import's commits, on this thread.
  checkpointer = Checkpointer.start(db, data.dbFile, IMPORT_CHECKPOINT_INTERVAL_MS);
  for (const [i, file] of data.files.entries()) {
    const summaries = await importFile(
      file,
      {
        db,
        dbFile: data.dbFile,
        session: data.session,
        maxBodyBytes: data.maxBodyBytes,
        verify: data.verify && {
          ...data.verify,
          // A Buffer arrives as a plain Uint8Array after the thread hand-over.
          anchor: data.verify.anchor && {
            ...data.verify.anchor,
            caCert: data.verify.anchor.caCert && Buffer.from(data.verify.anchor.caCert),
          },
        },
        progress: data.progress
          ? {
              start: (label, total) => post({ type: "start", label, total }),
              update: (done) => post({ type: "update", done }),
              stop: () => post({ type: "stop" }),
            }
          : undefined,
      },
      i,
    );
    for (const summary of summaries) post({ type: "summary", summary });
  }
} catch (e) {
  post(
    isExhaustError(e)
      ? { type: "error", code: e.code, params: e.params, message: e.message }
      : { type: "error", message: (e as Error)?.stack ?? String(e) },
  );
} finally {
  await checkpointer?.stop().catch(() => undefined);
  db?.close();
}
