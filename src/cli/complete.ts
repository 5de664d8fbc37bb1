/**
 * What every command that reads results does first: open the database (read-write when the file
 * allows, so pending exchanges can be decoded; never creating it), decode what is pending in the
 * command's scope, and say on stderr how many exchanges are left undecoded and why.
 */
import { accessSync, constants } from "node:fs";
import { dirname } from "node:path";
import { completeDecoding, type Completion, type DecodeScope } from "../pipeline/complete.js";
import { sessionsInUse } from "../store/completeness.js";
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
  const label = (pending: number) => `exhaust: decoding ${plural(pending, "pending exchange")}… (${options.skipHint ?? "Ctrl-C"} to skip)`;
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  try {
    const result = await completeDecoding(db, scope, {
      readonly: options.readonly,
      busySessions: options.busySessions ?? sessionsInUse(db, scope.sessionIds),
      shouldStop: () => stop || options.stopRequested?.() === true,
      onStart: (pending) => out.write(tty ? label(pending) : `${label(pending)}\n`),
      onProgress: (done, pending) => {
        if (!tty || (Date.now() - lastDraw < 200 && done < pending)) return;
        lastDraw = Date.now();
        out.write(`\r\x1b[K${label(pending)} ${count(done)} done`);
      },
    });
    if (tty && (result.decoded > 0 || result.failed > 0 || result.stopped)) out.write("\n");
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

/** Opens the database for a reading command and decodes what is pending in the scope `scopeOf` names. */
export async function readCompleted(
  file: string,
  scopeOf: (db: Db) => DecodeScope,
): Promise<ReadingDb & { completion: Completion; scope: DecodeScope }> {
  const r = openForReading(file);
  try {
    const scope = scopeOf(r.db);
    const completion = await decodePendingWithProgress(r.db, scope, { readonly: r.readonly });
    return { ...r, completion, scope };
  } catch (e) {
    r.db.close();
    throw e;
  }
}
