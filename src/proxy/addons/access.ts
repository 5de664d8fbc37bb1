import { BlockList, isIP, isIPv6 } from "node:net";
import { timingSafeEqual } from "node:crypto";
import { exhaustError } from "../../errors.js";
import type { AddonModule, ClientRequest } from "./addon.js";
import { formatHostPort, isLoopbackHost, type ProxyOptions } from "../options.js";

declare module "../options.js" {
  interface ProxyOptions {
    /** Basic credentials the client must present (Proxy-Authorization), as "user:pass". */
    auth?: string;
    /** CIDRs allowed to use a non-loopback listener. */
    allow: string[];
  }
}

/**
 * Who may use the proxy. On loopback: anyone local. Elsewhere only with --auth (Basic
 * Proxy-Authorization) or --allow CIDRs; listening on a LAN without either is refused outright.
 */
export class AccessPolicy {
  private readonly allowList?: BlockList;
  private readonly expectedAuth?: Buffer;

  constructor(options: ProxyOptions) {
    assertListenAllowed(options);
    if (options.allow.length) {
      const list = new BlockList();
      for (const cidr of options.allow) {
        const [addr, bits] = cidr.split("/");
        list.addSubnet(addr, Number(bits), isIPv6(addr) ? "ipv6" : "ipv4");
      }
      list.addSubnet("127.0.0.0", 8, "ipv4");
      list.addAddress("::1", "ipv6");
      this.allowList = list;
    }
    if (options.auth) this.expectedAuth = Buffer.from(`Basic ${Buffer.from(options.auth).toString("base64")}`);
  }

  /** undefined when allowed; otherwise the status to answer (403 address, 407 credentials). */
  check(req: ClientRequest): 403 | 407 | undefined {
    if (this.allowList && !this.allowList.check(req.address, isIPv6(req.address) ? "ipv6" : "ipv4")) return 403;
    if (this.expectedAuth) {
      const given = Buffer.from(req.proxyAuthorization ?? "");
      if (given.length !== this.expectedAuth.length || !timingSafeEqual(given, this.expectedAuth)) return 407;
    }
    return undefined;
  }
}

/** A listener beyond loopback needs --auth or --allow; checked before anything is created. */
export function assertListenAllowed(options: ProxyOptions): void {
  if (!isLoopbackHost(options.listen.host) && !options.auth && options.allow.length === 0) {
    throw exhaustError("EXH_LISTEN_UNPROTECTED", { address: formatHostPort(options.listen) });
  }
}

export function deniedResponse(status: 403 | 407): string {
  const reason = status === 407 ? "Proxy Authentication Required" : "Forbidden";
  const extra = status === 407 ? 'Proxy-Authenticate: Basic realm="exhaust"\r\n' : "";
  const body = status === 407 ? "exhaust: proxy authentication required\n" : "exhaust: address not allowed\n";
  return `HTTP/1.1 ${status} ${reason}\r\n${extra}Content-Type: text/plain\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`;
}

export function parseAuth(text: string): string {
  if (!/^[^:]+:.+$/.test(text)) throw exhaustError("EXH_OPT_INVALID", { option: "--auth", reason: "expected user:pass" });
  return text;
}

export function parseCidr(text: string): string {
  const [addr, bits] = text.split("/");
  const family = isIP(addr ?? "");
  const max = family === 6 ? 128 : 32;
  if (!family || (bits !== undefined && !(/^\d+$/.test(bits) && Number(bits) <= max))) {
    throw exhaustError("EXH_OPT_INVALID", { option: "--allow", reason: `"${text}" is not an address or CIDR` });
  }
  return bits === undefined ? `${addr}/${max}` : text;
}

/** Access control as an addon: its `admit` hook answers 403 or 407 before anything else runs. */
export const access: AddonModule = {
  name: "access",
  options: [
    { flags: "--auth <user:pass>", description: "require Proxy-Authorization (needed to listen beyond loopback)" },
    { flags: "--allow <cidr>", description: "client addresses allowed on a non-loopback listener (repeatable)", repeatable: true },
  ],
  parseOptions: (flags) => ({
    auth: flags.auth ? parseAuth(flags.auth as string) : undefined,
    allow: (flags.allow as string[]).map(parseCidr),
  }),
  create({ options }) {
    const policy = new AccessPolicy(options);
    return { name: "access", admit: (req) => policy.check(req) };
  },
  describeOptions: (o) => ({ auth: o.auth ? "required" : "none", allow: o.allow }),
};
