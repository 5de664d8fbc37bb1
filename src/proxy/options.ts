import { exhaustError } from "../errors.js";
import { globToRegExp } from "../glob.js";
import { DEFAULT_BACKGROUND_NICE, MAX_NICE } from "../thread-priority.js";

export interface HostPort {
  host: string;
  port: number;
}

/**
 * Everything `exhaust proxy` can be told, already parsed and checked. The options of the addons
 * in `addons/registry.ts` are declared in each addon's own file (it augments this interface).
 */
export interface ProxyOptions {
  listen: HostPort;
  dbFile: string;
  session: string;
  /** Corporate HTTP proxy to chain to. */
  upstreamProxy?: URL;
  certsDir: string;
  catalogFile?: string;
  /** Request/response bodies above this are stored cut, with a flag; forwarding is unaffected. */
  maxBodyBytes: number;
  /** Time to wait for the upstream's response head before answering 504. */
  upstreamTimeoutMs: number;
  /** Extra PEM CA certificates to trust for upstream TLS (lab origins). */
  upstreamCaPem: string[];
  insecureUpstream: boolean;
  /** --allow-private: relay to loopback, link-local, RFC 1918 and ULA targets (off: refused with 403). */
  allowPrivate: boolean;
  /** A client connection with no bytes either way for this long is closed. */
  idleTimeoutMs: number;
  /** From the CONNECT's answer to the first byte, and through the TLS handshake. */
  handshakeTimeoutMs: number;
  /** A request or response body that stalls (no bytes) this long is cut off. */
  bodyTimeoutMs: number;
  /** Body bytes held in memory across all exchanges in flight; beyond it new uploads get 503. */
  maxInflightBytes: number;
  /** Ports of the web UI on loopback: refused as CONNECT/absolute-form targets even with --allow-private. */
  uiPorts: number[];
  /**
   * The nice value of the capture's background threads (decoding, WAL checkpoints) on Linux, so
   * the proxy's thread keeps the CPU under load; 0 runs them at the process's own priority.
   */
  backgroundNice: number;
}

export const PROXY_DEFAULTS = {
  listen: "127.0.0.1:8080",
  maxBodyBytes: 32 * 1024 * 1024,
  upstreamTimeoutMs: 30_000,
  idleTimeoutMs: 120_000,
  handshakeTimeoutMs: 10_000,
  bodyTimeoutMs: 60_000,
  maxInflightBytes: 256 * 1024 * 1024,
  uiPort: 8081,
  backgroundNice: DEFAULT_BACKGROUND_NICE,
};

/**
 * Request and response heads: any number of headers (all are stored and chained), up to this many
 * bytes in all (Node's default is 16 KiB and 1,000-odd headers, silently dropping the rest). A head
 * above it is answered 400 as a malformed request (HPE_HEADER_OVERFLOW on the connection row).
 */
export const MAX_HEADER_BYTES = 256 * 1024;

/**
 * An authority as HTTP writes it (RFC 3986 §3.2.2): HOST, HOST:PORT, [IPV6] or [IPV6]:PORT.
 * Group 1 is a bracketed host (without the brackets), group 2 any other host, group 3 the port
 * (empty after a bare colon). One pattern for the option parser and the request targets.
 */
const AUTHORITY = /^(?:\[([^\]]+)\]|([^:[\]]*))(?::(\d{0,5}))?$/;

/**
 * The host (IPv6 without brackets, what formatHostPort writes back) and port of a Host header or a
 * request target's authority; `defaultPort` when it has none. Undefined when it is not one.
 */
export function parseAuthority(text: string, defaultPort: number): HostPort | undefined {
  const m = AUTHORITY.exec(text);
  const host = m?.[1] ?? m?.[2];
  if (!host) return undefined;
  const port = m![3] ? Number(m![3]) : defaultPort;
  return port <= 65535 ? { host, port } : undefined;
}

/** An absolute-form request target: scheme, authority (any userinfo dropped), path and query. */
const ABSOLUTE_FORM = /^(https?|wss?):\/\/(?:[^/?#@]*@)?([^/?#]*)([^#]*)/i;

/** Where a request goes, read once for the target policy and the engine alike. */
export interface RequestTarget {
  /** Lower-cased host (IPv6 without brackets) and port; undefined when the request names none. */
  target: HostPort | undefined;
  /** The authority as the request wrote it (absolute-form's, else the Host header). */
  authority: string | undefined;
  /** The path to forward: absolute-form's path and query, else the request's own. */
  path: string;
  /** An absolute-form target outside a tunnel that names https (or wss): exhaust makes the TLS connection. */
  upgradesToTls: boolean;
}

/**
 * The target of one request, the one reading used by the target policy (server.ts) and the
 * engine: outside a tunnel an absolute-form URL's authority names it, else the Host header does,
 * both read by parseAuthority and lower-cased. No URL parser: it would read `2130706433` as
 * 127.0.0.1 while the exchange keeps the raw text.
 */
export function requestTarget(req: { url?: string; headers: { host?: string } }, isTls: boolean): RequestTarget {
  const url = req.url ?? "";
  let authority = req.headers.host;
  let path = url;
  let upgradesToTls = false;
  const absolute = ABSOLUTE_FORM.exec(url);
  if (absolute) {
    path = absolute[3] || "/";
    if (!isTls) {
      authority = absolute[2];
      upgradesToTls = /s$/i.test(absolute[1]);
    }
  }
  const hp = authority === undefined ? undefined : parseAuthority(authority, isTls || upgradesToTls ? 443 : 80);
  return { target: hp && { host: hp.host.toLowerCase(), port: hp.port }, authority, path, upgradesToTls };
}

export function parseHostPort(option: string, text: string, defaultHost?: string): HostPort {
  const m = AUTHORITY.exec(text.trim());
  if (!m?.[3]) {
    if (defaultHost !== undefined && /^\d{1,5}$/.test(text)) return checkPort(option, { host: defaultHost, port: Number(text) });
    throw exhaustError("EXH_OPT_INVALID", { option, reason: `expected HOST:PORT, got "${text}"` });
  }
  const host = m[1] ?? (m[2] || defaultHost || "");
  if (!host) throw exhaustError("EXH_OPT_INVALID", { option, reason: `missing host in "${text}"` });
  return checkPort(option, { host, port: Number(m[3]) });
}

/** HOST:PORT, with an IPv6 host in brackets (what parseHostPort reads back). */
export function formatHostPort({ host, port }: HostPort): string {
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}

function checkPort(option: string, hp: HostPort): HostPort {
  if (hp.port > 65535) throw exhaustError("EXH_OPT_INVALID", { option, reason: `port ${hp.port} is out of range` });
  return hp;
}

/** A positive integer option (bytes, milliseconds, a port). */
export function parsePositiveInteger(option: string, text: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n <= 0)
    throw exhaustError("EXH_OPT_INVALID", { option, reason: `expected a positive integer, got "${text}"` });
  return n;
}

/** A nice value for --background-nice: an integer from 0 (the process's priority) to 19 (the lowest). */
export function parseNice(option: string, text: string): number {
  const n = Number(text);
  if (text.trim() === "" || !Number.isInteger(n) || n < 0 || n > MAX_NICE)
    throw exhaustError("EXH_OPT_INVALID", { option, reason: `expected an integer from 0 to ${MAX_NICE}, got "${text}"` });
  return n;
}

export function parseUpstreamProxy(text: string): URL {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw exhaustError("EXH_OPT_INVALID", { option: "--upstream", reason: `"${text}" is not a URL` });
  }
  if (url.protocol !== "http:") {
    throw exhaustError("EXH_OPT_INVALID", { option: "--upstream", reason: "only http:// upstream proxies are supported" });
  }
  return url;
}

export function isLoopbackHost(host: string): boolean {
  return host === "localhost" || host === "::1" || /^127\./.test(host);
}

/** Turns a glob like `*.events.data.microsoft.com` into a matcher; `*` spans any characters. */
export function compileHostPattern(pattern: string): (host: string) => boolean {
  const re = globToRegExp(pattern, "i");
  return (host) => re.test(host);
}
