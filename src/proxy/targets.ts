import { lookup } from "node:dns/promises";
import { BlockList, isIP } from "node:net";
import { networkInterfaces } from "node:os";
import { formatHostPort, type HostPort, type ProxyOptions } from "./options.js";

/**
 * Where the proxy may relay to. Loopback, link-local and unspecified addresses, RFC 1918, CGNAT
 * and ULA ranges are "private space": a target there is refused unless --allow-private, or a
 * --map-host sends the host there on purpose. The proxy's own listener and the web UI's port on
 * loopback are refused whatever the flags (a relay to them would be a loop, or would hand the
 * captures to whoever can reach the proxy). Hostnames are resolved here, once, and the address
 * checked is the address dialled: a second lookup could answer differently (DNS rebinding).
 */
const LOOPBACK = new BlockList();
LOOPBACK.addSubnet("127.0.0.0", 8, "ipv4");
LOOPBACK.addAddress("::1", "ipv6");

const SPECIAL = new BlockList();
SPECIAL.addSubnet("0.0.0.0", 8, "ipv4"); // "this network", unspecified
SPECIAL.addSubnet("169.254.0.0", 16, "ipv4"); // link-local (cloud metadata lives here)
SPECIAL.addAddress("::", "ipv6");
SPECIAL.addSubnet("fe80::", 10, "ipv6");

const PRIVATE = new BlockList();
PRIVATE.addSubnet("10.0.0.0", 8, "ipv4");
PRIVATE.addSubnet("172.16.0.0", 12, "ipv4");
PRIVATE.addSubnet("192.168.0.0", 16, "ipv4");
PRIVATE.addSubnet("100.64.0.0", 10, "ipv4"); // CGNAT
PRIVATE.addSubnet("fc00::", 7, "ipv6"); // ULA

/** Where requests on one client connection (or one plain request) go: see docs/containment.md. */
export interface Route {
  /** The CONNECT target (or the absolute-form request's host): authoritative over any Host header. */
  host: string;
  port: number;
  /** The address checked and to dial (hostnames resolved once); absent: the engine's usual target. */
  dial?: HostPort;
  /** Bound to a CONNECT: every request on the connection goes to host:port whatever it says. */
  bound: boolean;
}

export type AddressClass = "loopback" | "link-local-or-unspecified" | "private" | "public";

export function classifyAddress(address: string): AddressClass {
  let a = address.replace(/^\[|\]$/g, "");
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(a);
  if (mapped) a = mapped[1];
  const family = isIP(a) === 6 ? "ipv6" : "ipv4";
  if (LOOPBACK.check(a, family)) return "loopback";
  if (SPECIAL.check(a, family)) return "link-local-or-unspecified";
  if (PRIVATE.check(a, family)) return "private";
  return "public";
}

export type TargetCheck =
  { ok: true; dial: HostPort } | { ok: false; reason: string; code: "private" | "loop" | "resolve-failed"; error?: string };

/** The policy for one proxy: its options and its own bound address. */
export class TargetPolicy {
  constructor(
    private readonly options: ProxyOptions,
    private readonly self: () => HostPort | undefined,
  ) {}

  /**
   * Checks a target the proxy is about to relay to and says which address to dial. `mapped` is the
   * --map-host destination (trusted: the operator chose it). `resolve` false leaves hostnames to
   * someone else (an upstream proxy), checking literals only.
   */
  async check(target: HostPort, mapped?: HostPort, resolve = true): Promise<TargetCheck> {
    if (mapped) {
      const loop = this.loop(mapped, true);
      return loop ?? { ok: true, dial: mapped };
    }
    const host = target.host.replace(/^\[|\]$/g, "");
    let address = host;
    if (!isIP(host)) {
      if (!resolve) return { ok: true, dial: target };
      try {
        address = (await lookup(host, { verbatim: true })).address;
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code ?? (e as Error).message;
        return { ok: false, code: "resolve-failed", reason: `cannot resolve ${host}: ${code}`, error: code };
      }
    }
    const dial = { host: address, port: target.port };
    const loop = this.loop(dial);
    if (loop) return loop;
    const cls = classifyAddress(address);
    if (cls !== "public" && !this.options.allowPrivate) {
      return {
        ok: false,
        code: "private",
        reason: `${host}${address !== host ? ` (${address})` : ""} is ${cls} address space; --allow-private relays there`,
      };
    }
    return { ok: true, dial };
  }

  /** The proxy itself (always) or the UI (unless a --map-host names it): refused whatever the flags. */
  private loop(dial: HostPort, mapped = false): TargetCheck | undefined {
    const cls = classifyAddress(dial.host);
    const me = this.self();
    const mine =
      me !== undefined &&
      dial.port === me.port &&
      (cls === "loopback" ||
        cls === "link-local-or-unspecified" ||
        dial.host === me.host ||
        (isUnspecified(me.host) && localAddresses().has(dial.host)));
    if (mine) return { ok: false, code: "loop", reason: `${formatHostPort(dial)} is this proxy's own listener` };
    if (!mapped && cls === "loopback" && this.options.uiPorts.includes(dial.port)) {
      return { ok: false, code: "loop", reason: `${formatHostPort(dial)} is the web UI's port` };
    }
    return undefined;
  }
}

/** This machine's interface addresses (a listener on 0.0.0.0 or :: answers on all of them). */
function localAddresses(): Set<string> {
  return new Set(Object.values(networkInterfaces()).flatMap((list) => (list ?? []).map((i) => i.address)));
}

function isUnspecified(host: string): boolean {
  return host === "0.0.0.0" || host === "::";
}
