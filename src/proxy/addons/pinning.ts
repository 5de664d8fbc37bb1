import type { Addon, AddonContext } from "./addon.js";

/**
 * A client that refuses our leaf (certificate pinning, as Windows DiagTrack does, or a CA that is
 * not trusted) is recorded by the server as `client-rejected-certificate`. From then on its host is
 * tunnelled, so the client keeps working; the rejected connection stays as evidence that it called.
 */
export function pinningAddon({ log }: AddonContext): Addon {
  const pinned = new Set<string>();
  return {
    name: "pinning",
    onConnect(d) {
      if (d.action === "intercept" && pinned.has(d.host)) {
        d.action = "tunnel";
        d.reason = "pinned-earlier";
      }
    },
    onConnectionClosed(c) {
      if (c.outcome === "client-rejected-certificate" && !pinned.has(c.host)) {
        pinned.add(c.host);
        log.warn({ host: c.host, reason: c.error }, "client rejected our certificate (pinning?); tunnelling this host from now on");
      }
    },
  };
}
