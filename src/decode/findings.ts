/**
 * Every decode finding code, with its severity and a one-line summary: the one table the decoders
 * name their findings from (`Finding.code` is a DecodeFindingCode, so a code not listed here does
 * not compile) and that docs/decode-findings.md is checked against (test/decode-findings.test.ts).
 * Add a code here first, then use it. Append new codes at the end of their family.
 */
import type { FindingSeverity } from "./types.js";

export interface FindingSpec {
  severity: FindingSeverity;
  summary: string;
}

type FlattenLimitCode<F extends string> = `${F}.too-many-fields` | `${F}.too-deep`;

/** The limits of flattening values into fields (json/flatten.ts), which every family that flattens reports under its own name. */
function flattenLimits<F extends string>(family: F): Record<FlattenLimitCode<F>, { severity: "warning"; summary: string }> {
  return {
    [`${family}.too-many-fields`]: { severity: "warning", summary: "more fields than the limit in one event" },
    [`${family}.too-deep`]: { severity: "warning", summary: "values nested deeper than the limit, not decoded" },
  } as Record<FlattenLimitCode<F>, { severity: "warning"; summary: string }>;
}

export const DECODE_FINDINGS = {
  "encoding.too-large": {
    severity: "error",
    summary: "decompressing would exceed the size cap (64 MiB by default): stored raw, never expanded",
  },
  "encoding.ratio": { severity: "error", summary: "decompression ratio above the cap (1000:1 past 1 MiB): a likely bomb, stored raw" },
  "encoding.corrupt": { severity: "error", summary: "the compressed stream is damaged" },
  "encoding.unsupported": { severity: "error", summary: "a Content-Encoding exhaust cannot undo (e.g. `compress`, `zstd` on Node 20)" },
  "encoding.undeclared": { severity: "warning", summary: "the body was compressed though no encoding was declared (sniffed)" },
  "encoding.mislabelled": { severity: "warning", summary: "the declared encoding is not the one used (e.g. zlib sent as gzip)" },
  "encoding.not-applied": { severity: "warning", summary: "an encoding was declared but the body is not compressed; decoded as it is" },
  "encoding.failed.internal": { severity: "error", summary: "content decoding failed inside exhaust (a bug)" },
  "decode.failed.internal": {
    severity: "error",
    summary: "a decoder failed inside exhaust (a bug, not a bad body); the body is shown as `opaque`",
  },
  "bond.truncated": { severity: "error", summary: "the Bond body ends inside a value" },
  "bond.bad-varint": { severity: "error", summary: "a varint longer than 10 bytes" },
  "bond.bad-type": { severity: "error", summary: "an unknown Bond wire type" },
  "bond.bad-list-header": { severity: "error", summary: "a container header with the top bits set (Compact Binary v2 is not used by 1DS)" },
  "bond.count": { severity: "error", summary: "a container count larger than the bytes left" },
  "bond.depth": { severity: "error", summary: "structs nested deeper than the limit" },
  "bond.unknown-field": { severity: "warning", summary: "a field id the schema does not know, skipped by its wire type" },
  "bond.type-mismatch": { severity: "warning", summary: "a known field sent with an unexpected wire type, skipped" },
  "bond.extension-count": { severity: "warning", summary: "an extension vector with more than one element; the first is used" },
  "bond.data-count": {
    severity: "warning",
    summary: "a property vector (`data`, `baseData`, `ext`) with more than one element; all are decoded",
  },
  "bond.bad-guid": { severity: "warning", summary: "a GUID that is not 16 bytes" },
  "bond.unknown-value-kind": { severity: "warning", summary: "a ValueKind outside 0–17" },
  "bond.missing-name": { severity: "warning", summary: "a Record without a name" },
  "bond.empty-record": { severity: "warning", summary: "a stray `00` between records" },
  "bond.too-many-events": { severity: "warning", summary: "more events than the limit; the rest are not decoded" },
  "bond.too-many-fields": { severity: "warning", summary: "more fields in one event than the limit; the rest are dropped" },
  "bond.too-many-findings": { severity: "warning", summary: "more than 1,000 findings in one body; the rest are dropped" },
  "bond.trailing-bytes": { severity: "warning", summary: "bytes after the Aria request's closing `00`" },
  "bond.skipped-struct": { severity: "info", summary: "an Aria legacy struct field (server schema) skipped" },
  "aria.count-patched": { severity: "info", summary: "the AWT JS SDK patched the record count in place and left stale bytes; skipped" },
  "json.invalid": { severity: "error", summary: "no line of a JSON-lines body parses" },
  "json.bad-line": { severity: "error", summary: "one line does not parse; the other lines are decoded" },
  "json.bad-item": { severity: "error", summary: "an array item that is not an event object" },
  "json.empty": { severity: "info", summary: "an empty body" },
  "json.not-lines": { severity: "info", summary: "a single pretty-printed object instead of JSON lines" },
  "json.no-name": { severity: "warning", summary: "an event without a `name`" },
  "json.too-many-events": { severity: "warning", summary: "more events than the limit" },
  ...flattenLimits("json"),
  ...flattenLimits("appinsights"),
  ...flattenLimits("form"),
  ...flattenLimits("multipart"),
  "multipart.no-boundary": { severity: "error", summary: "a multipart body without a boundary" },
  "multipart.no-parts": { severity: "error", summary: "no part found" },
  "multipart.truncated": { severity: "error", summary: "the body ends inside a part" },
  "multipart.boundary-sniffed": { severity: "warning", summary: "the boundary was taken from the body, not the content type" },
} as const satisfies Record<string, FindingSpec>;

export type DecodeFindingCode = keyof typeof DECODE_FINDINGS;

/** Whether a code (as stored in decode_findings) is one exhaust names. */
export function isDecodeFindingCode(code: string): code is DecodeFindingCode {
  return Object.hasOwn(DECODE_FINDINGS, code);
}

/** The codes registered with one severity: `warn()` takes only warnings. */
export type DecodeFindingCodeOf<S extends FindingSeverity> = {
  [C in DecodeFindingCode]: (typeof DECODE_FINDINGS)[C]["severity"] extends S ? C : never;
}[DecodeFindingCode];
