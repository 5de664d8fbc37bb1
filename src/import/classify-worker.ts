/**
 * A decode + classify thread of `exhaust import` (see ImportDecoders in ./decoders.ts): takes an
 * imported exchange's upload, decodes and classifies it exactly as ExchangeProcessor does, and
 * hands the result back to the import thread, which alone writes the database.
 */
import { parentPort } from "node:worker_threads";
import { EndpointCatalog } from "../catalog/endpoints.js";
import { classifyEvent, classifyRequest, loadRulePacks } from "../classify/engine.js";
import { decodeUpload } from "../decode/registry.js";
import type { StoredUpload } from "../store/event-store.js";
import type { Decoded, DecoderReply, DecoderRequest } from "./decoders.js";
import { Packer } from "./packing.js";

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

const packer = new Packer();

port.on("message", (m: DecoderRequest) => {
  const reply: DecoderReply = [];
  for (const { n, upload } of m) {
    try {
      // A Buffer arrives as a plain Uint8Array after the thread hand-over.
      const body = Buffer.from(upload.body.buffer, upload.body.byteOffset, upload.body.byteLength);
      reply.push({ n, packed: packer.pack(processUpload({ ...upload, body })) });
    } catch (e) {
      reply.push({ n, failed: (e as Error)?.message ?? String(e) });
    }
  }
  port.postMessage(reply);
});
