import type { Db } from "./database.js";

/** A stored body by its SHA-256 (the bytes exactly as received). */
export function blobData(db: Db, sha256: string): Buffer | undefined {
  return (db.prepare("SELECT data FROM blobs WHERE sha256 = ?").get(sha256) as { data: Buffer } | undefined)?.data;
}

export interface RequestItemRow {
  name: string;
  location: string;
  category: string;
  personal: string;
  secret: number;
  rule: string;
}

export function requestItems(db: Db, exchangeId: string): RequestItemRow[] {
  return db
    .prepare("SELECT name, location, category, personal, secret, rule FROM request_items WHERE exchange_id = ? ORDER BY idx")
    .all(exchangeId) as RequestItemRow[];
}

export interface DecodeFindingRow {
  code: string;
  severity: string;
  message: string;
  offset: number | null;
  eventIndex: number | null;
}

export function decodeFindings(db: Db, exchangeId: string): DecodeFindingRow[] {
  return db
    .prepare("SELECT code, severity, message, offset, event_index AS eventIndex FROM decode_findings WHERE exchange_id = ? ORDER BY idx")
    .all(exchangeId) as DecodeFindingRow[];
}
