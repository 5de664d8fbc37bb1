import type { Db } from "./database.js";

/** A stored body by its SHA-256 (the bytes exactly as received). */
export function blobData(db: Db, sha256: string): Buffer | undefined {
  return (db.prepare("SELECT data FROM blobs WHERE sha256 = ?").get(sha256) as { data: Buffer } | undefined)?.data;
}
