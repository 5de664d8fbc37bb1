/**
 * Undoing Content-Encoding before a decoder sees the body, and the "effective" content type and
 * encoding of an upload (1DS JS beacons move both into the query string, wire-formats.md §0, §1.3).
 *
 * The 1DS C++ SDK labels raw DEFLATE *and* gzip as `deflate` (§0.5), so `deflate` is sniffed:
 * `1F 8B` → gunzip, a valid zlib header → inflate, anything else → raw inflate. Output is capped
 * in size (zlib's `maxOutputLength`, so a bomb is never expanded past the cap) and in ratio.
 */
import { brotliDecompressSync, gunzipSync, inflateRawSync, inflateSync, type ZlibOptions } from "node:zlib";
import type { RawHeaders } from "../types.js";
import { DecodeError, type Finding } from "./types.js";

export interface ContentEncodingLimits {
  /** Largest decompressed body accepted, in bytes (per step of a chain). */
  maxBytes: number;
  /** Largest accepted decompressed:wire size ratio (checked once the output passes RATIO_CHECK_FLOOR). */
  maxRatio: number;
}

export const DEFAULT_MAX_DECODED_BYTES = 64 * 1024 * 1024;
export const DEFAULT_MAX_RATIO = 1000;
/** Below this much output the ratio is not checked: a 100-byte body inflating to 200 KiB is fine. */
export const RATIO_CHECK_FLOOR = 1024 * 1024;
export const DEFAULT_CONTENT_ENCODING_LIMITS: Readonly<ContentEncodingLimits> = {
  maxBytes: DEFAULT_MAX_DECODED_BYTES,
  maxRatio: DEFAULT_MAX_RATIO,
};

export interface ContentDecodingResult {
  body: Uint8Array;
  /** Encodings undone, outermost (last applied) first: `gzip`, `br`, `deflate(raw)`, `deflate(zlib)`, `deflate(gzip)`. */
  applied: string[];
  findings: Finding[];
}

type Codec = "gzip" | "zlib" | "deflate-raw" | "br";

const IDENTITY = new Set(["identity", "none", ""]);

/** Parses a Content-Encoding value into lower-case tokens in the order they were applied. */
export function parseContentEncoding(declared: string | undefined): string[] {
  if (!declared) return [];
  return declared
    .split(",")
    .map((t) => t.trim().toLowerCase())
    .filter((t) => !IDENTITY.has(t));
}

const isGzip = (b: Uint8Array) => b.length >= 2 && b[0] === 0x1f && b[1] === 0x8b;

/** RFC 1950 header: CM = 8, window ≤ 32 KiB, FCHECK makes (CMF*256 + FLG) a multiple of 31. */
export function isZlibHeader(b: Uint8Array): boolean {
  if (b.length < 2) return false;
  const cmf = b[0];
  const flg = b[1];
  return (cmf & 0x0f) === 8 && cmf >> 4 <= 7 && (cmf * 256 + flg) % 31 === 0;
}

/**
 * Undoes `declared` (the effective Content-Encoding) on `body`. Identity/none/empty leave it
 * unchanged; with nothing declared, a gzip body is still recognised and unpacked. Throws
 * DecodeError `encoding.too-large`, `encoding.ratio`, `encoding.corrupt` or `encoding.unsupported`.
 */
export function decodeContentEncoding(
  body: Uint8Array,
  declared: string | undefined,
  limits: ContentEncodingLimits = DEFAULT_CONTENT_ENCODING_LIMITS,
): ContentDecodingResult {
  const tokens = parseContentEncoding(declared);
  const findings: Finding[] = [];
  const applied: string[] = [];
  const wireSize = body.length;
  if (tokens.length === 0) {
    // Nothing declared: gzip is unambiguous enough (magic + method byte) to undo anyway.
    if (body.length >= 10 && isGzip(body) && body[2] === 8) {
      try {
        const out = inflate("gzip", body, wireSize, limits);
        findings.push({
          code: "encoding.undeclared",
          severity: "warning",
          message: "body is gzip although no Content-Encoding was declared; decompressed",
          offset: 0,
        });
        return { body: out, applied: ["gzip"], findings };
      } catch (e) {
        if (e instanceof DecodeError && e.code !== "encoding.corrupt") throw e;
        // It only looked like gzip: keep the bytes as they are.
      }
    }
    return { body, applied, findings };
  }
  let current = body;
  // The header lists encodings in the order applied: undo them from the last one.
  for (let i = tokens.length - 1; i >= 0 && current.length > 0; i--) {
    const token = tokens[i];
    let codec = codecFor(token, current, findings);
    if (codec === "plain") {
      // A JSON body under a compression label (a tool that labels but does not compress): keep it, say so.
      notApplied(findings, token);
      break;
    }
    try {
      current = inflate(codec, current, wireSize, limits);
    } catch (e) {
      if (!(e instanceof DecodeError) || e.code !== "encoding.corrupt") throw e;
      if (looksLikeJsonText(current)) {
        notApplied(findings, token);
        break;
      }
      // Two bytes of raw DEFLATE can pass for a zlib header (1 in 31 of them): try raw before giving up.
      if (codec !== "zlib" || !token.endsWith("deflate")) throw e;
      codec = "deflate-raw";
      try {
        current = inflate(codec, current, wireSize, limits);
      } catch (e2) {
        throw e2 instanceof DecodeError && e2.code === "encoding.corrupt" ? e : e2;
      }
    }
    applied.push(appliedLabel(token, codec));
  }
  return { body: current, applied, findings };
}

/** Which decompressor a label means for these bytes; `plain` when the body is evidently not compressed. */
function codecFor(token: string, b: Uint8Array, findings: Finding[]): Codec | "plain" {
  switch (token) {
    case "gzip":
    case "x-gzip":
      if (isGzip(b)) return "gzip";
      if (isZlibHeader(b)) {
        findings.push({
          code: "encoding.mislabelled",
          severity: "warning",
          message: `labelled ${token} but the body is a zlib stream`,
          offset: 0,
        });
        return "zlib";
      }
      if (looksLikeJsonText(b)) return "plain";
      throw new DecodeError("encoding.corrupt", `labelled ${token} but the body does not start with the gzip magic 1F 8B`, 0);
    case "deflate":
    case "x-deflate":
      // §0.5: the C++ SDK sends raw DEFLATE, and gzip under the same label.
      return isGzip(b) ? "gzip" : isZlibHeader(b) ? "zlib" : "deflate-raw";
    case "br":
      return "br";
    default:
      throw new DecodeError("encoding.unsupported", `unsupported content encoding "${token}"`, 0);
  }
}

/** First non-space byte `{` or `[`, followed by printable text: what a JSON upload looks like, not a compressed stream. */
function looksLikeJsonText(b: Uint8Array): boolean {
  let i = 0;
  while (i < b.length && (b[i] === 0x20 || b[i] === 0x09 || b[i] === 0x0d || b[i] === 0x0a)) i++;
  if (i >= b.length || (b[i] !== 0x7b && b[i] !== 0x5b)) return false;
  const end = Math.min(b.length, i + 64);
  for (let j = i; j < end; j++) {
    const c = b[j];
    if (c < 0x20 && c !== 0x09 && c !== 0x0a && c !== 0x0d) return false;
    if (c === 0x7f) return false;
  }
  return true;
}

function notApplied(findings: Finding[], token: string): void {
  findings.push({
    code: "encoding.not-applied",
    severity: "warning",
    message: `labelled ${token} but the body is uncompressed JSON text; decoded as is`,
    offset: 0,
  });
}

/** `gzip`, `br`, or the label with what it turned out to be: `deflate(raw)`, `deflate(zlib)`, `deflate(gzip)`. */
function appliedLabel(token: string, codec: Codec): string {
  const actual = codec === "deflate-raw" ? "raw" : codec;
  const label = token.startsWith("x-") ? token.slice(2) : token;
  if (label === "deflate") return `deflate(${actual})`;
  if (label === "gzip") return actual === "gzip" ? "gzip" : `gzip(${actual})`;
  return label;
}

function inflate(codec: Codec, input: Uint8Array, wireSize: number, limits: ContentEncodingLimits): Uint8Array {
  const maxBytes = Math.max(1, Math.floor(limits.maxBytes));
  // The ratio bound only bites above the floor; whichever bound is lower is the one zlib enforces.
  const ratioBound = Math.max(RATIO_CHECK_FLOOR, Math.floor(wireSize * limits.maxRatio));
  const ratioBinds = ratioBound < maxBytes;
  const cap = ratioBinds ? ratioBound : maxBytes;
  const opts: ZlibOptions = { maxOutputLength: cap };
  try {
    switch (codec) {
      case "gzip":
        return gunzipSync(input, opts);
      case "zlib":
        return inflateSync(input, opts);
      case "deflate-raw":
        return inflateRawSync(input, opts);
      case "br":
        return brotliDecompressSync(input, { maxOutputLength: cap });
    }
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if (err?.code === "ERR_BUFFER_TOO_LARGE" || err instanceof RangeError) {
      if (ratioBinds) {
        throw new DecodeError(
          "encoding.ratio",
          `${codec} body expands more than ${limits.maxRatio}:1 (over ${cap} bytes from ${wireSize}); not decompressed further`,
          0,
        );
      }
      throw new DecodeError("encoding.too-large", `${codec} body expands beyond ${cap} bytes; not decompressed further`, 0);
    }
    throw new DecodeError("encoding.corrupt", `corrupt ${codec} stream: ${err?.message ?? String(e)}`, 0);
  }
}

function headerValues(headers: RawHeaders, name: string): string[] {
  const out: string[] = [];
  for (const [k, v] of headers) if (k.toLowerCase() === name) out.push(v);
  return out;
}

function queryValue(query: URLSearchParams, name: string): string | undefined {
  const exact = query.get(name);
  if (exact !== null) return exact;
  for (const [k, v] of query) if (k.toLowerCase() === name) return v;
  return undefined;
}

/**
 * The content type that describes the body: the `content-type` query parameter (1DS beacons send
 * `text/plain` over HTTP and the real type in the query) wins over the header. Lower case, without
 * parameters; `""` when neither says anything.
 */
export function effectiveContentType(headers: RawHeaders, query: URLSearchParams): string {
  const raw = queryValue(query, "content-type") || headerValues(headers, "content-type")[0] || "";
  return raw.split(";")[0].trim().toLowerCase();
}

/**
 * The content encoding to undo: the `content-encoding` query parameter wins over the header(s).
 * Lower case, parameters stripped, repeated headers joined (`gzip, br`); undefined when absent.
 */
export function effectiveContentEncoding(headers: RawHeaders, query: URLSearchParams): string | undefined {
  const fromQuery = queryValue(query, "content-encoding");
  const raw = fromQuery?.trim() ? fromQuery : headerValues(headers, "content-encoding").join(",");
  const tokens = raw
    .split(",")
    .map((t) => t.split(";")[0].trim().toLowerCase())
    .filter(Boolean);
  return tokens.length ? tokens.join(", ") : undefined;
}
