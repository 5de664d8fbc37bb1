/**
 * The UI is only for its user. A page on another site can make a browser send requests to the UI
 * (DNS rebinding: attacker.example resolved to 127.0.0.1), so every request must name the UI by
 * one of its own names in Host, and anything that is not GET/HEAD must come from the UI's own
 * origin when it names one. Credentials never reach a view: headers are redacted by name, and query
 * parameters with a credential name (src/log.ts decides which) by value, wherever a URL appears.
 */
import { hostname, networkInterfaces } from "node:os";
import { isIP } from "node:net";
import { isSecretHeader, REDACTED } from "../log.js";

/** `localhost` names the loopback interface; these are the loopback names a browser can send. */
const LOOPBACK_NAMES = ["localhost", "127.0.0.1", "[::1]"];

function bracketed(host: string): string {
  return isIP(host) === 6 ? `[${host}]` : host;
}

function isWildcard(host: string): boolean {
  return host === "0.0.0.0" || host === "::" || host === "[::]";
}

/**
 * The names a request may give in Host for a UI listening on `host:port`: the bound address,
 * `localhost` and the loopback addresses when it is loopback (or a wildcard), every local interface
 * address and the machine's name on a wildcard, and `extra` (the names the user configured).
 */
export function uiHostNames(host: string, port: number, options: { loopback: boolean; extra?: readonly string[] }): Set<string> {
  const names = new Set<string>([bracketed(host.replace(/^\[|\]$/g, "")).toLowerCase()]);
  if (options.loopback || isWildcard(host)) for (const n of LOOPBACK_NAMES) names.add(n);
  if (isWildcard(host)) {
    names.add(hostname().toLowerCase());
    for (const list of Object.values(networkInterfaces()))
      for (const a of list ?? []) names.add(bracketed(a.address.replace(/%.*$/, "")).toLowerCase());
  }
  for (const n of options.extra ?? []) names.add(bracketed(n.replace(/^\[|\]$/g, "")).toLowerCase());
  const allowed = new Set<string>();
  for (const n of names) {
    allowed.add(`${n}:${port}`);
    if (port === 80) allowed.add(n);
  }
  return allowed;
}

export type ContainmentVerdict = { ok: true } | { ok: false; status: 421 | 403; reason: string };

/** Whether a request may reach the UI: Host is one of `allowed`; a non-GET/HEAD Origin, if any, too. */
export function checkUiRequest(
  method: string,
  headers: { host?: string; origin?: string | string[] },
  allowed: ReadonlySet<string>,
): ContainmentVerdict {
  const host = (headers.host ?? "").toLowerCase();
  if (!allowed.has(host)) return { ok: false, status: 421, reason: `Host ${JSON.stringify(headers.host ?? "")} is not this UI's address` };
  if (method === "GET" || method === "HEAD") return { ok: true };
  const origin = headers.origin;
  if (origin === undefined) return { ok: true };
  const text = Array.isArray(origin) ? origin.join(",") : origin;
  const m = /^http:\/\/([^/]+)$/i.exec(text);
  if (!m || !allowed.has(m[1].toLowerCase())) return { ok: false, status: 403, reason: `Origin ${JSON.stringify(text)} is not this UI` };
  return { ok: true };
}

/** `?name=value` / `&name=value` pairs anywhere in a text (URLs, paths, messages). */
const QUERY_PAIR = /([?&;])([^=&;?#\s"'<>]+)=([^&;#\s"'<>]*)/g;

function decodedName(name: string): string {
  try {
    return decodeURIComponent(name.replace(/\+/g, " "));
  } catch {
    return name;
  }
}

/** The text with the value of every credential query parameter replaced by [redacted]. */
export function redactCredentialParams(text: string): string {
  if (!text.includes("=")) return text;
  return text.replace(QUERY_PAIR, (all, sep: string, name: string, value: string) =>
    value !== "" && isSecretHeader(decodedName(name)) ? `${sep}${name}=${REDACTED}` : all,
  );
}

/** A JSON value with redactCredentialParams applied to every string in it. */
export function redactDeep<T>(value: T): T {
  if (typeof value === "string") return redactCredentialParams(value) as T;
  if (Array.isArray(value)) return value.map((v: unknown) => redactDeep(v)) as T;
  if (value !== null && typeof value === "object" && !Buffer.isBuffer(value)) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value as Record<string, unknown>)) out[k] = redactDeep(v);
    return out as T;
  }
  return value;
}
