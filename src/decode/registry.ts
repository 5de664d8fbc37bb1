/**
 * The decoder table, like Wireshark's dissector tables: a decoder is picked by content type and
 * path, ties and unknowns are settled by sniffing the (decoded) bytes, and `opaque` takes the rest,
 * so nothing is invisible. Adding a format = one file + one line in DECODERS.
 */
import type { RawHeaders } from "../types.js";
import { ariaDecoder } from "./bond/aria.js";
import { appInsightsDecoder } from "./json/appinsights.js";
import { decodeContentEncoding, effectiveContentEncoding, effectiveContentType } from "./content-encoding.js";
import { formDecoder, genericJsonDecoder, multipartDecoder, opaqueDecoder } from "./generic.js";
import { oneCollectorBondDecoder } from "./bond/onecollector.js";
import { oneCollectorJsonDecoder } from "./json/onecollector.js";
import {
  DEFAULT_DECODE_LIMITS,
  DecodeError,
  type DecodeContext,
  type DecodedEvent,
  type Decoder,
  type DecodeLimits,
  type Finding,
} from "./types.js";
import { uploadFacts, type UploadFacts } from "./upload-facts.js";

/** In order of preference when several claim the same input. `opaque` is the fallback, not listed. */
export const DECODERS: readonly Decoder[] = [
  oneCollectorBondDecoder,
  ariaDecoder,
  oneCollectorJsonDecoder,
  appInsightsDecoder,
  genericJsonDecoder,
  formDecoder,
  multipartDecoder,
];

export interface UploadInput {
  method: string;
  /** Path and query as requested. */
  path: string;
  headers: RawHeaders;
  body: Uint8Array;
}

export interface DecodedUpload {
  /** `id@version` of the decoder that produced the events, so stale rows can be found. */
  decoder: string;
  /** Content encodings undone, outermost first. */
  encodings: string[];
  events: DecodedEvent[];
  findings: Finding[];
  facts: UploadFacts;
}

/** Sniff score a decoder must reach to be chosen without a table match. */
const SNIFF_THRESHOLD = 0.5;

export function decoderTag(d: Decoder): string {
  return `${d.id}@${d.version}`;
}

/** The tags of every decoder as they are now: rows decoded with anything else are stale. */
export const CURRENT_DECODER_TAGS: ReadonlySet<string> = new Set([...DECODERS, opaqueDecoder].map(decoderTag));

/**
 * Table first, like Wireshark: decoders claiming both the content type and the path, then the path
 * alone, then the content type alone; within a tier the best sniff wins. If nobody in the tier
 * recognises the bytes, a decoder elsewhere that is sure of them (sniff ≥ 0.9) wins, else the
 * tier's first decoder (so a damaged body still gets a decode error with its offset). Without any
 * table match, the best sniff above 0.5; otherwise `opaque`.
 */
export function chooseDecoder(body: Uint8Array, ctx: DecodeContext): Decoder {
  const sniffed = (d: Decoder) => {
    try {
      return d.sniff ? d.sniff(body) : 0;
    } catch {
      return 0;
    }
  };
  const best = (list: readonly Decoder[], threshold: number) => {
    let choice: Decoder | undefined;
    let score = threshold;
    for (const d of list) {
      const s = sniffed(d);
      if (s > score) {
        score = s;
        choice = d;
      }
    }
    return choice;
  };
  const byType = (d: Decoder) => d.contentTypes?.includes(ctx.contentType) ?? false;
  const byPath = (d: Decoder) => d.paths?.some((re) => re.test(ctx.path)) ?? false;
  const tiers = [
    DECODERS.filter((d) => byType(d) && byPath(d)),
    DECODERS.filter((d) => !byType(d) && byPath(d)),
    DECODERS.filter((d) => byType(d) && !byPath(d)),
  ];
  for (const tier of tiers) {
    if (tier.length === 0) continue;
    return best(tier, 0) ?? best(DECODERS, 0.9) ?? tier[0];
  }
  return best(DECODERS, SNIFF_THRESHOLD) ?? opaqueDecoder;
}

/**
 * Decodes one captured upload. Never throws: a body that cannot be decoded keeps its raw bytes
 * in the store, gets findings (with byte offsets), and the events decoded before the fault.
 */
export function decodeUpload(input: UploadInput, limits: DecodeLimits = DEFAULT_DECODE_LIMITS): DecodedUpload {
  const ctx = contextOf(input, limits);
  const { headers, query } = ctx;
  const facts = uploadFacts(headers, query);
  const findings: Finding[] = [];
  let body: Uint8Array;
  let encodings: string[] = [];
  try {
    const decoded = decodeContentEncoding(input.body, effectiveContentEncoding(headers, query));
    body = decoded.body;
    encodings = decoded.applied;
    findings.push(...decoded.findings);
  } catch (e) {
    findings.push(findingOf(e, "encoding.failed"));
    return { decoder: decoderTag(opaqueDecoder), encodings, events: opaqueDecoder.decode(input.body, ctx).events, findings, facts };
  }
  if (body.length === 0) return { decoder: "none", encodings, events: [], findings, facts };
  const decoder = chooseDecoder(body, ctx);
  try {
    const result = decoder.decode(body, ctx);
    return { decoder: decoderTag(decoder), encodings, events: result.events, findings: [...findings, ...result.findings], facts };
  } catch (e) {
    const partial = e instanceof DecodeError ? e.partial : { events: [], findings: [] };
    findings.push(...partial.findings, findingOf(e, "decode.failed"));
    // Nothing decoded at all: still show the upload as an opaque event.
    const events = partial.events.length ? partial.events : opaqueDecoder.decode(body, ctx).events;
    return { decoder: decoderTag(decoder), encodings, events, findings, facts };
  }
}

/**
 * How many events an upload holds, for a sinkhole's `{"acc":N}`: its content encoding undone (with
 * the same caps), the decoder chosen as decodeUpload would, and that decoder's cheap count; 0 when
 * the decoder has none (the count is informational to clients) or the body cannot be read.
 */
export function countUploadRecords(input: UploadInput, limits: DecodeLimits = DEFAULT_DECODE_LIMITS): number {
  const ctx = contextOf(input, limits);
  try {
    const { body } = decodeContentEncoding(input.body, effectiveContentEncoding(ctx.headers, ctx.query));
    if (body.length === 0) return 0;
    return chooseDecoder(body, ctx).countRecords?.(body, limits) ?? 0;
  } catch {
    return 0;
  }
}

function contextOf(input: UploadInput, limits: DecodeLimits): DecodeContext {
  const q = input.path.indexOf("?");
  const query = new URLSearchParams(q === -1 ? "" : input.path.slice(q + 1));
  return {
    method: input.method,
    path: q === -1 ? input.path : input.path.slice(0, q),
    query,
    contentType: effectiveContentType(input.headers, query),
    headers: input.headers,
    limits,
  };
}

function findingOf(e: unknown, fallbackCode: "encoding.failed" | "decode.failed"): Finding {
  if (e instanceof DecodeError) {
    return { code: e.code, severity: "error", message: e.message, offset: e.offset };
  }
  // A decoder bug, not a bad body: say so, with the message only.
  return { code: `${fallbackCode}.internal`, severity: "error", message: (e as Error)?.message ?? String(e) };
}
