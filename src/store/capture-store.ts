import type { Statement } from "better-sqlite3";
import { CHAIN_GENESIS, exchangeChainHash, sha256Hex } from "./chain.js";
import type { ConnectionRecord, Exchange } from "../types.js";
import type { Db } from "./database.js";
import type { WriterPriority } from "./writer-priority.js";

export interface SessionInfo {
  id: number;
  name: string;
}

/** What is added to a stored exchange when it ends (everything after the durable point). */
export interface ExchangeCompletion {
  id: string;
  responseBody?: Uint8Array;
  responseBodyTruncated: boolean;
  trailers?: Exchange["requestHeaders"];
  endedAt: number;
  outcome: Exchange["outcome"];
  error?: Exchange["error"];
}

export function completionOf(x: Exchange): ExchangeCompletion {
  return {
    id: x.id,
    responseBody: x.response?.body,
    responseBodyTruncated: x.response?.bodyTruncated ?? false,
    trailers: x.response?.trailers,
    endedAt: x.endedAt ?? Date.now(),
    outcome: x.outcome,
    error: x.error,
  };
}

/**
 * The fields of an exchange the durable point stores as they are. The type (ExchangeHead) is made
 * from this list, and headOf's copy must name every one of them (a compile error otherwise), so a
 * field added here cannot be dropped on the way.
 */
type HeadField =
  | "id"
  | "connectionId"
  | "scheme"
  | "method"
  | "host"
  | "port"
  | "path"
  | "httpVersion"
  | "requestHeaders"
  | "requestBodySize"
  | "requestBodyTruncated"
  | "requestComplete"
  | "mode"
  | "endpointId"
  | "upstream"
  | "outcome"
  | "error"
  | "startedAt"
  | "requestEndedAt"
  | "respondedAt";

/**
 * What the durable point stores of an exchange: the request and the response head (the body and
 * the outcome's last word come with the completion). A live Exchange is one; the capture writer
 * thread receives exactly this (capture-writer.ts).
 */
export type ExchangeHead = Pick<Exchange, HeadField> & {
  requestBody: Uint8Array;
  response?: Pick<NonNullable<Exchange["response"]>, "status" | "headers" | "source">;
};

/**
 * An exchange's head, and nothing of the live exchange beside it (sockets, targets, response body).
 * One object literal: copied key by key in a loop, the head had more properties than V8 keeps fast
 * for keyed stores and became a dictionary, which postMessage serializes on its slow path (and
 * every `x[k]` was a megamorphic load) on the proxy's loop, once per exchange.
 */
export function headOf(x: ExchangeHead | Exchange): ExchangeHead {
  const r = x.response;
  const head: { [K in HeadField]-?: Exchange[K] } & Pick<ExchangeHead, "requestBody" | "response"> = {
    id: x.id,
    connectionId: x.connectionId,
    scheme: x.scheme,
    method: x.method,
    host: x.host,
    port: x.port,
    path: x.path,
    httpVersion: x.httpVersion,
    requestHeaders: x.requestHeaders,
    requestBodySize: x.requestBodySize,
    requestBodyTruncated: x.requestBodyTruncated,
    requestComplete: x.requestComplete,
    mode: x.mode,
    endpointId: x.endpointId,
    upstream: x.upstream,
    outcome: x.outcome,
    error: x.error,
    startedAt: x.startedAt,
    requestEndedAt: x.requestEndedAt,
    respondedAt: x.respondedAt,
    requestBody: x.requestBody,
    response: r ? { status: r.status, headers: r.headers, source: r.source } : undefined,
  };
  return head;
}

/** The writes the capture addon makes; served in-process (CaptureStore) or by the capture writer thread. */
export interface CaptureSink {
  commitExchange(session: SessionInfo, x: ExchangeHead): Promise<void>;
  completeExchange(c: ExchangeCompletion): Promise<void>;
  openConnection(session: SessionInfo, c: ConnectionRecord): Promise<void>;
  closeConnection(c: ConnectionRecord): Promise<void>;
  flush(): Promise<void>;
}

type Write = () => void;

interface QueuedWrite {
  write: Write;
  resolve: () => void;
  reject: (e: unknown) => void;
}

export interface CaptureStoreOptions {
  /**
   * Asked before every commit: an error means the store must not be written (its file was deleted
   * or replaced). The batch and everything after it are rejected with that error.
   */
  guard?: () => Error | undefined;
}

/**
 * How long commits may find the lock held by another connection (an outside client's open write
 * transaction) before they are given up and rejected, so that clients are refused rather than
 * kept waiting without end: 5 s, SQLite's usual busy timeout.
 */
const BUSY_GIVE_UP_MS = 5000;

/**
 * The capture writer: every write is queued and the queue is committed in one transaction on the
 * next turn of the event loop (group commit). The promise of a write resolves only after its
 * transaction committed, which is what lets the proxy hold a response until the upload is durable.
 */
export class CaptureStore implements CaptureSink {
  private queue: QueuedWrite[] = [];
  private flushScheduled = false;
  private readonly lastHash = new Map<number, { seq: number; hash: string }>();
  private readonly stmt: Record<string, Statement>;
  private closed = false;
  /** Set once the guard refused: the store is gone for good. */
  private gone: Error | undefined;
  /** Since when commits find the lock taken (undefined: the last attempt got it). */
  private busySince: number | undefined;
  /**
   * The group commit and the savepoint around each write, built once: better-sqlite3 makes four
   * functions per `db.transaction` call, which cost a tenth of the commit when made per write.
   */
  private readonly commitBatch: { immediate(batch: QueuedWrite[], failures: Map<number, unknown>): void };
  /** The same without savepoints: tried first, since almost every batch has no bad row. */
  private readonly commitPlain: { immediate(batch: QueuedWrite[]): void };
  private readonly savepoint: (write: Write) => void;

  constructor(
    private readonly db: Db,
    /** Raised while commits are queued, so background writers leave the lock to the proxy. */
    private readonly priority?: WriterPriority,
    private readonly options: CaptureStoreOptions = {},
  ) {
    // Never sleep in SQLite's busy handler on the proxy's thread: a busy lock is retried from the
    // event loop (runQueue).
    if (priority) db.pragma("busy_timeout = 0");
    this.stmt = {
      insertBlob: db.prepare("INSERT OR IGNORE INTO blobs (sha256, size, data) VALUES (?, ?, ?)"),
      insertExchange: db.prepare(`INSERT INTO exchanges (
          id, session_id, seq, connection_id, scheme, method, host, port, path, http_version,
          request_headers, request_body_sha256, request_body_size, request_body_truncated, request_complete,
          mode, endpoint_id, upstream, response_status, response_headers, response_source, outcome,
          error_code, error_message, started_at, request_ended_at, responded_at, prev_hash, hash)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
      completeExchange: db.prepare(`UPDATE exchanges SET response_body_sha256 = @sha, response_body_size = @size,
          response_body_truncated = @truncated, response_trailers = @trailers, ended_at = @ended_at, outcome = @outcome,
          error_code = COALESCE(error_code, @error_code), error_message = COALESCE(error_message, @error_message)
        WHERE id = @id`),
      openConnection: db.prepare(`INSERT INTO connections (id, session_id, client_address, client_port, host, port,
          sni, outcome, upstream, started_at) VALUES (@id, @session_id, @client_address, @client_port, @host, @port,
          @sni, @outcome, @upstream, @started_at)`),
      closeConnection: db.prepare(`UPDATE connections SET outcome = @outcome, sni = @sni, upstream = @upstream,
          bytes_from_client = @bytes_from_client, bytes_to_client = @bytes_to_client, exchanges = @exchanges,
          ended_at = @ended_at, error = @error WHERE id = @id`),
      lastHash: db.prepare("SELECT seq, hash FROM exchanges WHERE session_id = ? ORDER BY seq DESC LIMIT 1"),
      sessionByName: db.prepare("SELECT id, name FROM sessions WHERE name = ?"),
      insertSession: db.prepare(`INSERT INTO sessions (name, started_at, tool_version, ca_fingerprint, options_json)
        VALUES (?, ?, ?, ?, ?)`),
      endSession: db.prepare("UPDATE sessions SET ended_at = ? WHERE id = ?"),
    };
    this.savepoint = db.transaction((write: Write) => write());
    this.commitPlain = db.transaction((batch: QueuedWrite[]) => {
      for (const item of batch) item.write();
    });
    this.commitBatch = db.transaction((batch: QueuedWrite[], failures: Map<number, unknown>) => {
      for (let i = 0; i < batch.length; i++) {
        // One bad row must not take the batch down: a savepoint per write.
        try {
          this.savepoint(batch[i].write);
        } catch (e) {
          failures.set(i, e);
        }
      }
    });
  }

  /** Opens the named session, or continues it (and its hash chain) when it exists. */
  openSession(name: string, meta: { toolVersion: string; caFingerprint?: string; options?: object }): SessionInfo {
    const existing = this.stmt.sessionByName.get(name) as SessionInfo | undefined;
    if (existing) {
      this.db.prepare("UPDATE sessions SET ended_at = NULL WHERE id = ?").run(existing.id);
      return existing;
    }
    const info = this.stmt.insertSession.run(
      name,
      Date.now(),
      meta.toolVersion,
      meta.caFingerprint ?? null,
      JSON.stringify(meta.options ?? {}),
    );
    return { id: Number(info.lastInsertRowid), name };
  }

  /** Removes a session that never captured anything (the proxy failed to start). */
  discardSessionIfEmpty(session: SessionInfo): void {
    this.db
      .prepare(
        `DELETE FROM sessions WHERE id = ? AND NOT EXISTS (SELECT 1 FROM exchanges WHERE session_id = ?)
           AND NOT EXISTS (SELECT 1 FROM connections WHERE session_id = ?)`,
      )
      .run(session.id, session.id, session.id);
  }

  endSession(session: SessionInfo): void {
    this.stmt.endSession.run(Date.now(), session.id);
  }

  /** Stores the exchange as captured so far (request, and the response head if any): the durable point. */
  commitExchange(session: SessionInfo, x: ExchangeHead): Promise<void> {
    return this.enqueue(() => {
      const requestSha = this.putBlob(x.requestBody);
      const prev = this.chainHead(session.id);
      const seq = prev.seq + 1;
      const hash = exchangeChainHash(prev.hash, {
        session: session.name,
        seq,
        id: x.id,
        startedAt: x.startedAt,
        method: x.method,
        scheme: x.scheme,
        host: x.host,
        port: x.port,
        path: x.path,
        requestHeaders: x.requestHeaders,
        requestBodySha256: requestSha,
        requestBodySize: x.requestBodySize,
        responseStatus: x.response?.status ?? null,
      });
      // Bound by position, in the column order above (named parameters cost a lookup each).
      this.stmt.insertExchange.run(
        x.id,
        session.id,
        seq,
        x.connectionId ?? null,
        x.scheme,
        x.method,
        x.host,
        x.port,
        x.path,
        x.httpVersion,
        JSON.stringify(x.requestHeaders),
        requestSha,
        x.requestBodySize,
        x.requestBodyTruncated ? 1 : 0,
        x.requestComplete ? 1 : 0,
        x.mode,
        x.endpointId ?? null,
        x.upstream ?? null,
        x.response?.status ?? null,
        x.response ? JSON.stringify(x.response.headers) : null,
        x.response?.source ?? null,
        x.outcome,
        x.error?.code ?? null,
        x.error?.message ?? null,
        x.startedAt,
        x.requestEndedAt ?? null,
        x.respondedAt ?? null,
        prev.hash,
        hash,
      );
      this.lastHash.set(session.id, { seq, hash });
    });
  }

  /** Adds what came after the durable point: the response body, trailers, the final outcome. */
  completeExchange(c: ExchangeCompletion): Promise<void> {
    return this.enqueue(() => {
      const body = c.responseBody;
      this.stmt.completeExchange.run({
        id: c.id,
        sha: body ? this.putBlob(body) : null,
        size: body ? body.length : null,
        truncated: c.responseBodyTruncated ? 1 : 0,
        trailers: c.trailers?.length ? JSON.stringify(c.trailers) : null,
        ended_at: c.endedAt,
        outcome: c.outcome,
        error_code: c.error?.code ?? null,
        error_message: c.error?.message ?? null,
      });
    });
  }

  openConnection(session: SessionInfo, c: ConnectionRecord): Promise<void> {
    return this.enqueue(() => {
      this.stmt.openConnection.run({
        id: c.id,
        session_id: session.id,
        client_address: c.clientAddress,
        client_port: c.clientPort,
        host: c.host,
        port: c.port,
        sni: c.sni ?? null,
        outcome: c.outcome,
        upstream: c.upstream ?? null,
        started_at: c.startedAt,
      });
    });
  }

  closeConnection(c: ConnectionRecord): Promise<void> {
    return this.enqueue(() => {
      this.stmt.closeConnection.run({
        id: c.id,
        outcome: c.outcome,
        sni: c.sni ?? null,
        upstream: c.upstream ?? null,
        bytes_from_client: c.bytesFromClient,
        bytes_to_client: c.bytesToClient,
        exchanges: c.exchanges,
        ended_at: c.endedAt ?? Date.now(),
        error: c.error ?? null,
      });
    });
  }

  /** Any write, committed with the capture's group commit (the session owner's heartbeat). */
  write(write: Write): Promise<void> {
    return this.enqueue(write);
  }

  /** Commits whatever is queued now; resolves when the queue is empty. */
  async flush(): Promise<void> {
    if (this.queue.length === 0) return;
    await this.enqueue(() => {});
  }

  /** Commits what is queued; afterwards the connection may wait for locks again (shutdown writes). */
  async close(): Promise<void> {
    // What could not be committed was refused to its client already; closing goes on.
    await this.flush().catch(() => {});
    this.closed = true;
    if (this.priority) this.db.pragma("busy_timeout = 5000");
  }

  private putBlob(data: Uint8Array): string {
    const sha = sha256Hex(data);
    this.stmt.insertBlob.run(sha, data.length, data);
    return sha;
  }

  private chainHead(sessionId: number): { seq: number; hash: string } {
    let head = this.lastHash.get(sessionId);
    if (!head) {
      const row = this.stmt.lastHash.get(sessionId) as { seq: number; hash: string } | undefined;
      head = row ?? { seq: 0, hash: CHAIN_GENESIS };
      this.lastHash.set(sessionId, head);
    }
    return head;
  }

  private enqueue(write: Write): Promise<void> {
    if (this.gone) return Promise.reject(this.gone);
    if (this.closed) return Promise.reject(new Error("capture store is closed"));
    return new Promise((resolve, reject) => {
      this.queue.push({ write, resolve, reject });
      if (!this.flushScheduled) {
        this.flushScheduled = true;
        this.priority?.raise();
        setImmediate(() => this.runQueue());
      }
    });
  }

  private runQueue(): void {
    this.flushScheduled = false;
    const gone = this.gone ?? this.options.guard?.();
    if (gone) {
      this.gone = gone;
      this.rejectQueued(gone);
      return;
    }
    if (this.commitQueue() === "busy") {
      const now = Date.now();
      this.busySince ??= now;
      const waited = now - this.busySince;
      if (waited >= BUSY_GIVE_UP_MS) {
        this.busySince = undefined;
        this.rejectQueued(new Error(`database is locked: another connection has held the write lock for ${waited} ms`));
        return;
      }
      // Another connection (the processing thread) holds the write lock: try again as soon as it
      // lets go, instead of sleeping in SQLite's busy handler with the event loop stopped.
      this.flushScheduled = true;
      if (this.priority) void this.priority.backgroundDone().then(() => this.runQueue());
      else setTimeout(() => this.runQueue(), 1);
      return;
    }
    this.busySince = undefined;
    if (this.queue.length === 0) this.priority?.lower();
  }

  private rejectQueued(e: Error): void {
    const batch = this.queue;
    this.queue = [];
    // What was not committed does not advance the chain: read the head again next time.
    this.lastHash.clear();
    for (const item of batch) item.reject(e);
    this.priority?.lower();
  }

  private commitQueue(): "done" | "busy" {
    const batch = this.queue;
    this.queue = [];
    const failures = new Map<number, unknown>();
    // The chain heads as they were: a batch that does not commit must not advance them.
    const heads = new Map(this.lastHash);
    const restoreHeads = () => {
      this.lastHash.clear();
      for (const [k, v] of heads) this.lastHash.set(k, v);
    };
    try {
      // IMMEDIATE takes the write lock at BEGIN, so "busy" can only happen before anything is written.
      try {
        this.commitPlain.immediate(batch);
      } catch (e) {
        if ((e as { code?: string }).code === "SQLITE_BUSY") throw e;
        // A write (or the commit) failed and everything was rolled back: again, with a savepoint
        // per write, so that one bad row does not take the batch down. Every write is a statement
        // run again from the same state (the chain heads put back).
        restoreHeads();
        this.commitBatch.immediate(batch, failures);
      }
    } catch (e) {
      if ((e as { code?: string }).code === "SQLITE_BUSY") {
        restoreHeads();
        this.queue = [...batch, ...this.queue];
        return "busy";
      }
      // The commit itself failed: nothing in the batch is durable, and the heads are read again.
      this.lastHash.clear();
      for (const item of batch) item.reject(e);
      return "done";
    }
    batch.forEach((item, i) => (failures.has(i) ? item.reject(failures.get(i)) : item.resolve()));
    return "done";
  }
}
