/**
 * Files that hold captured data are private whatever the umask: created with mode 0600 (directories
 * 0700) and chmod-ed after, since open(2) and mkdir(2) apply the umask to the mode they are given.
 */
import { chmodSync, closeSync, existsSync, fchmodSync, mkdirSync, openSync, writeSync } from "node:fs";
import { dirname } from "node:path";
import { exhaustError } from "../errors.js";

export const PRIVATE_FILE_MODE = 0o600;
export const PRIVATE_DIR_MODE = 0o700;

const posix = process.platform !== "win32";

/** chmod 0600 on an open file descriptor. */
export function chmodPrivate(fd: number): void {
  if (posix) fchmodSync(fd, PRIVATE_FILE_MODE);
}

/** mkdir -p; every directory it creates is 0700 whatever the umask. Existing ones are left alone. */
export function mkdirPrivate(dir: string): void {
  if (existsSync(dir)) return;
  const parent = dirname(dir);
  if (parent !== dir) mkdirPrivate(parent);
  mkdirSync(dir, { mode: PRIVATE_DIR_MODE });
  if (posix) chmodSync(dir, PRIVATE_DIR_MODE);
}

/** A directory that will hold captured data: created 0700, or made 0700 when it exists. */
export function privateDir(dir: string): void {
  mkdirPrivate(dir);
  if (posix) chmodSync(dir, PRIVATE_DIR_MODE);
}

/** Writes chunks to a new file, 0600, never over an existing one (EXH_EXPORT_OUT_EXISTS). */
export function writePrivateFile(out: string, chunks: Iterable<string | Uint8Array>, overwrite = false): void {
  if (!overwrite && existsSync(out)) throw exhaustError("EXH_EXPORT_OUT_EXISTS", { path: out });
  const fd = openSync(out, overwrite ? "w" : "wx", PRIVATE_FILE_MODE);
  try {
    chmodPrivate(fd);
    for (const c of chunks) {
      if (typeof c === "string") writeSync(fd, c);
      else writeSync(fd, c);
    }
  } finally {
    closeSync(fd);
  }
}
