/**
 * Event-loop delay for one phase of the bench, read from another process: loaded into the proxy
 * with `--import` (through NODE_OPTIONS, so exhaust's code is unchanged) or run on its own as an
 * idle process that measures only the machine's scheduling. The first SIGUSR2 starts a 1 ms
 * resolution histogram (perf_hooks.monitorEventLoopDelay) and the loop's utilisation; the second
 * stops them and writes one line `loop-probe {json}` on stderr. Active only where
 * EXHAUST_LOOP_PROBE=1 (the bench imports this module for lastLoopProbeReport too).
 */
import { isMainThread } from "node:worker_threads";
import { monitorEventLoopDelay, performance, type EventLoopUtilization } from "node:perf_hooks";

export const LOOP_PROBE_PREFIX = "loop-probe ";
const RESOLUTION_MS = 1;

export interface LoopProbeReport {
  /** Time the loop was held beyond the sampling interval, ms. */
  delayMs: { p50: number; p99: number; max: number; mean: number };
  /** Fraction of the phase the loop was busy (performance.eventLoopUtilization). */
  utilization: number;
  /** Main-thread CPU ms during the phase (process.cpuUsage, all threads when run idle). */
  cpuMs: number;
  seconds: number;
}

if (isMainThread && process.env.EXHAUST_LOOP_PROBE === "1") {
  const histogram = monitorEventLoopDelay({ resolution: RESOLUTION_MS });
  let started: { elu: EventLoopUtilization; cpu: NodeJS.CpuUsage; at: number } | undefined;
  const ms = (ns: number) => Math.round(Math.max(0, ns / 1e6 - RESOLUTION_MS) * 100) / 100;
  process.on("SIGUSR2", () => {
    if (!started) {
      histogram.reset();
      histogram.enable();
      started = { elu: performance.eventLoopUtilization(), cpu: process.cpuUsage(), at: performance.now() };
      return;
    }
    histogram.disable();
    const cpu = process.cpuUsage(started.cpu);
    const report: LoopProbeReport = {
      delayMs: {
        p50: ms(histogram.percentile(50)),
        p99: ms(histogram.percentile(99)),
        max: ms(histogram.max),
        mean: Math.round(Math.max(0, histogram.mean / 1e6 - RESOLUTION_MS) * 100) / 100,
      },
      utilization: Math.round(performance.eventLoopUtilization(started.elu).utilization * 1000) / 1000,
      cpuMs: Math.round((cpu.user + cpu.system) / 1000),
      seconds: Math.round(performance.now() - started.at) / 1000,
    };
    started = undefined;
    process.stderr.write(`${LOOP_PROBE_PREFIX}${JSON.stringify(report)}\n`);
  });
  // Run on its own (`node loop-probe.js idle`): an idle process, kept alive until stdin closes.
  if (process.argv[2] === "idle") {
    const keepAlive = setInterval(() => undefined, 1 << 30);
    process.stdin.resume();
    process.stdin.on("end", () => {
      clearInterval(keepAlive);
      process.exit(0);
    });
    process.stderr.write("loop-probe ready\n");
  }
}

/** The last report a probe wrote into `stderr` text. */
export function lastLoopProbeReport(stderr: string): LoopProbeReport | undefined {
  const line = stderr
    .split("\n")
    .reverse()
    .find((l) => l.startsWith(LOOP_PROBE_PREFIX));
  return line ? (JSON.parse(line.slice(LOOP_PROBE_PREFIX.length)) as LoopProbeReport) : undefined;
}
