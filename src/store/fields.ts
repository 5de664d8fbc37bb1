/** Field rows across events: the web UI's field list ("every content field") and the CSV export's rows. */
import type { Db } from "./database.js";

export interface FieldFilter {
  sessionId?: number;
  /** DPIA category of the field; `content` is served by the partial index field_values_content. */
  category?: string;
  /** Keyset paging: fields after (afterEventId, afterIdx). */
  afterEventId?: number;
  afterIdx?: number;
  limit: number;
}

/** What every field row carries: the field and its classification. */
export interface FieldColumns {
  path: string;
  value: string | null;
  type: string;
  category: string | null;
  personal: string | null;
  rule: string | null;
}

export interface FieldListRow extends FieldColumns {
  eventId: number;
  idx: number;
  eventName: string;
  host: string;
  part: string;
  reasons: string | null;
}

/**
 * Field rows across events in (event, position) order: "every content field". Content is served by
 * a partial index; other categories walk field rows in order and stop at the page.
 */
export function listFieldsPage(db: Db, f: FieldFilter): FieldListRow[] {
  const where: string[] = [];
  const params: Record<string, unknown> = { limit: f.limit };
  if (f.category === "content") {
    // A literal, so SQLite can use the partial index field_values_content (a bound parameter does not match it).
    where.push("fv.category = 'content'");
  } else if (f.category !== undefined) {
    where.push("fv.category = @category");
    params.category = f.category;
  }
  if (f.sessionId !== undefined) {
    // `+`: walk the (rare) content rows and check the session, rather than every event of a session.
    where.push(f.category === "content" ? "+e.session_id = @session" : "e.session_id = @session");
    params.session = f.sessionId;
  }
  if (f.afterEventId !== undefined) {
    where.push("(fv.event_id, fv.idx) > (@afterEvent, @afterIdx)");
    params.afterEvent = f.afterEventId;
    params.afterIdx = f.afterIdx ?? 1e9;
  }
  return db
    .prepare(
      `SELECT fv.event_id AS eventId, fv.idx, e.name AS eventName, x.host, fv.part, fv.path, fv.value, fv.type, fv.category,
              fv.personal, fv.rule, fv.reasons
         FROM fields fv
         JOIN events e ON e.id = fv.event_id
         JOIN exchanges x ON x.id = e.exchange_id
        ${where.length ? `WHERE ${where.join(" AND ")}` : ""}
        ORDER BY fv.event_id, fv.idx LIMIT @limit`,
    )
    .all(params) as FieldListRow[];
}

/** One row per decoded field of a session, in event then field order (the CSV export). */
export interface FieldExportRow extends FieldColumns {
  session: string;
  exchange: string;
  event: number;
  name: string;
}

export function* fieldRowsOfSession(db: Db, sessionId: number, pageSize = 500): Generator<FieldExportRow> {
  const ids = db.prepare("SELECT id FROM events WHERE session_id = ? AND id > ? ORDER BY id LIMIT ?").pluck();
  const fields = db.prepare(
    `SELECT s.name AS session, e.exchange_id AS exchange, e.id AS event, e.name, f.path, f.value, f.type, f.category,
            f.personal, f.rule
       FROM events e JOIN sessions s ON s.id = e.session_id JOIN fields f ON f.event_id = e.id
      WHERE e.session_id = ? AND e.id BETWEEN ? AND ?
      ORDER BY e.id, f.idx`,
  );
  let after = 0;
  for (;;) {
    const page = ids.all(sessionId, after, pageSize) as number[];
    if (page.length === 0) return;
    yield* fields.all(sessionId, page[0], page[page.length - 1]) as FieldExportRow[];
    after = page[page.length - 1];
  }
}

// Read by verification, session diffs and canaries (src/verify).

export interface FieldEvidenceRow {
  eventId: number;
  name: string;
  exchangeId: string;
  bodySha256: string;
  path: string;
  value: string | null;
  category: string | null;
  rule: string | null;
}

const CATEGORY_WORD = /^[a-z-]+$/;

/**
 * Fields of the given categories, through the `fields` view; streamed. The categories are written
 * into the SQL as literals (they are checked words), so `category = 'content'` can use the partial
 * index on content fields.
 */
export function iterateFieldsInCategories(db: Db, sessionId: number, categories: readonly string[]): IterableIterator<FieldEvidenceRow> {
  if (!categories.length || !categories.every((c) => CATEGORY_WORD.test(c))) throw new Error(`bad categories ${categories.join(",")}`);
  const list = categories.map((c) => `'${c}'`).join(", ");
  return db
    .prepare(
      `SELECT ev.id AS eventId, ev.name, ev.exchange_id AS exchangeId, x.request_body_sha256 AS bodySha256,
              f.path, f.value, f.category, f.rule
         FROM fields f
         JOIN events ev ON ev.id = f.event_id
         JOIN exchanges x ON x.id = ev.exchange_id
        WHERE f.category IN (${list}) AND ev.session_id = ?
        ORDER BY f.event_id, f.idx`,
    )
    .iterate(sessionId) as IterableIterator<FieldEvidenceRow>;
}

export interface EventFieldRow {
  path: string;
  value: string | null;
}

export function eventFields(db: Db, eventId: number): EventFieldRow[] {
  return db.prepare("SELECT path, value FROM fields WHERE event_id = ? ORDER BY idx").all(eventId) as EventFieldRow[];
}

export interface FieldSummaryRow {
  name: string;
  path: string;
  category: string | null;
  count: number;
}

/** Field paths per event name and category, with counts; streamed (one row per name, path, category). */
export function iterateFieldSummary(db: Db, sessionId: number): IterableIterator<FieldSummaryRow> {
  return db
    .prepare(
      `SELECT t.name, p.path, t.category, t.count FROM (
         SELECT e.name, v.path_id, v.category, COUNT(*) AS count
           FROM events e JOIN field_values v ON v.event_id = e.id
          WHERE e.session_id = ? GROUP BY e.name, v.path_id, v.category) t
         JOIN field_paths p ON p.id = t.path_id
        ORDER BY t.name, p.path, t.category`,
    )
    .iterate(sessionId) as IterableIterator<FieldSummaryRow>;
}
