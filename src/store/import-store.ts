import type { Statement } from "better-sqlite3";
import { CHAIN_GENESIS, chainedFields, exchangeChainHash, sha256Hex } from "./chain.js";
import type { SessionInfo } from "./capture-store.js";
import type { Db } from "./database.js";
import type { Exchange } from "../types.js";

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

/**
 * The capture rows of imported exchanges, written synchronously inside the import's own
 * transaction: the blobs (one SHA-256 per body) and one exchanges row holding request and response
 * at once, chained like a live capture (exchangeChainHash, the same fields in the same order). The
 * proxy's CaptureStore writes an exchange in two steps (the durable point, then the completion),
 * each in a savepoint of a group commit on the next turn of the event loop; an import has every
 * part of the exchange in hand and nothing to hold a client for, so that work is left out.
 */
export class ImportCaptureWriter {
  private readonly insertBlob: Statement;
  private readonly insertExchange: Statement;
  private head = { seq: 0, hash: CHAIN_GENESIS };
  /** One parameter array, reused for every exchange row. */
  private readonly row: unknown[] = [];

  constructor(
    db: Db,
    private readonly session: SessionInfo,
  ) {
    this.insertBlob = db.prepare("INSERT OR IGNORE INTO blobs (sha256, size, data) VALUES (?, ?, ?)");
    this.insertExchange = db.prepare(`INSERT INTO exchanges (
        id, session_id, seq, scheme, method, host, port, path, http_version,
        request_headers, request_body_sha256, request_body_size, request_body_truncated, request_complete,
        mode, endpoint_id, upstream, response_status, response_headers, response_body_sha256, response_body_size,
        response_body_truncated, response_trailers, response_source, outcome, error_code, error_message,
        started_at, request_ended_at, responded_at, ended_at, prev_hash, hash)
      VALUES (${Array.from({ length: 33 }, () => "?").join(", ")})`);
    // A new session (ImportSession refuses an existing name): its chain starts at the genesis.
  }

  /**
   * Stores one exchange (the caller's transaction commits it). A throw may leave part of it written:
   * the caller then rolls the transaction back.
   */
  write(x: Exchange): void {
    const id = x.id;
    const requestSha = this.blob(x.requestBody);
    const response = x.response;
    const responseSha = response?.body ? this.blob(response.body) : null;
    const seq = this.head.seq + 1;
    const hash = exchangeChainHash(this.head.hash, chainedFields(this.session.name, seq, x, requestSha));
    const r = this.row;
    r.length = 0;
    r.push(
      id,
      this.session.id,
      seq,
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
      response?.status ?? null,
      response ? JSON.stringify(response.headers) : null,
      responseSha,
      response?.body ? response.body.length : null,
      response?.bodyTruncated ? 1 : 0,
      response?.trailers?.length ? JSON.stringify(response.trailers) : null,
      response?.source ?? null,
      x.outcome,
      x.error?.code ?? null,
      x.error?.message ?? null,
      x.startedAt,
      x.requestEndedAt ?? null,
      x.respondedAt ?? null,
      x.endedAt ?? null,
      this.head.hash,
      hash,
    );
    this.insertExchange.run(r);
    this.head = { seq, hash };
  }

  /** Chain head as committed: after a rolled-back transaction the caller puts it back. */
  get chainHead(): { seq: number; hash: string } {
    return this.head;
  }
  set chainHead(head: { seq: number; hash: string }) {
    this.head = head;
  }

  private blob(data: Uint8Array): string {
    const sha = sha256Hex(data);
    this.insertBlob.run(sha, data.length, data);
    return sha;
  }
}
