/**
 * HAR importer (browsers' devtools, Fiddler, Charles, mitmproxy, HTTP Toolkit, and exhaust's own
 * HAR export). Streams `log.entries` one entry at a time (jsonArrayItems), so a 1 GB HAR is never
 * held in memory. Bodies: `text` with `encoding: "base64"` (HAR's content field; for postData also
 * exhaust's `_exhaust.encoding` and the `encoding`/`_encoding` some tools write) is decoded to bytes,
 * any other text is taken as UTF-8; a form given only as `params` is re-encoded. An entry carrying
 * exhaust's `_exhaust` record restores what HAR has no field for (ports, mode, outcome, flags,
 * exact times).
 */
import type { Readable } from "node:stream";
import { exhaustError, isExhaustError } from "../errors.js";
import type { RawHeaders } from "../types.js";
import { jsonArrayItems } from "./json-items.js";
import { tooLarge } from "./limits.js";
import type { ImportedExchange, ImportSession } from "./session.js";

interface HarHeader {
  name: string;
  value: string;
}
interface HarBody {
  text?: string;
  encoding?: string;
  _encoding?: string;
  _exhaust?: { encoding?: string };
  params?: Array<{ name: string; value?: string }>;
  mimeType?: string;
}
interface HarEntry {
  startedDateTime?: string;
  time?: number;
  request?: { method?: string; url?: string; httpVersion?: string; headers?: HarHeader[]; postData?: HarBody; bodySize?: number };
  response?: { status?: number; headers?: HarHeader[]; content?: HarBody; bodySize?: number };
  _exhaust?: {
    port?: number;
    startedAt?: number;
    requestEndedAt?: number | null;
    respondedAt?: number | null;
    endedAt?: number | null;
    requestBodySize?: number;
    requestBodyTruncated?: boolean;
    requestComplete?: boolean;
    responseBodyTruncated?: boolean;
    responseSource?: "upstream" | "exhaust" | null;
    responseTrailers?: RawHeaders | null;
    responseStatus?: number | null;
    mode?: ImportedExchange["mode"];
    outcome?: ImportedExchange["outcome"];
    endpointId?: string | null;
    upstream?: string | null;
    errorCode?: string | null;
    errorMessage?: string | null;
    httpVersion?: string;
  };
}

const URL_PATTERN = /^(https?):\/\/([^/?#]*)([^#]*)/i;

/** scheme, host, port and the path exactly as written (URL() would re-encode it). */
export function splitUrl(url: string): { scheme: "http" | "https"; host: string; port: number; path: string } | undefined {
  const m = URL_PATTERN.exec(url);
  if (!m) return undefined;
  const scheme = m[1].toLowerCase() as "http" | "https";
  const authority = m[2].replace(/^.*@/, "");
  const portMatch = /^(.*?)(?::(\d+))?$/.exec(authority)!;
  const host = portMatch[1].replace(/^\[|\]$/g, "").toLowerCase();
  const port = portMatch[2] ? Number(portMatch[2]) : scheme === "https" ? 443 : 80;
  return { scheme, host, port, path: m[3] || "/" };
}

export function harBodyBytes(b: HarBody | undefined): Buffer | undefined {
  if (!b) return undefined;
  const encoding = b.encoding ?? b._encoding ?? b._exhaust?.encoding;
  if (typeof b.text === "string") return encoding === "base64" ? Buffer.from(b.text, "base64") : Buffer.from(b.text, "utf8");
  if (Array.isArray(b.params) && b.params.length) {
    return Buffer.from(new URLSearchParams(b.params.map((p): [string, string] => [p.name, p.value ?? ""])).toString(), "utf8");
  }
  return undefined;
}

const pairs = (h: HarHeader[] | undefined): RawHeaders => (h ?? []).map((x) => [String(x.name), String(x.value)]);

const harVersion = (v: string | undefined) => {
  const m = /^(?:HTTP\/)?(\d(?:\.\d)?)$/i.exec(v ?? "");
  if (m) return m[1].includes(".") ? m[1] : `${m[1]}.0`;
  return /^h2/i.test(v ?? "") ? "2.0" : "1.1";
};

/** One HAR entry as an exchange to import, or a reason to skip it. */
export function harEntryToExchange(e: HarEntry): ImportedExchange | string {
  const url = e.request?.url;
  const target = url ? splitUrl(url) : undefined;
  if (!target) return `entry with unsupported URL ${JSON.stringify(url ?? null)}`;
  const x = e._exhaust ?? {};
  const startedAt = x.startedAt ?? Date.parse(e.startedDateTime ?? "");
  if (!Number.isFinite(startedAt)) return `entry for ${url} without a valid startedDateTime`;
  const body = harBodyBytes(e.request?.postData) ?? Buffer.alloc(0);
  const status = e.response?.status;
  const bodyLost = x.requestBodySize !== undefined && body.length < x.requestBodySize && !e.request?.postData;
  return {
    ...target,
    port: x.port ?? target.port,
    method: e.request?.method ?? "GET",
    httpVersion: x.httpVersion ?? harVersion(e.request?.httpVersion),
    requestHeaders: pairs(e.request?.headers),
    requestBody: body,
    requestBodySize: x.requestBodySize ?? body.length,
    requestBodyTruncated: (x.requestBodyTruncated ?? false) || bodyLost,
    requestComplete: x.requestComplete ?? true,
    startedAt,
    requestEndedAt: x.requestEndedAt ?? undefined,
    respondedAt: x.respondedAt ?? undefined,
    endedAt: x.endedAt ?? (e.time !== undefined && e.time >= 0 ? startedAt + Math.round(e.time) : undefined),
    mode: x.mode,
    outcome: x.outcome,
    endpointId: x.endpointId ?? undefined,
    upstream: x.upstream ?? undefined,
    error: x.errorCode ? { code: x.errorCode, message: x.errorMessage ?? "" } : undefined,
    response:
      (x.responseStatus ?? status)
        ? {
            status: (x.responseStatus ?? status)!,
            headers: pairs(e.response?.headers),
            body: harBodyBytes(e.response?.content),
            bodyTruncated: x.responseBodyTruncated ?? false,
            trailers: x.responseTrailers ?? undefined,
            source: x.responseSource ?? "upstream",
          }
        : undefined,
  };
}

/** Streams the entries of a HAR into the session. */
export async function importHar(input: Readable, file: string, sink: ImportSession, maxBody: number): Promise<void> {
  // Strings are capped as they stream in (a body is one string, base64 or text); entries are held
  // one at a time, each parsed whole by JSON.parse.
  let entries = 0;
  try {
    for await (const value of jsonArrayItems(input, ["log", "entries"], maxBody, file)) {
      entries++;
      const x = value !== null && typeof value === "object" ? harEntryToExchange(value) : `entry ${entries} is not an object`;
      if (typeof x === "string") {
        sink.skipped++;
        if (sink.notes.length < 20) sink.notes.push(x);
        continue;
      }
      for (const [what, body] of [
        ["request", x.requestBody],
        ["response", x.response?.body],
      ] as const) {
        if (body && body.length > maxBody)
          throw tooLarge(file, `the ${what} body of entry ${entries} (${x.method} ${x.host}) is ${body.length} bytes`, maxBody);
      }
      await sink.add(x);
    }
  } catch (e) {
    if (isExhaustError(e)) throw e;
    throw exhaustError("EXH_IMPORT_FORMAT", { file, reason: `not valid HAR JSON: ${(e as Error).message}` }, e);
  }
  if (entries === 0)
    throw exhaustError("EXH_IMPORT_FORMAT", { file, reason: "JSON without log.entries (not a HAR, or a HAR with no entries)" });
}
