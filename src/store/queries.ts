import type { Db } from "./database.js";

export interface SessionSummary {
  id: number;
  name: string;
  startedAt: number;
  endedAt: number | null;
  exchanges: number;
  connections: number;
  pinned: number;
  tunnelled: number;
  requestBytes: number;
}

/** Sessions with their counts, newest first: what `exhaust sessions` prints. */
export function listSessions(db: Db): SessionSummary[] {
  return db
    .prepare(
      `SELECT s.id, s.name, s.started_at AS startedAt, s.ended_at AS endedAt,
              (SELECT COUNT(*) FROM exchanges e WHERE e.session_id = s.id) AS exchanges,
              (SELECT COALESCE(SUM(e.request_body_size), 0) FROM exchanges e WHERE e.session_id = s.id) AS requestBytes,
              (SELECT COUNT(*) FROM connections c WHERE c.session_id = s.id) AS connections,
              (SELECT COUNT(*) FROM connections c WHERE c.session_id = s.id AND c.outcome = 'client-rejected-certificate') AS pinned,
              (SELECT COUNT(*) FROM connections c WHERE c.session_id = s.id AND c.outcome = 'tunnelled') AS tunnelled
         FROM sessions s ORDER BY s.started_at DESC, s.id DESC`,
    )
    .all() as SessionSummary[];
}

export function sessionIdByName(db: Db, name: string): number | undefined {
  return (db.prepare("SELECT id FROM sessions WHERE name = ?").get(name) as { id: number } | undefined)?.id;
}

export interface EventFilter {
  sessionId?: number;
  /** SQLite GLOB on the event name: `Office.Word.*`. */
  nameGlob?: string;
  /** DPIA category of the event as a whole. */
  category?: string;
  limit: number;
  offset?: number;
}

export interface EventRow {
  id: number;
  session: string;
  exchangeId: string;
  host: string;
  format: string;
  name: string;
  time: string | null;
  iKey: string | null;
  fieldCount: number;
  group: string | null;
  category: string | null;
}

/** Events in capture order, filtered; the list `exhaust events` prints. */
export function listEvents(db: Db, f: EventFilter): EventRow[] {
  return db
    .prepare(
      `SELECT ev.id, s.name AS session, ev.exchange_id AS exchangeId, x.host, ev.format, ev.name, ev.time,
              ev.ikey AS iKey, ev.field_count AS fieldCount, ev.ms_group AS "group", ev.category
         FROM events ev
         JOIN exchanges x ON x.id = ev.exchange_id
         JOIN sessions s ON s.id = ev.session_id
        WHERE (@session IS NULL OR ev.session_id = @session)
          AND (@glob IS NULL OR ev.name GLOB @glob)
          AND (@category IS NULL OR ev.category = @category)
        ORDER BY ev.id
        LIMIT @limit OFFSET @offset`,
    )
    .all({
      session: f.sessionId ?? null,
      glob: f.nameGlob ?? null,
      category: f.category ?? null,
      limit: f.limit,
      offset: f.offset ?? 0,
    }) as EventRow[];
}

export interface FieldRow {
  idx: number;
  part: string;
  path: string;
  value: string | null;
  type: string;
  piiKind: number | null;
  customerContent: number | null;
  wireType: number | null;
  scrubType: number | null;
  category: string | null;
  personal: string | null;
  rule: string | null;
  reasons: string | null;
  confidence: number | null;
}

export interface ClassificationFindingRow {
  code: string;
  message: string;
  fieldPath: string;
  rule: string | null;
}

export interface EventDetail extends EventRow {
  exchange: { method: string; scheme: string; path: string; startedAt: number; requestBodySha256: string; decoder: string | null };
  groupRule: string | null;
  catalogCategory: string | null;
  subtype: string | null;
  fields: FieldRow[];
  findings: ClassificationFindingRow[];
}

export function getEvent(db: Db, id: number): EventDetail | undefined {
  const ev = db
    .prepare(
      `SELECT ev.id, s.name AS session, ev.exchange_id AS exchangeId, x.host, ev.format, ev.name, ev.time, ev.ikey AS iKey,
              ev.field_count AS fieldCount, ev.ms_group AS "group", ev.category, ev.group_rule AS groupRule,
              ev.catalog_category AS catalogCategory, ev.subtype, x.method, x.scheme, x.path, x.started_at AS startedAt,
              x.request_body_sha256 AS requestBodySha256, x.decoder
         FROM events ev JOIN exchanges x ON x.id = ev.exchange_id JOIN sessions s ON s.id = ev.session_id
        WHERE ev.id = ?`,
    )
    .get(id) as (EventRow & EventDetail["exchange"] & Pick<EventDetail, "groupRule" | "catalogCategory" | "subtype">) | undefined;
  if (!ev) return undefined;
  const fields = db
    .prepare(
      `SELECT idx, part, path, value, type, pii_kind AS piiKind, customer_content AS customerContent,
              wire_type AS wireType, scrub_type AS scrubType, category, personal, rule, reasons, confidence
         FROM fields WHERE event_id = ? ORDER BY idx`,
    )
    .all(id) as FieldRow[];
  const findings = db
    .prepare("SELECT code, message, field_path AS fieldPath, rule FROM classification_findings WHERE event_id = ? ORDER BY idx")
    .all(id) as ClassificationFindingRow[];
  const { method, scheme, path, startedAt, requestBodySha256, decoder, ...row } = ev;
  return { ...row, exchange: { method, scheme, path, startedAt, requestBodySha256, decoder }, fields, findings };
}
