/**
 * Fiddler SAZ importer. A SAZ is a zip with, per session N, `raw/N_c.txt` (the request as Fiddler
 * saw it: request line, headers, blank line, body), `raw/N_s.txt` (the response) and
 * `raw/N_m.xml` (timers and flags). CONNECT tunnels are skipped (they carry no request body); a
 * chunked body is de-chunked, as exhaust's own capture stores bodies after HTTP framing.
 */
import { EntryTooLargeError, type BundleSource } from "../evidence/source.js";
import type { RawHeaders } from "../types.js";
import { splitUrl } from "./har.js";
import { HEAD_ALLOWANCE } from "./limits.js";
import type { ImportedExchange, ImportSession } from "./session.js";

interface RawMessage {
  startLine: string;
  headers: RawHeaders;
  body: Buffer;
}

/** Splits raw HTTP/1.x text at the first blank line; accepts CRLF or bare LF line ends. */
export function parseRawMessage(raw: Buffer): RawMessage | undefined {
  let end = raw.indexOf("\r\n\r\n");
  let sepLength = 4;
  if (end === -1) {
    end = raw.indexOf("\n\n");
    sepLength = 2;
  }
  const head = (end === -1 ? raw : raw.subarray(0, end)).toString("latin1");
  const lines = head.split(/\r?\n/);
  const startLine = lines.shift() ?? "";
  if (!startLine) return undefined;
  const headers: RawHeaders = [];
  for (const line of lines) {
    const colon = line.indexOf(":");
    if (colon > 0) headers.push([line.slice(0, colon), line.slice(colon + 1).replace(/^[ \t]+/, "")]);
  }
  let body = end === -1 ? Buffer.alloc(0) : raw.subarray(end + sepLength);
  const te = headers.find(([n]) => n.toLowerCase() === "transfer-encoding")?.[1];
  if (te && /chunked/i.test(te)) body = dechunk(body);
  return { startLine, headers, body };
}

/** Undoes chunked transfer coding; what cannot be parsed is kept as it is. */
export function dechunk(data: Buffer): Buffer {
  const parts: Buffer[] = [];
  let pos = 0;
  while (pos < data.length) {
    const lineEnd = data.indexOf("\r\n", pos);
    if (lineEnd === -1) return data;
    const size = parseInt(data.subarray(pos, lineEnd).toString("latin1").split(";")[0].trim(), 16);
    if (!Number.isFinite(size)) return data;
    if (size === 0) return Buffer.concat(parts);
    const start = lineEnd + 2;
    if (start + size > data.length) return data;
    parts.push(data.subarray(start, start + size));
    pos = start + size + 2;
  }
  return Buffer.concat(parts);
}

/** Fiddler writes .NET round-trip times (7 fractional digits); Date.parse wants at most 3. */
function timerMs(xml: string | undefined, name: string): number | undefined {
  if (!xml) return undefined;
  const m = new RegExp(`${name}="([^"]+)"`).exec(xml);
  if (!m) return undefined;
  const t = Date.parse(m[1].replace(/(\.\d{3})\d+/, "$1"));
  return Number.isFinite(t) && t > 0 ? t : undefined;
}

export function sazSessionToExchange(request: Buffer, response: Buffer | undefined, meta: string | undefined): ImportedExchange | string {
  const req = parseRawMessage(request);
  if (!req) return "empty request file";
  const [method, target, version] = req.startLine.split(" ");
  if (method === "CONNECT") return "CONNECT tunnel";
  const host = req.headers.find(([n]) => n.toLowerCase() === "host")?.[1];
  const url = /^https?:\/\//i.test(target ?? "")
    ? target
    : host
      ? `${/https/i.test(meta ?? "") ? "https" : "http"}://${host}${target}`
      : undefined;
  const parsed = url ? splitUrl(url) : undefined;
  if (!parsed) return `request line ${JSON.stringify(req.startLine)} has no usable URL`;
  const res = response ? parseRawMessage(response) : undefined;
  const status = res ? Number(res.startLine.split(" ")[1]) : NaN;
  const startedAt = timerMs(meta, "ClientBeginRequest") ?? timerMs(meta, "ClientConnected") ?? Date.now();
  return {
    ...parsed,
    method,
    httpVersion: /^HTTP\/(\d\.\d)$/.exec(version ?? "")?.[1] ?? "1.1",
    requestHeaders: req.headers,
    requestBody: req.body,
    startedAt,
    requestEndedAt: timerMs(meta, "ClientDoneRequest"),
    respondedAt: timerMs(meta, "ClientBeginResponse"),
    endedAt: timerMs(meta, "ClientDoneResponse"),
    response: Number.isInteger(status) && res ? { status, headers: res.headers, body: res.body } : undefined,
  };
}

const SESSION_FILE = /^raw\/(\d+)_([csm])\.(txt|xml)$/i;

/**
 * Each raw file is read whole, so it is bounded: a request file above --max-body plus room for its
 * head is refused (zip bombs declare gigabytes); a response that large is left out with a note.
 */
export async function importSaz(zip: BundleSource, sink: ImportSession, maxBody: number): Promise<void> {
  const bound = maxBody + HEAD_ALLOWANCE;
  const response = async (name: string, n: number): Promise<Buffer | undefined> => {
    try {
      return await zip.read(name, bound);
    } catch (e) {
      if (!(e instanceof EntryTooLargeError)) throw e;
      sink.notes.push(`session ${n}: response left out (${e.message})`);
      return undefined;
    }
  };
  const sessions = new Map<number, { c?: string; s?: string; m?: string }>();
  for (const name of zip.files()) {
    const m = SESSION_FILE.exec(name);
    if (!m) continue;
    const n = Number(m[1]);
    const entry = sessions.get(n) ?? {};
    entry[m[2].toLowerCase() as "c" | "s" | "m"] = name;
    sessions.set(n, entry);
  }
  for (const n of [...sessions.keys()].sort((a, b) => a - b)) {
    const files = sessions.get(n)!;
    if (!files.c) {
      sink.skipped++;
      sink.notes.push(`session ${n}: no request file`);
      continue;
    }
    const x = sazSessionToExchange(
      await zip.read(files.c, bound),
      files.s ? await response(files.s, n) : undefined,
      files.m ? (await zip.read(files.m, HEAD_ALLOWANCE)).toString("utf8") : undefined,
    );
    if (typeof x === "string") {
      sink.skipped++;
      if (sink.notes.length < 20) sink.notes.push(`session ${n}: ${x}`);
      continue;
    }
    await sink.add(x);
  }
}
