import { decodeContentEncoding, effectiveContentEncoding, effectiveContentType } from "../../decode/content-encoding.js";
import type { Exchange, ProxyMode } from "../../types.js";
import { compileHostPattern } from "../options.js";
import type { Addon, AddonContext, LocalResponse } from "./addon.js";

/**
 * forward | sinkhole | block, per exchange. Precedence: --host-mode patterns, then the catalogue
 * entry's `mode`, then --mode. Sinkhole answers like a collector (`200 {"acc":N}`) so the client
 * believes its upload landed and nothing leaves the lab; block answers 503 to study retries.
 */
export function modesAddon({ options, catalog }: AddonContext): Addon {
  const patterns = options.hostModes.map((h) => ({ matches: compileHostPattern(h.pattern), mode: h.mode }));
  const modeFor = (host: string): ProxyMode =>
    patterns.find((p) => p.matches(host))?.mode ?? catalog.match(host)?.mode ?? options.mode;
  return {
    name: "modes",
    onConnect(d) {
      d.mode = modeFor(d.host);
    },
    onRequestHeaders(x) {
      x.mode = modeFor(x.host);
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
 * Records in a 1DS JSON-lines upload (one JSON object per line), after undoing its content
 * encoding with the decode stage's own caps. Binary formats (Bond, Aria) answer 0: counting them
 * means decoding them on the proxy's thread, and clients accept it (`acc` is informational).
 */
export function countUploadRecords(x: Exchange): number {
  if (x.requestBodyTruncated) return 0;
  const q = x.path.indexOf("?");
  const query = new URLSearchParams(q === -1 ? "" : x.path.slice(q + 1));
  if (effectiveContentType(x.requestHeaders, query) !== "application/x-json-stream") return 0;
  let body: Uint8Array;
  try {
    body = decodeContentEncoding(x.requestBody, effectiveContentEncoding(x.requestHeaders, query)).body;
  } catch {
    return 0;
  }
  let n = 0;
  for (const line of Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString("utf8").split("\n")) {
    if (line.trim().startsWith("{")) n++;
  }
  return n;
}
