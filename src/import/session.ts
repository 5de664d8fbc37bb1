/**
 * Where every importer puts what it reads: a new session created through the capture store (so
 * bodies are content-addressed and the exchanges form a hash chain like live captures), then
 * decoded and classified by the same ExchangeProcessor the proxy's processing thread runs.
 */
import { randomUUID } from "node:crypto";
import { ExchangeProcessor } from "../pipeline/process.js";
import type { StoredUpload } from "../store/event-store.js";
import { CaptureStore, completionOf, type SessionInfo } from "../store/capture-store.js";
import type { Db } from "../store/database.js";
import { markSessionIncomplete } from "../store/completeness.js";
import { recordImportProvenance } from "../store/import-store.js";
import { sessionByName } from "../store/sessions.js";
import { checkpointBetweenWrites } from "../store/wal.js";
import { exhaustError } from "../errors.js";
import type { Exchange, RawHeaders } from "../types.js";
import { TOOL_VERSION } from "../version.js";

/** Commits queued before the importer waits for them: bounds memory while keeping transactions large. */
const MAX_PENDING_COMMITS = 200;
/** Request bytes held (committed, not yet decoded) before the importer commits and processes them. */
const MAX_HELD_BYTES = 16 * 1024 * 1024;
/** Batches (commit + processing) between two checkpoints of the import's own that let the WAL start over. */
const DRAINS_PER_WAL_RESTART = 16;
/** Events decoded and stored per write transaction (about 40,000 field rows). */
const EVENTS_PER_IMPORT_TRANSACTION = 1000;

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

export class ImportSession {
  private readonly store: CaptureStore;
  readonly session: SessionInfo;
  private pending: Array<Promise<void>> = [];
  /** The requests of the queued exchanges, as loadUpload would read them back: processed from memory once committed. */
  private held: StoredUpload[] = [];
  private heldBytes = 0;
  private readonly processor: ExchangeProcessor;
  private readonly processBatch: { immediate(uploads: StoredUpload[], from: number): number };
  private events = 0;
  private findings = 0;
  private drains = 0;
  exchanges = 0;
  skipped = 0;
  readonly notes: string[] = [];

  constructor(
    private readonly db: Db,
    name: string,
    dbFile: string,
    private readonly provenance: { file: string; format: string; sha256: string },
  ) {
    if (sessionByName(db, name) !== undefined) throw exhaustError("EXH_IMPORT_SESSION_EXISTS", { session: name, file: dbFile });
    // Each exchange's writes are a savepoint inside the batch's transaction (below). A savepoint
    // journals the first change of every page it touches, and past 64 KB SQLite moved that journal
    // to a temporary file: about 37 pages of 4 KB, two pwrite calls each, per exchange of 10
    // events (390,000 of the 540,000 write calls of a 32 MB import). In memory it is a copy.
    db.pragma("temp_store = MEMORY");
    this.processor = new ExchangeProcessor(db);
    this.store = new CaptureStore(db);
    // Marked incomplete from the start, in the same transaction: an import killed halfway leaves a
    // session that says so (`exhaust sessions`, verify INCONCLUSIVE); finish() clears the mark.
    this.session = db.transaction(() => {
      const session = this.store.openSession(name, { toolVersion: TOOL_VERSION, options: { imported: provenance } });
      markSessionIncomplete(db, session.id, `import of ${provenance.file} did not finish (still running, or killed)`);
      return session;
    })();
    // Several exchanges per write transaction (their own transactions become savepoints): one
    // commit per exchange rewrote the same B-tree pages into the WAL over and over. Nothing else
    // writes this new session meanwhile. Returns where the next transaction starts.
    this.processBatch = db.transaction((uploads: StoredUpload[], from: number) => {
      const until = this.events + EVENTS_PER_IMPORT_TRANSACTION;
      let n = from;
      while (n < uploads.length && this.events < until) {
        const outcome = this.processor.processUpload(uploads[n++], { fresh: true });
        this.events += outcome.events;
        this.findings += outcome.findings;
      }
      return n;
    });
  }

  /** Queues one exchange; resolves at once unless enough commits are queued that it waits for them. */
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
    this.exchanges++;
    this.pending.push(this.store.commitExchange(this.session, x), this.store.completeExchange(completionOf(x)));
    this.held.push({
      id: x.id,
      sessionId: this.session.id,
      method: x.method,
      host: x.host,
      path: x.path,
      headers: x.requestHeaders,
      body: x.requestBody,
    });
    this.heldBytes += x.requestBody.length;
    if (this.pending.length >= MAX_PENDING_COMMITS || this.heldBytes >= MAX_HELD_BYTES) await this.drain();
  }

  /**
   * Waits for the queued commits, then decodes, classifies and stores those exchanges from the
   * bodies still in memory (an exchange is processed only once its capture rows are committed).
   */
  private async drain(): Promise<void> {
    const batch = this.pending;
    this.pending = [];
    await Promise.all(batch);
    const uploads = this.held;
    this.held = [];
    this.heldBytes = 0;
    let n = 0;
    while (n < uploads.length) n = this.processBatch.immediate(uploads, n);
    // The WAL starts over only when a write begins after a checkpoint took in every frame, which the
    // checkpoint thread never sees while this thread writes without pause: it grew past the size of
    // the database (several GB for a 1 GB HAR). A checkpoint here, between two writes, takes in the
    // few frames the thread has not yet, and the next write starts the WAL over.
    if (++this.drains % DRAINS_PER_WAL_RESTART === 0) checkpointBetweenWrites(this.db);
  }

  /** Commits and processes what is still queued, records provenance. */
  async finish(): Promise<Omit<ImportSummary, "file" | "format">> {
    await this.drain();
    await this.store.close();
    recordImportProvenance(this.db, this.session.id, {
      ...this.provenance,
      exchanges: this.exchanges,
      skipped: this.skipped,
      notes: this.notes,
    });
    return {
      session: this.session.name,
      exchanges: this.exchanges,
      events: this.events,
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
    await Promise.allSettled(this.pending);
    await this.store.close().catch(() => undefined);
    this.store.discardSessionIfEmpty(this.session);
    markSessionIncomplete(this.db, this.session.id, `import of ${this.provenance.file} failed${reason ? `: ${reason}` : ""}`);
    this.store.endSession(this.session);
  }
}
