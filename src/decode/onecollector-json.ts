/**
 * 1DS JSON (`application/x-json-stream`, wire-formats.md §2): one Common Schema event per line.
 * Envelope keys, `ext.<extension>.<field>` (Part A), `data.baseData.*` (Part B) and every other
 * key of `data` verbatim (Part C). `ext.metadata.f` type/PII tags (§2.5) become field types and
 * annotations; integers beyond 2^53 are kept exact as decimal strings.
 *
 * The JSON helpers here (exact parsing, line framing, flattening) are shared by the App Insights
 * and generic JSON decoders.
 */
import { DecodeError } from "./types.js";
import { partCPath } from "./paths.js";
import type { DecodeContext, DecodedEvent, DecodedField, Decoder, DecodeLimits, DecodeResult, FieldAnnotations, FieldPart, FieldType, FieldValue, Finding } from "./types.js";

// ---------------------------------------------------------------------------------------------
// Exact JSON: JSON.parse, unless the text holds an integer literal too long to be safe.

/** An integer literal outside ±(2^53 − 1), kept as its decimal text. */
export class BigIntLiteral {
  constructor(readonly text: string) {}
}

export type JsonValue = string | number | boolean | null | BigIntLiteral | JsonValue[] | { [key: string]: JsonValue };
export type JsonObject = { [key: string]: JsonValue };

/** A syntax error with the character position in the parsed text. */
export class JsonSyntaxError extends Error {
  constructor(
    message: string,
    readonly position: number,
  ) {
    super(message);
    this.name = "JsonSyntaxError";
  }
}

/** An integer literal of 16+ digits right after `:`, `,` or `[` (may also hit inside a string: then we are merely slower). */
const LONG_INTEGER = /[:,[]\s*-?\d{16}/;
/** Nesting cap of the exact parser (its recursion); flattening applies the smaller DecodeLimits.maxDepth. */
const EXACT_PARSER_MAX_DEPTH = 1000;

/**
 * Parses JSON text like JSON.parse, but integers beyond 2^53 come back as BigIntLiteral. The common
 * case (no 16-digit integer literal in the text) is plain JSON.parse. Throws JsonSyntaxError.
 */
export function parseJsonExact(text: string): JsonValue {
  if (!LONG_INTEGER.test(text)) {
    try {
      return JSON.parse(text) as JsonValue;
    } catch (e) {
      // V8 does not always say where: the exact parser does (error path only, so its cost is fine).
      try {
        new ExactParser(text).parseDocument();
      } catch (located) {
        if (located instanceof JsonSyntaxError) throw located;
      }
      const m = /position (\d+)/.exec((e as Error).message);
      throw new JsonSyntaxError((e as Error).message, m ? Number(m[1]) : 0);
    }
  }
  return new ExactParser(text).parseDocument();
}

const NUMBER = /-?(?:0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/y;
/** A string without escapes or control characters (the common case), as one native match. */
const SIMPLE_STRING = /"[^"\\\u0000-\u001f]*"/y;

class ExactParser {
  private pos = 0;
  constructor(private readonly s: string) {}

  parseDocument(): JsonValue {
    const v = this.value(0);
    this.ws();
    if (this.pos < this.s.length) this.fail("unexpected data after JSON value");
    return v;
  }

  private fail(what: string): never {
    throw new JsonSyntaxError(`${what} in JSON at position ${this.pos}`, this.pos);
  }

  private ws(): void {
    const s = this.s;
    let p = this.pos;
    for (;;) {
      const c = s.charCodeAt(p);
      if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) p++;
      else break;
    }
    this.pos = p;
  }

  private value(depth: number): JsonValue {
    this.ws();
    const c = this.s.charCodeAt(this.pos);
    if (c === 0x7b /* { */) return this.object(depth + 1);
    if (c === 0x5b /* [ */) return this.array(depth + 1);
    if (c === 0x22 /* " */) return this.string();
    if (c === 0x2d || (c >= 0x30 && c <= 0x39)) return this.number();
    if (this.s.startsWith("true", this.pos)) return (this.pos += 4), true;
    if (this.s.startsWith("false", this.pos)) return (this.pos += 5), false;
    if (this.s.startsWith("null", this.pos)) return (this.pos += 4), null;
    return this.fail(this.pos >= this.s.length ? "unexpected end" : "unexpected token");
  }

  private object(depth: number): JsonObject {
    if (depth > EXACT_PARSER_MAX_DEPTH) this.fail("nesting too deep");
    this.pos++;
    const out: JsonObject = {};
    this.ws();
    if (this.s.charCodeAt(this.pos) === 0x7d) return this.pos++, out;
    for (;;) {
      this.ws();
      if (this.s.charCodeAt(this.pos) !== 0x22) this.fail("expected property name");
      const key = this.string();
      this.ws();
      if (this.s.charCodeAt(this.pos) !== 0x3a) this.fail("expected ':'");
      this.pos++;
      const v = this.value(depth);
      // Like JSON.parse: an own property even for "__proto__"; the last duplicate wins.
      if (key === "__proto__") Object.defineProperty(out, key, { value: v, enumerable: true, writable: true, configurable: true });
      else out[key] = v;
      this.ws();
      const c = this.s.charCodeAt(this.pos);
      this.pos++;
      if (c === 0x2c) continue;
      if (c === 0x7d) return out;
      this.pos--;
      this.fail("expected ',' or '}'");
    }
  }

  private array(depth: number): JsonValue[] {
    if (depth > EXACT_PARSER_MAX_DEPTH) this.fail("nesting too deep");
    this.pos++;
    const out: JsonValue[] = [];
    this.ws();
    if (this.s.charCodeAt(this.pos) === 0x5d) return this.pos++, out;
    for (;;) {
      out.push(this.value(depth));
      this.ws();
      const c = this.s.charCodeAt(this.pos);
      this.pos++;
      if (c === 0x2c) continue;
      if (c === 0x5d) return out;
      this.pos--;
      this.fail("expected ',' or ']'");
    }
  }

  private string(): string {
    const s = this.s;
    const start = this.pos;
    SIMPLE_STRING.lastIndex = start;
    if (SIMPLE_STRING.test(s)) {
      this.pos = SIMPLE_STRING.lastIndex;
      return s.slice(start + 1, this.pos - 1);
    }
    let p = start + 1;
    let escaped = false;
    for (;;) {
      if (p >= s.length) {
        this.pos = p;
        this.fail("unterminated string");
      }
      const c = s.charCodeAt(p);
      if (c === 0x22) break;
      if (c < 0x20) {
        this.pos = p;
        this.fail("control character in string");
      }
      if (c === 0x5c) {
        escaped = true;
        p += 2;
      } else p++;
    }
    this.pos = p + 1;
    if (!escaped) return s.slice(start + 1, p);
    try {
      return JSON.parse(s.slice(start, p + 1)) as string;
    } catch {
      this.pos = start;
      return this.fail("bad escape in string");
    }
  }

  private number(): number | BigIntLiteral {
    NUMBER.lastIndex = this.pos;
    const m = NUMBER.exec(this.s);
    if (!m) return this.fail("bad number");
    this.pos += m[0].length;
    const n = Number(m[0]);
    if (m[1] === undefined && m[2] === undefined && !Number.isSafeInteger(n)) return new BigIntLiteral(m[0]);
    return n;
  }
}

/**
 * The byte offset in `buf` (from `start`) of UTF-16 position `position` in `buf.toString("utf8",
 * start, end)`. Walks the bytes as the WHATWG UTF-8 decoder does, so invalid sequences, each
 * decoded to one U+FFFD, map back to the bytes they came from: re-encoding the text would not.
 */
export function utf8ByteOffset(buf: Uint8Array, start: number, end: number, position: number): number {
  let units = 0;
  let i = start;
  while (i < end && units < position) {
    const b = buf[i];
    let need = 0;
    let lower = 0x80;
    let upper = 0xbf;
    if (b < 0x80) need = 0;
    else if (b >= 0xc2 && b <= 0xdf) need = 1;
    else if (b >= 0xe0 && b <= 0xef) {
      need = 2;
      if (b === 0xe0) lower = 0xa0;
      if (b === 0xed) upper = 0x9f;
    } else if (b >= 0xf0 && b <= 0xf4) {
      need = 3;
      if (b === 0xf0) lower = 0x90;
      if (b === 0xf4) upper = 0x8f;
    } else {
      // Not a lead byte: one U+FFFD.
      units++;
      i++;
      continue;
    }
    let j = i + 1;
    let got = 0;
    while (got < need && j < end && buf[j] >= lower && buf[j] <= upper) {
      lower = 0x80;
      upper = 0xbf;
      got++;
      j++;
    }
    // A complete sequence is one character (two units above U+FFFF); a cut one is one U+FFFD and
    // the byte that broke it starts over.
    units += got === need && need === 3 ? 2 : 1;
    i = j;
  }
  return i;
}

export const isJsonObject = (v: unknown): v is JsonObject =>
  v !== null && typeof v === "object" && !Array.isArray(v) && !(v instanceof BigIntLiteral);

/** Own property only: JSON keys such as `constructor` or `__proto__` must not reach Object.prototype. */
export function own(o: JsonObject, key: string): JsonValue | undefined {
  return Object.hasOwn(o, key) ? o[key] : undefined;
}

export function asBuffer(body: Uint8Array): Buffer {
  return Buffer.isBuffer(body) ? body : Buffer.from(body.buffer, body.byteOffset, body.byteLength);
}

// ---------------------------------------------------------------------------------------------
// Framing: JSON lines, a JSON array of objects, or one (possibly pretty-printed) object.

export interface JsonRecord {
  value: JsonObject;
  /** Byte range in the body; absent for the elements of a JSON array. */
  range?: [number, number];
}

/** Bad lines reported one by one; beyond this, one summary finding. */
const MAX_BAD_LINE_FINDINGS = 100;

const isSpace = (c: number) => c === 0x20 || c === 0x09 || c === 0x0d || c === 0x0a;

/**
 * Splits a body into JSON objects. Lines that do not parse become `json.bad-line` findings and
 * the others still decode; a body whose first non-space byte is `[` is read as one array of objects.
 * Throws DecodeError `json.invalid` when there was content but nothing decoded.
 */
export function readJsonRecords(body: Uint8Array, limits: DecodeLimits, findings: Finding[]): JsonRecord[] {
  const buf = asBuffer(body);
  const len = buf.length;
  let first = buf.length >= 3 && buf[0] === 0xef && buf[1] === 0xbb && buf[2] === 0xbf ? 3 : 0;
  while (first < len && isSpace(buf[first])) first++;
  if (first >= len) {
    findings.push({ code: "json.empty", severity: "info", message: "body holds no JSON", offset: 0, length: len });
    return [];
  }
  if (buf[first] === 0x5b /* [ */) return readJsonArray(buf, first, limits, findings);

  const records: JsonRecord[] = [];
  const bad: Finding[] = [];
  let pos = first;
  while (pos < len) {
    const nl = buf.indexOf(0x0a, pos);
    const lineEnd = nl === -1 ? len : nl;
    let s = pos;
    let e = lineEnd;
    while (s < e && isSpace(buf[s])) s++;
    while (e > s && isSpace(buf[e - 1])) e--;
    pos = lineEnd + 1;
    if (s === e) continue;
    if (records.length >= limits.maxEvents) {
      findings.push({
        code: "json.too-many-events",
        severity: "warning",
        message: `more than ${limits.maxEvents} events; the rest is not decoded`,
        offset: s,
        length: len - s,
      });
      break;
    }
    const text = buf.toString("utf8", s, e);
    let value: JsonValue;
    try {
      value = parseJsonExact(text);
    } catch (err) {
      const at = err instanceof JsonSyntaxError ? utf8ByteOffset(buf, s, e, err.position) - s : 0;
      bad.push({
        code: "json.bad-line",
        severity: "error",
        message: `line at byte ${s} is not valid JSON: ${(err as Error).message} (byte ${s + at})`,
        offset: s,
        length: e - s,
      });
      continue;
    }
    if (!isJsonObject(value)) {
      bad.push({ code: "json.bad-line", severity: "error", message: `line at byte ${s} is JSON but not an object`, offset: s, length: e - s });
      continue;
    }
    records.push({ value, range: [s, e] });
  }
  if (records.length === 0 && bad.length > 0) {
    // Perhaps one pretty-printed object spread over several lines.
    const whole = tryWhole(buf, first);
    if (whole) {
      findings.push({ code: "json.not-lines", severity: "info", message: "body is one multi-line JSON object, not JSON lines", offset: first });
      return [{ value: whole, range: [first, len] }];
    }
    findings.push(...bad.slice(0, MAX_BAD_LINE_FINDINGS));
    throw new DecodeError("json.invalid", `no line of the body is a JSON object (${bad.length} bad)`, bad[0].offset ?? 0, {
      events: [],
      findings: [...findings],
    });
  }
  findings.push(...bad.slice(0, MAX_BAD_LINE_FINDINGS));
  if (bad.length > MAX_BAD_LINE_FINDINGS) {
    const rest = bad.length - MAX_BAD_LINE_FINDINGS;
    findings.push({ code: "json.bad-line", severity: "error", message: `${rest} more lines are not valid JSON objects`, offset: bad[MAX_BAD_LINE_FINDINGS].offset });
  }
  return records;
}

function tryWhole(buf: Buffer, first: number): JsonObject | undefined {
  try {
    const v = parseJsonExact(buf.toString("utf8", first));
    return isJsonObject(v) ? v : undefined;
  } catch {
    return undefined;
  }
}

function readJsonArray(buf: Buffer, first: number, limits: DecodeLimits, findings: Finding[]): JsonRecord[] {
  const text = buf.toString("utf8", first);
  let value: JsonValue;
  try {
    value = parseJsonExact(text);
  } catch (err) {
    const at = err instanceof JsonSyntaxError ? utf8ByteOffset(buf, first, buf.length, err.position) : first;
    throw new DecodeError("json.invalid", `body is not a valid JSON array: ${(err as Error).message}`, at, { events: [], findings: [...findings] });
  }
  const items = value as JsonValue[];
  const records: JsonRecord[] = [];
  for (let i = 0; i < items.length; i++) {
    if (records.length >= limits.maxEvents) {
      findings.push({ code: "json.too-many-events", severity: "warning", message: `more than ${limits.maxEvents} events; the rest is not decoded`, offset: first });
      break;
    }
    const item = items[i];
    if (isJsonObject(item)) records.push({ value: item });
    else findings.push({ code: "json.bad-item", severity: "error", message: `array element ${i} is not an object`, offset: first });
  }
  if (records.length === 0 && items.length > 0) {
    throw new DecodeError("json.invalid", "no element of the JSON array is an object", first, { events: [], findings: [...findings] });
  }
  return records;
}

// ---------------------------------------------------------------------------------------------
// Flattening JSON into fields.

export interface Flattener {
  fields: DecodedField[];
  maxFields: number;
  maxDepth: number;
  /** Fields not stored because of maxFields. */
  dropped: number;
  /** A subtree was cut at maxDepth. */
  tooDeep: boolean;
}

export function newFlattener(limits: DecodeLimits): Flattener {
  return { fields: [], maxFields: limits.maxFieldsPerEvent, maxDepth: limits.maxDepth, dropped: 0, tooDeep: false };
}

/** Findings for an event whose fields were cut by the limits. */
/** The decoders that flatten JSON-shaped values; their too-many-fields / too-deep codes carry the name. */
export type FlattenerFamily = "json" | "appinsights" | "form" | "multipart";

export function flattenerFindings(fl: Flattener, prefix: FlattenerFamily, eventIndex: number, range?: [number, number]): Finding[] {
  const out: Finding[] = [];
  const where = range ? { offset: range[0], length: range[1] - range[0] } : {};
  if (fl.dropped > 0) {
    out.push({ code: `${prefix}.too-many-fields`, severity: "warning", message: `${fl.dropped} fields beyond the limit of ${fl.maxFields} not decoded`, eventIndex, ...where });
  }
  if (fl.tooDeep) {
    out.push({ code: `${prefix}.too-deep`, severity: "warning", message: `values nested deeper than ${fl.maxDepth} levels not decoded`, eventIndex, ...where });
  }
  return out;
}

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
const UINT64_MAX = 2n ** 64n - 1n;

function bigType(text: string): { value: FieldValue; type: FieldType } {
  const n = BigInt(text);
  if (n >= INT64_MIN && n <= INT64_MAX) return { value: text, type: "int64" };
  if (n >= 0n && n <= UINT64_MAX) return { value: text, type: "uint64" };
  return { value: Number(text), type: "double" };
}

/** A JSON value as a FieldValue: objects inside arrays become JSON text; big integers stay decimal strings. */
export function toFieldValue(v: JsonValue, depth: number, fl: Flattener): FieldValue {
  if (v instanceof BigIntLiteral) return v.text;
  if (Array.isArray(v)) {
    if (depth >= fl.maxDepth) {
      fl.tooDeep = true;
      return null;
    }
    const out: FieldValue[] = new Array(v.length);
    for (let i = 0; i < v.length; i++) out[i] = toFieldValue(v[i], depth + 1, fl);
    return out;
  }
  if (v !== null && typeof v === "object") return stringifyBounded(v, depth, fl);
  return v;
}

/** JSON text of a value, cut (as `null`) below maxDepth so a deep value cannot exhaust the stack. */
export function stringifyBounded(v: JsonValue, depth: number, fl: Flattener): string {
  if (v instanceof BigIntLiteral) return v.text;
  if (v === null || typeof v !== "object") return JSON.stringify(v) ?? "null";
  if (depth >= fl.maxDepth) {
    fl.tooDeep = true;
    return "null";
  }
  if (Array.isArray(v)) return `[${v.map((x) => stringifyBounded(x, depth + 1, fl)).join(",")}]`;
  return `{${Object.keys(v)
    .map((k) => `${JSON.stringify(k)}:${stringifyBounded(v[k], depth + 1, fl)}`)
    .join(",")}}`;
}

/** EventPropertyType (§2.5) → FieldType; 0 and unknown codes mean "as observed". */
const TYPE_CODES: Array<FieldType | undefined> = [undefined, "string", "int32", "uint32", "int64", "uint64", "double", "bool", "guid", "datetime"];

export function observedType(v: JsonValue): FieldType {
  switch (typeof v) {
    case "string":
      return "string";
    case "boolean":
      return "bool";
    case "number":
      return Number.isSafeInteger(v) ? "int64" : "double";
    default:
      if (v === null) return "null";
      if (Array.isArray(v)) return "array";
      return v instanceof BigIntLiteral ? bigType(v.text).type : "string";
  }
}

/** Annotations and type of a bit-packed `t` tag: typeCode bits 0–3, piiKind bits 5–12, customer content bit 13. */
export function decodeTypeTag(t: number): { type?: FieldType; annotations: FieldAnnotations } {
  const annotations: FieldAnnotations = { wireType: t };
  const pii = Math.floor(t / 32) % 256;
  if (pii > 0) annotations.piiKind = pii;
  if (Math.floor(t / 8192) % 2 === 1) annotations.customerContent = true;
  return { type: TYPE_CODES[t % 16], annotations };
}

const validTag = (t: JsonValue | undefined): t is number => typeof t === "number" && Number.isSafeInteger(t) && t >= 0;

/** One field from a leaf value (scalar or array), typed by the tag `t` when there is one. */
export function makeField(path: string, part: FieldPart, v: JsonValue, depth: number, fl: Flattener, t?: number): DecodedField {
  let value: FieldValue;
  let type: FieldType;
  if (v instanceof BigIntLiteral) ({ value, type } = bigType(v.text));
  else if (Array.isArray(v)) {
    value = toFieldValue(v, depth, fl);
    type = "array";
  } else if (v !== null && typeof v === "object") {
    value = stringifyBounded(v, depth, fl);
    type = "string";
  } else {
    value = v;
    type = observedType(v);
  }
  if (t === undefined) return { path, part, value, type };
  const tag = decodeTypeTag(t);
  if (tag.type && type !== "array") type = tag.type;
  return { path, part, value, type, annotations: tag.annotations };
}

function pushField(fl: Flattener, field: DecodedField): void {
  if (fl.fields.length >= fl.maxFields) fl.dropped++;
  else fl.fields.push(field);
}

/**
 * Emits `v` at `path`: objects recurse with dotted paths (empty objects emit nothing), anything else
 * is one field. `tag` is the `ext.metadata.f` entry for this value, if any (`{t}`, `{f}`, `{a:{t}}` or a bare number).
 */
export function emitJson(fl: Flattener, path: string, part: FieldPart, v: JsonValue, depth: number, tag?: JsonValue): void {
  if (Array.isArray(v) && holdsObject(v, fl.maxDepth - depth)) {
    // An array of objects is walked into indexed paths (`exceptions[0].parsedStack[3].fileName`),
    // so each value is a field of its own that rules and detectors can see.
    if (depth >= fl.maxDepth) {
      fl.tooDeep = true;
      return;
    }
    const element = arrayElementTag(tag);
    for (let i = 0; i < v.length; i++) emitJson(fl, `${path}[${i}]`, part, v[i], depth + 1, element);
    return;
  }
  if (isJsonObject(v)) {
    if (depth >= fl.maxDepth) {
      fl.tooDeep = true;
      return;
    }
    const sub = tagChildren(tag);
    for (const k of Object.keys(v)) {
      emitJson(fl, `${path}.${k}`, part, v[k], depth + 1, sub ? own(sub, k) : undefined);
    }
    return;
  }
  pushField(fl, makeField(path, part, v, depth, fl, tagNumber(tag, Array.isArray(v))));
}

/** An object, or an array with an object somewhere inside. */
function holdsObject(v: JsonValue, depthLeft: number): boolean {
  if (depthLeft <= 0) return false;
  if (Array.isArray(v)) return v.some((e) => holdsObject(e, depthLeft - 1));
  return isJsonObject(v);
}

/** The tag of an array's elements: the `a` of `{a:{…}}`. */
function arrayElementTag(tag: JsonValue | undefined): JsonValue | undefined {
  return isJsonObject(tag) ? own(tag, "a") : undefined;
}

/** The nested `f` of a tag entry (for objects and baseData). */
function tagChildren(tag: JsonValue | undefined): JsonObject | undefined {
  if (!isJsonObject(tag)) return undefined;
  const f = own(tag, "f");
  return isJsonObject(f) ? f : undefined;
}

/** The `t` of a tag entry: `{t}`, `{a:{t}}` for arrays, or the bare number of the Windows form. */
function tagNumber(tag: JsonValue | undefined, isArray: boolean): number | undefined {
  if (tag === undefined) return undefined;
  if (validTag(tag)) return tag;
  if (!isJsonObject(tag)) return undefined;
  if (isArray) {
    const a = own(tag, "a");
    if (isJsonObject(a)) {
      const at = own(a, "t");
      if (validTag(at)) return at;
    }
  }
  const t = own(tag, "t");
  return validTag(t) ? t : undefined;
}

// ---------------------------------------------------------------------------------------------
// Time

const ISO_8601 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})$/;

/** An event time as ISO 8601: ISO strings as sent, epoch milliseconds and other dates converted. */
export function eventTime(v: JsonValue | undefined): string | undefined {
  if (typeof v === "string") {
    if (ISO_8601.test(v)) return v;
    const ms = Date.parse(v);
    return Number.isFinite(ms) ? new Date(ms).toISOString() : undefined;
  }
  if (typeof v === "number" && Number.isFinite(v) && Math.abs(v) <= 8.64e15) return new Date(v).toISOString();
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// Event layout shared by the 1DS and App Insights decoders: envelope keys at the top level, Part A
// under its own key (`ext`, `tags`), `data.baseType`, Part B in `data.baseData`, Part C in `data`.

/**
 * Every top-level key of `o` not in `skip` as an envelope field, except `partAKey` and `data` when
 * they hold objects: those are read as parts.
 */
export function emitEnvelopeKeys(fl: Flattener, o: JsonObject, partAKey: string, skip: readonly string[] = []): void {
  const partAIsObject = isJsonObject(own(o, partAKey));
  const dataIsObject = isJsonObject(own(o, "data"));
  for (const k of Object.keys(o)) {
    if (skip.includes(k) || (k === partAKey && partAIsObject) || (k === "data" && dataIsObject)) continue;
    emitJson(fl, k, "envelope", o[k], 1);
  }
}

/** `data.baseType` as an envelope field; returns `data.baseData`, which goes out later as Part B. */
export function emitBaseType(fl: Flattener, data: JsonObject): JsonValue | undefined {
  const baseType = own(data, "baseType");
  if (baseType !== undefined) emitJson(fl, "data.baseType", "envelope", baseType, 2);
  return own(data, "baseData");
}

/** Part B (`baseData`) and Part C (every other key of `data`, verbatim), each with its `ext.metadata` tag if any. */
export function emitPartsBC(fl: Flattener, data: JsonObject, baseData: JsonValue | undefined, tags?: JsonObject): void {
  if (baseData !== undefined) emitJson(fl, "data.baseData", "B", baseData, 2, tags ? own(tags, "baseData") : undefined);
  for (const k of Object.keys(data)) {
    if (k === "baseType" || k === "baseData") continue;
    // Part C keys are verbatim: "Data.Doc.Ext" is one field, never split.
    emitJson(fl, partCPath(k), "C", data[k], 2, tags ? own(tags, k) : undefined);
  }
}

/** The event of a record: its fields so far, and the time, iKey and byte range the record gives. */
export function jsonEvent(rec: JsonRecord, index: number, name: string, fl: Flattener): DecodedEvent {
  const o = rec.value;
  const iKey = own(o, "iKey");
  const event: DecodedEvent = { index, name, fields: fl.fields };
  const time = eventTime(own(o, "time"));
  if (time !== undefined) event.time = time;
  if (typeof iKey === "string") event.iKey = iKey;
  if (rec.range) event.byteRange = rec.range;
  return event;
}

/** A JSON upload decoded record by record with `decodeRecord`. */
export function decodeJsonUpload(
  body: Uint8Array,
  limits: DecodeLimits,
  decodeRecord: (rec: JsonRecord, index: number, limits: DecodeLimits, findings: Finding[]) => DecodedEvent,
): DecodeResult {
  const findings: Finding[] = [];
  const records = readJsonRecords(body, limits, findings);
  const events: DecodedEvent[] = new Array(records.length);
  for (let i = 0; i < records.length; i++) events[i] = decodeRecord(records[i], i, limits, findings);
  return { events, findings };
}

// ---------------------------------------------------------------------------------------------
// The 1DS decoder

/** Common Schema envelope keys that sit outside `ext` and `data`. */
const ENVELOPE_FIRST = ["ver", "name", "time", "iKey", "cV", "flags", "popSample"];

function decodeEvent(rec: JsonRecord, index: number, limits: DecodeLimits, findings: Finding[]): DecodedEvent {
  const o = rec.value;
  const fl = newFlattener(limits);
  // Envelope: the known keys first, then anything else at the top level except ext and data.
  for (const k of ENVELOPE_FIRST) {
    const v = own(o, k);
    if (v !== undefined) emitJson(fl, k, "envelope", v, 1);
  }
  emitEnvelopeKeys(fl, o, "ext", ENVELOPE_FIRST);
  const ext = own(o, "ext");
  const data = own(o, "data");
  const baseData = isJsonObject(data) ? emitBaseType(fl, data) : undefined;

  // Part A, with ext.metadata read as annotations.
  let tags: JsonObject | undefined;
  if (isJsonObject(ext)) {
    for (const name of Object.keys(ext)) {
      const e = ext[name];
      if (name === "metadata" && isJsonObject(e)) {
        tags = metadataTags(e);
        for (const mk of Object.keys(e)) {
          if (mk === "f" || mk.startsWith("f.")) continue;
          emitJson(fl, `ext.metadata.${mk}`, "A", e[mk], 3);
        }
        continue;
      }
      emitJson(fl, `ext.${name}`, "A", e, 2);
    }
  }

  if (isJsonObject(data)) emitPartsBC(fl, data, baseData, tags);

  const name = own(o, "name");
  const event = jsonEvent(rec, index, typeof name === "string" && name ? name : "(unnamed)", fl);
  if (event.name === "(unnamed)") {
    findings.push({ code: "json.no-name", severity: "warning", message: "event has no name", eventIndex: index, ...(rec.range ? { offset: rec.range[0] } : {}) });
  }
  findings.push(...flattenerFindings(fl, "json", index, rec.range));
  return event;
}

/**
 * The tag tree of `ext.metadata`: `f` as sent (`{t}` entries, nested `f`, `{a:{t}}`, or Windows'
 * bare numbers), plus any flattened `"f.<Field>": n` keys merged in.
 */
function metadataTags(meta: JsonObject): JsonObject | undefined {
  const f = own(meta, "f");
  let tags: JsonObject | undefined = isJsonObject(f) ? f : undefined;
  for (const k of Object.keys(meta)) {
    if (!k.startsWith("f.")) continue;
    tags = tags === f ? { ...tags } : (tags ?? {});
    Object.defineProperty(tags, k.slice(2), { value: meta[k], enumerable: true, writable: true, configurable: true });
  }
  return tags;
}

const SNIFF_WINDOW = 1024;

function sniffJsonObjectKeys(body: Uint8Array): { object: boolean; head: string } {
  let i = 0;
  if (body.length >= 3 && body[0] === 0xef && body[1] === 0xbb && body[2] === 0xbf) i = 3;
  while (i < body.length && isSpace(body[i])) i++;
  if (i >= body.length || body[i] !== 0x7b) return { object: false, head: "" };
  return { object: true, head: asBuffer(body).toString("latin1", i, Math.min(body.length, i + SNIFF_WINDOW)) };
}

export const oneCollectorJsonDecoder: Decoder = {
  id: "onecollector-json",
  // 2: arrays of objects walked into indexed paths; Part C keys never share an envelope path.
  version: 2,
  contentTypes: ["application/x-json-stream"],
  paths: [/\/OneCollector\//i],
  sniff(body) {
    const { object, head } = sniffJsonObjectKeys(body);
    if (!object) return 0;
    const hasExt = head.includes('"ext"');
    if (head.includes('"tags"') && !hasExt) return 0.3; // App Insights-like
    if (head.includes('"name"') || head.includes('"ver"')) return 0.9;
    if (hasExt || head.includes('"iKey"')) return 0.7;
    return 0.2;
  },
  decode(body: Uint8Array, ctx: DecodeContext): DecodeResult {
    return decodeJsonUpload(body, ctx.limits, decodeEvent);
  },
  countRecords(body: Uint8Array, limits: DecodeLimits): number {
    // One event per line: count the lines that open an object, without parsing them.
    const buf = asBuffer(body);
    let n = 0;
    for (let pos = 0; pos < buf.length && n < limits.maxEvents; ) {
      let s = pos;
      while (s < buf.length && isSpace(buf[s])) s++;
      if (buf[s] === 0x7b /* { */) n++;
      const nl = buf.indexOf(0x0a, s);
      pos = nl === -1 ? buf.length : nl + 1;
    }
    return n;
  },
};
