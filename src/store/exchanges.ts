/**
 * Exchanges as records: the full row in chain order (exports, bundles, the chain check, the web
 * UI's credential view) and one exchange in detail for the web UI. Headers leave as [name, value]
 * pairs, stored JSON parsed.
 */
import type { ExchangeRequestFacts, RawHeaders } from "../types.js";
import type { Db } from "./database.js";
import { parsePairs } from "./headers.js";

/** An exchange row as stored, headers parsed: what an export carries and the chain is computed over. */
export interface ExchangeRecord extends ExchangeRequestFacts {
  session: string;
  seq: number;
  connectionId: string | null;
  scheme: string;
  requestBodySha256: string;
  mode: string;
  endpointId: string | null;
  upstream: string | null;
  responseStatus: number | null;
  responseHeaders: RawHeaders | null;
  responseBodySha256: string | null;
  responseBodySize: number | null;
  responseBodyTruncated: boolean;
  responseTrailers: RawHeaders | null;
  responseSource: string | null;
  outcome: string;
  errorCode: string | null;
  errorMessage: string | null;
  startedAt: number;
  requestEndedAt: number | null;
  respondedAt: number | null;
  endedAt: number | null;
  decoder: string | null;
  prevHash: string;
  hash: string;
}

const EXCHANGE_COLUMNS = `x.id, s.name AS session, x.seq, x.connection_id AS connectionId, x.scheme, x.method, x.host, x.port,
  x.path, x.http_version AS httpVersion, x.request_headers AS requestHeaders, x.request_body_sha256 AS requestBodySha256,
  x.request_body_size AS requestBodySize, x.request_body_truncated AS requestBodyTruncated, x.request_complete AS requestComplete,
  x.mode, x.endpoint_id AS endpointId, x.upstream, x.response_status AS responseStatus, x.response_headers AS responseHeaders,
  x.response_body_sha256 AS responseBodySha256, x.response_body_size AS responseBodySize,
  x.response_body_truncated AS responseBodyTruncated, x.response_trailers AS responseTrailers, x.response_source AS responseSource,
  x.outcome, x.error_code AS errorCode, x.error_message AS errorMessage, x.started_at AS startedAt,
  x.request_ended_at AS requestEndedAt, x.responded_at AS respondedAt, x.ended_at AS endedAt, x.decoder,
  x.prev_hash AS prevHash, x.hash`;

type ExchangeRow = Omit<
  ExchangeRecord,
  "requestHeaders" | "responseHeaders" | "responseTrailers" | "requestBodyTruncated" | "requestComplete" | "responseBodyTruncated"
> & {
  requestHeaders: string;
  responseHeaders: string | null;
  responseTrailers: string | null;
  requestBodyTruncated: number;
  requestComplete: number;
  responseBodyTruncated: number;
};

function toExchange(r: ExchangeRow): ExchangeRecord {
  return {
    ...r,
    requestHeaders: parsePairs(r.requestHeaders) ?? [],
    responseHeaders: parsePairs(r.responseHeaders),
    responseTrailers: parsePairs(r.responseTrailers),
    requestBodyTruncated: r.requestBodyTruncated === 1,
    requestComplete: r.requestComplete === 1,
    responseBodyTruncated: r.responseBodyTruncated === 1,
  };
}

/** The exchanges of a session in chain order, read `pageSize` at a time. */
export function* exchangesOfSession(db: Db, sessionId: number, pageSize = 200): Generator<ExchangeRecord> {
  const page = db.prepare(
    `SELECT ${EXCHANGE_COLUMNS} FROM exchanges x JOIN sessions s ON s.id = x.session_id
      WHERE x.session_id = ? AND x.seq > ? ORDER BY x.seq LIMIT ?`,
  );
  let after = 0;
  for (;;) {
    const rows = page.all(sessionId, after, pageSize) as ExchangeRow[];
    for (const r of rows) yield toExchange(r);
    if (rows.length < pageSize) return;
    after = rows[rows.length - 1].seq;
  }
}

/** Exchanges stored after `afterRowid` (any session), in storage order, with their rowid: incremental readers. */
export function exchangesSinceRowid(db: Db, afterRowid: number, limit: number): Array<ExchangeRecord & { rowid: number }> {
  const rows = db
    .prepare(
      `SELECT x.rowid AS rowid, ${EXCHANGE_COLUMNS} FROM exchanges x JOIN sessions s ON s.id = x.session_id WHERE x.rowid > ? ORDER BY x.rowid LIMIT ?`,
    )
    .all(afterRowid, limit) as Array<ExchangeRow & { rowid: number }>;
  return rows.map((r) => ({ ...toExchange(r), rowid: r.rowid }));
}

/** One exchange for the web UI: the record's columns plus its session id, connection outcome, upload facts and event count. */
export type ExchangeDetail = Pick<
  ExchangeRecord,
  | "id"
  | "session"
  | "seq"
  | "connectionId"
  | "scheme"
  | "method"
  | "host"
  | "port"
  | "path"
  | "httpVersion"
  | "requestHeaders"
  | "requestBodySha256"
  | "requestBodySize"
  | "requestBodyTruncated"
  | "responseStatus"
  | "responseHeaders"
  | "responseBodySha256"
  | "responseBodySize"
  | "responseBodyTruncated"
  | "responseSource"
  | "outcome"
  | "mode"
  | "errorCode"
  | "errorMessage"
  | "startedAt"
  | "decoder"
  | "hash"
  | "prevHash"
> & {
  sessionId: number;
  contentEncoding: string | null;
  /** The decoder's facts about the upload (parsed JSON), or null. */
  uploadFacts: object | null;
  connectionOutcome: string | null;
  events: number;
};

/** The columns of an exchange row the store parses: JSON text and 0/1 flags. */
interface StoredColumns {
  requestHeaders: string;
  responseHeaders: string | null;
  uploadFacts: string | null;
  requestBodyTruncated: number;
  responseBodyTruncated: number;
}

export function exchangeDetail(db: Db, id: string): ExchangeDetail | undefined {
  const r = db
    .prepare(
      `SELECT x.id, s.name AS session, x.session_id AS sessionId, x.seq, x.connection_id AS connectionId, x.scheme, x.method,
              x.host, x.port, x.path, x.http_version AS httpVersion, x.request_headers AS requestHeaders,
              x.request_body_sha256 AS requestBodySha256, x.request_body_size AS requestBodySize,
              x.request_body_truncated AS requestBodyTruncated, x.response_status AS responseStatus,
              x.response_headers AS responseHeaders, x.response_body_sha256 AS responseBodySha256,
              x.response_body_size AS responseBodySize, x.response_body_truncated AS responseBodyTruncated,
              x.response_source AS responseSource, x.outcome, x.mode, x.error_code AS errorCode, x.error_message AS errorMessage,
              x.started_at AS startedAt, x.decoder, x.content_encoding AS contentEncoding, x.upload_facts AS uploadFacts,
              x.hash, x.prev_hash AS prevHash, c.outcome AS connectionOutcome,
              (SELECT COUNT(*) FROM events e WHERE e.exchange_id = x.id) AS events
         FROM exchanges x JOIN sessions s ON s.id = x.session_id LEFT JOIN connections c ON c.id = x.connection_id
        WHERE x.id = ?`,
    )
    .get(id) as (Omit<ExchangeDetail, keyof StoredColumns> & StoredColumns) | undefined;
  if (!r) return undefined;
  return {
    ...r,
    requestHeaders: parsePairs(r.requestHeaders) ?? [],
    responseHeaders: parsePairs(r.responseHeaders),
    uploadFacts: r.uploadFacts ? (JSON.parse(r.uploadFacts) as object) : null,
    requestBodyTruncated: r.requestBodyTruncated === 1,
    responseBodyTruncated: r.responseBodyTruncated === 1,
  };
}

// Read by verification, session diffs and canaries (src/verify).

/** Fingerprints of the rule packs the session's exchanges were classified with (usually one). */
export function classifiedWith(db: Db, sessionId: number): string[] {
  return (
    db
      .prepare("SELECT DISTINCT classified_with AS fp FROM exchanges WHERE session_id = ? AND classified_with IS NOT NULL ORDER BY 1")
      .all(sessionId) as Array<{ fp: string }>
  ).map((r) => r.fp);
}

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
