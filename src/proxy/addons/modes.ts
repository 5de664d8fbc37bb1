import { gunzipSync } from "node:zlib";
import type { Exchange, ProxyMode } from "../../types.js";
import { headerValue } from "../body.js";
import { compileHostPattern } from "../options.js";
import type { Addon, AddonContext, LocalResponse } from "./addon.js";

/**
 * forward | sinkhole | block, per exchange. Precedence: --host-mode patterns, then the catalogue
 * entry's `mode`, then --mode. Sinkhole answers like a collector (`200 {"acc":N}`) so the client
 * believes its upload landed and nothing leaves the lab; block answers 503 to study retries.
 */
export function modesAddon({ options, catalog }: AddonContext): Addon {
  const patterns = options.hostModes.map((h) => ({ matches: compileHostPattern(h.pattern), mode: h.mode }));
  const modeFor = (host: string, endpointId: string | undefined): ProxyMode => {
    const byFlag = patterns.find((p) => p.matches(host));
    if (byFlag) return byFlag.mode;
    const entry = endpointId ? catalog.endpoints.find((e) => e.id === endpointId) : undefined;
    return entry?.mode ?? options.mode;
  };
  return {
    name: "modes",
    onConnect(d) {
      d.mode = modeFor(d.host, catalog.match(d.host)?.id);
    },
    onRequestHeaders(x) {
      x.mode = modeFor(x.host, x.endpointId);
    },
    respond(x): LocalResponse | undefined {
      if (x.mode === "sinkhole") {
        return {
          status: 200,
          headers: [["Content-Type", "application/json"]],
          body: Buffer.from(JSON.stringify({ acc: countUploadRecords(x) })),
        };
      }
      if (x.mode === "block") {
        return {
          status: 503,
          headers: [["Content-Type", "text/plain"], ["Retry-After", "60"]],
          body: Buffer.from("exhaust: blocked by policy\n"),
        };
      }
      return undefined;
    },
  };
}

/**
 * Records in a 1DS JSON-lines upload (one JSON object per line, plain or gzip). Binary formats are
 * counted once their decoders exist; until then the collector-style answer says 0, which clients
 * accept (`acc` is informational).
 */
export function countUploadRecords(x: Exchange): number {
  const query = x.path.includes("?") ? new URLSearchParams(x.path.slice(x.path.indexOf("?") + 1)) : undefined;
  const type = query?.get("content-type") ?? headerValue(x.requestHeaders, "content-type") ?? "";
  if (!type.includes("x-json-stream") || x.requestBodyTruncated) return 0;
  const encoding = (query?.get("content-encoding") ?? headerValue(x.requestHeaders, "content-encoding") ?? "").toLowerCase();
  let body = x.requestBody;
  try {
    if (encoding === "gzip" || (body[0] === 0x1f && body[1] === 0x8b)) body = gunzipSync(body, { maxOutputLength: 64 * 1024 * 1024 });
  } catch {
    return 0;
  }
  let n = 0;
  for (const line of body.toString("utf8").split("\n")) if (line.trim().startsWith("{")) n++;
  return n;
}
