/**
 * What the processing stage recorded about one upload: its request items (headers and query
 * parameters, classified) and its decode findings, per exchange or per event.
 */
import type { Db } from "./database.js";

export interface RequestItemRecord {
  name: string;
  location: string;
  category: string;
  personal: string;
  secret: boolean;
  rule: string;
}

export function requestItemsOfExchange(db: Db, exchangeId: string): RequestItemRecord[] {
  return (
    db
      .prepare("SELECT name, location, category, personal, secret, rule FROM request_items WHERE exchange_id = ? ORDER BY idx")
      .all(exchangeId) as Array<Omit<RequestItemRecord, "secret"> & { secret: number }>
  ).map((r) => ({ ...r, secret: r.secret === 1 }));
}

export interface DecodeFindingRecord {
  code: string;
  severity: string;
  message: string;
  offset: number | null;
  length: number | null;
  eventIndex: number | null;
}

export function decodeFindingsOfExchange(db: Db, exchangeId: string): DecodeFindingRecord[] {
  return db
    .prepare(
      `SELECT code, severity, message, offset, length, event_index AS eventIndex FROM decode_findings
        WHERE exchange_id = ? ORDER BY idx`,
    )
    .all(exchangeId) as DecodeFindingRecord[];
}

export interface EventDecodeFindingRow {
  code: string;
  severity: string;
  message: string;
  offset: number | null;
  /** The event's position in its upload, or null for a finding about the whole body. */
  eventIndex: number | null;
}

/** Decode findings that concern one event: its own (event_index) and those about its whole body. */
export function decodeFindingsOfEvent(db: Db, eventId: number): EventDecodeFindingRow[] {
  return db
    .prepare(
      `SELECT f.code, f.severity, f.message, f.offset, f.event_index AS eventIndex
         FROM events ev JOIN decode_findings f ON f.exchange_id = ev.exchange_id
        WHERE ev.id = ? AND (f.event_index IS NULL OR f.event_index = ev.idx)
        ORDER BY f.idx`,
    )
    .all(eventId) as EventDecodeFindingRow[];
}
