/**
 * Application Insights track uploads (`/v2/track`, `/v2.1/track`; wire-formats.md §1.1): a JSON
 * array of envelopes, or one envelope per line. Not Office/Windows telemetry, but it shows up in
 * captures. Envelope keys (`name`, `time`, `iKey`, `ver`, `sampleRate`, `seq`…) are the envelope;
 * `tags.<key>` is Part A; `data.baseData.*` (with `properties` and `measurements` flattened) is Part B.
 */
import { decodeJsonUpload, emitBaseType, emitEnvelopeKeys, emitPartsBC, jsonEvent } from "./common-schema.js";
import { isJsonObject, own } from "./exact.js";
import { emitJson, flattenerFindings, newFlattener } from "./flatten.js";
import { readJsonRecords, type JsonRecord } from "./framing.js";
import type { DecodeContext, DecodedEvent, Decoder, DecodeLimits, DecodeResult, Finding } from "../types.js";

function decodeEnvelope(rec: JsonRecord, index: number, limits: DecodeLimits, findings: Finding[]): DecodedEvent {
  const o = rec.value;
  const fl = newFlattener(limits);
  const tags = own(o, "tags");
  const data = own(o, "data");
  emitEnvelopeKeys(fl, o, "tags");
  const baseData = isJsonObject(data) ? emitBaseType(fl, data) : undefined;
  if (isJsonObject(tags)) {
    // Tag keys are dotted names ("ai.cloud.role"): kept verbatim after `tags.`.
    for (const k of Object.keys(tags)) emitJson(fl, `tags.${k}`, "A", tags[k], 2);
  }
  if (isJsonObject(data)) emitPartsBC(fl, data, baseData);
  const name = own(o, "name");
  const baseName = isJsonObject(baseData) ? own(baseData, "name") : undefined;
  const event = jsonEvent(
    rec,
    index,
    typeof name === "string" && name ? name : typeof baseName === "string" && baseName ? baseName : "(unnamed)",
    fl,
  );
  findings.push(...flattenerFindings(fl, "appinsights", index, rec.range));
  return event;
}

export const appInsightsDecoder: Decoder = {
  id: "appinsights",
  // 2: arrays of objects walked into indexed paths; Part C keys never share an envelope path.
  version: 2,
  paths: [/\/v2(\.1)?\/track/i],
  sniff(body) {
    let i = 0;
    while (i < body.length && (body[i] === 0x20 || body[i] === 0x0a || body[i] === 0x0d || body[i] === 0x09)) i++;
    if (i >= body.length || (body[i] !== 0x7b && body[i] !== 0x5b)) return 0;
    const head = Buffer.from(body.buffer, body.byteOffset + i, Math.min(body.length - i, 1024)).toString("latin1");
    if (head.includes("Microsoft.ApplicationInsights.")) return 0.8;
    if (head.includes('"tags"') && head.includes('"iKey"') && !head.includes('"ext"')) return 0.7;
    return head.includes('"baseData"') && !head.includes('"ext"') ? 0.3 : 0.1;
  },
  decode(body: Uint8Array, ctx: DecodeContext): DecodeResult {
    return decodeJsonUpload(body, ctx.limits, decodeEnvelope);
  },
  /** Envelopes in the upload (a JSON array or one per line), for a sinkhole's `itemsReceived`. */
  countRecords(body: Uint8Array, limits: DecodeLimits): number {
    try {
      return readJsonRecords(body, limits, []).length;
    } catch {
      return 0;
    }
  },
};
