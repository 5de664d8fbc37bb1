/**
 * Every SQL statement verification, session diffs and canaries need. Large result sets are
 * returned as iterators (better-sqlite3 `.iterate()`), so a 100k-event session is streamed, never
 * loaded whole.
 */
import type { RawHeaders } from "../types.js";
import type { Db } from "./database.js";
import { parsePairs } from "./headers.js";

/** Fingerprints of the rule packs the session's exchanges were classified with (usually one). */
export function classifiedWith(db: Db, sessionId: number): string[] {
  return (
    db
      .prepare("SELECT DISTINCT classified_with AS fp FROM exchanges WHERE session_id = ? AND classified_with IS NOT NULL ORDER BY 1")
      .all(sessionId) as Array<{ fp: string }>
  ).map((r) => r.fp);
}

// ---------------------------------------------------------------------------------------------
// Endpoints

export interface HostCount {
  host: string;
  count: number;
}

/** Decrypted exchanges per host. */
export function exchangeHostCounts(db: Db, sessionId: number): HostCount[] {
  return db
    .prepare("SELECT host, COUNT(*) AS count FROM exchanges WHERE session_id = ? GROUP BY host ORDER BY host")
    .all(sessionId) as HostCount[];
}

/**
 * Connections that carried no decrypted exchange, per host: tunnelled, pinned (client rejected
 * the certificate), denied, failed. Data may have left through them; exhaust could not read it.
 * An intercepted connection still open may not have its exchange count yet, so it is left out.
 */
export function bareConnectionHostCounts(db: Db, sessionId: number): HostCount[] {
  return db
    .prepare(
      `SELECT host, COUNT(*) AS count FROM connections
        WHERE session_id = ? AND exchanges = 0 AND (ended_at IS NOT NULL OR outcome <> 'intercepted')
        GROUP BY host ORDER BY host`,
    )
    .all(sessionId) as HostCount[];
}

export interface ExchangeEvidenceRow {
  id: string;
  host: string;
  method: string;
  path: string;
  bodySha256: string;
  outcome: string;
}

export function exchangesToHost(db: Db, sessionId: number, host: string, limit: number): ExchangeEvidenceRow[] {
  return db
    .prepare(
      `SELECT id, host, method, path, request_body_sha256 AS bodySha256, outcome FROM exchanges
        WHERE session_id = ? AND host = ? ORDER BY seq LIMIT ?`,
    )
    .all(sessionId, host, limit) as ExchangeEvidenceRow[];
}

export interface ConnectionEvidenceRow {
  id: string;
  host: string;
  port: number;
  outcome: string;
  bytesFromClient: number;
  error: string | null;
}

export function bareConnectionsToHost(db: Db, sessionId: number, host: string, limit: number): ConnectionEvidenceRow[] {
  return db
    .prepare(
      `SELECT id, host, port, outcome, bytes_from_client AS bytesFromClient, error FROM connections
        WHERE session_id = ? AND host = ? AND exchanges = 0 AND (ended_at IS NOT NULL OR outcome <> 'intercepted')
        ORDER BY started_at LIMIT ?`,
    )
    .all(sessionId, host, limit) as ConnectionEvidenceRow[];
}

// ---------------------------------------------------------------------------------------------
// Events

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

// ---------------------------------------------------------------------------------------------
// Fields

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

export interface EventFieldRow {
  path: string;
  value: string | null;
}

export function eventFields(db: Db, eventId: number): EventFieldRow[] {
  return db.prepare("SELECT path, value FROM fields WHERE event_id = ? ORDER BY idx").all(eventId) as EventFieldRow[];
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

// ---------------------------------------------------------------------------------------------
// Raw requests (canary search)

export interface RequestRow {
  id: string;
  host: string;
  path: string;
  /** [name, value] pairs in wire order. */
  headers: RawHeaders;
  bodySha256: string;
  body: Buffer | null;
}

/** Every exchange's URL, headers and stored request body; streamed. */
export function* iterateRequests(db: Db, sessionId: number): Generator<RequestRow> {
  const rows = db
    .prepare(
      `SELECT x.id, x.host, x.path, x.request_headers AS headers, x.request_body_sha256 AS bodySha256, b.data AS body
         FROM exchanges x LEFT JOIN blobs b ON b.sha256 = x.request_body_sha256
        WHERE x.session_id = ? ORDER BY x.seq`,
    )
    .iterate(sessionId) as IterableIterator<Omit<RequestRow, "headers"> & { headers: string }>;
  for (const r of rows) yield { ...r, headers: parsePairs(r.headers) ?? [] };
}

// ---------------------------------------------------------------------------------------------
// Canaries

export interface CanaryRow {
  token: string;
  label: string | null;
  createdAt: number;
}

export function insertCanaries(db: Db, tokens: readonly string[], label: string | undefined, createdAt: number): void {
  const insert = db.prepare("INSERT INTO canaries (token, label, created_at) VALUES (?, ?, ?)");
  db.transaction(() => {
    for (const t of tokens) insert.run(t, label ?? null, createdAt);
  })();
}

export function listCanaries(db: Db): CanaryRow[] {
  return db.prepare("SELECT token, label, created_at AS createdAt FROM canaries ORDER BY created_at, token").all() as CanaryRow[];
}

// ---------------------------------------------------------------------------------------------
// Session diff

export interface EndpointSummaryRow {
  host: string;
  connections: number;
  exchanges: number;
  outcomes: string;
}

/** Hosts contacted: connections (any outcome) and decrypted exchanges per host. */
export function endpointSummary(db: Db, sessionId: number): EndpointSummaryRow[] {
  return db
    .prepare(
      `SELECT host, SUM(connections) AS connections, SUM(exchanges) AS exchanges, GROUP_CONCAT(DISTINCT outcome) AS outcomes FROM (
         SELECT host, 1 AS connections, 0 AS exchanges, outcome FROM connections WHERE session_id = @s
         UNION ALL
         SELECT host, 0, 1, NULL FROM exchanges WHERE session_id = @s)
       GROUP BY host ORDER BY host`,
    )
    .all({ s: sessionId }) as EndpointSummaryRow[];
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
