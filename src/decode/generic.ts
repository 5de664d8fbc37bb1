/**
 * Formats without events: a JSON document, an HTML form, a multipart form, and anything else
 * (`opaque`). Each yields ONE pseudo-event (`json:<path>`, `form:<path>`, `multipart:<path>`,
 * `opaque`) whose fields have part `body`, so no upload is invisible.
 */
import { createHash } from "node:crypto";
import { asBuffer, isJsonObject, JsonSyntaxError, parseJsonExact, utf8ByteOffset, type JsonValue } from "./json/exact.js";
import { emitJson, flattenerFindings, makeField, newFlattener, pushField, type Flattener } from "./json/flatten.js";
import { isSpace } from "./json/framing.js";
import { DecodeError, type DecodeContext, type DecodedField, type Decoder, type DecodeResult, type Finding } from "./types.js";

function firstContentByte(body: Uint8Array): number {
  let i = body.length >= 3 && body[0] === 0xef && body[1] === 0xbb && body[2] === 0xbf ? 3 : 0;
  while (i < body.length && isSpace(body[i])) i++;
  return i;
}

/** Bodies up to this size are parsed by the JSON sniffer; larger ones are judged by their ends. */
const SNIFF_PARSE_LIMIT = 256 * 1024;

export const genericJsonDecoder: Decoder = {
  id: "json",
  // 2: arrays of objects walked into indexed paths.
  version: 2,
  contentTypes: ["application/json", "text/json"],
  sniff(body) {
    const i = firstContentByte(body);
    if (i >= body.length) return 0;
    const open = body[i];
    if (open !== 0x7b && open !== 0x5b) return 0;
    if (body.length > SNIFF_PARSE_LIMIT) {
      let e = body.length - 1;
      while (e > i && isSpace(body[e])) e--;
      return body[e] === (open === 0x7b ? 0x7d : 0x5d) ? 0.4 : 0;
    }
    try {
      parseJsonExact(asBuffer(body).toString("utf8", i));
      return 0.6;
    } catch {
      return 0;
    }
  },
  decode(body: Uint8Array, ctx: DecodeContext): DecodeResult {
    const start = firstContentByte(body);
    const text = asBuffer(body).toString("utf8", start);
    let value: JsonValue;
    try {
      value = parseJsonExact(text);
    } catch (e) {
      const pos = e instanceof JsonSyntaxError ? e.position : 0;
      const offset = utf8ByteOffset(body, start, body.length, pos);
      throw new DecodeError("json.invalid", `body is not valid JSON: ${(e as Error).message}`, offset);
    }
    const fl = newFlattener(ctx.limits);
    if (isJsonObject(value)) {
      for (const k of Object.keys(value)) emitJson(fl, k, "body", value[k], 1);
    } else if (Array.isArray(value)) {
      // A top-level array (a batch): one path prefix per element, `[0].name`.
      for (let i = 0; i < value.length; i++) emitJson(fl, `[${i}]`, "body", value[i], 1);
    } else {
      pushField(fl, makeField("$", "body", value, 0, fl));
    }
    const findings: Finding[] = flattenerFindings(fl, "json", 0, [0, body.length]);
    return { events: [{ index: 0, name: `json:${ctx.path}`, byteRange: [0, body.length], fields: fl.fields }], findings };
  },
};

export const formDecoder: Decoder = {
  id: "form",
  version: 1,
  contentTypes: ["application/x-www-form-urlencoded"],
  decode(body: Uint8Array, ctx: DecodeContext): DecodeResult {
    const fl = newFlattener(ctx.limits);
    const params = new URLSearchParams(asBuffer(body).toString("utf8"));
    for (const [k, v] of params) pushField(fl, { path: k || "(empty)", part: "body", value: v, type: "string" });
    const findings = flattenerFindings(fl, "form", 0, [0, body.length]);
    return { events: [{ index: 0, name: `form:${ctx.path}`, byteRange: [0, body.length], fields: fl.fields }], findings };
  },
};

// ---------------------------------------------------------------------------------------------
// multipart/form-data (RFC 7578)

/** `boundary=` of a Content-Type value with its parameters, or undefined. */
export function boundaryOf(contentType: string | undefined): string | undefined {
  if (!contentType) return undefined;
  const m = /;\s*boundary\s*=\s*(?:"([^"]{1,200})"|([^;\s]{1,200}))/i.exec(contentType);
  return m ? (m[1] ?? m[2]) : undefined;
}

function rawContentType(ctx: DecodeContext): string | undefined {
  const q = ctx.query.get("content-type");
  if (q && boundaryOf(q)) return q;
  for (const [k, v] of ctx.headers) if (k.toLowerCase() === "content-type") return v;
  return q ?? undefined;
}

interface PartHeaders {
  name?: string;
  filename?: string;
  contentType?: string;
}

function parseParams(value: string): Map<string, string> {
  const out = new Map<string, string>();
  const re = /;\s*([^=;\s]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^;]*))/g;
  let m: RegExpExecArray | null;
  while ((m = re.exec(value))) {
    const key = m[1].toLowerCase();
    if (!out.has(key)) out.set(key, m[2] !== undefined ? m[2].replace(/\\(.)/g, "$1") : m[3].trim());
  }
  return out;
}

function parsePartHeaders(text: string): PartHeaders {
  const out: PartHeaders = {};
  for (const line of text.split(/\r?\n/)) {
    const colon = line.indexOf(":");
    if (colon <= 0) continue;
    const key = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    if (key === "content-disposition") {
      const params = parseParams(value);
      const name = params.get("name");
      if (name !== undefined) out.name = name;
      const filename = params.get("filename");
      if (filename !== undefined) out.filename = filename;
    } else if (key === "content-type") out.contentType = value;
  }
  return out;
}

const TEXT_LIKE = /^(text\/|application\/(json|x-www-form-urlencoded|xml|x-json-stream)|[^;]*\+(json|xml)\b)/i;

export const multipartDecoder: Decoder = {
  id: "multipart",
  version: 1,
  contentTypes: ["multipart/form-data"],
  decode(body: Uint8Array, ctx: DecodeContext): DecodeResult {
    const buf = asBuffer(body);
    const findings: Finding[] = [];
    let boundary = boundaryOf(rawContentType(ctx));
    if (!boundary) {
      // No boundary declared: a body that starts with `--token` line says what it is.
      const m = /^--([^\r\n]{1,200})\r?\n/.exec(buf.toString("latin1", 0, Math.min(buf.length, 256)));
      if (!m) throw new DecodeError("multipart.no-boundary", "multipart body without a boundary parameter", 0);
      boundary = m[1].replace(/--$/, "");
      findings.push({
        code: "multipart.boundary-sniffed",
        severity: "warning",
        message: "boundary taken from the body's first line",
        offset: 0,
      });
    }
    const delim = Buffer.from(`--${boundary}`, "latin1");
    const sep = Buffer.from(`\n--${boundary}`, "latin1");
    let pos: number;
    if (buf.subarray(0, delim.length).equals(delim)) pos = 0;
    else {
      const at = buf.indexOf(sep);
      if (at === -1) throw new DecodeError("multipart.no-parts", "no boundary line in the multipart body", 0);
      pos = at + 1;
    }
    const fl = newFlattener(ctx.limits);
    let closed = false;
    let index = 0;
    while (pos < buf.length) {
      pos += delim.length;
      if (buf[pos] === 0x2d && buf[pos + 1] === 0x2d) {
        closed = true;
        break;
      }
      const eol = buf.indexOf(0x0a, pos);
      if (eol === -1) break;
      // Headers: lines up to the first empty one.
      let lineStart = eol + 1;
      let headerEnd = -1;
      let bodyStart = -1;
      while (lineStart < buf.length) {
        const nl = buf.indexOf(0x0a, lineStart);
        if (nl === -1) break;
        const isEmpty = nl === lineStart || (nl === lineStart + 1 && buf[lineStart] === 0x0d);
        if (isEmpty) {
          headerEnd = lineStart;
          bodyStart = nl + 1;
          break;
        }
        lineStart = nl + 1;
      }
      if (bodyStart === -1) {
        findings.push({
          code: "multipart.truncated",
          severity: "error",
          message: `part ${index} ends inside its headers`,
          offset: eol + 1,
        });
        break;
      }
      const headers = parsePartHeaders(buf.toString("utf8", eol + 1, headerEnd));
      const next = buf.indexOf(sep, bodyStart);
      let bodyEnd = next === -1 ? buf.length : next;
      if (next !== -1 && bodyEnd > bodyStart && buf[bodyEnd - 1] === 0x0d) bodyEnd--;
      if (next === -1) {
        findings.push({
          code: "multipart.truncated",
          severity: "error",
          message: `part ${index} has no closing boundary`,
          offset: bodyStart,
        });
      }
      emitPart(fl, headers, buf.subarray(bodyStart, bodyEnd), index);
      index++;
      if (next === -1) break;
      pos = next + 1;
    }
    if (!closed && !findings.some((f) => f.code === "multipart.truncated")) {
      findings.push({ code: "multipart.truncated", severity: "error", message: "no closing boundary", offset: Math.min(pos, buf.length) });
    }
    findings.push(...flattenerFindings(fl, "multipart", 0, [0, body.length]));
    return { events: [{ index: 0, name: `multipart:${ctx.path}`, byteRange: [0, body.length], fields: fl.fields }], findings };
  },
};

function emitPart(fl: Flattener, h: PartHeaders, content: Buffer, index: number): void {
  const name = h.name || `part${index}`;
  const isFile = h.filename !== undefined || (h.contentType !== undefined && !TEXT_LIKE.test(h.contentType));
  if (!isFile) {
    pushField(fl, { path: name, part: "body", value: content.toString("utf8"), type: "string" });
    return;
  }
  if (h.filename !== undefined) pushField(fl, { path: `${name}.filename`, part: "body", value: h.filename, type: "string" });
  if (h.contentType !== undefined) pushField(fl, { path: `${name}.contentType`, part: "body", value: h.contentType, type: "string" });
  pushField(fl, { path: `${name}.size`, part: "body", value: content.length, type: "int64" });
  pushField(fl, { path: `${name}.sha256`, part: "body", value: createHash("sha256").update(content).digest("hex"), type: "string" });
}

// ---------------------------------------------------------------------------------------------

/** Anything: one `opaque` event with the size, hash, content type and first 32 bytes in hex. */
export const opaqueDecoder: Decoder = {
  id: "opaque",
  version: 1,
  sniff: () => 0.01,
  decode(body: Uint8Array, ctx: DecodeContext): DecodeResult {
    const buf = asBuffer(body);
    const fields: DecodedField[] = [
      { path: "size", part: "body", value: buf.length, type: "int64" },
      { path: "sha256", part: "body", value: createHash("sha256").update(buf).digest("hex"), type: "string" },
      { path: "contentType", part: "body", value: ctx.contentType, type: "string" },
      { path: "prefix", part: "body", value: buf.subarray(0, 32).toString("hex"), type: "bytes" },
    ];
    return { events: [{ index: 0, name: "opaque", byteRange: [0, buf.length], fields }], findings: [] };
  },
};
