import { countUploadRecords } from "../../decode/registry.js";
import { exhaustError } from "../../errors.js";
import type { Exchange, ProxyMode } from "../../types.js";
import { compileHostPattern } from "../options.js";
import type { Addon, AddonContext, AddonModule, LocalResponse } from "./addon.js";
import { corsHeaders, isPreflight, preflightHeaders } from "./cors.js";

declare module "../options.js" {
  interface ProxyOptions {
    /** forward | sinkhole | block, for hosts no --host-mode pattern or catalogue entry gives a mode. */
    mode: ProxyMode;
    /** Per-host-pattern modes from --host-mode PATTERN=MODE; first match wins, before the catalogue. */
    hostModes: Array<{ pattern: string; mode: ProxyMode }>;
  }
}

export const DEFAULT_MODE: ProxyMode = "forward";

export function parseMode(option: string, text: string): ProxyMode {
  if (text === "forward" || text === "sinkhole" || text === "block") return text;
  throw exhaustError("EXH_OPT_INVALID", { option, reason: `mode must be forward, sinkhole or block, got "${text}"` });
}

/** `--host-mode PATTERN=MODE` */
export function parseHostMode(text: string): { pattern: string; mode: ProxyMode } {
  const eq = text.lastIndexOf("=");
  if (eq <= 0) throw exhaustError("EXH_OPT_INVALID", { option: "--host-mode", reason: `expected PATTERN=MODE, got "${text}"` });
  return { pattern: text.slice(0, eq).toLowerCase(), mode: parseMode("--host-mode", text.slice(eq + 1)) };
}

/** The --host-mode pattern's mode for a host, if a pattern matches (compiled once). */
function hostModePatterns(options: Pick<AddonContext["options"], "hostModes">): (host: string) => ProxyMode | undefined {
  const patterns = options.hostModes.map((h) => ({ matches: compileHostPattern(h.pattern), mode: h.mode }));
  return (host) => patterns.find((p) => p.matches(host))?.mode;
}

/**
 * forward | sinkhole | block, per exchange. Precedence: --host-mode patterns, then the catalogue
 * entry's `mode`, then --mode. Sinkhole answers like the endpoint's collector (the catalogue's
 * `sinkhole` shapes: Application Insights `itemsReceived`, Live Metrics `x-ms-qps-subscribed`, …;
 * else the 1DS `200 {"acc":N}`) so the client believes its upload landed and nothing leaves the
 * lab; block answers 503 to study retries. Browser preflights are answered in both, so that a
 * page's SDK goes on to send (sinkhole) or sees the refusal (block).
 */
export function modesAddon({ options, catalog }: AddonContext): Addon {
  const patternMode = hostModePatterns(options);
  /** The mode of a host: --host-mode patterns, then the catalogue entry's `mode`, then --mode. */
  const modeFor = (host: string): ProxyMode => patternMode(host) ?? catalog.match(host)?.mode ?? options.mode;

  const sinkholeAnswer = (x: Exchange): LocalResponse => {
    // A cut body (--max-body) is not the upload the client sent: no count.
    const count = x.requestBodyTruncated
      ? 0
      : countUploadRecords({ method: x.method, path: x.path, headers: x.requestHeaders, body: x.requestBody });
    const q = x.path.indexOf("?");
    const shaped = catalog.sinkholeAnswer(x.host, x.method, q === -1 ? x.path : x.path.slice(0, q));
    if (shaped) {
      return {
        status: shaped.status,
        headers: Object.entries(shaped.headers),
        body: Buffer.from(shaped.body.replaceAll("{count}", String(count))),
      };
    }
    return { status: 200, headers: [["Content-Type", "application/json"]], body: Buffer.from(JSON.stringify({ acc: count })) };
  };

  return {
    name: "modes",
    onConnect(d) {
      d.mode = modeFor(d.host);
      // A host not intercepted (outside the catalogue) that a --host-mode pattern puts in sinkhole
      // or block: a tunnel would relay it, so the CONNECT is refused (docs/containment.md).
      const pattern = patternMode(d.host);
      if (d.action === "tunnel" && pattern !== undefined && pattern !== "forward") {
        d.action = "refuse";
        d.reason = `host-mode ${pattern} on a host not intercepted`;
      }
    },
    modeOf: modeFor,
    onRequestHeaders(x) {
      x.mode = modeFor(x.host);
    },
    respond(x): LocalResponse | undefined {
      if (x.mode === "forward") return undefined;
      if (isPreflight(x)) return { status: 200, headers: preflightHeaders(x), body: Buffer.alloc(0) };
      const answer: LocalResponse =
        x.mode === "sinkhole"
          ? sinkholeAnswer(x)
          : {
              status: 503,
              headers: [
                ["Content-Type", "text/plain"],
                ["Retry-After", "60"],
              ],
              body: Buffer.from("exhaust: blocked by policy\n"),
            };
      return { ...answer, headers: [...answer.headers, ...corsHeaders(x)] };
    },
  };
}

export const modes: AddonModule = {
  name: "modes",
  options: [
    { flags: "--mode <mode>", description: "forward | sinkhole | block", default: DEFAULT_MODE },
    { flags: "--host-mode <pattern=mode>", description: "mode for hosts matching a glob (repeatable)", repeatable: true },
  ],
  parseOptions: (flags) => ({
    mode: parseMode("--mode", flags.mode as string),
    hostModes: (flags.hostMode as string[]).map(parseHostMode),
  }),
  create: modesAddon,
  describeOptions: (o) => ({ mode: o.mode, hostModes: o.hostModes }),
};
