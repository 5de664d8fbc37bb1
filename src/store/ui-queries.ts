import type { Db } from "./database.js";
import { Conditions } from "./conditions.js";

/**
 * Read-only summaries of one session for the HTML report and the web UI. Every query is bounded by
 * the session and uses the per-event counts (content_fields, personal_fields) or the partial index
 * field_values_content where it can, so a session of a million events stays cheap; the one query
 * that reads every field row (fieldsByCategory) is used by the report only.
 */

export interface EndpointRow {
  host: string;
  port: number;
  outcome: string;
  connections: number;
  exchanges: number;
  bytesFromClient: number;
  bytesToClient: number;
}

/** Connections per host, port and outcome (intercepted, tunnelled, pinned = client-rejected-certificate, ...). */
export function sessionEndpoints(db: Db, sessionId: number): EndpointRow[] {
  return db
    .prepare(
      `SELECT host, port, outcome, COUNT(*) AS connections, SUM(exchanges) AS exchanges,
              SUM(bytes_from_client) AS bytesFromClient, SUM(bytes_to_client) AS bytesToClient
         FROM connections WHERE session_id = ?
        GROUP BY host, port, outcome ORDER BY host, port, outcome`,
    )
    .all(sessionId) as EndpointRow[];
}

export interface ConnectionRow {
  id: string;
  host: string;
  port: number;
  sni: string | null;
  outcome: string;
  upstream: string | null;
  exchanges: number;
  bytesFromClient: number;
  bytesToClient: number;
  startedAt: number;
  error: string | null;
}

/** Connections of a session in the order they were opened, at most `limit`. */
export function sessionConnections(db: Db, sessionId: number, limit: number): ConnectionRow[] {
  return db
    .prepare(
      `SELECT id, host, port, sni, outcome, upstream, exchanges, bytes_from_client AS bytesFromClient,
              bytes_to_client AS bytesToClient, started_at AS startedAt, error
         FROM connections WHERE session_id = ? ORDER BY started_at, id LIMIT ?`,
    )
    .all(sessionId, limit) as ConnectionRow[];
}

export interface ExchangeRow {
  id: string;
  seq: number;
  method: string;
  host: string;
  path: string;
  requestBodySize: number;
  responseStatus: number | null;
  outcome: string;
  decoder: string | null;
  startedAt: number;
}

export interface ExchangeListOptions {
  afterSeq?: number;
  limit: number;
  /** Only exchanges to this host (exact, as captured). */
  host?: string;
  /** Only exchanges that carried at least one event of this DPIA category. */
  category?: string;
}

/** Exchanges of a session in chain order, keyset-paged by seq, with their event counts. */
export function sessionExchanges(db: Db, sessionId: number, options: ExchangeListOptions): ExchangeRow[] {
  const c = new Conditions({ session: sessionId, after: options.afterSeq ?? -1, limit: options.limit });
  c.where.push("x.session_id = @session", "x.seq > @after");
  c.when(options.host, "host", "x.host = @host");
  c.when(options.category, "category", "EXISTS (SELECT 1 FROM events e WHERE e.exchange_id = x.id AND e.category = @category)");
  return db
    .prepare(
      `SELECT x.id, x.seq, x.method, x.host, x.path, x.request_body_size AS requestBodySize, x.response_status AS responseStatus,
              x.outcome, x.decoder, x.started_at AS startedAt,
              (SELECT COUNT(*) FROM events e WHERE e.exchange_id = x.id) AS events,
              (SELECT COUNT(*) FROM events e WHERE e.exchange_id = x.id AND e.content_fields > 0) AS contentEvents
         FROM exchanges x WHERE ${c.where.join(" AND ")} ORDER BY x.seq LIMIT @limit`,
    )
    .all(c.params) as ExchangeRow[];
}

export interface ExchangeEventRow {
  id: number;
  idx: number;
  name: string;
  time: string | null;
  group: string | null;
  category: string | null;
  contentFields: number;
  personalFields: number;
}

/** The events decoded from one exchange, in body order (the exchange page links each). */
export function exchangeEvents(db: Db, exchangeId: string): ExchangeEventRow[] {
  return db
    .prepare(
      `SELECT id, idx, name, time, ms_group AS "group", category, content_fields AS contentFields, personal_fields AS personalFields
         FROM events WHERE exchange_id = ? ORDER BY idx`,
    )
    .all(exchangeId) as ExchangeEventRow[];
}

/** The newest event id and exchange rowid: what the live view compares with (two index lookups). */
export function liveHeads(db: Db): { event: number; exchange: number } {
  const r = db
    .prepare("SELECT (SELECT COALESCE(MAX(id), 0) FROM events) AS event, (SELECT COALESCE(MAX(rowid), 0) FROM exchanges) AS exchange")
    .get() as { event: number; exchange: number };
  return r;
}

export interface LiveExchangeRow {
  rowid: number;
  id: string;
  sessionId: number;
  seq: number;
  method: string;
  host: string;
  path: string;
  responseStatus: number | null;
  requestBodySize: number;
  startedAt: number;
}

export interface LiveEventRow {
  id: number;
  sessionId: number;
  exchangeId: string;
  name: string;
  category: string | null;
  contentFields: number;
}

/** Exchanges and events stored after the given heads, at most `limit` of each, oldest first. */
export function liveSince(
  db: Db,
  after: { event: number; exchange: number },
  limit: number,
): { exchanges: LiveExchangeRow[]; events: LiveEventRow[] } {
  const exchanges = db
    .prepare(
      `SELECT rowid, id, session_id AS sessionId, seq, method, host, path, response_status AS responseStatus,
              request_body_size AS requestBodySize, started_at AS startedAt
         FROM exchanges WHERE rowid > ? ORDER BY rowid LIMIT ?`,
    )
    .all(after.exchange, limit) as LiveExchangeRow[];
  const events = db
    .prepare(
      `SELECT id, session_id AS sessionId, exchange_id AS exchangeId, name, category, content_fields AS contentFields
         FROM events WHERE id > ? ORDER BY id LIMIT ?`,
    )
    .all(after.event, limit) as LiveEventRow[];
  return { exchanges, events };
}

export interface GroupRow {
  group: string | null;
  events: number;
  contentEvents: number;
  personalEvents: number;
}

/** Events per Microsoft group (required, optional, essential, ...). */
export function eventsPerGroup(db: Db, sessionId: number): GroupRow[] {
  return db
    .prepare(
      `SELECT ms_group AS "group", COUNT(*) AS events, SUM(content_fields > 0) AS contentEvents,
              SUM(personal_fields > 0) AS personalEvents
         FROM events WHERE session_id = ? GROUP BY ms_group ORDER BY events DESC`,
    )
    .all(sessionId) as GroupRow[];
}

export interface CategoryCount {
  category: string | null;
  fields: number;
}

/** Field rows per DPIA category for a session. Reads every field row of the session. */
export function fieldsByCategory(db: Db, sessionId: number): CategoryCount[] {
  return db
    .prepare(
      `SELECT v.category, COUNT(*) AS fields
         FROM events e JOIN field_values v ON v.event_id = e.id
        WHERE e.session_id = ? GROUP BY v.category ORDER BY fields DESC`,
    )
    .all(sessionId) as CategoryCount[];
}

export interface NameCategoryRow {
  name: string;
  category: string | null;
  count: number;
}

/**
 * Share of categories per event name for the `top` most frequent names. `unit: "fields"` counts
 * field rows (reads them all: for reports); `unit: "events"` counts events by their overall category
 * (index only: for the UI over large sessions).
 */
export function categoriesPerEventName(db: Db, sessionId: number | undefined, top: number, unit: "fields" | "events"): NameCategoryRow[] {
  const names = `SELECT name FROM events WHERE (@session IS NULL OR session_id = @session)
                  GROUP BY name ORDER BY COUNT(*) DESC, name LIMIT @top`;
  const sql =
    unit === "fields"
      ? `SELECT e.name, v.category, COUNT(*) AS count
           FROM events e JOIN field_values v ON v.event_id = e.id
          WHERE (@session IS NULL OR e.session_id = @session) AND e.name IN (${names})
          GROUP BY e.name, v.category`
      : `SELECT e.name, e.category, COUNT(*) AS count
           FROM events e
          WHERE (@session IS NULL OR e.session_id = @session) AND e.name IN (${names})
          GROUP BY e.name, e.category`;
  return db.prepare(sql).all({ session: sessionId ?? null, top }) as NameCategoryRow[];
}

export interface TimeBucketRow {
  host: string;
  bucket: number;
  events: number;
}

/**
 * Events over capture time per host: `buckets` equal slices between the first and last exchange.
 * Counts events per exchange through the (exchange_id, idx) index, then sums per bucket.
 */
export function eventsOverTime(
  db: Db,
  sessionId: number | undefined,
  buckets: number,
): { from: number; to: number; rows: TimeBucketRow[] } {
  const range = db
    .prepare("SELECT MIN(started_at) AS lo, MAX(started_at) AS hi FROM exchanges WHERE (@s IS NULL OR session_id = @s)")
    .get({ s: sessionId ?? null }) as { lo: number | null; hi: number | null };
  if (range.lo === null || range.hi === null) return { from: 0, to: 0, rows: [] };
  const span = Math.max(1, range.hi - range.lo + 1);
  const rows = db
    .prepare(
      `SELECT x.host, CAST((x.started_at - @lo) * @buckets / @span AS INTEGER) AS bucket, SUM(n.c) AS events
         FROM (SELECT exchange_id, COUNT(*) AS c FROM events WHERE (@s IS NULL OR session_id = @s) GROUP BY exchange_id) n
         JOIN exchanges x ON x.id = n.exchange_id
        GROUP BY x.host, bucket ORDER BY x.host, bucket`,
    )
    .all({ s: sessionId ?? null, lo: range.lo, span, buckets }) as TimeBucketRow[];
  return { from: range.lo, to: range.hi, rows };
}

export interface ContentFindingRow {
  eventId: number;
  eventName: string;
  exchangeId: string;
  host: string;
  bodySha256: string;
  path: string;
  value: string | null;
  rule: string | null;
  reasons: string | null;
  personal: string | null;
  piiKind: number | null;
  customerContent: number | null;
}

/** Every content field of a session (the view `fields` over the partial index field_values_content), at most `limit`. */
export function contentFindings(db: Db, sessionId: number, limit: number): { rows: ContentFindingRow[]; total: number } {
  const total = (
    db.prepare("SELECT COALESCE(SUM(content_fields), 0) AS n FROM events WHERE session_id = ? AND content_fields > 0").get(sessionId) as {
      n: number;
    }
  ).n;
  const rows = db
    .prepare(
      `SELECT e.id AS eventId, e.name AS eventName, e.exchange_id AS exchangeId, x.host, x.request_body_sha256 AS bodySha256,
              f.path, f.value, f.rule, f.reasons, f.personal, f.pii_kind AS piiKind, f.customer_content AS customerContent
         FROM events e
         JOIN fields f ON f.event_id = e.id AND f.category = 'content'
         JOIN exchanges x ON x.id = e.exchange_id
        WHERE e.session_id = ? AND e.content_fields > 0
        ORDER BY e.id, f.idx LIMIT ?`,
    )
    .all(sessionId, limit) as ContentFindingRow[];
  return { rows, total };
}

/** Hosts uploads went to, for filter lists (exchanges are few compared with events). */
export function uploadHosts(db: Db, sessionId: number | undefined): string[] {
  return (
    db
      .prepare("SELECT DISTINCT host FROM exchanges WHERE (@s IS NULL OR session_id = @s) ORDER BY host")
      .all({ s: sessionId ?? null }) as Array<{ host: string }>
  ).map((r) => r.host);
}
