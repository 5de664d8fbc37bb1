import Database from "better-sqlite3";
import { closeSync, existsSync, mkdirSync, openSync, statSync } from "node:fs";
import { dirname } from "node:path";
import { exhaustError } from "../errors.js";
import { MIGRATIONS } from "./migrations.js";

export type Db = Database.Database;

export interface OpenOptions {
  /** Open read-only (never writes, never migrates). Implies `mustExist`. */
  readonly?: boolean;
  /**
   * The command only works on an existing database: a missing file is EXH_DB_NOT_FOUND and
   * nothing (no file, no directory) is created. Only the proxy and `import` create databases.
   */
  mustExist?: boolean;
}

/**
 * Opens (creating if needed, unless `mustExist`) an exhaust database and brings its schema up to
 * date.
 *
 * WAL with synchronous=NORMAL: a committed transaction survives the process being killed (the WAL
 * is in the OS page cache), which is the guarantee the proxy gives; only power loss can take the
 * last commits. FULL would fsync on every commit and stall the event loop of a synchronous driver.
 *
 * The database file is never opened with `fs` while it exists: closing any descriptor of a file
 * drops every POSIX lock this process holds on it, including those of live SQLite connections of
 * other threads, and an outside `sqlite3` client would then take itself for the last connection,
 * checkpoint and delete the WAL the proxy is still writing (see docs/durability.md).
 */
export function openDatabase(file: string, options: OpenOptions = {}): Db {
  const readonly = options.readonly ?? false;
  const mustExist = readonly || (options.mustExist ?? false);
  if (mustExist && !existsSync(file)) throw exhaustError("EXH_DB_NOT_FOUND", { file });
  let db: Db | undefined;
  try {
    if (!mustExist) createPrivate(file);
    db = new Database(file, { readonly, fileMustExist: mustExist });
    // A file that is not a database only says so at its first read: make that happen here. One
    // that is SQLite but not exhaust's (no schema version) is not written into by a command that
    // expects an existing capture database.
    if (mustExist && db.pragma("user_version", { simple: true }) === 0) {
      throw new Error("not an exhaust database (it has no exhaust schema)");
    }
    if (!readonly) {
      db.pragma("journal_mode = WAL");
      db.pragma("synchronous = NORMAL");
      migrate(db, file);
    }
    db.pragma("foreign_keys = ON");
    db.pragma("busy_timeout = 5000");
    return db;
  } catch (e) {
    try {
      db?.close();
    } catch {
      // Closing a connection that failed to open: nothing more to report.
    }
    throw exhaustError("EXH_DB_OPEN", { file, reason: (e as Error).message.split("\n")[0] }, e);
  }
}

/**
 * Captures hold credentials as received. SQLite gives the -wal and -shm files the main file's mode,
 * so creating the main file 0600 first keeps all three private. Done only when the file does not
 * exist yet (`wx`): then no connection of this process can hold a lock on it.
 */
function createPrivate(file: string): void {
  if (existsSync(file)) return;
  mkdirSync(dirname(file), { recursive: true });
  try {
    closeSync(openSync(file, "wx", 0o600));
  } catch (e) {
    // Created meanwhile by someone else: theirs is the file (and its mode).
    if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
  }
}

/** Device and inode of a file, undefined when there is none. */
function fileIdentity(file: string): string | undefined {
  // Asked before every commit: no exception for a missing file (a few microseconds, not tens).
  try {
    const s = statSync(file, { throwIfNoEntry: false });
    return s && `${s.dev}:${s.ino}`;
  } catch {
    return undefined; // not a directory on the way, no permission: not the file it was
  }
}

/**
 * Watches the files of an open database: the returned check is false once the database file or
 * its WAL was deleted or replaced (another inode). SQLite would go on writing into the unlinked
 * files, and every commit would be lost at the next start. The WAL is identified when first seen
 * (it exists from the first write of a WAL database until the last connection closes).
 */
export function watchStore(file: string): () => boolean {
  const main = fileIdentity(file);
  let wal = fileIdentity(`${file}-wal`);
  return () => {
    if (main === undefined || fileIdentity(file) !== main) return false;
    const nowWal = fileIdentity(`${file}-wal`);
    if (wal === undefined) {
      wal = nowWal;
      return true;
    }
    return nowWal === wal;
  };
}

/** What the schema update of an existing database is about to do (see onSchemaUpdate). */
export interface SchemaUpdate {
  file: string;
  from: number;
  to: number;
}

let schemaUpdateNotice: ((update: SchemaUpdate) => void) | undefined;

/**
 * Called before migrations run on a database that already has a schema, so that a command can say
 * why it is busy: a large capture's first open after an upgrade can take minutes (migration 11
 * rewrites every body). The CLI prints a line; by default nothing is said.
 */
export function onSchemaUpdate(notice: ((update: SchemaUpdate) => void) | undefined): void {
  schemaUpdateNotice = notice;
}

function migrate(db: Db, file: string): void {
  const version = () => db.pragma("user_version", { simple: true }) as number;
  const from = version();
  if (from >= MIGRATIONS.length) return;
  if (from > 0) schemaUpdateNotice?.({ file, from, to: MIGRATIONS.length });
  // A table rebuilt (a new one filled, the old dropped, the new renamed: SQLite's way to change what
  // ALTER TABLE cannot) must not have the drop's implicit DELETE checked against the tables that
  // refer to it. Only settable outside a transaction; openDatabase turns it on again.
  db.pragma("foreign_keys = OFF");
  // Each step under the write lock, reading the version again: two processes opening an old
  // database at once (two proxies on two sessions) must not both apply a migration.
  for (let done = false; !done;) {
    done = db
      .transaction(() => {
        const v = version();
        if (v >= MIGRATIONS.length) return true;
        db.exec(MIGRATIONS[v]);
        db.pragma(`user_version = ${v + 1}`);
        return false;
      })
      .immediate();
  }
}
