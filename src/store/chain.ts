import { hash } from "node:crypto";
import type { RawHeaders } from "../types.js";

/** prev_hash of the first exchange of every session. */
export const CHAIN_GENESIS = "0".repeat(64);

/**
 * What the chain commits to: the request as the client sent it and the status it was given. The
 * outcome is left out on purpose: an upstream can still fail after the status was released, and
 * the stored outcome is corrected then without breaking the chain.
 */
export interface ChainedExchange {
  session: string;
  seq: number;
  id: string;
  startedAt: number;
  method: string;
  scheme: string;
  host: string;
  port: number;
  path: string;
  requestHeaders: RawHeaders;
  requestBodySha256: string;
  requestBodySize: number;
  responseStatus: number | null;
}

/**
 * hash = SHA-256(prev_hash ‖ "\n" ‖ JSON of the fields above in this fixed order). Anyone can
 * recompute it from the exchanges table (or an export) without exhaust's code: the order of the
 * JSON array is the specification.
 */
export function exchangeChainHash(prevHash: string, x: ChainedExchange): string {
  const canonical = JSON.stringify([
    x.session,
    x.seq,
    x.id,
    x.startedAt,
    x.method,
    x.scheme,
    x.host,
    x.port,
    x.path,
    x.requestHeaders,
    x.requestBodySha256,
    x.requestBodySize,
    x.responseStatus,
  ]);
  // One-shot crypto.hash (Node >= 20.12): no Hash object per call on the proxy's hot path.
  return hash("sha256", `${prevHash}\n${canonical}`, "hex");
}

export function sha256Hex(data: Uint8Array): string {
  return hash("sha256", data, "hex");
}
