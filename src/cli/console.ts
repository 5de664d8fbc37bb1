/**
 * The proxy's human console (docs/console.md): a short banner, then one line per exchange in the
 * manner of mitmdump, printed once the processing thread has decoded it (so the line can say how
 * many events it carried and how many fields were content). Logs stay pino JSON with
 * `--log-format json`; in human form warnings and errors are one readable line each on stderr.
 */
import { join } from "node:path";
import { Writable } from "node:stream";
import { CA_CERT_FILE } from "../ca/authority.js";
import type { ProcessedNotice } from "../pipeline/processing.js";
import type { Addon } from "../proxy/addons/addon.js";
import type { HostPort } from "../proxy/options.js";
import type { Exchange } from "../types.js";
import { TOOL_VERSION } from "../version.js";

export type LogFormat = "human" | "json";

/** `--log-format`: explicit, or human on a terminal and JSON when stderr is a file or a pipe. */
export function resolveLogFormat(flag: string | undefined, stderrIsTty: boolean): LogFormat {
  if (flag === undefined || flag === "auto") return stderrIsTty ? "human" : "json";
  if (flag === "human" || flag === "json") return flag;
  throw new Error(`expected human, json or auto, got "${flag}"`);
}

/** How to trust the CA and remove it again, per OS: the banner's lines and `ca trust-help` read it. */
const TRUST_BY_OS: ReadonlyArray<{
  os: string;
  heading: string;
  add: (f: string) => string;
  remove: (f: string) => string;
  bannerNote?: string;
}> = [
  {
    os: "Windows",
    heading: "Windows (admin prompt; PowerShell or cmd):",
    add: (f) => `certutil -addstore -f Root ${f}`,
    remove: () => 'certutil -delstore Root "<the CA\'s CN, see exhaust ca show>"',
    bannerNote: "   (admin prompt)",
  },
  {
    os: "macOS",
    heading: "macOS:",
    add: (f) => `sudo security add-trusted-cert -d -r trustRoot -k /Library/Keychains/System.keychain ${f}`,
    remove: (f) => `sudo security remove-trusted-cert -d ${f}`,
  },
  {
    os: "Linux",
    heading: "Linux (Debian, Ubuntu; Fedora: /etc/pki/ca-trust/source/anchors and update-ca-trust):",
    add: (f) => `sudo cp ${f} /usr/local/share/ca-certificates/exhaust.crt && sudo update-ca-certificates`,
    remove: () => "sudo rm /usr/local/share/ca-certificates/exhaust.crt && sudo update-ca-certificates --fresh",
  },
];

/** One line per OS: how to make clients trust the CA (details: `exhaust ca trust-help`). */
export function trustLines(certFile: string): string[] {
  return TRUST_BY_OS.map((t) => `${`${t.os}:`.padEnd(9)}${t.add(certFile)}${t.bannerNote ?? ""}`);
}

/** `exhaust ca trust-help`: the full instructions, per OS and per client that keeps its own store. */
export function trustHelp(certFile: string): string {
  return [
    `The CA certificate: ${certFile}`,
    "Trust it on the machine whose clients you capture (remove it again when done):",
    "",
    ...TRUST_BY_OS.flatMap((t) => [t.heading, `  ${t.add(certFile)}`, `  remove: ${t.remove(certFile)}`]),
    "Clients with their own store:",
    `  Node.js: NODE_EXTRA_CA_CERTS=${certFile}`,
    `  curl:    curl --cacert ${certFile} --proxy http://HOST:PORT ...`,
    `  Firefox / Chromium on Linux (NSS): certutil -d sql:$HOME/.pki/nssdb -A -t C,, -n exhaust -i ${certFile}`,
    "",
    "Check the fingerprint the proxy prints against `exhaust ca show` before trusting it.",
    "",
  ].join("\n");
}

export interface BannerFacts {
  address: HostPort;
  certsDir: string;
  fingerprint256: string;
  dbFile: string;
  session: string;
  mode: string;
  intercept: string;
}

/** The address as a client's proxy URL (IPv6 in brackets). */
export function proxyUrl(a: HostPort): string {
  return `http://${a.host.includes(":") ? `[${a.host}]` : a.host}:${a.port}`;
}

export function banner(f: BannerFacts): string {
  const certFile = join(f.certsDir, CA_CERT_FILE);
  const url = proxyUrl(f.address);
  const [first, ...rest] = trustLines(certFile);
  return [
    `exhaust ${TOOL_VERSION}: proxy listening on ${url}`,
    `  mode      ${f.mode} (intercept ${f.intercept})`,
    `  database  ${f.dbFile}, session ${f.session}`,
    `  CA        ${certFile}`,
    `  SHA-256   ${f.fingerprint256}`,
    `  trust     ${first}`,
    ...rest.map((l) => `            ${l}`),
    "            (all clients: exhaust ca trust-help)",
    `  clients   HTTPS_PROXY=${url}  (or the system proxy setting)`,
    "  time     client METHOD host/path status size events content",
    "",
  ].join("\n");
}

/** Bytes as the console shows them: 512B, 1.2kB, 3.4MB. */
export function formatSize(n: number): string {
  if (n < 1000) return `${n}B`;
  if (n < 1_000_000) return `${(n / 1000).toFixed(1)}kB`;
  return `${(n / 1_000_000).toFixed(1)}MB`;
}

const ANSI = { dim: "\x1b[2m", red: "\x1b[31m", yellow: "\x1b[33m", green: "\x1b[32m", bold: "\x1b[1m", reset: "\x1b[0m" };

export interface ExchangeLine {
  at: number;
  client: string;
  method: string;
  host: string;
  path: string;
  status?: number;
  size: number;
  /** Undefined: not decoded (not kept, nothing to decode, or left to `exhaust reprocess`). */
  events?: number;
  content?: number;
  note?: string;
}

/**
 * One exchange: `HH:MM:SS client METHOD host/path status size N events M content [(note)]`.
 * The documented pattern is CONSOLE_LINE below; colour (TTY only) never changes the text.
 */
export function formatExchangeLine(l: ExchangeLine, colour: boolean): string {
  const time = new Date(l.at).toISOString().slice(11, 19);
  const q = l.path.indexOf("?");
  // Never the query string: 1DS beacons carry API keys and tickets there.
  const path = q === -1 ? l.path : l.path.slice(0, q);
  const status = l.status === undefined ? "---" : String(l.status);
  const events = l.events === undefined ? "-" : String(l.events);
  const content = l.content === undefined ? "-" : String(l.content);
  const c = (code: string, s: string) => (colour ? `${code}${s}${ANSI.reset}` : s);
  const statusText =
    l.status === undefined || l.status >= 500 ? c(ANSI.red, status) : l.status >= 400 ? c(ANSI.yellow, status) : c(ANSI.green, status);
  const contentText = l.content && l.content > 0 ? c(ANSI.bold + ANSI.red, content) : content;
  return (
    `${c(ANSI.dim, time)} ${l.client} ${l.method} ${l.host}${path.startsWith("/") ? path : `/${path}`} ${statusText} ${formatSize(l.size)} ` +
    `${events} events ${contentText} content${l.note ? ` (${l.note})` : ""}`
  );
}

/** The documented console line (docs/console.md), on text with colour codes removed. */
export const CONSOLE_LINE =
  /^(\d{2}:\d{2}:\d{2}) (\S+) ([A-Z]+) ([^/\s]+)(\/\S*) (\d{3}|---) (\d+(?:\.\d)?(?:B|kB|MB)) (\d+|-) events (\d+|-) content(?: \(([^)]*)\))?$/;

export const stripAnsi = (s: string) => s.replace(/\x1b\[[0-9;]*m/g, "");

/**
 * Prints one line per exchange once it is decoded. An exchange not kept (a tunnel, a refused
 * host) is printed at its end with `-` for events and content; one still undecoded at stop is
 * printed after the stop, marked `(not decoded while capturing)`.
 */
export class ExchangeConsole {
  private readonly waiting = new Map<string, ExchangeLine>();
  private readonly early = new Map<string, ProcessedNotice>();

  constructor(
    private readonly out: NodeJS.WritableStream,
    private readonly colour: boolean,
  ) {}

  addon(): Addon {
    return {
      name: "console",
      onExchangeEnd: (x) => this.ended(x),
    };
  }

  private ended(x: Exchange): void {
    const line: ExchangeLine = {
      at: x.startedAt,
      client: x.clientAddress ?? "-",
      method: x.method,
      host: x.host,
      path: x.path,
      status: x.response?.status,
      size: x.requestBodySize,
    };
    if (!x.capture) {
      this.print({ ...line, note: "not kept" });
      return;
    }
    const notice = this.early.get(x.id);
    if (notice) {
      this.early.delete(x.id);
      this.print(this.withNotice(line, notice));
      return;
    }
    this.waiting.set(x.id, line);
  }

  /** The processing thread's word on one exchange. */
  processed(n: ProcessedNotice): void {
    const line = this.waiting.get(n.exchangeId);
    if (!line) {
      // Told before the exchange's end hook ran: kept until it does (bounded by traffic in flight).
      this.early.set(n.exchangeId, n);
      return;
    }
    this.waiting.delete(n.exchangeId);
    this.print(this.withNotice(line, n));
  }

  /** At stop: what the processing thread did not get to. */
  flush(): void {
    for (const line of this.waiting.values()) this.print({ ...line, note: "not decoded while capturing" });
    this.waiting.clear();
    this.early.clear();
  }

  private withNotice(line: ExchangeLine, n: ProcessedNotice): ExchangeLine {
    if (n.failed) return { ...line, note: "decode failed" };
    if (!n.processed) return line;
    return { ...line, events: n.events, content: n.contentFields };
  }

  private print(line: ExchangeLine): void {
    this.out.write(`${formatExchangeLine(line, this.colour)}\n`);
  }
}

/**
 * pino JSON lines → one readable line each (`HH:MM:SS WARN message key=value ...`), for the
 * warnings and errors that still come in human form.
 */
export function humanLogStream(out: NodeJS.WritableStream): Writable {
  const LEVELS: Record<number, string> = { 10: "TRACE", 20: "DEBUG", 30: "INFO", 40: "WARN", 50: "ERROR", 60: "FATAL" };
  let pending = "";
  return new Writable({
    write(chunk, _enc, cb) {
      pending += String(chunk);
      let nl: number;
      while ((nl = pending.indexOf("\n")) !== -1) {
        const text = pending.slice(0, nl);
        pending = pending.slice(nl + 1);
        try {
          const { level, time, msg, name: _name, ...rest } = JSON.parse(text) as Record<string, unknown>;
          const at = new Date(typeof time === "number" ? time : Date.now()).toISOString().slice(11, 19);
          const fields = Object.entries(rest)
            .filter(([, v]) => v !== undefined)
            .map(([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`)
            .join(" ");
          out.write(`${at} ${LEVELS[level as number] ?? level} ${String(msg ?? "")}${fields ? ` ${fields}` : ""}\n`);
        } catch {
          out.write(`${text}\n`);
        }
      }
      cb();
    },
  });
}
