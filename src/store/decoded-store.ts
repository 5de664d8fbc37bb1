import type { Statement } from "better-sqlite3";
import type { DecodedUpload } from "../decode/registry.js";
import type { DecodedField, FieldValue } from "../decode/types.js";
import type { RawHeaders } from "../types.js";
import type { Db } from "./database.js";

/** A stored exchange as the decode stage needs it. */
export interface StoredUpload {
  id: string;
  sessionId: number;
  method: string;
  path: string;
  headers: RawHeaders;
  body: Buffer;
}

/** Field rows per write transaction: short enough that the proxy's commits never wait long. */
const FIELDS_PER_TRANSACTION = 500;

/**
 * Writes decoded events and fields, replacing earlier decodes of the same exchange (reprocess).
 * Strings are stored as they are, every other value as JSON, so `sqlite3` users can read and
 * LIKE-search values directly.
 */
export class DecodedStore {
  private readonly stmt: Record<string, Statement>;

  constructor(private readonly db: Db) {
    this.stmt = {
      load: db.prepare(`SELECT e.id, e.session_id AS sessionId, e.method, e.path, e.request_headers AS headers, b.data AS body
        FROM exchanges e JOIN blobs b ON b.sha256 = e.request_body_sha256 WHERE e.id = ?`),
      deleteEvents: db.prepare("DELETE FROM events WHERE exchange_id = ?"),
      deleteFindings: db.prepare("DELETE FROM decode_findings WHERE exchange_id = ?"),
      insertEvent: db.prepare(`INSERT INTO events (exchange_id, session_id, idx, format, name, time, ikey, byte_start, byte_end, field_count)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
      insertField: db.prepare(`INSERT INTO fields (event_id, idx, part, path, value, type, pii_kind, customer_content, wire_type, scrub_type)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
      insertFinding: db.prepare(`INSERT INTO decode_findings (exchange_id, idx, code, severity, message, offset, length, event_index)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?)`),
      markDecoded: db.prepare(`UPDATE exchanges SET decoder = ?, content_encoding = ?, upload_facts = ?, decoded_at = ? WHERE id = ?`),
    };
  }

  loadUpload(id: string): StoredUpload | undefined {
    const row = this.stmt.load.get(id) as (Omit<StoredUpload, "headers"> & { headers: string }) | undefined;
    return row && { ...row, headers: JSON.parse(row.headers) as RawHeaders };
  }

  /** Exchange ids to decode: never decoded, or decoded by a decoder version that is no longer current. */
  pendingExchanges(options: { sessionId?: number; all?: boolean; currentTags: ReadonlySet<string> }): string[] {
    const rows = this.db
      .prepare(
        `SELECT id, decoder FROM exchanges WHERE (? IS NULL OR session_id = ?) ORDER BY session_id, seq`,
      )
      .all(options.sessionId ?? null, options.sessionId ?? null) as Array<{ id: string; decoder: string | null }>;
    return rows.filter((r) => options.all || r.decoder === null || (!options.currentTags.has(r.decoder) && r.decoder !== "none")).map((r) => r.id);
  }

  /** Replaces the decoded events of one exchange, in transactions of bounded size. */
  replaceDecoded(upload: StoredUpload, decoded: DecodedUpload): void {
    const s = this.stmt;
    this.db.transaction(() => {
      s.deleteEvents.run(upload.id);
      s.deleteFindings.run(upload.id);
      decoded.findings.forEach((f, i) =>
        s.insertFinding.run(upload.id, i, f.code, f.severity, f.message, f.offset ?? null, f.length ?? null, f.eventIndex ?? null),
      );
    }).immediate();
    let pending: Array<() => void> = [];
    let pendingFields = 0;
    const flush = () => {
      const batch = pending;
      pending = [];
      pendingFields = 0;
      this.db.transaction(() => batch.forEach((w) => w())).immediate();
    };
    for (const event of decoded.events) {
      pending.push(() => {
        const info = s.insertEvent.run(
          upload.id,
          upload.sessionId,
          event.index,
          decoded.decoder.split("@")[0],
          event.name,
          event.time ?? null,
          event.iKey ?? null,
          event.byteRange?.[0] ?? null,
          event.byteRange?.[1] ?? null,
          event.fields.length,
        );
        const eventId = info.lastInsertRowid;
        event.fields.forEach((f, i) => s.insertField.run(eventId, i, f.part, f.path, fieldValueText(f), f.type, ...annotationColumns(f)));
      });
      pendingFields += event.fields.length + 1;
      if (pendingFields >= FIELDS_PER_TRANSACTION) flush();
    }
    pending.push(() =>
      s.markDecoded.run(decoded.decoder, decoded.encodings.join(", ") || null, JSON.stringify(decoded.facts), Date.now(), upload.id),
    );
    flush();
  }
}

export function fieldValueText(f: Pick<DecodedField, "value">): string | null {
  if (f.value === null) return null;
  return typeof f.value === "string" ? f.value : JSON.stringify(f.value);
}

/** The stored text back to a value of the field's type; anything that does not parse stays text. */
export function fieldValueFromText(text: string | null, type: string): FieldValue {
  if (text === null) return null;
  switch (type) {
    case "bool":
      return text === "true" ? true : text === "false" ? false : text;
    case "int32":
    case "uint32":
    case "int64":
    case "uint64":
    case "double": {
      const n = Number(text);
      return Number.isFinite(n) && (type === "double" || Number.isSafeInteger(n)) ? n : text;
    }
    case "array":
      try {
        return JSON.parse(text) as FieldValue;
      } catch {
        return text;
      }
    default:
      return text;
  }
}

function annotationColumns(f: DecodedField): [number | null, number | null, number | null, number | null] {
  const a = f.annotations;
  return [a?.piiKind ?? null, a?.customerContent === undefined ? null : a.customerContent ? 1 : 0, a?.wireType ?? null, a?.scrubType ?? null];
}
