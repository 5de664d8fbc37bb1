/** Small helpers shared by the decoder tests. */
import {
  DEFAULT_DECODE_LIMITS,
  DecodeError,
  type DecodeContext,
  type DecodedField,
  type DecodeLimits,
  type FieldAnnotations,
  type FieldValue,
} from "../../src/decode/types.js";

/** A DecodeContext as the pipeline builds it for a POST of `contentType` to `path`; default limits but for `limits`. */
export function postContext(path: string, contentType: string, limits: Partial<DecodeLimits> = {}): DecodeContext {
  return {
    method: "POST",
    path,
    query: new URLSearchParams(),
    contentType,
    headers: [["Content-Type", contentType]],
    limits: { ...DEFAULT_DECODE_LIMITS, ...limits },
  };
}

/** Bytes typed out as hex, spaces allowed: fixtures written by hand from the spec. */
export function fromHex(hex: string): Uint8Array {
  const clean = hex.replace(/\s+/g, "");
  return Uint8Array.from(clean.match(/../g)!.map((b) => parseInt(b, 16)));
}

export const toHex = (b: Uint8Array): string => Buffer.from(b).toString("hex");

/** The one field at `path`; throws when there is none or more than one. */
export function field(fields: DecodedField[], path: string): DecodedField {
  const f = fields.filter((x) => x.path === path);
  if (f.length !== 1) throw new Error(`${f.length} fields at ${path}: ${JSON.stringify(fields.map((x) => x.path))}`);
  return f[0];
}

/** The DecodeError `fn` throws; throws itself when `fn` returns or throws anything else. */
export function decodeError(fn: () => unknown): DecodeError {
  try {
    fn();
  } catch (e) {
    if (e instanceof DecodeError) return e;
    throw e;
  }
  throw new Error("expected a DecodeError");
}

/** A decoded field as a decoder would hand it to the classifier, its type read off the value. */
export function makeField(path: string, value: FieldValue, annotations?: FieldAnnotations, part: DecodedField["part"] = "C"): DecodedField {
  const type: DecodedField["type"] =
    typeof value === "string"
      ? "string"
      : typeof value === "boolean"
        ? "bool"
        : typeof value === "number"
          ? Number.isInteger(value)
            ? "int64"
            : "double"
          : Array.isArray(value)
            ? "array"
            : "null";
  return annotations ? { path, part, value, type, annotations } : { path, part, value, type };
}
