/**
 * Flattening JSON values into decoded fields (dotted paths, types, `ext.metadata` type/PII tags),
 * within the per-event field and depth limits. Shared by every JSON-shaped decoder.
 */
import type { DecodeLimits, DecodedField, FieldAnnotations, FieldPart, FieldType, FieldValue, Finding } from "../types.js";
import { BigIntLiteral, isJsonObject, own, type JsonObject, type JsonValue } from "./exact.js";

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

/** The decoders that flatten JSON-shaped values; their too-many-fields / too-deep codes carry the name. */
export type FlattenerFamily = "json" | "appinsights" | "form" | "multipart";

/** Findings for an event whose fields were cut by the limits. */
export function flattenerFindings(fl: Flattener, prefix: FlattenerFamily, eventIndex: number, range?: [number, number]): Finding[] {
  const out: Finding[] = [];
  const where = range ? { offset: range[0], length: range[1] - range[0] } : {};
  if (fl.dropped > 0) {
    out.push({
      code: `${prefix}.too-many-fields`,
      severity: "warning",
      message: `${fl.dropped} fields beyond the limit of ${fl.maxFields} not decoded`,
      eventIndex,
      ...where,
    });
  }
  if (fl.tooDeep) {
    out.push({
      code: `${prefix}.too-deep`,
      severity: "warning",
      message: `values nested deeper than ${fl.maxDepth} levels not decoded`,
      eventIndex,
      ...where,
    });
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
    const out = new Array<FieldValue>(v.length);
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
const TYPE_CODES: Array<FieldType | undefined> = [
  undefined,
  "string",
  "int32",
  "uint32",
  "int64",
  "uint64",
  "double",
  "bool",
  "guid",
  "datetime",
];

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

/** Adds a field, or counts it as dropped beyond the per-event limit. */
export function pushField(fl: Flattener, field: DecodedField): void {
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
