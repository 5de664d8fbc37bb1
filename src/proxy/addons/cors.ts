/**
 * CORS for answers exhaust gives itself (sinkhole, block). Browser SDKs (Application Insights JS,
 * 1DS post channel) upload cross-origin: before a POST with `Content-Type: application/json` the
 * browser sends a preflight `OPTIONS` and only POSTs when the answer allows it; it also withholds a
 * response without `Access-Control-Allow-Origin` from the SDK. The collectors allow any origin;
 * echoing the origin (instead of `*`) also allows uploads sent with credentials.
 */
import type { Exchange, RawHeaders } from "../../types.js";

/** How long a browser may cache the preflight answer (the collectors send 3600). */
const PREFLIGHT_MAX_AGE_SECONDS = "3600";

function header(x: Exchange, name: string): string | undefined {
  const lower = name.toLowerCase();
  return x.requestHeaders.find(([n]) => n.toLowerCase() === lower)?.[1];
}

/** A CORS preflight: OPTIONS carrying Access-Control-Request-Method. */
export function isPreflight(x: Exchange): boolean {
  return x.method === "OPTIONS" && header(x, "Access-Control-Request-Method") !== undefined;
}

/** The headers that let the requesting page read an answer (none when the request has no Origin). */
export function corsHeaders(x: Exchange): RawHeaders {
  const origin = header(x, "Origin");
  if (origin === undefined) return [];
  const out: RawHeaders = [
    ["Access-Control-Allow-Origin", origin],
    ["Vary", "Origin"],
  ];
  if (origin !== "null") out.push(["Access-Control-Allow-Credentials", "true"]);
  return out;
}

/** The answer to a preflight: the requested method and headers allowed, cacheable. */
export function preflightHeaders(x: Exchange): RawHeaders {
  const method = header(x, "Access-Control-Request-Method") ?? "POST";
  const requested = header(x, "Access-Control-Request-Headers");
  const out: RawHeaders = [
    ...corsHeaders(x),
    ["Access-Control-Allow-Methods", [...new Set([method.toUpperCase(), "POST", "GET", "OPTIONS"])].join(", ")],
    ["Access-Control-Max-Age", PREFLIGHT_MAX_AGE_SECONDS],
  ];
  if (requested) out.push(["Access-Control-Allow-Headers", requested]);
  return out;
}
