/** Canary tokens planted by `exhaust canary`, searched for by the canary rule kind. */
import type { Db } from "./database.js";

export interface CanaryRow {
  token: string;
  label: string | null;
  createdAt: number;
}

export function insertCanaries(db: Db, tokens: readonly string[], label: string | undefined, createdAt: number): void {
  const insert = db.prepare("INSERT INTO canaries (token, label, created_at) VALUES (?, ?, ?)");
  db.transaction(() => {
    for (const t of tokens) insert.run(t, label ?? null, createdAt);
  })();
}

export function listCanaries(db: Db): CanaryRow[] {
  return db.prepare("SELECT token, label, created_at AS createdAt FROM canaries ORDER BY created_at, token").all() as CanaryRow[];
}
