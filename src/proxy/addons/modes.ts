import { countUploadRecords } from "../../decode/registry.js";
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
      // A host not intercepted (outside the catalogue) that a --host-mode pattern puts in sinkhole
      // or block: a tunnel would relay it, so the CONNECT is refused (docs/containment.md).
      const pattern = patterns.find((p) => p.matches(d.host));
      if (d.action === "tunnel" && pattern && pattern.mode !== "forward") {
        d.action = "refuse";
        d.reason = `host-mode ${pattern.mode} on a host not intercepted`;
      }
    },
    onRequestHeaders(x) {
      x.mode = modeFor(x.host);
    },
    respond(x): LocalResponse | undefined {
      if (x.mode === "sinkhole") {
        return {
          status: 200,
          headers: [["Content-Type", "application/json"]],
          // A cut body (--max-body) is not the upload the client sent: no count.
          body: Buffer.from(JSON.stringify({ acc: x.requestBodyTruncated ? 0 : countUploadRecords({ method: x.method, path: x.path, headers: x.requestHeaders, body: x.requestBody }) })),
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
