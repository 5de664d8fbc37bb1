import Database from "better-sqlite3";
import { closeSync, mkdirSync, openSync } from "node:fs";
import { dirname } from "node:path";
import { exhaustError } from "../errors.js";
import { MIGRATIONS } from "./migrations.js";

export type Db = Database.Database;

/**
 * Opens (creating if needed) an exhaust database and brings its schema up to date.
 *
 * WAL with synchronous=NORMAL: a committed transaction survives the process being killed (the WAL
 * is in the OS page cache), which is the guarantee the proxy gives; only power loss can take the
 * last commits. FULL would fsync on every commit and stall the event loop of a synchronous driver.
 */
export function openDatabase(file: string, options: { readonly?: boolean } = {}): Db {
  let db: Db;
  try {
    if (!options.readonly) {
      mkdirSync(dirname(file), { recursive: true });
      // Captures hold credentials as received. SQLite gives the -wal and -shm files the main file's
      // mode, so creating it 0600 first keeps all three private.
      closeSync(openSync(file, "a", 0o600));
    }
    db = new Database(file, { readonly: options.readonly ?? false, fileMustExist: options.readonly ?? false });
  } catch (e) {
    throw exhaustError("EXH_DB_OPEN", { file, reason: (e as Error).message }, e);
  }
  if (!options.readonly) {
    db.pragma("journal_mode = WAL");
    db.pragma("synchronous = NORMAL");
    migrate(db);
  }
  db.pragma("foreign_keys = ON");
  db.pragma("busy_timeout = 5000");
  return db;
}

function migrate(db: Db): void {
  const current = db.pragma("user_version", { simple: true }) as number;
  for (let v = current; v < MIGRATIONS.length; v++) {
    db.transaction(() => {
      db.exec(MIGRATIONS[v]);
      db.pragma(`user_version = ${v + 1}`);
    })();
  }
}
