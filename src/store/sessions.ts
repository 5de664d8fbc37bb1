/**
 * Sessions: the lookups by name, id and age, the list `exhaust sessions` prints, one session's
 * overview (report, web UI), and `resolveSession`, the "--session or the latest" every command uses.
 */
import { exhaustError } from "../errors.js";
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
  /** Client addresses that rejected the leaf, per host (docs/containment.md): the pin evidence. */
  pins: PinEvidence[];
}

export interface PinEvidence {
  client: string;
  host: string;
  /** Connections recorded as client-rejected-certificate. */
  connections: number;
  /** When the last of them ended: a bypass lasts --pin-expiry after it (while the proxy runs). */
  lastAt: number;
}

/** Sessions with their counts, newest first: what `exhaust sessions` prints. */
export function listSessions(db: Db): SessionSummary[] {
  const rows = db
    .prepare(
      `SELECT s.id, s.name, s.started_at AS startedAt, s.ended_at AS endedAt,
              (SELECT COUNT(*) FROM exchanges e WHERE e.session_id = s.id) AS exchanges,
              (SELECT COALESCE(SUM(e.request_body_size), 0) FROM exchanges e WHERE e.session_id = s.id) AS requestBytes,
              (SELECT COUNT(*) FROM connections c WHERE c.session_id = s.id) AS connections,
              (SELECT COUNT(*) FROM connections c WHERE c.session_id = s.id AND c.outcome = 'client-rejected-certificate') AS pinned,
              (SELECT COUNT(*) FROM connections c WHERE c.session_id = s.id AND c.outcome = 'tunnelled') AS tunnelled
         FROM sessions s ORDER BY s.started_at DESC, s.id DESC`,
    )
    .all() as Array<Omit<SessionSummary, "pins">>;
  const pins = db.prepare(
    `SELECT client_address AS client, host, COUNT(*) AS connections, MAX(COALESCE(ended_at, started_at)) AS lastAt
       FROM connections WHERE session_id = ? AND outcome = 'client-rejected-certificate'
      GROUP BY client_address, host ORDER BY lastAt DESC`,
  );
  return rows.map((r) => ({ ...r, pins: pins.all(r.id) as PinEvidence[] }));
}

export interface SessionRef {
  id: number;
  name: string;
}

/** The newest session (what `exhaust sessions` lists first), or undefined in an empty database. */
export function latestSession(db: Db): SessionRef | undefined {
  return db.prepare("SELECT id, name FROM sessions ORDER BY started_at DESC, id DESC LIMIT 1").get() as SessionRef | undefined;
}

export function sessionByName(db: Db, name: string): SessionRef | undefined {
  return db.prepare("SELECT id, name FROM sessions WHERE name = ?").get(name) as SessionRef | undefined;
}

/** A session row as stored, options parsed: what exports and bundles carry. */
export interface SessionRecord {
  id: number;
  name: string;
  startedAt: number;
  endedAt: number | null;
  toolVersion: string;
  caFingerprint: string | null;
  options: Record<string, unknown>;
}

interface SessionRow extends Omit<SessionRecord, "options"> {
  optionsJson: string;
}

const SESSION_COLUMNS = `id, name, started_at AS startedAt, ended_at AS endedAt, tool_version AS toolVersion,
  ca_fingerprint AS caFingerprint, options_json AS optionsJson`;

const toSession = (r: SessionRow): SessionRecord => {
  const { optionsJson, ...rest } = r;
  return { ...rest, options: JSON.parse(optionsJson || "{}") as Record<string, unknown> };
};

/** One session, or every session (oldest first) when `sessionId` is undefined. */
export function sessionsForExport(db: Db, sessionId?: number): SessionRecord[] {
  const rows = (
    sessionId === undefined
      ? db.prepare(`SELECT ${SESSION_COLUMNS} FROM sessions ORDER BY id`).all()
      : db.prepare(`SELECT ${SESSION_COLUMNS} FROM sessions WHERE id = ?`).all(sessionId)
  ) as SessionRow[];
  return rows.map(toSession);
}

/** One session with its counts and time span: the head of the report and of the web UI's session page. */
export interface SessionOverview extends Omit<SessionRecord, "options"> {
  exchanges: number;
  connections: number;
  events: number;
  requestBytes: number;
  firstExchangeAt: number | null;
  lastExchangeAt: number | null;
}

export function sessionOverview(db: Db, sessionId: number): SessionOverview | undefined {
  return db
    .prepare(
      `SELECT s.id, s.name, s.started_at AS startedAt, s.ended_at AS endedAt, s.tool_version AS toolVersion,
              s.ca_fingerprint AS caFingerprint,
              (SELECT COUNT(*) FROM exchanges x WHERE x.session_id = s.id) AS exchanges,
              (SELECT COUNT(*) FROM connections c WHERE c.session_id = s.id) AS connections,
              (SELECT COUNT(*) FROM events e WHERE e.session_id = s.id) AS events,
              (SELECT COALESCE(SUM(x.request_body_size), 0) FROM exchanges x WHERE x.session_id = s.id) AS requestBytes,
              (SELECT MIN(x.started_at) FROM exchanges x WHERE x.session_id = s.id) AS firstExchangeAt,
              (SELECT MAX(x.started_at) FROM exchanges x WHERE x.session_id = s.id) AS lastExchangeAt
         FROM sessions s WHERE s.id = ?`,
    )
    .get(sessionId) as SessionOverview | undefined;
}

/**
 * The session a command works on: the one named by --session, or the newest when no name is given.
 * Throws EXH_DB_SESSION_UNKNOWN for an unknown name and EXH_DB_NO_SESSION for an empty database.
 */
export function resolveSession(db: Db, file: string, name?: string): SessionRef {
  if (name !== undefined) return namedSession(db, file, name);
  const latest = latestSession(db);
  if (!latest) throw exhaustError("EXH_DB_NO_SESSION", { file });
  return latest;
}

/** The session named by --session (EXH_DB_SESSION_UNKNOWN when there is none of that name). */
export function namedSession(db: Db, file: string, name: string): SessionRef {
  const s = sessionByName(db, name);
  if (!s) throw exhaustError("EXH_DB_SESSION_UNKNOWN", { session: name, file });
  return s;
}

/** For commands that read every session unless --session names one: that session's id, or undefined. */
export function sessionFilter(db: Db, file: string, name: string | undefined): number | undefined {
  return name === undefined ? undefined : namedSession(db, file, name).id;
}
