import { exhaustError } from "../../errors.js";
import { formatHostPort, parseHostPort, type HostPort } from "../options.js";
import type { AddonModule } from "./addon.js";

declare module "../options.js" {
  interface ProxyOptions {
    /** --map-host HOST=IP:PORT, keyed by lower-case host. */
    mapHosts: Map<string, HostPort>;
  }
}

/** `--map-host HOST=IP:PORT` */
export function parseMapHost(text: string): [string, HostPort] {
  const eq = text.indexOf("=");
  if (eq <= 0) throw exhaustError("EXH_OPT_INVALID", { option: "--map-host", reason: `expected HOST=IP:PORT, got "${text}"` });
  return [text.slice(0, eq).toLowerCase(), parseHostPort("--map-host", text.slice(eq + 1))];
}

/** --map-host HOST=IP:PORT: the upstream for HOST is IP:PORT while the client still sees HOST. */
export const hostMap: AddonModule = {
  name: "host-map",
  options: [{ flags: "--map-host <host=ip:port>", description: "connect upstream for HOST to IP:PORT (repeatable)", repeatable: true }],
  parseOptions: (flags) => ({ mapHosts: new Map((flags.mapHost as string[]).map(parseMapHost)) }),
  create({ options }) {
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
  },
  describeOptions: (o) => ({ mapHosts: Object.fromEntries([...o.mapHosts].map(([k, v]) => [k, formatHostPort(v)])) }),
};
