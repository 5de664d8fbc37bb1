import type { Addon, AddonContext } from "./addon.js";

/** --map-host HOST=IP:PORT: the upstream for HOST is IP:PORT while the client still sees HOST. */
export function hostMapAddon({ options }: AddonContext): Addon {
  const map = options.mapHosts;
  return {
    name: "host-map",
    onConnect(d) {
      const to = map.get(d.host);
      if (to) d.upstream = to;
    },
    onRequestHeaders(x) {
      const to = map.get(x.host);
      if (to) x.upstreamTarget = to;
    },
  };
}
