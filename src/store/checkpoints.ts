/** Signed chain checkpoints (src/capture/checkpoint.ts): stored per session, exported in bundles. */
import type { Db } from "./database.js";

export interface CheckpointRow {
  session: string;
  seq: number;
  head: string;
  time: string;
  caFingerprint256: string;
  signature: string;
  tsa: string | null;
}

export function insertCheckpoint(db: Db, sessionId: number, c: CheckpointRow): void {
  db.prepare(
    `INSERT INTO checkpoints (session_id, seq, head, created_at, ca_fingerprint, signature, tsa)
     VALUES (?, ?, ?, ?, ?, ?, ?)`,
  ).run(sessionId, c.seq, c.head, c.time, c.caFingerprint256, c.signature, c.tsa);
}

export function checkpointsOfSession(db: Db, sessionId: number): CheckpointRow[] {
  return db
    .prepare(
      `SELECT s.name AS session, c.seq, c.head, c.created_at AS time, c.ca_fingerprint AS caFingerprint256, c.signature, c.tsa
         FROM checkpoints c JOIN sessions s ON s.id = c.session_id WHERE c.session_id = ? ORDER BY c.id`,
    )
    .all(sessionId) as CheckpointRow[];
}

/** The session's chain head: last seq and hash (seq 0 and null for an empty session). */
export function chainHead(db: Db, sessionId: number): { seq: number; hash: string | null } {
  const r = db.prepare("SELECT seq, hash FROM exchanges WHERE session_id = ? ORDER BY seq DESC LIMIT 1").get(sessionId) as
    { seq: number; hash: string } | undefined;
  return r ?? { seq: 0, hash: null };
}
