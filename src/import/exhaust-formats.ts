/**
 * exhaust's own exports as import sources. A bundle is the lossless one: exchanges.jsonl gives
 * every request as captured and blobs/ every body byte for byte, so the imported session decodes to
 * the same events. The JSONL export holds decoded events only (no raw bytes), so each exchange's
 * events are rebuilt as a 1DS JSON-lines upload from their field paths and values; the JSON
 * decoder then infers types again (an int64 may come back as a double) and the wire format becomes
 * onecollector-json. Use a bundle or the HAR export when byte-exact evidence matters.
 */
import type { Readable } from "node:stream";
import { partCKey } from "../decode/paths.js";
import type { BundleSource } from "../evidence/source.js";
import { EXCHANGES_FILE, type Manifest } from "../evidence/format.js";
import type { EventJson } from "../evidence/format.js";
import type { ExchangeRecord } from "../store/exchanges.js";
import { boundedLines } from "./limits.js";
import type { ImportedExchange, ImportSession } from "./session.js";

export function bundleRecordToExchange(x: ExchangeRecord, request: Buffer | undefined, response: Buffer | undefined): ImportedExchange {
  return {
    method: x.method,
    scheme: x.scheme === "http" ? "http" : "https",
    host: x.host,
    port: x.port,
    path: x.path,
    httpVersion: x.httpVersion,
    requestHeaders: x.requestHeaders,
    requestBody: request ?? Buffer.alloc(0),
    requestBodySize: x.requestBodySize,
    requestBodyTruncated: x.requestBodyTruncated || request === undefined,
    requestComplete: x.requestComplete,
    startedAt: x.startedAt,
    requestEndedAt: x.requestEndedAt ?? undefined,
    respondedAt: x.respondedAt ?? undefined,
    endedAt: x.endedAt ?? undefined,
    mode: x.mode as ImportedExchange["mode"],
    outcome: x.outcome as ImportedExchange["outcome"],
    endpointId: x.endpointId ?? undefined,
    upstream: x.upstream ?? undefined,
    error: x.errorCode ? { code: x.errorCode, message: x.errorMessage ?? "" } : undefined,
    response:
      x.responseStatus === null
        ? undefined
        : {
            status: x.responseStatus,
            headers: x.responseHeaders ?? [],
            body: response,
            bodyTruncated: x.responseBodyTruncated,
            trailers: x.responseTrailers ?? undefined,
            source: (x.responseSource ?? "upstream") as "upstream" | "exhaust",
          },
  };
}

/** Imports one session of a bundle (the caller has verified the bundle). */
export async function importBundleSession(bundle: BundleSource, session: string, sink: ImportSession, maxBody: number): Promise<void> {
  const blob = async (sha: string | null) => (sha && bundle.has(`blobs/${sha}`) ? bundle.read(`blobs/${sha}`, maxBody) : undefined);
  // A record holds a path and headers, no body: a line as long as a body is far beyond any real one.
  for await (const line of boundedLines(await bundle.stream(EXCHANGES_FILE), maxBody, `${bundle.path} ${EXCHANGES_FILE}`)) {
    if (!line) continue;
    const x = JSON.parse(line) as ExchangeRecord;
    if (x.session !== session) continue;
    await sink.add(bundleRecordToExchange(x, await blob(x.requestBodySha256), await blob(x.responseBodySha256)));
  }
}

export async function bundleManifest(bundle: BundleSource): Promise<Manifest> {
  return JSON.parse((await bundle.read("manifest.json")).toString("utf8")) as Manifest;
}

function setPath(target: Record<string, unknown>, keys: string[], value: unknown): void {
  let node = target;
  for (const k of keys.slice(0, -1)) {
    if (typeof node[k] !== "object" || node[k] === null) node[k] = {};
    node = node[k] as Record<string, unknown>;
  }
  node[keys[keys.length - 1]] = value;
}

/** A decoded event rebuilt as a Common Schema JSON event from its field paths. */
export function rebuildCsEvent(e: EventJson): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const f of e.fields) {
    if (f.part === "C" || f.part === "body") {
      setPath(out, ["data", partCKey(f.path)], f.value);
    } else if (f.part === "B" && f.path.startsWith("data.baseData.")) {
      setPath(out, ["data", "baseData", f.path.slice("data.baseData.".length)], f.value);
    } else {
      setPath(out, f.path.split("."), f.value);
    }
  }
  if (out.name === undefined) out.name = e.event.name;
  if (out.time === undefined && e.event.time) out.time = e.event.time;
  if (out.iKey === undefined && e.event.iKey) out.iKey = e.event.iKey;
  return out;
}

/** Imports exhaust JSONL: one synthetic 1DS JSON-lines upload per original exchange. */
export async function importExhaustJsonl(input: Readable, file: string, sink: ImportSession, maxBody: number): Promise<void> {
  let current: { exchange: string; lines: string[]; time: number } | undefined;
  const flush = async () => {
    if (!current) return;
    await sink.add({
      method: "POST",
      scheme: "https",
      host: "mobile.events.data.microsoft.com",
      port: 443,
      path: "/OneCollector/1.0/",
      requestHeaders: [
        ["Content-Type", "application/x-json-stream"],
        ["X-Exhaust-Source", "exhaust-jsonl"],
        ["X-Exhaust-Original-Exchange", current.exchange],
      ],
      requestBody: Buffer.from(current.lines.join("\n"), "utf8"),
      startedAt: current.time,
    });
    current = undefined;
  };
  let bytes = 0;
  for await (const line of boundedLines(input, maxBody, file)) {
    if (!line.trim()) continue;
    const e = JSON.parse(line) as EventJson;
    // The events of one exchange become one upload; past the body limit they continue in another.
    if (current?.exchange !== e.exchange || bytes > maxBody) {
      bytes = 0;
      await flush();
      const t = Date.parse(e.event.time ?? "");
      current = { exchange: e.exchange, lines: [], time: Number.isFinite(t) ? t : 0 };
    }
    const rebuilt = JSON.stringify(rebuildCsEvent(e));
    bytes += rebuilt.length + 1;
    current.lines.push(rebuilt);
  }
  await flush();
}
