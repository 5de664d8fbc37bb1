/**
 * HAR import: generates a HAR of the given size in a temp dir (1DS JSON-lines uploads of ~20 KB,
 * every third one gzip-compressed so its body is base64 in the HAR, every body different), runs
 * `exhaust import` on it as a child process and reports throughput (MB/s, events/s) and the
 * child's peak RSS (its own getrusage, printed at exit). Deletes everything afterwards.
 *
 * Size: EXHAUST_BENCH_IMPORT_MB or --import-mb (default 1024).
 */
import { spawn } from "node:child_process";
import { closeSync, mkdtempSync, openSync, rmSync, statSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { gzipSync } from "node:zlib";
import { PACKAGE_ROOT } from "../src/paths.js";
import { round } from "./load.js";

const EVENTS_PER_UPLOAD = 10;

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

export async function importThroughput(megabytes: number, say: (m: string) => void): Promise<object> {
  const dir = mkdtempSync(join(tmpdir(), "exhaust-bench-import-"));
  try {
    const har = join(dir, "bench.har");
    say(`import: generating a ${megabytes} MB HAR`);
    const generated = generateHar(har, megabytes * 1024 * 1024);
    say(`import: importing ${generated.entries} entries (${generated.events} events) in a child process`);
    const reportRss =
      'process.on("exit",()=>{const u=process.resourceUsage();process.stderr.write(`maxrss-kb ${u.maxRSS} cpu-us ${u.userCPUTime+u.systemCPUTime}\\n`)})';
    const start = performance.now();
    const child = spawn(
      process.execPath,
      [
        "--import",
        `data:text/javascript,${encodeURIComponent(reportRss)}`,
        join(PACKAGE_ROOT, "bin", "exhaust.js"),
        "import",
        har,
        "--db",
        join(dir, "bench.db"),
        "--json",
      ],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d));
    child.stderr.on("data", (d: Buffer) => (stderr += d));
    const code = await new Promise<number | null>((resolve) => child.once("exit", resolve));
    const seconds = (performance.now() - start) / 1000;
    if (code !== 0) throw new Error(`import failed (${code}): ${stderr}`);
    const summary = JSON.parse(stdout.trim()) as { exchanges: number; events: number };
    const maxRssKb = Number(/maxrss-kb (\d+)/.exec(stderr)?.[1]);
    // CPU time of the import process (every thread): events per CPU-second holds on a busy machine.
    const cpuSeconds = Number(/cpu-us (\d+)/.exec(stderr)?.[1]) / 1e6;
    return {
      harBytes: generated.bytes,
      entries: summary.exchanges,
      events: summary.events,
      seconds: round(seconds),
      mbPerSec: round(generated.bytes / 1024 / 1024 / seconds),
      eventsPerSec: Math.round(summary.events / seconds),
      cpuSeconds: round(cpuSeconds),
      eventsPerCpuSecond: Math.round(summary.events / cpuSeconds),
      peakRssMb: round(maxRssKb / 1024),
      databaseBytes: statSync(join(dir, "bench.db")).size,
      target: { peakRssMb: 300 },
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
