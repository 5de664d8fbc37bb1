import type { VerdictReport } from "../verdict.js";
import type { Db } from "./database.js";

/** Stores a verdict with its session; returns the verdict's id. */
export function saveVerdict(db: Db, report: VerdictReport): number {
  const info = db
    .prepare("INSERT INTO verdicts (session_id, profile, status, created_at, report_json) VALUES (?, ?, ?, ?, ?)")
    .run(report.session.id, report.profile.name, report.status, report.createdAt, JSON.stringify(report));
  return Number(info.lastInsertRowid);
}

/** The latest verdict per profile for a session, by profile name. */
export function latestVerdicts(db: Db, sessionId: number): VerdictReport[] {
  const rows = db
    .prepare(
      `SELECT v.report_json AS json FROM verdicts v
        WHERE v.session_id = ? AND v.id = (SELECT MAX(id) FROM verdicts w WHERE w.session_id = v.session_id AND w.profile = v.profile)
        ORDER BY v.profile`,
    )
    .all(sessionId) as Array<{ json: string }>;
  return rows.map((r) => JSON.parse(r.json) as VerdictReport);
}
