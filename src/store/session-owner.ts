import { hostname } from "node:os";
import type { Db } from "./database.js";

/** A claim whose heartbeat is older than this has lapsed (the proxy renews it every 5 s). */
export const OWNER_STALE_MS = 30_000;

/** Whether a process with this pid runs on this machine (EPERM: it does, under another user). */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

/**
 * Whether a recorded owner still captures its session: its heartbeat is fresh and, on this host,
 * its pid is alive (another host's pid cannot be checked from here). `selfPid` counts as gone: a
 * proxy restarted with the same pid reclaims its own session.
 */
export function ownerIsLive(o: Pick<SessionOwner, "pid" | "host" | "heartbeatAt">, selfPid?: number): boolean {
  if (Date.now() - o.heartbeatAt > OWNER_STALE_MS) return false;
  if (o.host !== hostname()) return true;
  return o.pid !== selfPid && pidAlive(o.pid);
}

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
