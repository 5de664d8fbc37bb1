/**
 * What decoders produce: plain data, no I/O. A decoder turns one upload body into events, and every
 * event into a flat list of fields with the annotations the client itself put on the wire.
 */
import type { DECODE_FINDINGS, DecodeFindingCode, DecodeFindingCodeOf } from "./findings.js";
import type { RawHeaders } from "../types.js";

/** Value types as the wire declares them (Bond ValueKind, JSON `t` tags, Aria typed maps) or as observed. */
export type FieldType =
  "string" | "bool" | "int32" | "uint32" | "int64" | "uint64" | "double" | "datetime" | "guid" | "null" | "array" | "bytes";

/** Which part of a Common Schema event a field belongs to; `body` for formats without parts. */
export type FieldPart = "envelope" | "A" | "B" | "C" | "body";

/** A JSON-representable value. 64-bit integers beyond 2^53 are kept exact as decimal strings. */
export type FieldValue = string | number | boolean | null | FieldValue[];

export interface FieldAnnotations {
  /** PIIKind (wire-formats.md §2.6), 1..15; absent when not tagged. */
  piiKind?: number;
  /** The customer-content bit / CustomerContentKind. */
  customerContent?: boolean;
  /** The raw JSON `ext.metadata.f` tag (`t`) or Bond ValueKind, for the record. */
  wireType?: number;
  /** Aria PII ScrubType (1 O365, 2 SkypeBI, 3 SkypeData). */
  scrubType?: number;
}

export interface DecodedField {
  /**
   * The path a user types to filter. Part A: `ext.<extension>.<field>` (`ext.device.localId`); Part B:
   * `data.baseData.<key>`; Part C: the key verbatim (`Data.Doc.Ext` stays one name, never split),
   * under `data.` only where the key would read as an envelope field (`data.name`; src/decode/paths.ts);
   * envelope: `name`, `time`, `ver`, `iKey`, `flags`, `popSample`, `cV`, `data.baseType`.
   * Nested JSON objects join with dots; arrays of scalars are one field (type `array`), arrays
   * holding objects are walked into indexed paths (`exceptions[0].parsedStack[3].fileName`).
   */
  path: string;
  part: FieldPart;
  value: FieldValue;
  type: FieldType;
  annotations?: FieldAnnotations;
}

export interface DecodedEvent {
  /** Position of the event in its upload (0-based). */
  index: number;
  /** Event name (`Office.Word.FileOpen`); formats without names use a descriptive pseudo-name. */
  name: string;
  /** ISO 8601 UTC, when the event carries a time. */
  time?: string;
  /** Tenant: `o:<tenantId>` for 1DS, the tenant token for Aria. */
  iKey?: string;
  /** Byte range of the event in the decoded (decompressed) body, where the format has one. */
  byteRange?: [start: number, end: number];
  fields: DecodedField[];
}

export type FindingSeverity = "error" | "warning" | "info";

/** A problem or remark about the bytes, like Wireshark's expert items: a stable dotted code and a byte range. */
interface FindingOf<C extends DecodeFindingCode> {
  /** Registered in src/decode/findings.ts (severity, summary) and docs/decode-findings.md. */
  code: C;
  /** The severity the registry gives the code: a finding cannot say otherwise (it does not compile). */
  severity: (typeof DECODE_FINDINGS)[C]["severity"];
  message: string;
  offset?: number;
  length?: number;
  eventIndex?: number;
}

/** A remark about a body: one of the registered codes, with the severity registered for it. */
export type Finding = { [C in DecodeFindingCode]: FindingOf<C> }[DecodeFindingCode];

export interface DecodeLimits {
  /** Maximum nesting depth of structs/containers. */
  maxDepth: number;
  /** Maximum number of events in one body. */
  maxEvents: number;
  /** Maximum fields per event. */
  maxFieldsPerEvent: number;
}

export const DEFAULT_DECODE_LIMITS: DecodeLimits = { maxDepth: 64, maxEvents: 100_000, maxFieldsPerEvent: 10_000 };

/** What a decoder may know about the upload besides its bytes. */
export interface DecodeContext {
  method: string;
  /** Path without the query string. */
  path: string;
  query: URLSearchParams;
  /** Effective content type: the `content-type` query parameter wins over the header (1DS beacons). */
  contentType: string;
  headers: RawHeaders;
  limits: DecodeLimits;
}

export interface DecodeResult {
  events: DecodedEvent[];
  findings: Finding[];
}

/**
 * One wire format. Chosen by table (content type, path), then by the best sniff score, then
 * `opaque`. `sniff` must be cheap and never throw; `decode` may throw a DecodeError, and the
 * registry keeps the events decoded before the fault (return them through DecodeError.partial).
 */
export interface Decoder {
  id: string;
  version: number;
  /** Content types (lower case, without parameters) this decoder claims. */
  contentTypes?: string[];
  /** Paths (without query) this decoder claims, tested after content types. */
  paths?: RegExp[];
  /** 0 = not mine … 1 = certainly mine, from the first bytes of the (decompressed) body. */
  sniff?(body: Uint8Array): number;
  decode(body: Uint8Array, ctx: DecodeContext): DecodeResult;
  /**
   * How many records (events) the body holds, found without building fields: what a sinkholed
   * upload is acknowledged with (`{"acc":N}`). Runs on the proxy's thread, so it must be cheap; a
   * malformed body counts the records before the fault.
   */
  countRecords?(body: Uint8Array, limits: DecodeLimits): number;
}

/** A malformed body: where and what. `partial` carries what was decoded before the fault. */
export class DecodeError extends Error {
  constructor(
    readonly code: DecodeFindingCodeOf<"error">,
    message: string,
    readonly offset: number,
    readonly partial: DecodeResult = { events: [], findings: [] },
  ) {
    super(message);
    this.name = "DecodeError";
  }
}
