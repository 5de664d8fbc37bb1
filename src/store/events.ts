import type { Db } from "./database.js";
import { Conditions } from "./conditions.js";

export interface EventFilter {
  sessionId?: number;
  /** SQLite GLOB on the event name: `Office.Word.*`. */
  nameGlob?: string;
  /** DPIA category of the event as a whole (content if any of its fields is). */
  category?: string;
  /** Host the upload went to (exact, as captured). */
  host?: string;
  /** Microsoft group: required, optional, essential, connected-experience, unknown. */
  group?: string;
  /** Only events with at least one field that is personal data. */
  personal?: boolean;
  /**
   * Free text: case-insensitive substring of the event name or of any field value. Values cannot be
   * indexed cheaply (tens of millions of rows), so this is a bounded scan: see listEventsPage.
   */
  search?: string;
  limit: number;
  /** Skip this many (offset paging: costs grow with the offset). */
  offset?: number;
  /** Keyset paging: only events with a larger id (cost independent of depth). */
  afterId?: number;
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
  contentFields: number;
  personalFields: number;
}

export interface EventPage {
  rows: EventRow[];
  /** Pass as afterId for the next page; null when nothing is left. */
  nextAfterId: number | null;
  /** For a search: the id up to which events were examined (the scan stops there even if the page is not full). */
  scannedThroughId: number | null;
}

/** Events a search examines per call at most, in id order; the caller continues from scannedThroughId. */
export const SEARCH_SCAN_EVENTS = 20_000;

const EVENT_COLUMNS = `ev.id, s.name AS session, ev.exchange_id AS exchangeId, x.host, ev.format, ev.name, ev.time,
       ev.ikey AS iKey, ev.field_count AS fieldCount, ev.ms_group AS "group", ev.category,
       ev.content_fields AS contentFields, ev.personal_fields AS personalFields`;

/** WHERE clauses for the filter; only the ones in use, so SQLite can pick an index for them. */
function eventConditions(
  f: Omit<EventFilter, "limit" | "offset" | "search">,
  options: { nameIndex?: boolean; hostWalk?: boolean } = {},
): { where: string[]; params: Record<string, unknown> } {
  const c = new Conditions();
  c.when(f.sessionId, "session", "ev.session_id = @session");
  // `+` keeps SQLite off the name index: for a common name, walking ids is faster than sorting them.
  c.when(f.nameGlob, "glob", options.nameIndex === false ? "+ev.name GLOB @glob" : "ev.name GLOB @glob");
  c.when(f.category, "category", "ev.category = @category");
  c.when(f.group, "group", "ev.ms_group = @group");
  if (f.personal) c.where.push("ev.personal_fields > 0");
  // A common host: check each event's exchange while walking ids. A rare one: its exchanges first.
  c.when(
    f.host,
    "host",
    options.hostWalk
      ? "(SELECT hx.host FROM exchanges hx WHERE hx.id = ev.exchange_id) = @host"
      : `ev.exchange_id IN (SELECT hx.id FROM exchanges hx WHERE hx.host = @host${f.sessionId !== undefined ? " AND hx.session_id = @session" : ""})`,
  );
  c.when(f.afterId, "after", "ev.id > @after");
  return c;
}

/** `%text%` for LIKE with the wildcards in the text escaped. */
function likePattern(text: string): string {
  return `%${text.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
}

/**
 * One page of events in id (capture) order. With `search`, at most SEARCH_SCAN_EVENTS events that
 * pass the other filters are examined per call: the page may come back short, and
 * `scannedThroughId` says where to continue. Without it, keyset paging (afterId) keeps deep pages
 * as fast as the first.
 */
export function listEventsPage(db: Db, f: EventFilter): EventPage {
  const { where, params } = eventConditions(f, {
    nameIndex: f.nameGlob === undefined || isRare(db, { sessionId: f.sessionId, nameGlob: f.nameGlob, afterId: f.afterId }),
    hostWalk: f.host !== undefined && !isRare(db, { sessionId: f.sessionId, host: f.host, afterId: f.afterId }),
  });
  params.limit = f.limit;
  params.offset = f.offset ?? 0;
  let scannedThroughId: number | null = null;
  if (f.search !== undefined && f.search !== "") {
    // The end of the scan window: the SEARCH_SCAN_EVENTS-th event that passes the cheap filters.
    const bound = db
      .prepare(
        `SELECT MAX(id) AS id FROM (SELECT ev.id FROM events ev ${where.length ? `WHERE ${where.join(" AND ")}` : ""}
          ORDER BY ev.id LIMIT ${SEARCH_SCAN_EVENTS})`,
      )
      .get(params) as { id: number | null };
    if (bound.id === null) return { rows: [], nextAfterId: null, scannedThroughId: null };
    scannedThroughId = bound.id;
    where.push("ev.id <= @scanEnd");
    where.push(
      "(ev.name LIKE @q ESCAPE '\\' OR EXISTS (SELECT 1 FROM field_values sv WHERE sv.event_id = ev.id AND sv.value LIKE @q ESCAPE '\\'))",
    );
    params.scanEnd = bound.id;
    params.q = likePattern(f.search);
  }
  const rows = db
    .prepare(
      `SELECT ${EVENT_COLUMNS}
         FROM events ev
         JOIN exchanges x ON x.id = ev.exchange_id
         JOIN sessions s ON s.id = ev.session_id
        ${where.length ? `WHERE ${where.join(" AND ")}` : ""}
        ORDER BY ev.id
        LIMIT @limit OFFSET @offset`,
    )
    .all(params) as EventRow[];
  let nextAfterId: number | null = rows.length === f.limit ? rows[rows.length - 1].id : null;
  if (scannedThroughId !== null && nextAfterId === null) {
    // A short page from a search: more may match beyond the window unless it reached the end.
    const rest = eventConditions({ ...f, afterId: scannedThroughId });
    const more = db.prepare(`SELECT 1 FROM events ev WHERE ${rest.where.join(" AND ")} LIMIT 1`).get(rest.params);
    nextAfterId = more ? scannedThroughId : null;
  }
  return { rows, nextAfterId, scannedThroughId };
}

/** Matches of a name glob or host beyond which the list walks ids instead of an index. */
const COMMON_MATCHES = 2000;

/**
 * Whether a filter matches few events (then its index and a small sort win) or many (then walking
 * events in id order fills a page at once). Counted through the index, capped: SQLite's planner
 * has no statistics in a database nobody ran ANALYZE on.
 */
function isRare(db: Db, f: Omit<EventFilter, "limit">): boolean {
  const { where, params } = eventConditions(f);
  const n = db
    .prepare(`SELECT COUNT(*) AS n FROM (SELECT 1 FROM events ev WHERE ${where.join(" AND ")} LIMIT ${COMMON_MATCHES})`)
    .get(params) as {
    n: number;
  };
  return n.n < COMMON_MATCHES;
}

/** Events in capture order, filtered; the list `exhaust events` prints. */
export function listEvents(db: Db, f: EventFilter): EventRow[] {
  return listEventsPage(db, f).rows;
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
              ev.field_count AS fieldCount, ev.ms_group AS "group", ev.category, ev.content_fields AS contentFields,
              ev.personal_fields AS personalFields, ev.group_rule AS groupRule,
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

// Read by verification, session diffs and canaries (src/verify).

export interface EventEvidenceRow {
  id: number;
  name: string;
  group: string | null;
  groupRule: string | null;
  exchangeId: string;
  bodySha256: string;
}

/** Events of the session in capture order, with their group and exchange; streamed. */
export function iterateSessionEvents(db: Db, sessionId: number): IterableIterator<EventEvidenceRow> {
  return db
    .prepare(
      `SELECT ev.id, ev.name, ev.ms_group AS "group", ev.group_rule AS groupRule, ev.exchange_id AS exchangeId,
              x.request_body_sha256 AS bodySha256
         FROM events ev JOIN exchanges x ON x.id = ev.exchange_id
        WHERE ev.session_id = ? ORDER BY ev.id`,
    )
    .iterate(sessionId) as IterableIterator<EventEvidenceRow>;
}

export interface NameCount {
  name: string;
  count: number;
  firstId: number;
}

export function eventNameCounts(db: Db, sessionId: number): NameCount[] {
  return db
    .prepare("SELECT name, COUNT(*) AS count, MIN(id) AS firstId FROM events WHERE session_id = ? GROUP BY name ORDER BY name")
    .all(sessionId) as NameCount[];
}

export interface EventValuesRow {
  eventId: number;
  /** Every field value of the event joined by U+0001 (a character no canary form contains). */
  text: string | null;
}

/**
 * One row per event with all its field values joined, in event order; streamed. Joining in SQLite
 * hands 1 row per event to JavaScript instead of ~40.
 */
export function iterateEventValueTexts(db: Db, sessionId: number): IterableIterator<EventValuesRow> {
  return db
    .prepare(
      `SELECT ev.id AS eventId, (SELECT GROUP_CONCAT(v.value, char(1)) FROM field_values v WHERE v.event_id = ev.id) AS text
         FROM events ev WHERE ev.session_id = ? ORDER BY ev.id`,
    )
    .iterate(sessionId) as IterableIterator<EventValuesRow>;
}

export interface EventRef {
  id: number;
  name: string;
  exchangeId: string;
  bodySha256: string;
}

export function eventRef(db: Db, eventId: number): EventRef | undefined {
  return db
    .prepare(
      `SELECT ev.id, ev.name, ev.exchange_id AS exchangeId, x.request_body_sha256 AS bodySha256
         FROM events ev JOIN exchanges x ON x.id = ev.exchange_id WHERE ev.id = ?`,
    )
    .get(eventId) as EventRef | undefined;
}

export interface EventNameSummaryRow {
  name: string;
  count: number;
  /** Categories of the events of that name, comma-separated, sorted. */
  categories: string | null;
  groups: string | null;
}

export function eventNameSummary(db: Db, sessionId: number): EventNameSummaryRow[] {
  return db
    .prepare(
      `SELECT name, COUNT(*) AS count,
              (SELECT GROUP_CONCAT(c, ',') FROM (SELECT DISTINCT e2.category AS c FROM events e2
                 WHERE e2.session_id = @s AND e2.name = e.name AND e2.category IS NOT NULL ORDER BY 1)) AS categories,
              (SELECT GROUP_CONCAT(g, ',') FROM (SELECT DISTINCT e3.ms_group AS g FROM events e3
                 WHERE e3.session_id = @s AND e3.name = e.name AND e3.ms_group IS NOT NULL ORDER BY 1)) AS groups
         FROM events e WHERE session_id = @s GROUP BY name ORDER BY name`,
    )
    .all({ s: sessionId }) as EventNameSummaryRow[];
}
