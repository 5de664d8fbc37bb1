/**
 * 1DS JSON (`application/x-json-stream`, wire-formats.md §2): one Common Schema event per line.
 * Envelope keys, `ext.<extension>.<field>` (Part A), `data.baseData.*` (Part B) and every other
 * key of `data` verbatim (Part C). `ext.metadata.f` type/PII tags (§2.5) become field types and
 * annotations; integers beyond 2^53 are kept exact as decimal strings.
 */
import type { DecodeContext, DecodeLimits, DecodeResult, DecodedEvent, Decoder, Finding } from "../types.js";
import { asBuffer, isJsonObject, own, type JsonObject } from "./exact.js";
import { isSpace, type JsonRecord } from "./framing.js";
import { emitJson, flattenerFindings, newFlattener } from "./flatten.js";
import { decodeJsonUpload, emitBaseType, emitEnvelopeKeys, emitPartsBC, jsonEvent } from "./common-schema.js";

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
    findings.push({
      code: "json.no-name",
      severity: "warning",
      message: "event has no name",
      eventIndex: index,
      ...(rec.range ? { offset: rec.range[0] } : {}),
    });
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
    for (let pos = 0; pos < buf.length && n < limits.maxEvents;) {
      let s = pos;
      while (s < buf.length && isSpace(buf[s])) s++;
      if (buf[s] === 0x7b /* { */) n++;
      const nl = buf.indexOf(0x0a, s);
      pos = nl === -1 ? buf.length : nl + 1;
    }
    return n;
  },
};
