/**
 * A decode + classify thread of `exhaust import` (see ImportDecoders in ./decoders.ts): takes an
 * imported exchange's upload, decodes and classifies it exactly as ExchangeProcessor does, and
 * hands the result back to the import thread, which alone writes the database.
 */
import { parentPort } from "node:worker_threads";
import { EndpointCatalog } from "../catalog/endpoints.js";
import { classifyEvent, classifyRequest, loadRulePacks } from "../classify/engine.js";
import { decodeUpload } from "../decode/registry.js";
import type { FieldValue } from "../decode/types.js";
import type { StoredUpload } from "../store/event-store.js";
import type { Decoded, DecoderReply, DecoderRequest } from "./decoders.js";

const packs = loadRulePacks();
const catalog = EndpointCatalog.load();
const port = parentPort!;

/** The decode and classify stages of ExchangeProcessor.process, for an upload held in memory. */
function processUpload(upload: StoredUpload): Decoded {
  const decoded = decodeUpload(upload);
  const q = upload.path.indexOf("?");
  const query = new URLSearchParams(q === -1 ? "" : upload.path.slice(q + 1));
  const context = { facts: decoded.facts, endpointPurpose: catalog.match(upload.host)?.purpose };
  const classified = decoded.events.map((e) => classifyEvent(e, packs, context));
  const request = classifyRequest({ headers: upload.headers, query, clientAddress: upload.clientAddress }, packs);
  return { decoded, classified, request };
}

/** Whether JSON gives the values back as they are: numbers must be finite (NaN would come back null). */
function jsonSafe(d: Decoded): boolean {
  const finite = (v: FieldValue): boolean => (typeof v === "number" ? Number.isFinite(v) : Array.isArray(v) ? v.every(finite) : true);
  for (const e of d.decoded.events) for (const f of e.fields) if (!finite(f.value)) return false;
  for (const c of d.classified) for (const f of c.fields) if (!Number.isFinite(f.confidence)) return false;
  return true;
}

port.on("message", (m: DecoderRequest) => {
  // A Buffer arrives as a plain Uint8Array after the thread hand-over.
  const upload = { ...m.upload, body: Buffer.from(m.upload.body.buffer, m.upload.body.byteOffset, m.upload.body.byteLength) };
  let reply: DecoderReply;
  try {
    const d = processUpload(upload);
    // As one JSON string when it survives JSON unchanged: a string crosses threads in one copy, and
    // JSON.parse builds the objects far faster than a structured clone of hundreds of small objects.
    reply = jsonSafe(d) ? { type: "json", n: m.n, json: JSON.stringify(d) } : { type: "done", n: m.n, ...d };
  } catch (e) {
    reply = { type: "failed", n: m.n, message: (e as Error)?.message ?? String(e) };
  }
  port.postMessage(reply);
});
