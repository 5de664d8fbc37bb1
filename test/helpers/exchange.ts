import { randomUUID } from "node:crypto";
import type { Exchange } from "../../src/types.js";

/** A completed, captured upload to a 1DS collector, as the proxy hands it to the capture store. */
export function makeExchange(body: Uint8Array | string, overrides: Partial<Exchange> = {}): Exchange {
  const bytes = Buffer.from(body);
  return {
    id: randomUUID(),
    scheme: "https",
    method: "POST",
    host: "mobile.events.data.microsoft.com",
    port: 443,
    path: "/OneCollector/1.0/",
    httpVersion: "1.1",
    requestHeaders: [["Content-Type", "application/x-json-stream"]],
    requestBody: bytes,
    requestBodySize: bytes.length,
    requestBodyTruncated: false,
    requestComplete: true,
    mode: "sinkhole",
    outcome: "sinkholed",
    startedAt: Date.now(),
    capture: true,
    ...overrides,
  };
}
