import { exchangeChainHash } from "../../src/store/chain.js";

/** The columns of an exchanges row that the hash chain commits to. */
export interface ChainedRow {
  id: string;
  seq: number;
  started_at: number;
  method: string;
  scheme: string;
  host: string;
  port: number;
  path: string;
  request_headers: string;
  request_body_sha256: string;
  request_body_size: number;
  response_status: number | null;
}

/** Recomputes a stored exchange's hash from its row and the previous hash, as any auditor would. */
export function rowChainHash(session: string, prev: string, r: ChainedRow): string {
  return exchangeChainHash(prev, {
    session,
    seq: r.seq,
    id: r.id,
    startedAt: r.started_at,
    method: r.method,
    scheme: r.scheme,
    host: r.host,
    port: r.port,
    path: r.path,
    requestHeaders: JSON.parse(r.request_headers),
    requestBodySha256: r.request_body_sha256,
    requestBodySize: r.request_body_size,
    responseStatus: r.response_status,
  });
}
