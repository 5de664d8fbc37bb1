/**
 * What every command that reads results does first: open the database (read-write when the file
 * allows, so pending exchanges can be decoded; never creating it), decode what is pending in the
 * command's scope, and say on stderr how many exchanges are left undecoded and why.
 */
import { accessSync, constants } from "node:fs";
import { dirname } from "node:path";
import { completeDecoding, type Completion, type DecodeScope } from "../pipeline/complete.js";
import { sessionsInUse, sessionsOwnedByLiveProxy } from "../store/completeness.js";
import { openDatabase, type Db } from "../store/database.js";

export interface ReadingDb {
  db: Db;
  /** Opened read-only: the file (or its directory) cannot be written. */
  readonly: boolean;
}

function writable(path: string): boolean {
  try {
    accessSync(path, constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

/** Opens a database to read results from: read-write when the file is writable, else read-only. */
export function openForReading(file: string): ReadingDb {
  // SQLite writes the -wal and -shm files beside the database: its directory must be writable too.
  const readonly = !writable(file) || !writable(dirname(file));
  return { db: openDatabase(file, { readonly, mustExist: true }), readonly };
}

const count = (n: number) => n.toLocaleString("en-US");
const plural = (n: number, word: string) => `${count(n)} ${word}${n === 1 ? "" : "s"}`;

/**
 * Decodes what is pending in `scope` with a progress line on stderr (Ctrl-C skips the rest), then
 * says how many exchanges are undecoded. `skipHint` is the key that skips (the proxy's stop uses
 * "Ctrl-C again").
 */
export async function decodePendingWithProgress(
  db: Db,
  scope: DecodeScope,
  options: {
    readonly?: boolean;
    busySessions?: ReadonlySet<number>;
    /** Sessions whose running proxy to wait for (default: those a live proxy owns; the proxy's own stop passes none). */
    waitFor?: ReadonlySet<number>;
    skipHint?: string;
    /** Stop requested elsewhere too (the proxy's own signal handler). */
    stopRequested?: () => boolean;
    stream?: NodeJS.WriteStream;
  } = {},
): Promise<Completion> {
  const out = options.stream ?? process.stderr;
  const tty = out.isTTY === true;
  let stop = false;
  const onSignal = () => {
    stop = true;
  };
  let lastDraw = 0;
  // A progress line drawn in place on a terminal, not ended yet.
  let lineOpen = false;
  const draw = (text: string, inPlace: boolean) => {
    if (!tty) return void out.write(`${text}\n`);
    out.write(inPlace ? `\r\x1b[K${text}` : text);
    lineOpen = true;
  };
  const endLine = () => {
    if (lineOpen) out.write("\n");
    lineOpen = false;
  };
  const skip = `(${options.skipHint ?? "Ctrl-C"} to skip)`;
  const label = (pending: number) => `exhaust: decoding ${plural(pending, "pending exchange")}… ${skip}`;
  const waiting = (total: number) => `exhaust: waiting for the running proxy to decode ${plural(total, "exchange")}… ${skip}`;
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  try {
    const result = await completeDecoding(db, scope, {
      readonly: options.readonly,
      busySessions: options.busySessions ?? sessionsInUse(db, scope.sessionIds),
      waitFor: options.waitFor ?? (options.busySessions ? undefined : sessionsOwnedByLiveProxy(db, scope.sessionIds)),
      onWait: (left, total) => {
        if (left === total) draw(waiting(total), false);
        else if (tty) draw(`${waiting(total)} ${count(total - left)} done`, true);
      },
      shouldStop: () => stop || options.stopRequested?.() === true,
      onStart: (pending) => {
        endLine();
        draw(label(pending), false);
      },
      onProgress: (done, pending) => {
        if (!tty || (Date.now() - lastDraw < 200 && done < pending)) return;
        lastDraw = Date.now();
        draw(`${label(pending)} ${count(done)} done`, true);
      },
    });
    endLine();
    if (result.undecoded > 0) {
      out.write(
        `exhaust: ${plural(result.undecoded, "exchange")} undecoded (${result.reasons.join("; ")}): ` +
          "results leave them out; `exhaust reprocess` decodes them\n",
      );
    }
    return result;
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
}

/**
 * Opens the database for a reading command and decodes what is pending in the scope `scopeOf` names.
 * A session a running proxy captures is waited for while its thread decodes (see completeDecoding);
 * `waitForProxy: false` does not wait (the web UI, which shows the backlog shrink as it goes).
 */
export async function readCompleted(
  file: string,
  scopeOf: (db: Db) => DecodeScope,
  options: { waitForProxy?: boolean } = {},
): Promise<ReadingDb & { completion: Completion; scope: DecodeScope }> {
  const r = openForReading(file);
  try {
    const scope = scopeOf(r.db);
    const waitFor = options.waitForProxy === false ? new Set<number>() : undefined;
    const completion = await decodePendingWithProgress(r.db, scope, { readonly: r.readonly, waitFor });
    return { ...r, completion, scope };
  } catch (e) {
    r.db.close();
    throw e;
  }
}
