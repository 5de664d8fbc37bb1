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
 * read and LIKE-search values directly (through the `fields` view).
 */
export class EventStore {
  private readonly stmt: Record<string, Statement>;
  /** Interned field paths and rule ids (see migration 4), by `part\0path` and by rule id. */
  private readonly pathIds = new Map<string, number>();
  private readonly ruleIds = new Map<string, number>();

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
      deleteFieldValues: db.prepare("DELETE FROM field_values WHERE event_id IN (SELECT id FROM events WHERE exchange_id = ?)"),
      deleteEvents: db.prepare("DELETE FROM events WHERE exchange_id = ?"),
      deleteFindings: db.prepare("DELETE FROM decode_findings WHERE exchange_id = ?"),
      insertEvent: db.prepare(`INSERT INTO events (exchange_id, session_id, idx, format, name, time, ikey, byte_start, byte_end,
          field_count, ms_group, group_rule, category, catalog_category, subtype, content_fields, personal_fields)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
      insertField: db.prepare(`INSERT INTO field_values (event_id, idx, path_id, value, type, pii_kind, customer_content, wire_type,
          scrub_type, category, personal, rule_id, reasons, confidence)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
      selectPath: db.prepare("SELECT id FROM field_paths WHERE path = ? AND part = ?").pluck(),
      insertPath: db.prepare("INSERT INTO field_paths (path, part) VALUES (?, ?) RETURNING id").pluck(),
      selectRule: db.prepare("SELECT id FROM rules WHERE rule = ?").pluck(),
      insertRule: db.prepare("INSERT INTO rules (rule) VALUES (?) RETURNING id").pluck(),
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
    const events = decoded.events;
    const format = decoded.decoder.split("@")[0];
    const rowsPerTransaction = this.options.rowsPerTransaction ?? ROWS_PER_TRANSACTION_ALONE;
    this.write(() => {
      s.deleteFieldValues.run(upload.id);
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
    let from = 0;
    while (from < events.length || from === 0) {
      // Whole events per transaction, about rowsPerTransaction rows each; the last also marks the exchange.
      let to = from;
      for (let rows = 0; to < events.length && rows < rowsPerTransaction; to++) rows += events[to].fields.length + 1;
      const last = to >= events.length;
      this.write(() => {
        for (let n = from; n < to; n++) this.insertEvent(upload, p, format, n);
        if (last) {
          s.markDecoded.run(decoded.decoder, decoded.encodings.join(", ") || null, JSON.stringify(decoded.facts), Date.now(), p.rulesFingerprint, upload.id);
        }
      });
      if (last) break;
      from = to;
    }
  }

  private write(fn: () => void): void {
    this.options.priority?.yieldToCapture();
    try {
      this.db.transaction(fn).immediate();
    } catch (e) {
      // Ids interned in a rolled-back transaction do not exist.
      this.pathIds.clear();
      this.ruleIds.clear();
      throw e;
    }
  }

  private insertEvent(upload: StoredUpload, p: ProcessedUpload, format: string, n: number): void {
    const s = this.stmt;
    const event = p.decoded.events[n];
    const c = p.classified[n];
    let contentFields = 0;
    let personalFields = 0;
    if (c) {
      for (const cf of c.fields) {
        if (cf.category === "content") contentFields++;
        if (cf.personal !== "none") personalFields++;
      }
    }
    const eventId = s.insertEvent.run(
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
      contentFields,
      personalFields,
    ).lastInsertRowid;
    const fields = event.fields;
    for (let i = 0; i < fields.length; i++) {
      const f = fields[i];
      const cf = c?.fields[i];
      const a = f.annotations;
      s.insertField.run(
        eventId,
        i,
        this.pathId(f.part, f.path),
        fieldValueText(f),
        f.type,
        a?.piiKind ?? null,
        a?.customerContent === undefined ? null : a.customerContent ? 1 : 0,
        a?.wireType ?? null,
        a?.scrubType ?? null,
        cf?.category ?? null,
        cf?.personal ?? null,
        cf ? this.ruleId(cf.rule) : null,
        reasonsText(cf),
        cf?.confidence ?? null,
      );
    }
    c?.findings.forEach((cf, i) => s.insertClassFinding.run(eventId, i, cf.code, cf.message, cf.fieldPath, cf.rule ?? null));
  }

  private pathId(part: string, path: string): number {
    const key = part + "\0" + path;
    let id = this.pathIds.get(key);
    if (id === undefined) {
      id = (this.stmt.selectPath.get(path, part) ?? this.stmt.insertPath.get(path, part)) as number;
      this.pathIds.set(key, id);
    }
    return id;
  }

  private ruleId(rule: string): number {
    let id = this.ruleIds.get(rule);
    if (id === undefined) {
      id = (this.stmt.selectRule.get(rule) ?? this.stmt.insertRule.get(rule)) as number;
      this.ruleIds.set(rule, id);
    }
    return id;
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
