/**
 * Reads for the Parquet export (src/export/parquet.ts) and the session labels (`proxy --lab
 * --machine`, migration 10). Everything past a watermark (exchange seq, connection rowid, verdict
 * id) so an export appends only what is new; large sets in pages of raw rows, column order as in
 * src/export/parquet-schema.ts.
 */
import type { Db } from "./database.js";

export interface LabelledSession {
  id: number;
  name: string;
  lab: string | null;
  machine: string | null;
}

/** Whether the database has migration 10's columns (a read-only file of an older schema may not). */
function hasLabels(db: Db): boolean {
  return (db.prepare("SELECT COUNT(*) FROM pragma_table_info('sessions') WHERE name = 'machine'").pluck().get() as number) > 0;
}

/** Records the lab and machine a session was captured for (only those given). */
export function setSessionLabels(db: Db, sessionId: number, labels: { lab?: string; machine?: string }): void {
  if (labels.lab !== undefined) db.prepare("UPDATE sessions SET lab = ? WHERE id = ?").run(labels.lab, sessionId);
  if (labels.machine !== undefined) db.prepare("UPDATE sessions SET machine = ? WHERE id = ?").run(labels.machine, sessionId);
}

/** Sessions with their labels, oldest first; one session when `sessionId` is given. */
export function labelledSessions(db: Db, sessionId?: number): LabelledSession[] {
  const labels = hasLabels(db) ? "lab, machine" : "NULL AS lab, NULL AS machine";
  const where = sessionId === undefined ? "" : "WHERE id = ?";
  const stmt = db.prepare(`SELECT id, name, ${labels} FROM sessions ${where} ORDER BY id`);
  return (sessionId === undefined ? stmt.all() : stmt.all(sessionId)) as LabelledSession[];
}

/** The session row as the `sessions` table holds it (incomplete may be absent on old schemas). */
export function sessionRow(db: Db, sessionId: number): unknown[] {
  const incomplete =
    (db.prepare("SELECT COUNT(*) FROM pragma_table_info('sessions') WHERE name = 'incomplete'").pluck().get() as number) > 0;
  return db
    .prepare(
      `SELECT id, name, started_at, ended_at, tool_version, ca_fingerprint, options_json, ${incomplete ? "incomplete" : "NULL"}
         FROM sessions WHERE id = ?`,
    )
    .raw()
    .get(sessionId) as unknown[];
}

/**
 * The highest seq up to which every exchange after `afterSeq` is decoded: the export stops before
 * the first undecoded exchange so its events are not missed (a later export takes it).
 */
export function decodedSeqBound(db: Db, sessionId: number, afterSeq: number): number {
  const firstPending = db
    .prepare("SELECT MIN(seq) FROM exchanges WHERE session_id = ? AND seq > ? AND decoder IS NULL")
    .pluck()
    .get(sessionId, afterSeq) as number | null;
  if (firstPending !== null) return firstPending - 1;
  return (db.prepare("SELECT MAX(seq) FROM exchanges WHERE session_id = ?").pluck().get(sessionId) as number | null) ?? 0;
}

/** Connections of the session stored after `afterRowid` (rowid first, then the schema's columns). */
export function connectionsAfter(db: Db, sessionId: number, afterRowid: number): unknown[][] {
  return db
    .prepare(
      `SELECT rowid, id, client_address, client_port, host, port, sni, outcome, upstream, bytes_from_client, bytes_to_client,
              exchanges, started_at, ended_at, error
         FROM connections WHERE session_id = ? AND rowid > ? ORDER BY rowid`,
    )
    .raw()
    .all(sessionId, afterRowid) as unknown[][];
}

/** Exchanges with afterSeq < seq <= toSeq, in pages; the schema's columns plus request/response body and trailer fields. */
export function* exchangesInRange(
  db: Db,
  sessionId: number,
  afterSeq: number,
  toSeq: number,
  pageSize = 1000,
): Generator<Record<string, unknown>> {
  const page = db.prepare(
    `SELECT id, seq, connection_id, scheme, method, host, port, path, http_version, request_headers, request_body_sha256,
            request_body_size, request_body_truncated, request_complete, mode, endpoint_id, response_status, response_headers,
            response_body_sha256, response_body_size, response_source, outcome, error_code, error_message, decoder,
            content_encoding, started_at, ended_at, hash
       FROM exchanges WHERE session_id = ? AND seq > ? AND seq <= ? ORDER BY seq LIMIT ?`,
  );
  let after = afterSeq;
  for (;;) {
    const rows = page.all(sessionId, after, toSeq, pageSize) as Array<Record<string, unknown>>;
    yield* rows;
    if (rows.length < pageSize) return;
    after = rows[rows.length - 1].seq as number;
  }
}

/** Events of the exchanges with afterSeq < seq <= toSeq, in id order, a page at a time (raw rows in the schema's order, time twice). */
export function* eventPagesInRange(db: Db, sessionId: number, afterSeq: number, toSeq: number, pageSize = 2000): Generator<unknown[][]> {
  const page = db
    .prepare(
      `SELECT e.id, e.exchange_id, e.idx, e.format, e.name, e.time, e.time, e.ikey, e.field_count, e.ms_group, e.group_rule,
              e.category, e.catalog_category, e.subtype, e.content_fields, e.personal_fields
         FROM events e JOIN exchanges x ON x.id = e.exchange_id
        WHERE e.session_id = ? AND x.seq > ? AND x.seq <= ? AND e.id > ? ORDER BY e.id LIMIT ?`,
    )
    .raw();
  let after = 0;
  for (;;) {
    const rows = page.all(sessionId, afterSeq, toSeq, after, pageSize) as unknown[][];
    if (rows.length > 0) yield rows;
    if (rows.length < pageSize) return;
    after = rows[rows.length - 1][0] as number;
  }
}

/**
 * The field rows of events firstId..lastId packed one row per event, in idx order:
 * [event_id, idxs, path_ids, class_ids, values, secret_paths, fields] where the lists are JSON
 * arrays (class id -1 = not classified), secret_paths counts the event's fields whose path id is
 * in `secretPathIds` and fields counts them all. Far fewer values cross into JS than one row per field.
 */
export function fieldPacksBetween(db: Db, secretPathIds: readonly number[]): (firstId: number, lastId: number) => unknown[][] {
  const secret = secretPathIds.length > 0 ? `sum(path_id IN (${secretPathIds.map((id) => Math.trunc(id)).join(",")}))` : "0";
  const stmt = db
    .prepare(
      `SELECT event_id, json_group_array(idx), json_group_array(path_id), json_group_array(ifnull(class_id, -1)),
              json_group_array(value), ${secret}, count(*)
         FROM field_values WHERE event_id BETWEEN ? AND ? GROUP BY event_id ORDER BY event_id`,
    )
    .raw();
  return (firstId, lastId) => stmt.all(firstId, lastId) as unknown[][];
}

export interface FieldPathRow {
  id: number;
  part: string;
  path: string;
  type: string;
  piiKind: number | null;
  customerContent: number | null;
  wireType: number | null;
  scrubType: number | null;
}

export function allFieldPaths(db: Db): FieldPathRow[] {
  return db
    .prepare(
      `SELECT id, part, path, type, pii_kind AS piiKind, customer_content AS customerContent, wire_type AS wireType,
              scrub_type AS scrubType FROM field_paths`,
    )
    .all() as FieldPathRow[];
}

export interface FieldClassRow {
  id: number;
  category: string;
  personal: string;
  rule: string;
  reasons: string | null;
  confidence: number;
}

export function allFieldClasses(db: Db): FieldClassRow[] {
  return db.prepare("SELECT id, category, personal, rule, reasons, confidence FROM field_classes").all() as FieldClassRow[];
}

/** Decode findings of the exchanges with afterSeq < seq <= toSeq, as findings rows. */
export function decodeFindingsInRange(db: Db, sessionId: number, afterSeq: number, toSeq: number): unknown[][] {
  return db
    .prepare(
      `SELECT 'decode', f.exchange_id, NULL, f.idx, f.code, f.severity, f.message, NULL, NULL, f.offset, f.length
         FROM decode_findings f JOIN exchanges x ON x.id = f.exchange_id
        WHERE x.session_id = ? AND x.seq > ? AND x.seq <= ? ORDER BY x.seq, f.idx`,
    )
    .raw()
    .all(sessionId, afterSeq, toSeq) as unknown[][];
}

/** Classification findings of events firstId..lastId, as findings rows. */
export function classificationFindingsBetween(db: Db, firstId: number, lastId: number): unknown[][] {
  return db
    .prepare(
      `SELECT 'classification', e.exchange_id, f.event_id, f.idx, f.code, NULL, f.message, f.field_path, f.rule, NULL, NULL
         FROM classification_findings f JOIN events e ON e.id = f.event_id
        WHERE f.event_id BETWEEN ? AND ? ORDER BY f.event_id, f.idx`,
    )
    .raw()
    .all(firstId, lastId) as unknown[][];
}

/** Verdicts of the session after `afterId`: [id, profile, status, created_at, report_json]. */
export function verdictsAfter(db: Db, sessionId: number, afterId: number): unknown[][] {
  return db
    .prepare("SELECT id, profile, status, created_at, report_json FROM verdicts WHERE session_id = ? AND id > ? ORDER BY id")
    .raw()
    .all(sessionId, afterId) as unknown[][];
}
