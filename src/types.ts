/**
 * The plain data the pipeline stages hand each other. Nothing here knows about sockets, SQLite or
 * the proxy engine: proxy → capture → decode → classify → store → use.
 */

/** Header pairs in wire order and case, as the client sent them. */
export type RawHeaders = Array<[name: string, value: string]>;

export type ProxyMode = "forward" | "sinkhole" | "block";

/** How a connection through the proxy ended up being handled. */
export type ConnectionOutcome =
  | "intercepted" // TLS terminated with our leaf; exchanges decrypted
  | "tunnelled" // bytes relayed untouched
  | "plain-http" // an absolute-URI request on the proxy port
  | "client-rejected-certificate" // the client refused our leaf: pinning or an untrusted CA
  | "tls-failed" // TLS handshake failed for another reason
  | "upstream-failed" // a tunnel whose upstream could not be reached
  | "denied" // proxy authentication or address allowlist refused it
  | "closed-by-policy" // a pinned host in sinkhole/block mode: tunnelling it would let data out
  | "refused-private"; // target in private address space, the proxy itself or the UI (docs/containment.md)

export interface ConnectionRecord {
  id: string;
  sessionId?: number;
  clientAddress: string;
  clientPort: number;
  host: string;
  port: number;
  /** SNI the client offered, when it differs from nothing. */
  sni?: string;
  outcome: ConnectionOutcome;
  /** Bytes on the client side of the proxy: received from the client, sent to it. */
  bytesFromClient: number;
  bytesToClient: number;
  startedAt: number;
  endedAt?: number;
  /** Upstream the bytes went to when it differs from host:port (--map-host). */
  upstream?: string;
  error?: string;
  exchanges: number;
  /** In memory only: what the handshake said about pinning (pinning addon, docs/containment.md). */
  pinEvidence?: "certificate-alert" | "abandoned-handshake" | "quiet-close";
}

export type ExchangeOutcome =
  | "ok"
  | "sinkholed"
  | "blocked"
  | "upstream-refused"
  | "upstream-reset"
  | "upstream-timeout"
  | "upstream-failed"
  | "client-aborted"
  | "refused-busy"; // the proxy was at a limit (--max-inflight): 503 with Retry-After, nothing relayed

export interface ExchangeResponse {
  status: number;
  statusMessage?: string;
  headers: RawHeaders;
  body?: Buffer;
  bodyTruncated?: boolean;
  trailers?: RawHeaders;
  /** Who produced the answer: the real upstream, or exhaust itself (sinkhole, block, error). */
  source: "upstream" | "exhaust";
}

/** The request as the client sent it: what a live Exchange and a stored exchange record share. */
export interface ExchangeRequestFacts {
  id: string;
  method: string;
  /** Host the client addressed (Host header / CONNECT target), not the mapped upstream. */
  host: string;
  port: number;
  /** Path and query as requested. */
  path: string;
  httpVersion: string;
  requestHeaders: RawHeaders;
  /** Total request body bytes seen; larger than the stored body when the capture cap cut it. */
  requestBodySize: number;
  requestBodyTruncated: boolean;
  requestComplete: boolean;
}

export interface Exchange extends ExchangeRequestFacts {
  connectionId?: string;
  /** The client's address (its connection's), for the console; not stored with the exchange. */
  clientAddress?: string;
  scheme: "http" | "https";
  requestBody: Buffer;
  mode: ProxyMode;
  /** Upstream actually contacted, when --map-host or --upstream changed it. */
  upstream?: string;
  /**
   * Where an addon (host-map) sends the request instead of host:port; the engine dials it and
   * records it as `upstream`. Not stored.
   */
  upstreamTarget?: { host: string; port: number };
  response?: ExchangeResponse;
  outcome: ExchangeOutcome;
  error?: { code: string; message: string };
  startedAt: number;
  /** When the request body ended (or was cut off). */
  requestEndedAt?: number;
  respondedAt?: number;
  endedAt?: number;
  /** Catalogue entry that matched the host, if any. */
  endpointId?: string;
  /** Whether exhaust keeps this exchange: decrypted traffic always, plain HTTP per intercept policy. */
  capture: boolean;
}
