import type { Db } from "./database.js";

/** The proxy that captures a session (table session_owners). */
export interface SessionOwner {
  session: string;
  pid: number;
  host: string;
  token: string;
  startedAt: number;
  heartbeatAt: number;
}

/**
 * Claims a session for one proxy, in one IMMEDIATE transaction (two proxies starting together see
 * each other). Returns the live owner found instead, if any; `isStale` says whether a recorded
 * owner is gone (its pid is dead, its heartbeat old), in which case its claim is taken over.
 */
export function claimSession(db: Db, owner: SessionOwner, isStale: (o: SessionOwner) => boolean): SessionOwner | undefined {
  return db
    .transaction((): SessionOwner | undefined => {
      const current = db
        .prepare(
          `SELECT session, pid, host, token, started_at AS startedAt, heartbeat_at AS heartbeatAt
             FROM session_owners WHERE session = ?`,
        )
        .get(owner.session) as SessionOwner | undefined;
      if (current && !isStale(current)) return current;
      db.prepare(
        `INSERT OR REPLACE INTO session_owners (session, pid, host, token, started_at, heartbeat_at)
         VALUES (@session, @pid, @host, @token, @startedAt, @heartbeatAt)`,
      ).run(owner);
      return undefined;
    })
    .immediate();
}

/** A write that renews the claim (run through the capture store's group commit). */
export function heartbeatWrite(db: Db, owner: SessionOwner): () => void {
  const stmt = db.prepare("UPDATE session_owners SET heartbeat_at = ? WHERE session = ? AND token = ?");
  return () => {
    stmt.run(Date.now(), owner.session, owner.token);
  };
}

/** Gives the session up (a clean stop, a failed start); only the claim this proxy made. */
export function releaseSession(db: Db, owner: SessionOwner): void {
  db.prepare("DELETE FROM session_owners WHERE session = ? AND token = ?").run(owner.session, owner.token);
}
