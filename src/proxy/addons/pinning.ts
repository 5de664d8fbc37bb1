import type { Addon, AddonContext } from "./addon.js";

/**
 * A client that refuses our leaf (certificate pinning, as Windows DiagTrack does, or a CA that is
 * not trusted) is recorded by the server as `client-rejected-certificate`. From then on its host is
 * tunnelled, so the client keeps working; the rejected connection stays as evidence that it called.
 * Where the host's mode is sinkhole or block, a tunnel would let the data out, so the CONNECT is
 * refused instead.
 */
export function pinningAddon({ log }: AddonContext): Addon {
  const pinned = new Set<string>();
  return {
    name: "pinning",
    onConnect(d) {
      if (d.action === "intercept" && pinned.has(d.host)) {
        d.action = d.mode === undefined || d.mode === "forward" ? "tunnel" : "refuse";
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
