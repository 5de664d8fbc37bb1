/**
 * What a session holds and how much of it is decoded: the counts behind "complete before it
 * answers" (src/pipeline/complete.ts) and the coverage of a verdict (src/verify/verify.ts).
 */
import type { Db } from "./database.js";
import { ownerIsLive } from "./session-owner.js";

export interface SessionCoverage {
  /** Exchanges stored in the session. */
  exchanges: number;
  /** Of those, decoded (by any decoder version). */
  decoded: number;
  /** Events stored for the session. */
  events: number;
  /** Connections that carried no decrypted exchange (tunnelled, pinned, denied, failed). */
  bareConnections: number;
}

/** Counts for one session. */
export function sessionCoverage(db: Db, sessionId: number): SessionCoverage {
  const x = db.prepare("SELECT COUNT(*) AS exchanges, COUNT(decoder) AS decoded FROM exchanges WHERE session_id = ?").get(sessionId) as {
    exchanges: number;
    decoded: number;
  };
  const events = db.prepare("SELECT COUNT(*) FROM events WHERE session_id = ?").pluck().get(sessionId) as number;
  const bareConnections = db
    .prepare(
      `SELECT COUNT(*) FROM connections WHERE session_id = ? AND exchanges = 0 AND (ended_at IS NOT NULL OR outcome <> 'intercepted')`,
    )
    .pluck()
    .get(sessionId) as number;
  return { ...x, events, bareConnections };
}

/** Hosts the session's exchanges and connections went to (each once). */
export function sessionHosts(db: Db, sessionId: number): string[] {
  return db
    .prepare("SELECT host FROM exchanges WHERE session_id = ? UNION SELECT host FROM connections WHERE session_id = ?")
    .pluck()
    .all(sessionId, sessionId) as string[];
}

/** Exchanges never decoded, in the given sessions (every session when `sessionIds` is undefined). */
export function undecodedCount(db: Db, sessionIds?: readonly number[]): number {
  if (sessionIds === undefined) return db.prepare("SELECT COUNT(*) FROM exchanges WHERE decoder IS NULL").pluck().get() as number;
  return db
    .prepare("SELECT COUNT(*) FROM exchanges WHERE decoder IS NULL AND session_id IN (SELECT value FROM json_each(?))")
    .pluck()
    .get(JSON.stringify(sessionIds)) as number;
}

export interface SessionState {
  id: number;
  name: string;
  endedAt: number | null;
  /** Why the session is known to be incomplete (an unfinished import); undefined when it is whole. */
  incomplete?: string;
}

/** Whether the database has migration 8's column (a read-only file of an older schema may not). */
function hasIncompleteColumn(db: Db): boolean {
  return (db.prepare("SELECT COUNT(*) FROM pragma_table_info('sessions') WHERE name = 'incomplete'").pluck().get() as number) > 0;
}

/** End time and incompleteness of the given sessions (every session when undefined). */
export function sessionStates(db: Db, sessionIds?: readonly number[]): SessionState[] {
  const incomplete = hasIncompleteColumn(db) ? "incomplete" : "NULL";
  const rows = db
    .prepare(
      `SELECT id, name, ended_at AS endedAt, ${incomplete} AS incomplete FROM sessions
        WHERE ? IS NULL OR id IN (SELECT value FROM json_each(?)) ORDER BY id`,
    )
    .all(sessionIds ? JSON.stringify(sessionIds) : null, sessionIds ? JSON.stringify(sessionIds) : null) as Array<
    Omit<SessionState, "incomplete"> & { incomplete: string | null }
  >;
  return rows.map((r) => ({ ...r, incomplete: r.incomplete ?? undefined }));
}

/** Marks a session incomplete (with why) or, with undefined, whole again. */
export function markSessionIncomplete(db: Db, sessionId: number, why: string | undefined): void {
  db.prepare("UPDATE sessions SET incomplete = ? WHERE id = ?").run(why ?? null, sessionId);
}

/** The session an event belongs to, and its exchange. */
export function eventScope(db: Db, eventId: number): { sessionId: number; exchangeId: string } | undefined {
  return db.prepare("SELECT session_id AS sessionId, exchange_id AS exchangeId FROM events WHERE id = ?").get(eventId) as
    { sessionId: number; exchangeId: string } | undefined;
}

/**
 * Sessions another process may still be writing, which a reading command must not decode under it:
 * one a live proxy owns (the `session_owners` claim of migration 7: fresh heartbeat,
 * and on this host a live pid), and an import that has not finished (not ended, marked incomplete:
 * a running import and a killed one look alike). Without the owners table (an older schema) every
 * session not ended counts. A proxy that died leaves a session not ended and unowned: not in use,
 * so its backlog is decoded by the next reading command.
 */
export function sessionsInUse(db: Db, sessionIds?: readonly number[]): Set<number> {
  const states = sessionStates(db, sessionIds).filter((s) => s.endedAt === null);
  if (states.length === 0) return new Set();
  if (!hasOwnersTable(db)) return new Set(states.map((s) => s.id));
  const owned = liveOwnerCheck(db);
  return new Set(states.filter((s) => s.incomplete !== undefined || owned(s.name)).map((s) => s.id));
}

/** Whether the database has migration 7's `session_owners` (a read-only file of an older schema may not). */
function hasOwnersTable(db: Db): boolean {
  return (db.prepare("SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'session_owners'").pluck().get() as number) > 0;
}

/** Whether a session (by name) is claimed by a live proxy; needs `session_owners`. */
function liveOwnerCheck(db: Db): (sessionName: string) => boolean {
  const owner = db.prepare("SELECT pid, host, heartbeat_at AS heartbeatAt FROM session_owners WHERE session = ?");
  return (name) => {
    const o = owner.get(name) as { pid: number; host: string; heartbeatAt: number } | undefined;
    return o !== undefined && ownerIsLive(o);
  };
}

/**
 * Sessions a live proxy is capturing now (not ended, claimed in `session_owners`): its processing
 * thread decodes them, so a reading command can wait for it instead of leaving them out.
 */
export function sessionsOwnedByLiveProxy(db: Db, sessionIds?: readonly number[]): Set<number> {
  const states = sessionStates(db, sessionIds).filter((s) => s.endedAt === null && s.incomplete === undefined);
  if (states.length === 0) return new Set();
  if (!hasOwnersTable(db)) return new Set();
  const owned = liveOwnerCheck(db);
  return new Set(states.filter((s) => owned(s.name)).map((s) => s.id));
}

/**
 * Where each session's undecoded exchanges end now: the highest capture order (`seq`) among them,
 * per session id (sessions with none left out). With `exchangeId`, only that exchange, if undecoded.
 * `undecodedThrough` then counts what is still undecoded up to those marks, leaving out what was
 * captured since.
 */
export function undecodedMarks(db: Db, sessionIds: readonly number[], exchangeId?: string): Map<number, number> {
  const rows = db
    .prepare(
      `SELECT session_id AS id, MAX(seq) AS seq FROM exchanges
        WHERE decoder IS NULL AND session_id IN (SELECT value FROM json_each(?)) AND (? IS NULL OR id = ?)
        GROUP BY session_id`,
    )
    .all(JSON.stringify(sessionIds), exchangeId ?? null, exchangeId ?? null) as Array<{ id: number; seq: number }>;
  return new Map(rows.map((r) => [r.id, r.seq]));
}

/** Exchanges still undecoded at or before each session's mark (see undecodedMarks). */
export function undecodedThrough(db: Db, marks: ReadonlyMap<number, number>, exchangeId?: string): number {
  const count = db
    .prepare("SELECT COUNT(*) FROM exchanges WHERE session_id = ? AND seq <= ? AND decoder IS NULL AND (? IS NULL OR id = ?)")
    .pluck();
  let n = 0;
  for (const [session, seq] of marks) n += count.get(session, seq, exchangeId ?? null, exchangeId ?? null) as number;
  return n;
}

/** Exchanges never decoded, per session id (sessions with none are left out). */
export function undecodedBySession(db: Db): Map<number, number> {
  const rows = db
    .prepare("SELECT session_id AS id, COUNT(*) AS n FROM exchanges WHERE decoder IS NULL GROUP BY session_id")
    .all() as Array<{ id: number; n: number }>;
  return new Map(rows.map((r) => [r.id, r.n]));
}

/**
 * The backlog per session for a reader that asks often (the web UI's live stream and its session
 * list): undecoded exchanges per session id, sessions with none left out. It recounts only when
 * another connection has committed since (`PRAGMA data_version`), at most every `minIntervalMs`,
 * and only from the oldest exchange that was undecoded at the last count on: exchanges are decoded,
 * never undone, and new ones get higher rowids. Once the backlog is gone a recount reads nothing.
 */
export class BacklogWatch {
  private from = 0;
  private head = 0;
  private version: number | undefined;
  private checkedAt = -Infinity;
  private counts: ReadonlyMap<number, number> = new Map();
  private readonly heads;
  private readonly tail;

  constructor(
    private readonly db: Db,
    private readonly minIntervalMs: number,
  ) {
    this.heads = db.prepare("SELECT COALESCE(MAX(rowid), 0) FROM exchanges").pluck();
    this.tail = db.prepare(
      `SELECT session_id AS id, COUNT(*) AS n, MIN(rowid) AS first FROM exchanges
        WHERE rowid >= ? AND decoder IS NULL GROUP BY session_id`,
    );
  }

  /** Undecoded exchanges per session id now (at most `minIntervalMs` old). */
  bySession(): ReadonlyMap<number, number> {
    const now = Date.now();
    if (now - this.checkedAt < this.minIntervalMs) return this.counts;
    this.checkedAt = now;
    const version = this.db.pragma("data_version", { simple: true }) as number;
    if (version === this.version) return this.counts;
    this.version = version;
    // The newest rowid first: what is stored after it is counted now or next time, never skipped.
    const head = this.heads.get() as number;
    if (head < this.head) this.from = 0;
    this.head = head;
    const rows = this.tail.all(this.from) as Array<{ id: number; n: number; first: number }>;
    this.from = rows.length ? Math.min(...rows.map((r) => r.first)) : head + 1;
    this.counts = new Map(rows.map((r) => [r.id, r.n]));
    return this.counts;
  }
}

/** Exchanges to these hosts, and connections to them that carried no exchange (pinned, refused). */
export function trafficToHosts(db: Db, sessionId: number, hosts: readonly string[]): number {
  if (hosts.length === 0) return 0;
  const list = JSON.stringify(hosts);
  return db
    .prepare(
      `SELECT (SELECT COUNT(*) FROM exchanges WHERE session_id = ? AND host IN (SELECT value FROM json_each(?)))
            + (SELECT COUNT(*) FROM connections WHERE session_id = ? AND exchanges = 0 AND host IN (SELECT value FROM json_each(?)))`,
    )
    .pluck()
    .get(sessionId, list, sessionId, list) as number;
}
