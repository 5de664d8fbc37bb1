import type { Addon, AddonContext } from "./addon.js";

/**
 * One info line per exchange, from an allowlist of fields: never headers, bodies or the query
 * string (1DS beacons carry API keys and tickets there).
 */
export function exchangeLogAddon({ log }: AddonContext): Addon {
  // The line is built from scalars of the allowlist below, which no redaction path can name: the
  // redaction pass (the second fence) is left out of this one line, the hottest in the proxy.
  const exchanges = log.child({ module: "exchange" }, { redact: [] });
  return {
    name: "exchange-log",
    onExchangeEnd(x) {
      // No object is built when info lines are off (--quiet, the human form).
      if (!exchanges.isLevelEnabled("info")) return;
      const q = x.path.indexOf("?");
      exchanges.info({
        exchange: x.id,
        method: x.method,
        host: x.host,
        path: q === -1 ? x.path : x.path.slice(0, q),
        status: x.response?.status,
        bytes: x.requestBodySize,
        ms: (x.endedAt ?? Date.now()) - x.startedAt,
        mode: x.mode,
        outcome: x.outcome,
      });
    },
    onConnectionClosed(c) {
      if (c.outcome !== "intercepted") {
        log.info({ module: "connection", host: c.host, port: c.port, outcome: c.outcome, up: c.bytesFromClient, down: c.bytesToClient });
      }
    },
  };
}
