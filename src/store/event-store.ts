import type { Statement } from "better-sqlite3";
import type { ClassifiedEvent, ClassifiedRequestItem } from "../classify/types.js";
import type { DecodedUpload } from "../decode/registry.js";
import type { DecodedField, FieldValue } from "../decode/types.js";
import type { RawHeaders } from "../types.js";
import type { Db } from "./database.js";
import { type StopSignal, StopRequested, type WriterPriority } from "./writer-priority.js";

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
 * Rows per write transaction. Large transactions are fastest: small ones rewrite the same B-tree
 * pages again and again. Beside a running proxy a transaction holds the database's one write lock,
 * so there it is smaller (a few milliseconds) and also ends early, between two events, as soon as a
 * capture commit is waiting (WriterPriority).
 */
export const ROWS_PER_TRANSACTION_ALONE = 5000;
export const ROWS_PER_TRANSACTION_BESIDE_PROXY = 2000;
/** Field rows per INSERT statement: 4 parameters each (and 2 shared), well under SQLite's limit of 32,766. */
const FIELD_ROWS_PER_INSERT = 64;

/**
 * Writes decoded and classified events and fields, replacing earlier results for the same exchange
 * (reprocess). Strings are stored as they are, every other value as JSON, so `sqlite3` users can
 * read and LIKE-search values directly (through the `fields` view).
 */
export class EventStore {
  private readonly stmt: Record<string, Statement>;
  /** Interned field_paths and field_classes rows (migration 4), looked up by path and by rule. */
  private readonly paths = new Map<string, InternedPath[]>();
  private readonly classes = new Map<string, InternedClass[]>();
  /** field_classes ids of the classifier's shared (frozen) results, by object. */
  // Weak: a result the classifier has dropped from its cache is dropped here too.
  private classOfResult = new WeakMap<ClassifiedField, number>();
  /** Multi-row field INSERTs by row count, and the parameter array they are run with (reused). */
  private readonly insertFieldRows: Statement[] = [];
  private readonly fieldParams: unknown[] = [];
  private readonly fieldRowKeys: { event: number | bigint; start: number } = { event: 0, start: 0 };
  /** One transaction wrapper for every write (better-sqlite3 builds four functions per wrapper). */
  private readonly transaction: ReturnType<Db["transaction"]>;

  constructor(
    private readonly db: Db,
    private readonly options: { rowsPerTransaction?: number; priority?: WriterPriority; stop?: StopSignal } = {},
  ) {
    this.transaction = db.transaction((fn: () => void) => fn());
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
      deleteClassFindings: db.prepare(
        "DELETE FROM classification_findings WHERE event_id IN (SELECT id FROM events WHERE exchange_id = ?)",
      ),
      eventIds: db.prepare("SELECT idx, id FROM events WHERE exchange_id = ?"),
      deleteEventsNotIn: db.prepare("DELETE FROM events WHERE exchange_id = ? AND idx NOT IN (SELECT value FROM json_each(?))"),
      deleteFindings: db.prepare("DELETE FROM decode_findings WHERE exchange_id = ?"),
      insertEvent: db.prepare(`INSERT INTO events (exchange_id, session_id, idx, format, name, time, ikey, byte_start, byte_end,
          field_count, ms_group, group_rule, category, catalog_category, subtype, content_fields, personal_fields)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
      updateEvent: db.prepare(`UPDATE events SET exchange_id = ?, session_id = ?, idx = ?, format = ?, name = ?, time = ?, ikey = ?,
          byte_start = ?, byte_end = ?, field_count = ?, ms_group = ?, group_rule = ?, category = ?, catalog_category = ?, subtype = ?,
          content_fields = ?, personal_fields = ? WHERE id = ?`),
      selectPath: db
        .prepare(
          `SELECT id FROM field_paths WHERE path = ? AND part = ? AND type = ? AND pii_kind IS ? AND customer_content IS ?
              AND wire_type IS ? AND scrub_type IS ?`,
        )
        .pluck(),
      insertPath: db
        .prepare(
          `INSERT INTO field_paths (path, part, type, pii_kind, customer_content, wire_type, scrub_type)
           VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id`,
        )
        .pluck(),
      selectClass: db
        .prepare("SELECT id FROM field_classes WHERE rule = ? AND category = ? AND personal = ? AND confidence = ? AND reasons IS ?")
        .pluck(),
      insertClass: db
        .prepare("INSERT INTO field_classes (rule, category, personal, confidence, reasons) VALUES (?, ?, ?, ?, ?) RETURNING id")
        .pluck(),
      insertFinding: db.prepare(`INSERT INTO decode_findings (exchange_id, idx, code, severity, message, offset, length, event_index)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?)`),
      processingState: db.prepare("SELECT id, decoder, classified_with AS rules FROM exchanges WHERE id = ?"),
      markDecoded: db.prepare(`UPDATE exchanges SET decoder = ?, content_encoding = ?, upload_facts = ?, decoded_at = ?,
          classified_with = ? WHERE id = ?`),
    };
  }

  loadUpload(id: string): StoredUpload | undefined {
    const row = this.stmt.load.get(id) as
      (Omit<StoredUpload, "headers" | "clientAddress"> & { headers: string; clientAddress: string | null }) | undefined;
    return row && { ...row, headers: JSON.parse(row.headers) as RawHeaders, clientAddress: row.clientAddress ?? undefined };
  }

  /**
   * Exchange ids to process: never processed, decoded by a decoder version that is no longer
   * current, or classified with other rule packs than `rulesFingerprint`.
   */
  pendingExchanges(options: { sessionId?: number; all?: boolean } & Currency): string[] {
    const rows = this.db
      .prepare(`SELECT id, decoder, classified_with AS rules FROM exchanges WHERE (? IS NULL OR session_id = ?) ORDER BY session_id, seq`)
      .all(options.sessionId ?? null, options.sessionId ?? null) as ProcessingState[];
    return rows.filter((r) => options.all || isStale(r, options)).map((r) => r.id);
  }

  /** Whether one exchange still needs processing (see pendingExchanges); false when it is gone. */
  isPending(id: string, currency: Currency): boolean {
    const row = this.stmt.processingState.get(id) as ProcessingState | undefined;
    return row !== undefined && isStale(row, currency);
  }

  /**
   * Replaces the events of one exchange, in transactions of bounded size. An event keeps its id
   * across re-decoding (`exhaust reprocess`): the event at the same position in the same upload is
   * updated in place, so every id a stored verdict, report or link names still opens that event.
   * Rows are never deleted and re-inserted (another writer could take a freed id in between);
   * only events past the new count go. With `fresh` the caller knows the exchange has no results
   * yet (an import's new exchange): the DELETEs and the id lookup, which would find nothing, are skipped.
   */
  replaceEvents(upload: StoredUpload, p: ProcessedUpload, options: { fresh?: boolean } = {}): void {
    const s = this.stmt;
    const { decoded } = p;
    const events = decoded.events;
    const format = decoded.decoder.split("@")[0];
    const rowsPerTransaction = this.options.rowsPerTransaction ?? ROWS_PER_TRANSACTION_ALONE;
    let kept = new Map<number, number>();
    this.write(() => {
      if (!options.fresh) {
        s.deleteFieldValues.run(upload.id);
        s.deleteClassFindings.run(upload.id);
        // An event is known by its position in the upload: keep the ids of the positions decoded again.
        s.deleteEventsNotIn.run(upload.id, JSON.stringify(events.map((e) => e.index)));
        kept = new Map((s.eventIds.all(upload.id) as Array<{ idx: number; id: number }>).map((r) => [r.idx, r.id]));
        s.deleteFindings.run(upload.id);
        s.deleteRequestItems.run(upload.id);
      }
      decoded.findings.forEach((f, i) =>
        s.insertFinding.run(upload.id, i, f.code, f.severity, f.message, f.offset ?? null, f.length ?? null, f.eventIndex ?? null),
      );
      p.request.forEach((r, i) =>
        s.insertRequestItem.run(upload.id, i, r.name, r.where, r.category, r.personal, r.secret ? 1 : 0, r.rule, JSON.stringify(r.reasons)),
      );
    });
    const priority = this.options.priority;
    let next = 0;
    let done = false;
    while (!done) {
      // Whole events per transaction, up to about rowsPerTransaction rows; beside the proxy the
      // transaction also ends as soon as a capture commit is waiting for the lock. The last one
      // marks the exchange processed.
      this.write(() => {
        let rows = 0;
        do {
          if (next < events.length) {
            this.insertEvent(upload, p, format, next, kept.get(p.decoded.events[next].index));
            rows += events[next].fields.length + 1;
            next++;
          }
        } while (next < events.length && rows < rowsPerTransaction && !priority?.captureWaiting());
        if (next >= events.length) {
          s.markDecoded.run(
            decoded.decoder,
            decoded.encodings.join(", ") || null,
            JSON.stringify(decoded.facts),
            Date.now(),
            p.rulesFingerprint,
            upload.id,
          );
          done = true;
        }
      });
    }
  }

  private write(fn: () => void): void {
    const priority = this.options.priority;
    // The wait ends at once when a stop is asked; then the thread ends between two transactions
    // (the exchange stays undecoded, as after a crash).
    priority?.yieldToCapture(undefined, this.options.stop);
    if (this.options.stop?.requested()) throw new StopRequested();
    try {
      if (priority) priority.writing(() => this.transaction.immediate(fn));
      else this.transaction.immediate(fn);
    } catch (e) {
      // Ids interned in a rolled-back transaction do not exist.
      this.paths.clear();
      this.classes.clear();
      this.classOfResult = new WeakMap();
      throw e;
    }
  }

  /** Writes event `n` with its fields: into the row `keepId` when the event had one before, else a new row. */
  private insertEvent(upload: StoredUpload, p: ProcessedUpload, format: string, n: number, keepId?: number): void {
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
    const row = [
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
    ];
    let eventId: number | bigint;
    if (keepId !== undefined) {
      s.updateEvent.run(...row, keepId);
      eventId = keepId;
    } else eventId = s.insertEvent.run(...row).lastInsertRowid;
    // The event's field rows in multi-row INSERTs of up to FIELD_ROWS_PER_INSERT rows: one call
    // into SQLite per event instead of one per field (most of the pipeline's time was those calls).
    // The event id and the row's position are not bound per row: each row reads them from two
    // named parameters (@event, and @start plus the row's offset written into the statement).
    const fields = event.fields;
    const values = this.fieldParams;
    const rowKeys = this.fieldRowKeys;
    rowKeys.event = eventId;
    for (let start = 0; start < fields.length; start += FIELD_ROWS_PER_INSERT) {
      const end = Math.min(fields.length, start + FIELD_ROWS_PER_INSERT);
      values.length = 0;
      for (let i = start; i < end; i++) {
        const f = fields[i];
        const cf = c?.fields[i];
        values.push(this.pathId(f), fieldValueText(f), cf ? this.classId(cf) : null, cf?.category ?? null);
      }
      rowKeys.start = start;
      // As arguments, not as one array: better-sqlite3 reads an array's elements through V8's
      // generic property lookup, one call per value, and arguments directly.
      this.insertFields(end - start).run(rowKeys, ...values);
    }
    c?.findings.forEach((cf, i) => s.insertClassFinding.run(eventId, i, cf.code, cf.message, cf.fieldPath, cf.rule ?? null));
  }

  /** The prepared INSERT of `rows` field_values rows (made once per row count). */
  private insertFields(rows: number): Statement {
    let statement = this.insertFieldRows[rows];
    if (statement === undefined) {
      const placeholders = Array.from({ length: rows }, (_, j) => `(@event, @start + ${j}, ?, ?, ?, ?)`).join(", ");
      statement = this.db.prepare(`INSERT INTO field_values (event_id, idx, path_id, value, class_id, category) VALUES ${placeholders}`);
      this.insertFieldRows[rows] = statement;
    }
    return statement;
  }

  /** The field_paths id of a field's path, type and wire declarations, interning it on first sight. */
  private pathId(f: DecodedField): number {
    const a = f.annotations;
    const piiKind = a?.piiKind ?? null;
    const customerContent = a?.customerContent === undefined ? null : a.customerContent ? 1 : 0;
    const wireType = a?.wireType ?? null;
    const scrubType = a?.scrubType ?? null;
    // Per field: a plain loop over the path's few rows, nothing allocated when it is known.
    const known = this.paths.get(f.path);
    if (known !== undefined)
      for (const k of known)
        if (
          k.part === f.part &&
          k.type === f.type &&
          k.piiKind === piiKind &&
          k.customerContent === customerContent &&
          k.wireType === wireType &&
          k.scrubType === scrubType
        )
          return k.id;
    const row = [f.path, f.part, f.type, piiKind, customerContent, wireType, scrubType] as const;
    const id = (this.stmt.selectPath.get(...row) ?? this.stmt.insertPath.get(...row)) as number;
    return remember(this.paths, f.path, { id, part: f.part, type: f.type, piiKind, customerContent, wireType, scrubType });
  }

  /** The field_classes id of a classification outcome, interning it on first sight. */
  private classId(cf: ClassifiedField): number {
    // Most results are shared, frozen objects of the classifier (one per rule and outcome): by identity first.
    const shared = this.classOfResult.get(cf);
    if (shared !== undefined) return shared;
    const id = this.internClass(cf);
    if (Object.isFrozen(cf)) {
      this.classOfResult.set(cf, id);
    }
    return id;
  }

  private internClass(cf: ClassifiedField): number {
    const known = this.classes.get(cf.rule);
    if (known !== undefined)
      for (const k of known)
        if (
          k.category === cf.category &&
          k.personal === cf.personal &&
          k.confidence === cf.confidence &&
          sameReasons(k.reasons, cf.reasons)
        )
          return k.id;
    const row = [cf.rule, cf.category, cf.personal, cf.confidence, reasonsText(cf)] as const;
    const id = (this.stmt.selectClass.get(...row) ?? this.stmt.insertClass.get(...row)) as number;
    return remember(this.classes, cf.rule, {
      id,
      category: cf.category,
      personal: cf.personal,
      confidence: cf.confidence,
      reasons: cf.reasons,
    });
  }
}

/**
 * Keeps an interned row (field_paths, field_classes) under `key` and returns its id. A key nearly
 * always has one row: comparing its few beats building a composite key for every field.
 */
function remember<T extends { id: number }>(table: Map<string, T[]>, key: string, row: T): number {
  const known = table.get(key);
  if (known === undefined) table.set(key, [row]);
  else known.push(row);
  return row.id;
}

type ClassifiedField = ClassifiedEvent["fields"][number];

/** What processing is current: the decoder versions in use and the rule packs' fingerprint. */
export interface Currency {
  currentTags: ReadonlySet<string>;
  rulesFingerprint: string;
}

interface ProcessingState {
  id: string;
  decoder: string | null;
  rules: string | null;
}

function isStale(r: ProcessingState, c: Currency): boolean {
  return r.decoder === null || (r.decoder !== "none" && !c.currentTags.has(r.decoder)) || r.rules !== c.rulesFingerprint;
}

interface InternedPath {
  id: number;
  part: string;
  type: string;
  piiKind: number | null;
  customerContent: number | null;
  wireType: number | null;
  scrubType: number | null;
}

interface InternedClass {
  id: number;
  category: string;
  personal: string;
  confidence: number;
  reasons: readonly string[];
}

function sameReasons(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Reasons as JSON, NULL when the winning rule is the only reason (most fields): less to store. */
function reasonsText(cf: ClassifiedField): string | null {
  return cf.reasons.length === 1 && cf.reasons[0] === cf.rule ? null : JSON.stringify(cf.reasons);
}

function fieldValueText(f: Pick<DecodedField, "value">): string | null {
  const v = f.value;
  if (v === null) return null;
  if (typeof v === "string") return v;
  // What JSON.stringify writes for these, without its generic path (most non-string values).
  if (typeof v === "boolean" || (typeof v === "number" && Number.isFinite(v))) return String(v);
  return JSON.stringify(v);
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
