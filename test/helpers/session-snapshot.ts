/** What a round trip must preserve of a session: every body's SHA-256, and events with their fields. */
import { openDatabase } from "../../src/store/database.js";

export interface SessionSnapshot {
  bodies: Array<{ request: string; requestSize: number; response: string | null; method: string; host: string; path: string }>;
  events: Array<{ name: string; format: string; time: string | null; category: string | null; fields: string[] }>;
}

export function sessionSnapshot(dbFile: string, session: string): SessionSnapshot {
  const db = openDatabase(dbFile, { readonly: true });
  try {
    const bodies = db
      .prepare(
        `SELECT x.request_body_sha256 AS request, x.request_body_size AS requestSize, x.response_body_sha256 AS response,
                x.method, x.host, x.path
           FROM exchanges x JOIN sessions s ON s.id = x.session_id WHERE s.name = ? ORDER BY x.seq`,
      )
      .all(session) as SessionSnapshot["bodies"];
    const events = (
      db
        .prepare(
          `SELECT e.id, e.name, e.format, e.time, e.category FROM events e JOIN sessions s ON s.id = e.session_id
            JOIN exchanges x ON x.id = e.exchange_id WHERE s.name = ? ORDER BY x.seq, e.idx`,
        )
        .all(session) as Array<{ id: number; name: string; format: string; time: string | null; category: string | null }>
    ).map(({ id, ...e }) => ({
      ...e,
      fields: (
        db
          .prepare("SELECT part, path, value, type, category, personal, rule FROM fields WHERE event_id = ? ORDER BY idx")
          .all(id) as object[]
      ).map((f) => JSON.stringify(f)),
    }));
    return { bodies, events };
  } finally {
    db.close();
  }
}
