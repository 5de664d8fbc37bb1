/**
 * Read-only queries for exports and bundles: the events of an exchange or session, chain summaries,
 * field rows for CSV, credential values to redact. Large sets are read in pages so callers can run
 * other queries (blobs, events) between pages on the same connection. Sessions, exchange records
 * and blobs are in sessions.ts, exchanges.ts and blobs.ts.
 */
import type { Db } from "./database.js";

/** Event ids of one exchange, in upload order. */
export function eventIdsOfExchange(db: Db, exchangeId: string): number[] {
  return db.prepare("SELECT id FROM events WHERE exchange_id = ? ORDER BY idx").pluck().all(exchangeId) as number[];
}

/** Event ids of a session in capture order, read in pages. */
export function* eventIdsOfSession(db: Db, sessionId: number, pageSize = 1000): Generator<number> {
  const page = db.prepare("SELECT id FROM events WHERE session_id = ? AND id > ? ORDER BY id LIMIT ?").pluck();
  let after = 0;
  for (;;) {
    const ids = page.all(sessionId, after, pageSize) as number[];
    yield* ids;
    if (ids.length < pageSize) return;
    after = ids[ids.length - 1];
  }
}

export interface ChainSummary {
  exchanges: number;
  /** Hash of the last exchange (the chain's head); the genesis value when the session is empty. */
  head: string | null;
  lastSeq: number;
  firstStartedAt: number | null;
  lastActivityAt: number | null;
}

export function chainSummary(db: Db, sessionId: number): ChainSummary {
  const r = db
    .prepare(
      `SELECT COUNT(*) AS exchanges, MAX(seq) AS lastSeq, MIN(started_at) AS firstStartedAt,
              MAX(COALESCE(ended_at, responded_at, request_ended_at, started_at)) AS lastActivityAt,
              (SELECT hash FROM exchanges WHERE session_id = @s ORDER BY seq DESC LIMIT 1) AS head
         FROM exchanges WHERE session_id = @s`,
    )
    .get({ s: sessionId }) as ChainSummary & { lastSeq: number | null };
  return { ...r, lastSeq: r.lastSeq ?? 0 };
}

/** Values of a session's decoded fields whose path `isSecretPath` accepts (credential keys). */
export function secretFieldValues(
  db: Db,
  sessionId: number,
  isSecretPath: (path: string) => boolean,
): Array<{ path: string; value: string }> {
  const paths = (db.prepare("SELECT id, path FROM field_paths").all() as Array<{ id: number; path: string }>).filter((p) =>
    isSecretPath(p.path),
  );
  if (paths.length === 0) return [];
  const byId = new Map(paths.map((p) => [p.id, p.path]));
  const rows = db
    .prepare(
      `SELECT DISTINCT v.path_id AS pathId, v.value FROM field_values v JOIN events e ON e.id = v.event_id
        WHERE e.session_id = ? AND v.value IS NOT NULL AND v.path_id IN (SELECT value FROM json_each(?))`,
    )
    .all(sessionId, JSON.stringify([...byId.keys()])) as Array<{ pathId: number; value: string }>;
  return rows.map((r) => ({ path: byId.get(r.pathId)!, value: r.value }));
}

/**
 * Values of a session's decoded fields that one of `ruleIds` classified (the winning rule or among
 * the reasons): e.g. the fields a secret detector marked, so exports learn their credentials first.
 */
export function fieldValuesByRule(db: Db, sessionId: number, ruleIds: readonly string[]): Array<{ path: string; value: string }> {
  const wanted = classIdsOfRules(db, ruleIds);
  if (wanted.length === 0) return [];
  return db
    .prepare(
      `SELECT DISTINCT p.path, v.value FROM field_values v JOIN events e ON e.id = v.event_id JOIN field_paths p ON p.id = v.path_id
        WHERE e.session_id = ? AND v.value IS NOT NULL AND v.class_id IN (SELECT value FROM json_each(?))`,
    )
    .all(sessionId, JSON.stringify(wanted)) as Array<{ path: string; value: string }>;
}

/** As fieldValuesByRule, for the events with ids in (afterEventId, upToEventId] of any session: incremental readers. */
export function fieldValuesByRuleSince(
  db: Db,
  afterEventId: number,
  upToEventId: number,
  ruleIds: readonly string[],
): Array<{ path: string; value: string }> {
  if (upToEventId <= afterEventId) return [];
  const wanted = classIdsOfRules(db, ruleIds);
  if (wanted.length === 0) return [];
  return db
    .prepare(
      `SELECT DISTINCT p.path, v.value FROM field_values v JOIN field_paths p ON p.id = v.path_id
        WHERE v.event_id > ? AND v.event_id <= ? AND v.value IS NOT NULL AND v.class_id IN (SELECT value FROM json_each(?))`,
    )
    .all(afterEventId, upToEventId, JSON.stringify(wanted)) as Array<{ path: string; value: string }>;
}

/** Ids of the classification outcomes one of `ruleIds` decided or took part in. */
function classIdsOfRules(db: Db, ruleIds: readonly string[]): number[] {
  if (ruleIds.length === 0) return [];
  return db
    .prepare(
      `SELECT c.id FROM field_classes c
        WHERE c.rule IN (SELECT value FROM json_each(@ids))
           OR EXISTS (SELECT 1 FROM json_each(c.reasons) r WHERE r.value IN (SELECT value FROM json_each(@ids)))`,
    )
    .pluck()
    .all({ ids: JSON.stringify(ruleIds) }) as number[];
}

/** Values of decoded fields of events after `afterEventId` whose path `isSecretPath` accepts, and the last event id seen. */
export function secretFieldValuesSince(
  db: Db,
  afterEventId: number,
  isSecretPath: (path: string) => boolean,
): { values: Array<{ path: string; value: string }>; lastEventId: number } {
  const lastEventId = (db.prepare("SELECT MAX(id) FROM events").pluck().get() as number | null) ?? 0;
  if (lastEventId <= afterEventId) return { values: [], lastEventId: afterEventId };
  const paths = (db.prepare("SELECT id, path FROM field_paths").all() as Array<{ id: number; path: string }>).filter((p) =>
    isSecretPath(p.path),
  );
  if (paths.length === 0) return { values: [], lastEventId };
  const byId = new Map(paths.map((p) => [p.id, p.path]));
  const rows = db
    .prepare(
      `SELECT DISTINCT path_id AS pathId, value FROM field_values
        WHERE event_id > ? AND event_id <= ? AND value IS NOT NULL AND path_id IN (SELECT value FROM json_each(?))`,
    )
    .all(afterEventId, lastEventId, JSON.stringify([...byId.keys()])) as Array<{ pathId: number; value: string }>;
  return { values: rows.map((r) => ({ path: byId.get(r.pathId)!, value: r.value })), lastEventId };
}
