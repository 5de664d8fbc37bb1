/**
 * Framing of JSON uploads: JSON lines, a JSON array of objects, or one (possibly pretty-printed)
 * object, with a finding per bad line. Shared by the 1DS JSON, App Insights and generic decoders.
 */
import { DecodeError, type DecodeLimits, type Finding } from "../types.js";
import { JsonSyntaxError, asBuffer, isJsonObject, parseJsonExact, utf8ByteOffset, type JsonObject, type JsonValue } from "./exact.js";

export interface JsonRecord {
  value: JsonObject;
  /** Byte range in the body; absent for the elements of a JSON array. */
  range?: [number, number];
}

/** Bad lines reported one by one; beyond this, one summary finding. */
const MAX_BAD_LINE_FINDINGS = 100;

/** JSON whitespace (RFC 8259 §2). */
export const isSpace = (c: number) => c === 0x20 || c === 0x09 || c === 0x0d || c === 0x0a;

/** The finding that ends reading at the event limit. */
function tooManyEvents(limits: DecodeLimits, offset: number): Finding {
  return {
    code: "json.too-many-events",
    severity: "warning",
    message: `more than ${limits.maxEvents} events; the rest is not decoded`,
    offset,
  };
}

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
      findings.push({ ...tooManyEvents(limits, s), length: len - s });
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
      bad.push({
        code: "json.bad-line",
        severity: "error",
        message: `line at byte ${s} is JSON but not an object`,
        offset: s,
        length: e - s,
      });
      continue;
    }
    records.push({ value, range: [s, e] });
  }
  if (records.length === 0 && bad.length > 0) {
    // Perhaps one pretty-printed object spread over several lines.
    const whole = tryWhole(buf, first);
    if (whole) {
      findings.push({
        code: "json.not-lines",
        severity: "info",
        message: "body is one multi-line JSON object, not JSON lines",
        offset: first,
      });
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
    findings.push({
      code: "json.bad-line",
      severity: "error",
      message: `${rest} more lines are not valid JSON objects`,
      offset: bad[MAX_BAD_LINE_FINDINGS].offset,
    });
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
    throw new DecodeError("json.invalid", `body is not a valid JSON array: ${(err as Error).message}`, at, {
      events: [],
      findings: [...findings],
    });
  }
  const items = value as JsonValue[];
  const records: JsonRecord[] = [];
  for (let i = 0; i < items.length; i++) {
    if (records.length >= limits.maxEvents) {
      findings.push(tooManyEvents(limits, first));
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
