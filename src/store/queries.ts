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
