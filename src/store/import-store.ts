import type { Db } from "./database.js";

/**
 * Records where an imported session came from in its options_json (merged with what is there) and
 * ends it, whole: the import finished (clears migration 8's `incomplete` mark).
 */
export function recordImportProvenance(db: Db, sessionId: number, imported: Record<string, unknown>): void {
  const row = db.prepare("SELECT options_json AS json FROM sessions WHERE id = ?").get(sessionId) as { json: string } | undefined;
  const options = { ...(JSON.parse(row?.json || "{}") as Record<string, unknown>), imported };
  db.prepare("UPDATE sessions SET options_json = ?, ended_at = ?, incomplete = NULL WHERE id = ?").run(
    JSON.stringify(options),
    Date.now(),
    sessionId,
  );
}
