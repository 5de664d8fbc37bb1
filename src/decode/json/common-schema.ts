/**
 * Common Schema event layout in JSON (wire-formats.md §2), shared by the 1DS and App Insights
 * decoders: envelope keys at the top level, Part A under its own key (`ext`, `tags`),
 * `data.baseType`, Part B in `data.baseData`, Part C in `data`; event times.
 */
import type { DecodeLimits, DecodeResult, DecodedEvent, Finding } from "../types.js";
import { partCPath } from "../paths.js";
import { isJsonObject, own, type JsonObject, type JsonValue } from "./exact.js";
import { readJsonRecords, type JsonRecord } from "./framing.js";
import { emitJson, type Flattener } from "./flatten.js";

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
  const events = new Array<DecodedEvent>(records.length);
  for (let i = 0; i < records.length; i++) events[i] = decodeRecord(records[i], i, limits, findings);
  return { events, findings };
}
