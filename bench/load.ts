import { cpuAndFaults } from "../test/helpers/proc.js";
import https from "node:https";
import type tls from "node:tls";

/** A process whose CPU time the load run charges per request: all its threads, or only the main one (its event loop). */
export interface CpuTarget {
  name: string;
  pid: number;
  mainThreadOnly?: boolean;
  /** One thread of the process (its kernel id): that thread's CPU alone. */
  tid?: number;
}

/**
 * CPU time (clock ticks of 10 ms) and minor page faults of a target: its process, its main thread,
 * or one thread; NaN once it is gone.
 */
function targetReading(t: CpuTarget): { ticks: number; faults: number } {
  const tid = t.tid ?? (t.mainThreadOnly ? t.pid : undefined);
  try {
    return cpuAndFaults(t.pid, tid);
  } catch {
    return { ticks: NaN, faults: NaN };
  }
}

export interface LoadResult {
  requests: number;
  errors: number;
  lastError?: string;
  seconds: number;
  reqPerSec: number;
  latencyMs: { p50: number; p99: number; mean: number };
  /** CPU milliseconds per measured request of each target (from /proc, so steady on a shared machine); `client` is this process's main thread. */
  cpuMsPerRequest: Record<string, number | null>;
  /**
   * Minor page faults per measured request of each target, same readings: memory the kernel maps in
   * afresh, which a process that reuses its memory hardly needs (issue 19: freed and retaken bodies).
   */
  minorFaultsPerRequest: Record<string, number | null>;
}

/**
 * Closed-loop load: `connections` keep-alive connections, each sending the next POST as soon as
 * the previous answer is in, for `durationMs` after a warm-up. Each POST's body is `body` numbered
 * (uploadNumberer), so no two are alike.
 */
export async function runLoad(opts: {
  connections: number;
  durationMs: number;
  warmupMs: number;
  openSocket: () => Promise<tls.TLSSocket>;
  host: string;
  path: string;
  body: Buffer;
  headers?: Record<string, string>;
  cpu?: CpuTarget[];
  /** Ends the run early (before `durationMs`) once it answers true. */
  stopWhen?: () => boolean;
}): Promise<LoadResult> {
  // An agent whose sockets are opened by `openSocket` (possibly a CONNECT tunnel): Node's Agent
  // accepts a createConnection that answers through its callback.
  const agent = new https.Agent({ keepAlive: true, maxSockets: opts.connections });
  (agent as unknown as { createConnection: unknown }).createConnection = (
    _o: unknown,
    cb: (err: Error | null, s?: tls.TLSSocket) => void,
  ) => {
    opts.openSocket().then(
      (s) => cb(null, s),
      (e: Error) => cb(e),
    );
    return undefined;
  };
  const numberUpload = uploadNumberer(opts.body);
  const send = () =>
    new Promise<void>((resolve, reject) => {
      const req = https.request(
        {
          agent,
          host: opts.host,
          method: "POST",
          path: opts.path,
          headers: { "content-type": "application/x-json-stream", "content-length": String(opts.body.length), ...opts.headers },
        },
        (res) => {
          res.on("data", () => {});
          res.on("end", () => (res.statusCode === 200 ? resolve() : reject(new Error(`status ${res.statusCode}`))));
        },
      );
      req.on("error", reject);
      req.end(numberUpload());
    });

  const latencies: number[] = [];
  let errors = 0;
  let lastError: string | undefined;
  let measuring = false;
  const started = Date.now();
  const stopAt = started + opts.warmupMs + opts.durationMs;
  const cpuTargets: CpuTarget[] = [...(opts.cpu ?? []), { name: "client", pid: process.pid, mainThreadOnly: true }];
  let atStart: Array<{ ticks: number; faults: number }> = [];
  setTimeout(() => {
    measuring = true;
    atStart = cpuTargets.map(targetReading);
  }, opts.warmupMs);
  let measureStart = 0;
  const worker = async () => {
    while (Date.now() < stopAt && !opts.stopWhen?.()) {
      const t0 = process.hrtime.bigint();
      try {
        await send();
        if (measuring) latencies.push(Number(process.hrtime.bigint() - t0) / 1e6);
      } catch (e) {
        errors++;
        lastError = (e as Error).message;
        // A failing target must not turn this loop into a busy spin.
        await new Promise((r) => setTimeout(r, 10));
      }
    }
  };
  setTimeout(() => (measureStart = Date.now()), opts.warmupMs);
  await Promise.all(Array.from({ length: opts.connections }, worker));
  const seconds = (Date.now() - (measureStart || started)) / 1000;
  const atEnd = cpuTargets.map(targetReading);
  const perRequest = (value: (i: number) => number, digits: number) =>
    Object.fromEntries(
      cpuTargets.map((t, i) => {
        const v = value(i);
        return [t.name, latencies.length > 0 && Number.isFinite(v) ? round(v / latencies.length, digits) : null];
      }),
    );
  const cpuMsPerRequest = perRequest((i) => (atEnd[i].ticks - (atStart[i]?.ticks ?? NaN)) * 10, 4);
  const minorFaultsPerRequest = perRequest((i) => atEnd[i].faults - (atStart[i]?.faults ?? NaN), 2);
  agent.destroy();
  return {
    requests: latencies.length,
    errors,
    ...(lastError ? { lastError } : {}),
    seconds: round(seconds),
    reqPerSec: round(latencies.length / seconds),
    latencyMs: summarise(latencies),
    cpuMsPerRequest,
    minorFaultsPerRequest,
  };
}

export function summarise(values: number[]): { p50: number; p99: number; mean: number } {
  if (values.length === 0) return { p50: NaN, p99: NaN, mean: NaN };
  const sorted = [...values].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
  return { p50: round(at(0.5)), p99: round(at(0.99)), mean: round(values.reduce((a, b) => a + b, 0) / values.length) };
}

export function round(n: number, digits = 3): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}

/** The field of telemetryUploadBody's first event whose ten digits number each upload a load sends. */
const UPLOAD_NUMBER_FIELD = '"Bench.Upload":"';

/**
 * A 20 KB 1DS JSON-lines upload (one Office event repeated), the body every load scenario sends.
 * Its first event carries `Bench.Upload` ("0000000000"), which runLoad numbers per request.
 */
export function telemetryUploadBody(bytes = 20 * 1024): Buffer {
  const line = JSON.stringify({
    name: "Office.Word.FileIO.Save",
    time: "2026-11-24T08:00:00.000Z",
    ver: "4.0",
    iKey: "o:0123456789abcdef0123456789abcdef",
    ext: { app: { name: "WINWORD", ver: "16.0.17029" }, device: { localId: "s:6C4E3D2A-0000-4000-8000-000000000000" } },
    data: { "Bench.Upload": "0000000000", "Data.Doc.Ext": "docx", "Activity.Success": true, "Activity.Duration": 1234 },
  });
  return Buffer.from(`${line}\n`.repeat(Math.ceil(bytes / (line.length + 1)))).subarray(0, bytes);
}

let uploadsNumbered = 0;

/**
 * Gives the body with this process's next upload number in its `Bench.Upload` field, each time a
 * copy (a body without the field is sent as it is). Real uploads all differ (times, sequence
 * numbers), and a content-addressed store writes a body it already holds only once: identical
 * bodies would measure a store that never stores. The field is found once, not per request: the
 * load generator's CPU counts in the direct cost.
 */
function uploadNumberer(body: Buffer): () => Buffer {
  const at = body.indexOf(UPLOAD_NUMBER_FIELD);
  if (at === -1) return () => body;
  const digitsAt = at + UPLOAD_NUMBER_FIELD.length;
  return () => {
    const copy = Buffer.from(body);
    const n = (process.pid % 100_000) * 100_000 + (uploadsNumbered++ % 100_000);
    copy.write(String(n).padStart(10, "0"), digitsAt, "latin1");
    return copy;
  };
}
