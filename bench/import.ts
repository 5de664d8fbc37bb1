/**
 * HAR import: generates a HAR of the given size in a temp dir (1DS JSON-lines uploads of ~20 KB,
 * every third one gzip-compressed so its body is base64 in the HAR, every body different), runs
 * `exhaust import` on it as a child process and reports throughput (MB/s, events/s) and the
 * child's peak RSS (its own getrusage, printed at exit). Deletes everything afterwards.
 *
 * Size: EXHAUST_BENCH_IMPORT_MB or --import-mb (default 1024). The child inherits
 * EXHAUST_IMPORT_THREADS (decode + classify threads; `threads` in the result).
 */
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { importThreads } from "../src/import/decoders.js";
import { PACKAGE_ROOT } from "../src/paths.js";
import { generateHar } from "../test/helpers/har.js";
import { round } from "./load.js";

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
      threads: importThreads(),
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
