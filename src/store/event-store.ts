import type { Statement } from "better-sqlite3";
import type { ClassifiedEvent, ClassifiedRequestItem } from "../classify/types.js";
import type { DecodedUpload } from "../decode/registry.js";
import type { DecodedField, FieldValue } from "../decode/types.js";
import type { RawHeaders } from "../types.js";
import type { Db } from "./database.js";
import type { WriterPriority } from "./writer-priority.js";

/** A stored exchange as the decode and classify stages need it. */
export interface StoredUpload {
  id: string;
  sessionId: number;
  method: string;
  host: string;
  path: string;
  headers: RawHeaders;
  body: Buffer;
  clientAddress?: string;
}

/** Everything the processing stages produced for one exchange. */
export interface ProcessedUpload {
  decoded: DecodedUpload;
  /** Aligned with decoded.events. */
  classified: ClassifiedEvent[];
  request: ClassifiedRequestItem[];
  rulesFingerprint: string;
}

/**
 * Rows per write transaction. Alone (`exhaust reprocess`), large transactions are fastest: small
 * ones rewrite the same B-tree pages again and again. Beside a running proxy, each transaction holds
 * the database's one write lock, so there they are kept to about a millisecond.
 */
export const ROWS_PER_TRANSACTION_ALONE = 5000;
export const ROWS_PER_TRANSACTION_BESIDE_PROXY = 300;

/**
 * Writes decoded and classified events and fields, replacing earlier results for the same exchange
 * (reprocess). Strings are stored as they are, every other value as JSON, so `sqlite3` users can
 * read and LIKE-search values directly.
 */
export class EventStore {
  private readonly stmt: Record<string, Statement>;

  constructor(
    private readonly db: Db,
    private readonly options: { rowsPerTransaction?: number; priority?: WriterPriority } = {},
  ) {
    this.stmt = {
      load: db.prepare(`SELECT e.id, e.session_id AS sessionId, e.method, e.host, e.path, e.request_headers AS headers,
          b.data AS body, c.client_address AS clientAddress
        FROM exchanges e JOIN blobs b ON b.sha256 = e.request_body_sha256
        LEFT JOIN connections c ON c.id = e.connection_id WHERE e.id = ?`),
      deleteRequestItems: db.prepare("DELETE FROM request_items WHERE exchange_id = ?"),
      insertRequestItem: db.prepare(`INSERT INTO request_items (exchange_id, idx, name, location, category, personal, secret, rule, reasons)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`),
      insertClassFinding: db.prepare(`INSERT INTO classification_findings (event_id, idx, code, message, field_path, rule)
        VALUES (?, ?, ?, ?, ?, ?)`),
      deleteEvents: db.prepare("DELETE FROM events WHERE exchange_id = ?"),
      deleteFindings: db.prepare("DELETE FROM decode_findings WHERE exchange_id = ?"),
      insertEvent: db.prepare(`INSERT INTO events (exchange_id, session_id, idx, format, name, time, ikey, byte_start, byte_end,
          field_count, ms_group, group_rule, category, catalog_category, subtype)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
      insertField: db.prepare(`INSERT INTO fields (event_id, idx, part, path, value, type, pii_kind, customer_content, wire_type,
          scrub_type, category, personal, rule, reasons, confidence)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
      insertFinding: db.prepare(`INSERT INTO decode_findings (exchange_id, idx, code, severity, message, offset, length, event_index)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?)`),
      markDecoded: db.prepare(`UPDATE exchanges SET decoder = ?, content_encoding = ?, upload_facts = ?, decoded_at = ?,
          classified_with = ? WHERE id = ?`),
    };
  }

  loadUpload(id: string): StoredUpload | undefined {
    const row = this.stmt.load.get(id) as (Omit<StoredUpload, "headers" | "clientAddress"> & { headers: string; clientAddress: string | null }) | undefined;
    return row && { ...row, headers: JSON.parse(row.headers) as RawHeaders, clientAddress: row.clientAddress ?? undefined };
  }

  /**
   * Exchange ids to process: never processed, decoded by a decoder version that is no longer
   * current, or classified with other rule packs than `rulesFingerprint`.
   */
  pendingExchanges(options: { sessionId?: number; all?: boolean; currentTags: ReadonlySet<string>; rulesFingerprint: string }): string[] {
    const rows = this.db
      .prepare(`SELECT id, decoder, classified_with AS rules FROM exchanges WHERE (? IS NULL OR session_id = ?) ORDER BY session_id, seq`)
      .all(options.sessionId ?? null, options.sessionId ?? null) as Array<{ id: string; decoder: string | null; rules: string | null }>;
    const stale = (r: (typeof rows)[number]) =>
      r.decoder === null || (r.decoder !== "none" && !options.currentTags.has(r.decoder)) || r.rules !== options.rulesFingerprint;
    return rows.filter((r) => options.all || stale(r)).map((r) => r.id);
  }

  /** Replaces the events of one exchange, in transactions of bounded size. */
  replaceEvents(upload: StoredUpload, p: ProcessedUpload): void {
    const s = this.stmt;
    const { decoded } = p;
    const format = decoded.decoder.split("@")[0];
    const rowsPerTransaction = this.options.rowsPerTransaction ?? ROWS_PER_TRANSACTION_ALONE;
    const write = (fn: () => void) => {
      this.options.priority?.yieldToCapture();
      this.db.transaction(fn).immediate();
    };
    write(() => {
      s.deleteEvents.run(upload.id);
      s.deleteFindings.run(upload.id);
      s.deleteRequestItems.run(upload.id);
      decoded.findings.forEach((f, i) =>
        s.insertFinding.run(upload.id, i, f.code, f.severity, f.message, f.offset ?? null, f.length ?? null, f.eventIndex ?? null),
      );
      p.request.forEach((r, i) =>
        s.insertRequestItem.run(upload.id, i, r.name, r.where, r.category, r.personal, r.secret ? 1 : 0, r.rule, JSON.stringify(r.reasons)),
      );
    });
    let pending: Array<() => void> = [];
    let pendingRows = 0;
    const flush = () => {
      const batch = pending;
      pending = [];
      pendingRows = 0;
      write(() => batch.forEach((w) => w()));
    };
    decoded.events.forEach((event, n) => {
      const c = p.classified[n];
      pending.push(() => {
        const info = s.insertEvent.run(
          upload.id,
          upload.sessionId,
          event.index,
          format,
          event.name,
          event.time ?? null,
          event.iKey ?? null,
          event.byteRange?.[0] ?? null,
          event.byteRange?.[1] ?? null,
          event.fields.length,
          c?.group ?? null,
          c?.groupRule ?? null,
          c?.eventCategory ?? null,
          c?.catalogCategory ?? null,
          c?.subtype ?? null,
        );
        const eventId = info.lastInsertRowid;
        event.fields.forEach((f, i) => {
          const cf = c?.fields[i];
          s.insertField.run(
            eventId,
            i,
            f.part,
            f.path,
            fieldValueText(f),
            f.type,
            ...annotationColumns(f),
            cf?.category ?? null,
            cf?.personal ?? null,
            cf?.rule ?? null,
            reasonsText(cf),
            cf?.confidence ?? null,
          );
        });
        c?.findings.forEach((cf, i) => s.insertClassFinding.run(eventId, i, cf.code, cf.message, cf.fieldPath, cf.rule ?? null));
      });
      pendingRows += event.fields.length + 1;
      if (pendingRows >= rowsPerTransaction) flush();
    });
    pending.push(() =>
      s.markDecoded.run(
        decoded.decoder,
        decoded.encodings.join(", ") || null,
        JSON.stringify(decoded.facts),
        Date.now(),
        p.rulesFingerprint,
        upload.id,
      ),
    );
    flush();
  }
}

/** Reasons as JSON, NULL when the winning rule is the only reason (most fields): less to write. */
const reasonsJson = new WeakMap<object, string | null>();
function reasonsText(cf: ClassifiedEvent["fields"][number] | undefined): string | null {
  if (!cf) return null;
  let text = reasonsJson.get(cf);
  if (text === undefined) {
    text = cf.reasons.length === 1 && cf.reasons[0] === cf.rule ? null : JSON.stringify(cf.reasons);
    reasonsJson.set(cf, text);
  }
  return text;
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
