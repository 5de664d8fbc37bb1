/**
 * Where every importer puts what it reads: a new session whose exchanges are stored like live
 * captures (bodies content-addressed, the exchanges forming a hash chain), each one decoded and
 * classified by the same ExchangeProcessor the proxy's processing thread runs, right after it is
 * stored and in the same write transaction.
 */
import { randomUUID } from "node:crypto";
import { rulePacksFingerprint } from "../classify/fingerprint.js";
import { ExchangeProcessor } from "../pipeline/process.js";
import { CaptureStore, type SessionInfo } from "../store/capture-store.js";
import type { Db } from "../store/database.js";
import { EventStore, type StoredUpload } from "../store/event-store.js";
import { markSessionIncomplete } from "../store/completeness.js";
import { ImportCaptureWriter, recordImportProvenance } from "../store/import-store.js";
import { sessionByName } from "../store/sessions.js";
import { exhaustError, isExhaustError } from "../errors.js";
import type { Exchange, RawHeaders } from "../types.js";
import { TOOL_VERSION } from "../version.js";
import { ImportDecoders, importThreads, type Decoded } from "./decoders.js";

const EMPTY = Buffer.alloc(0);

/**
 * Events stored per write transaction (about 40,000 field rows): one commit per exchange rewrote the
 * same B-tree pages into the WAL over and over. A transaction also ends after this many body bytes
 * or this long, so a file of large bodies or a slow reader does not hold the write lock for long.
 */
const EVENTS_PER_IMPORT_TRANSACTION = 1000;
const BYTES_PER_IMPORT_TRANSACTION = 32 * 1024 * 1024;
const MS_PER_IMPORT_TRANSACTION = 1000;

export interface ImportSummary {
  file: string;
  format: string;
  session: string;
  exchanges: number;
  events: number;
  findings: number;
  skipped: number;
  notes: string[];
  /** Bundles: verified (against a trust anchor) or consistent-unanchored. */
  verification?: string;
}

/** What an importer knows about one request; the rest of an Exchange gets import defaults. */
export interface ImportedExchange {
  method: string;
  scheme: "http" | "https";
  host: string;
  port: number;
  path: string;
  httpVersion?: string;
  requestHeaders: RawHeaders;
  requestBody: Buffer;
  requestBodySize?: number;
  requestBodyTruncated?: boolean;
  requestComplete?: boolean;
  startedAt: number;
  requestEndedAt?: number;
  respondedAt?: number;
  endedAt?: number;
  mode?: Exchange["mode"];
  outcome?: Exchange["outcome"];
  endpointId?: string;
  upstream?: string;
  error?: Exchange["error"];
  response?: {
    status: number;
    headers: RawHeaders;
    body?: Buffer;
    bodyTruncated?: boolean;
    trailers?: RawHeaders;
    source?: "upstream" | "exhaust";
  };
}

/** Rule packs and the catalogue load once per import thread, not once per imported session. */
let processors: WeakMap<Db, ExchangeProcessor> | undefined;
function processorFor(db: Db): ExchangeProcessor {
  processors ??= new WeakMap();
  let p = processors.get(db);
  if (!p) processors.set(db, (p = new ExchangeProcessor(db)));
  return p;
}

/** The decode threads, started with the first session that uses them; stopImportDecoders ends them. */
let decoders: ImportDecoders | undefined;
let rulesFingerprint: string | undefined;

export async function stopImportDecoders(): Promise<void> {
  const d = decoders;
  decoders = undefined;
  await d?.stop();
}

/**
 * Exchanges handed to the decode threads and not stored yet: enough to keep them busy while the
 * import thread writes, few enough (with their bodies, which are copied to the threads) to keep
 * the import's memory bounded.
 */
const MAX_IN_FLIGHT = 32;
const MAX_IN_FLIGHT_BYTES = 16 * 1024 * 1024;

/**
 * One imported session. Each exchange is stored and processed as it is added, inside a write
 * transaction the session keeps open across a batch of exchanges (BEGIN ... COMMIT around the
 * importer's awaits; the processor's own transactions become savepoints in it): nothing is queued
 * in memory, no body is read back from a cold page, and the exchange row is still in the page cache
 * when the processor marks it decoded. Nothing else writes this new session meanwhile. With decode
 * threads (EXHAUST_IMPORT_THREADS, ./decoders.ts) an exchange's events are stored when its thread
 * sends them back, in file order, at most MAX_IN_FLIGHT exchanges behind its capture rows.
 */
export class ImportSession {
  private readonly store: CaptureStore;
  private readonly writer: ImportCaptureWriter;
  /** In the import thread (EXHAUST_IMPORT_THREADS=0), else undefined and the decode threads work. */
  private readonly processor: ExchangeProcessor | undefined;
  private readonly events: EventStore | undefined;
  private readonly decoders: ImportDecoders | undefined;
  /** Exchanges at the decode threads, in the order they came; stored in that order. */
  private readonly inFlight: Array<{ n: number; upload: StoredUpload; bytes: number; decoded: Promise<Decoded> }> = [];
  private inFlightBytes = 0;
  readonly session: SessionInfo;
  exchanges = 0;
  eventCount = 0;
  findings = 0;
  skipped = 0;
  readonly notes: string[] = [];
  /** The open batch: when it began, its events and body bytes, the chain head before it. */
  private batch: { since: number; events: number; bytes: number; head: { seq: number; hash: string } } | undefined;
  /** Set while an exchange's capture rows are being written: a failure then rolls the batch back. */
  private writing = false;

  constructor(
    private readonly db: Db,
    name: string,
    dbFile: string,
    private readonly provenance: { file: string; format: string; sha256: string },
  ) {
    if (sessionByName(db, name) !== undefined) throw exhaustError("EXH_IMPORT_SESSION_EXISTS", { session: name, file: dbFile });
    this.store = new CaptureStore(db);
    // Marked incomplete from the start, in the same transaction: an import killed halfway leaves a
    // session that says so (`exhaust sessions`, verify INCONCLUSIVE); finish() clears the mark.
    this.session = db.transaction(() => {
      const session = this.store.openSession(name, { toolVersion: TOOL_VERSION, options: { imported: provenance } });
      markSessionIncomplete(db, session.id, `import of ${provenance.file} did not finish (still running, or killed)`);
      return session;
    })();
    this.writer = new ImportCaptureWriter(db, this.session);
    const threads = importThreads();
    if (threads === 0) this.processor = processorFor(db);
    else {
      decoders ??= new ImportDecoders(threads);
      rulesFingerprint ??= rulePacksFingerprint();
      this.decoders = decoders;
      this.events = new EventStore(db);
    }
  }

  /** Stores one exchange, then decodes, classifies and stores its events (or hands them to a thread). */
  async add(i: ImportedExchange): Promise<void> {
    const x: Exchange = {
      id: randomUUID(),
      scheme: i.scheme,
      method: i.method,
      host: i.host,
      port: i.port,
      path: i.path,
      httpVersion: i.httpVersion ?? "1.1",
      requestHeaders: i.requestHeaders,
      requestBody: i.requestBody,
      requestBodySize: i.requestBodySize ?? i.requestBody.length,
      requestBodyTruncated: i.requestBodyTruncated ?? false,
      requestComplete: i.requestComplete ?? true,
      mode: i.mode ?? "forward",
      outcome: i.outcome ?? "ok",
      error: i.error,
      endpointId: i.endpointId,
      upstream: i.upstream,
      startedAt: i.startedAt,
      requestEndedAt: i.requestEndedAt,
      respondedAt: i.respondedAt,
      endedAt: i.endedAt ?? i.respondedAt ?? i.startedAt,
      capture: true,
      response: i.response && {
        status: i.response.status,
        headers: i.response.headers,
        body: i.response.body,
        bodyTruncated: i.response.bodyTruncated,
        trailers: i.response.trailers,
        source: i.response.source ?? "upstream",
      },
    };
    this.begin();
    this.writing = true;
    this.writer.write(x);
    this.writing = false;
    this.exchanges++;
    const bytes = x.requestBody.length + (x.response?.body?.length ?? 0);
    if (this.processor) {
      let outcome;
      try {
        outcome = this.processor.process(x.id);
      } catch (e) {
        throw this.processingFailed(e);
      }
      this.stored(outcome?.events ?? 0, outcome?.findings ?? 0, bytes);
      return;
    }
    const upload: StoredUpload = {
      id: x.id,
      sessionId: this.session.id,
      method: x.method,
      host: x.host,
      path: x.path,
      headers: x.requestHeaders,
      body: x.requestBody,
    };
    const { n, done: decoded } = this.decoders!.submit(upload);
    // A failure is met when its turn comes (storeNext); until then it is not an unhandled rejection.
    decoded.catch(() => undefined);
    // The body went to the thread as a copy; the store needs only the ids.
    this.inFlight.push({ n, upload: { ...upload, body: EMPTY }, bytes, decoded });
    this.inFlightBytes += bytes;
    while (this.inFlight.length > MAX_IN_FLIGHT || this.inFlightBytes > MAX_IN_FLIGHT_BYTES) await this.storeNext();
  }

  /** Stores the events of the oldest exchange at the decode threads. */
  private async storeNext(): Promise<void> {
    const next = this.inFlight.shift()!;
    this.inFlightBytes -= next.bytes;
    if (this.decoders!.holds(next.n)) this.decoders!.flush();
    try {
      const d = await next.decoded;
      this.begin();
      this.events!.replaceEvents(next.upload, { ...d, rulesFingerprint: rulesFingerprint! });
      this.stored(d.decoded.events.length, d.decoded.findings.length, next.bytes);
    } catch (e) {
      throw this.processingFailed(e);
    }
  }

  /** A failure to decode, classify or store events ends the import with one line, as bad input does. */
  private processingFailed(e: unknown): Error {
    if (isExhaustError(e)) return e;
    const reason = `processing an imported exchange failed: ${(e as Error)?.message ?? String(e)}`;
    return exhaustError("EXH_IMPORT_FORMAT", { file: this.provenance.file, reason }, e);
  }

  /** Opens the batch's write transaction unless one is open. */
  private begin(): void {
    if (this.batch) return;
    this.db.exec("BEGIN IMMEDIATE");
    this.batch = { since: Date.now(), events: 0, bytes: 0, head: this.writer.chainHead };
  }

  /** Counts one exchange's events into the batch, and commits the batch when it is full. */
  private stored(events: number, findings: number, bytes: number): void {
    this.eventCount += events;
    this.findings += findings;
    const batch = this.batch;
    if (!batch) return;
    batch.events += events;
    batch.bytes += bytes;
    if (
      batch.events >= EVENTS_PER_IMPORT_TRANSACTION ||
      batch.bytes >= BYTES_PER_IMPORT_TRANSACTION ||
      Date.now() - batch.since >= MS_PER_IMPORT_TRANSACTION
    )
      this.commit();
  }

  private commit(): void {
    if (!this.batch) return;
    this.batch = undefined;
    this.db.exec("COMMIT");
  }

  /** Ends the open transaction: commits what is whole, rolls back an exchange left half written. */
  private settle(): void {
    const batch = this.batch;
    if (!batch) return;
    this.batch = undefined;
    if (!this.writing && this.db.inTransaction) {
      try {
        this.db.exec("COMMIT");
        return;
      } catch {
        // Could not commit (the disk is full, say): roll back below.
      }
    }
    this.writing = false;
    if (this.db.inTransaction) this.db.exec("ROLLBACK");
    this.writer.chainHead = batch.head;
  }

  /** Commits the last batch and records provenance: the session is whole. */
  async finish(): Promise<Omit<ImportSummary, "file" | "format">> {
    while (this.inFlight.length) await this.storeNext();
    this.commit();
    recordImportProvenance(this.db, this.session.id, {
      ...this.provenance,
      exchanges: this.exchanges,
      skipped: this.skipped,
      notes: this.notes,
    });
    return {
      session: this.session.name,
      exchanges: this.exchanges,
      events: this.eventCount,
      findings: this.findings,
      skipped: this.skipped,
      notes: this.notes,
    };
  }

  /**
   * Drops the session when the import failed before anything was stored; otherwise ends it, still
   * marked incomplete with the reason.
   */
  async abandon(reason?: string): Promise<void> {
    // Exchanges still at the decode threads stay stored undecoded (a reading command decodes them).
    this.inFlight.length = 0;
    this.settle();
    this.store.discardSessionIfEmpty(this.session);
    markSessionIncomplete(this.db, this.session.id, `import of ${this.provenance.file} failed${reason ? `: ${reason}` : ""}`);
    this.store.endSession(this.session);
  }
}
