/**
 * A generated HAR of 1DS JSON uploads (the import bench's input, and the import tests'): ~20 KB
 * uploads of 10 events of ~35 fields each, every value different, every third upload
 * gzip-compressed and so base64 in the HAR, each with a device id (a GUID) in ext.device.localId.
 */
import { closeSync, openSync, writeSync } from "node:fs";
import { gzipSync } from "node:zlib";

export const EVENTS_PER_UPLOAD = 10;

function uploadBody(n: number): string {
  const lines: string[] = [];
  for (let e = 0; e < EVENTS_PER_UPLOAD; e++) {
    const data: Record<string, unknown> = { "Event.Sequence": n * EVENTS_PER_UPLOAD + e, "Activity.Success": true, "Data.Doc.Ext": "docx" };
    for (let i = 0; i < 30; i++) data[`Data.Field${i}`] = `value ${n}-${e}-${i} ${"x".repeat(20)}`;
    lines.push(
      JSON.stringify({
        name: `Office.Bench.Event${e}`,
        time: new Date(Date.UTC(2026, 10, 24, 8) + n).toISOString(),
        ver: "4.0",
        iKey: "o:0123456789abcdef0123456789abcdef",
        ext: { app: { name: "Word", ver: "16.0.17029" }, device: { localId: `s:6C4E3D2A-0000-4000-8000-${String(n).padStart(12, "0")}` } },
        data,
      }),
    );
  }
  return lines.join("\n");
}

function entry(n: number): string {
  const body = uploadBody(n);
  const gz = n % 3 === 0;
  const headers = [
    { name: "Content-Type", value: "application/x-json-stream" },
    ...(gz ? [{ name: "Content-Encoding", value: "gzip" }] : []),
  ];
  return JSON.stringify({
    startedDateTime: new Date(Date.UTC(2026, 10, 24, 8) + n * 10).toISOString(),
    time: 5,
    request: {
      method: "POST",
      url: "https://mobile.events.data.microsoft.com/OneCollector/1.0/",
      httpVersion: "HTTP/1.1",
      cookies: [],
      headers,
      queryString: [],
      postData: gz
        ? { mimeType: "application/x-json-stream", text: gzipSync(body).toString("base64"), _exhaust: { encoding: "base64" } }
        : { mimeType: "application/x-json-stream", text: body },
      headersSize: -1,
      bodySize: body.length,
    },
    response: {
      status: 200,
      statusText: "OK",
      httpVersion: "HTTP/1.1",
      cookies: [],
      headers: [],
      content: { size: 9, mimeType: "application/json", text: '{"acc":10}' },
      redirectURL: "",
      headersSize: -1,
      bodySize: 9,
    },
    cache: {},
    timings: { send: 0, wait: 5, receive: 0 },
  });
}

/** Writes a HAR of at least `bytes`; returns its size and how many events it holds. */
export function generateHar(file: string, bytes: number): { bytes: number; entries: number; events: number } {
  const fd = openSync(file, "w");
  let written = writeSync(fd, '{"log":{"version":"1.2","creator":{"name":"bench","version":"1"},"pages":[],"entries":[\n');
  let n = 0;
  while (written < bytes) written += writeSync(fd, `${n ? ",\n" : ""}${entry(n++)}`);
  written += writeSync(fd, "\n]}}\n");
  closeSync(fd);
  return { bytes: written, entries: n, events: n * EVENTS_PER_UPLOAD };
}
