import { BlockList, isIPv6 } from "node:net";
import { timingSafeEqual } from "node:crypto";
import type { IncomingMessage } from "node:http";
import { exhaustError } from "../errors.js";
import { isLoopbackHost, type ProxyOptions } from "./options.js";

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

  /** null when allowed; otherwise the status to answer (403 address, 407 credentials). */
  check(req: IncomingMessage): 403 | 407 | null {
    if (this.allowList) {
      const addr = (req.socket.remoteAddress ?? "").replace(/^::ffff:/, "");
      if (!this.allowList.check(addr, isIPv6(addr) ? "ipv6" : "ipv4")) return 403;
    }
    if (this.expectedAuth) {
      const given = Buffer.from(String(req.headers["proxy-authorization"] ?? ""));
      if (given.length !== this.expectedAuth.length || !timingSafeEqual(given, this.expectedAuth)) return 407;
    }
    return null;
  }
}

/** A listener beyond loopback needs --auth or --allow; checked before anything is created. */
export function assertListenAllowed(options: ProxyOptions): void {
  if (!isLoopbackHost(options.listen.host) && !options.auth && options.allow.length === 0) {
    throw exhaustError("EXH_LISTEN_UNPROTECTED", { address: `${options.listen.host}:${options.listen.port}` });
  }
}

export function deniedResponse(status: 403 | 407): string {
  const reason = status === 407 ? "Proxy Authentication Required" : "Forbidden";
  const extra = status === 407 ? 'Proxy-Authenticate: Basic realm="exhaust"\r\n' : "";
  const body = status === 407 ? "exhaust: proxy authentication required\n" : "exhaust: address not allowed\n";
  return `HTTP/1.1 ${status} ${reason}\r\n${extra}Content-Type: text/plain\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`;
}
