/**
 * What the HTTP engine (engine.ts) and the WebSocket relay (websocket-relay.ts) share: where a
 * request goes, which headers go with it, and the answers exhaust gives itself (local answers,
 * error answers with the status of their code in the error table, refusals at the durable point).
 */
import http from "node:http";
import { ERROR_DEFINITIONS, errorMessage, type ErrorCode } from "../errors.js";
import type { ConnectionRecord, Exchange, ExchangeOutcome, RawHeaders } from "../types.js";
import type { AddonChain, HookFailure, LocalResponse } from "./addons/addon.js";
import { formatHostPort, parseAuthority, type HostPort } from "./options.js";
import { headerPairs } from "./body.js";
import type { Route } from "./targets.js";

/** Hop-by-hop headers (RFC 9110 §7.6.1) and our own proxy's: never forwarded upstream. */
export const HOP_BY_HOP = new Set(["connection", "keep-alive", "proxy-connection", "proxy-authorization", "te", "upgrade", "expect"]);

/**
 * A WebSocket handshake keeps its own Connection/Upgrade headers; our proxy's are dropped, and so is
 * the offer of compression, so that the messages can be read (the stored headers keep it).
 */
export const NOT_RELAYED_IN_UPGRADE = new Set(["proxy-authorization", "proxy-connection", "sec-websocket-extensions"]);

/** The upstream's response head arrived: the exchange records it (the body follows). */
export function recordUpstreamResponse(x: Exchange, res: http.IncomingMessage): void {
  x.respondedAt = Date.now();
  x.response = {
    status: res.statusCode ?? 502,
    statusMessage: res.statusMessage,
    headers: headerPairs(res.rawHeaders),
    source: "upstream",
  };
}

/** The answer to an exchange not forwarded (sinkhole, block): the first addon's, else 503. */
export function localAnswer(addons: AddonChain, x: Exchange): LocalResponse {
  return (
    addons.respond(x) ?? {
      status: 503,
      headers: [["Content-Type", "text/plain"]],
      body: Buffer.from("exhaust: no addon answered this request\n"),
    }
  );
}

/** How long a client is asked to wait after a refused release (RFC 9110 Retry-After, seconds). */
const RETRY_AFTER_SECONDS = 5;

/**
 * exhaust's own answer for an error: `status`, the code in X-Exhaust-Error, Retry-After on a 503
 * (telemetry clients keep the batch and send it again), one line of text. The engine writes it,
 * or it goes as bytes (rawAnswer) on a socket. Not every error answer is this one: a malformed
 * request or a missing target gets a bare 400, a refused client 403/407 (deniedResponse).
 */
function exhaustAnswer(error: { code: string; message: string }, status: number): LocalResponse {
  const headers: RawHeaders = [
    ["Content-Type", "text/plain; charset=utf-8"],
    ["X-Exhaust-Error", error.code],
  ];
  if (status === 503) headers.push(["Retry-After", String(RETRY_AFTER_SECONDS)]);
  return { status, headers, body: Buffer.from(`exhaust: ${error.message}\n`) };
}

/** The error codes that have an HTTP status in the error table. */
export type HttpErrorCode = { [K in ErrorCode]: (typeof ERROR_DEFINITIONS)[K] extends { httpStatus: number } ? K : never }[ErrorCode];

/** The answer for an error code, with the status the code has in the error table. */
export function codeAnswer(code: HttpErrorCode, params: Record<string, string | number>): LocalResponse {
  return exhaustAnswer(errorInfo(code, params), ERROR_DEFINITIONS[code].httpStatus);
}

/** 503 with Retry-After and the error code. */
export function retryLaterAnswer(error: { code: string; message: string }): LocalResponse {
  return exhaustAnswer(error, 503);
}

/**
 * The answer when a required addon failed at the durable point (the capture could not be
 * committed): retry later.
 */
export function refusal(x: Exchange, failure: HookFailure): LocalResponse {
  x.error = { code: failure.code, message: failure.message };
  const answer = retryLaterAnswer(x.error);
  x.response = { status: answer.status, headers: answer.headers, body: answer.body, source: "exhaust" };
  return answer;
}

export function writeLocal(res: http.ServerResponse, answer: LocalResponse): void {
  if (res.headersSent || res.destroyed) return;
  res.writeHead(answer.status, answer.headers.flat());
  res.end(answer.body);
}

/** An error's code and message as an exchange records them: no Error object (its stack costs more than the rest). */
export function errorInfo(code: ErrorCode, params: Record<string, string | number>): { code: string; message: string } {
  return { code, message: errorMessage(code, params) };
}

export function classifyUpstreamError(err: Error & { code?: string }, timedOut: boolean, target: string, ms: number): UpstreamFailure {
  const failure = (outcome: ExchangeOutcome, code: UpstreamErrorCode, params: Record<string, string | number>): UpstreamFailure => ({
    outcome,
    status: ERROR_DEFINITIONS[code].httpStatus,
    error: errorInfo(code, params),
  });
  if (timedOut || err?.code === "ETIMEDOUT") return failure("upstream-timeout", "EXH_UPSTREAM_TIMEOUT", { target, ms });
  if (err?.code === "ECONNREFUSED") return failure("upstream-refused", "EXH_UPSTREAM_REFUSED", { target });
  if (err?.code === "ECONNRESET" || err?.code === "EPIPE" || /socket hang up/.test(err?.message ?? "")) {
    return failure("upstream-reset", "EXH_UPSTREAM_RESET", { target });
  }
  const reason = err?.code ?? err?.message?.split("\n")[0] ?? "unknown error";
  return failure("upstream-failed", "EXH_UPSTREAM_FAILED", { target, reason });
}

export type UpstreamErrorCode = "EXH_UPSTREAM_TIMEOUT" | "EXH_UPSTREAM_REFUSED" | "EXH_UPSTREAM_RESET" | "EXH_UPSTREAM_FAILED";

/** An upstream that failed before answering: the outcome, the status its code has in the error table, the error. */
export interface UpstreamFailure {
  outcome: ExchangeOutcome;
  status: number;
  error: { code: string; message: string };
}

/** The answer exhaust gives for an upstream that failed: its status, its code in X-Exhaust-Error, one line. */
export function errorAnswer(failure: UpstreamFailure): LocalResponse {
  return exhaustAnswer(failure.error, failure.status);
}

/**
 * Where a forwarded request goes: the upstream an addon set (--map-host), else the address the
 * target check resolved and approved for this connection (no second lookup: DNS rebinding), else
 * the host the client addressed.
 */
export function upstreamTarget(x: Exchange, route: Route | undefined): HostPort {
  return x.upstreamTarget ?? route?.dial ?? { host: x.host, port: x.port };
}

/** The request headers that go upstream, as a flat name/value array in the client's order and case. */
export function forwardedHeaders(headers: RawHeaders, dropped: ReadonlySet<string>): string[] {
  const out: string[] = [];
  for (const [name, value] of headers) {
    if (!dropped.has(name.toLowerCase())) out.push(name, value);
  }
  return out;
}

/** The TLS server name for the upstream: the host, unless it is an IP address (no SNI then). */
export function sniName(host: string): string | undefined {
  return /^[\d.]+$|:/.test(host) ? undefined : host;
}

/** A status line and headers as bytes, in the given order and case. */
export function rawResponseHead(status: number, headers: RawHeaders, message = http.STATUS_CODES[status] ?? ""): string {
  return `HTTP/1.1 ${status} ${message}\r\n${headers.map(([n, v]) => `${n}: ${v}\r\n`).join("")}\r\n`;
}

/** A whole answer as bytes for a raw socket, with its length, closing the connection. */
export function rawAnswer(answer: LocalResponse): Buffer {
  const head = rawResponseHead(answer.status, [...answer.headers, ["Content-Length", String(answer.body.length)], ["Connection", "close"]]);
  return Buffer.concat([Buffer.from(head), answer.body]);
}

/**
 * On a connection bound to a CONNECT the target is authoritative; a Host header naming another
 * host is recorded on the exchange (and the connection) as a finding, never followed.
 */
export function noteHostMismatch(x: Exchange, conn: ConnectionRecord | undefined, hostHeader: string | undefined, route: Route): void {
  if (!hostHeader) return;
  // Read as the target policy reads a Host (parseAuthority); one without a port names the host
  // only (plain HTTP inside a CONNECT to :443 is common).
  const hp = parseAuthority(hostHeader.trim(), -1);
  const named = hp ? { host: hp.host.toLowerCase(), port: hp.port === -1 ? undefined : hp.port } : { host: hostHeader, port: -1 };
  if (named.host === route.host && (named.port === undefined || named.port === route.port)) return;
  const target = formatHostPort(route);
  x.error ??= errorInfo("EXH_HOST_MISMATCH", { host: hostHeader, target });
  if (conn) conn.error ??= `Host header ${hostHeader} differs from the CONNECT target ${target}`;
}
