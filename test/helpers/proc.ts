/**
 * A child process's threads, CPU time and memory, read from Linux's /proc: the tests and the bench
 * measure the real proxy process this way (no hooks inside it).
 */
import { openSync, readdirSync, readFileSync, readSync } from "node:fs";

/** The name (field 2) and the fields after it (fields[0] is field 3) of /proc/PID[/task/TID]/stat. */
function procStat(pid: number, tid?: number): { comm: string; fields: string[] } {
  const stat = readFileSync(tid === undefined ? `/proc/${pid}/stat` : `/proc/${pid}/task/${tid}/stat`, "utf8");
  // The name may hold spaces and parentheses: it ends at the last ")".
  const end = stat.lastIndexOf(")");
  return { comm: stat.slice(stat.indexOf("(") + 1, end), fields: stat.slice(end + 2).split(" ") };
}

/** CPU time (utime + stime, fields 14 and 15: clock ticks of 10 ms) of a process, or of one of its threads. */
export function cpuTicks(pid: number, tid?: number): number {
  return cpuTicksOf(procStat(pid, tid).fields);
}

/**
 * CPU time (as cpuTicks) and minor page faults (field 10: pages the kernel had to map in, none
 * read from disk) of a process or one of its threads, from one reading.
 */
export function cpuAndFaults(pid: number, tid?: number): { ticks: number; faults: number } {
  const { fields } = procStat(pid, tid);
  return { ticks: cpuTicksOf(fields), faults: Number(fields[7]) };
}

let schedstat: { fd: number; buf: Buffer } | undefined;

/**
 * CPU time of the calling thread in nanoseconds (the first field of /proc/thread-self/schedstat):
 * fine enough to time one stage of a few hundred milliseconds, where stat's 10 ms ticks are not.
 * The file is opened once (by the thread that first asks: a worker has its own copy of this module)
 * and read at offset 0, which makes it afresh: one system call a reading instead of three.
 */
export function threadCpuNanos(): number {
  schedstat ??= { fd: openSync("/proc/thread-self/schedstat", "r"), buf: Buffer.alloc(64) };
  const n = readSync(schedstat.fd, schedstat.buf, 0, schedstat.buf.length, 0);
  return Number(schedstat.buf.toString("latin1", 0, n).split(" ")[0]);
}

const cpuTicksOf = (fields: string[]) => Number(fields[11]) + Number(fields[12]);

export interface ThreadInfo {
  tid: number;
  /** What the thread is named (`exhaust-decode`, `exhaust-ckpt`; the main thread `node`). */
  comm: string;
  /** Its nice value (field 19). */
  nice: number;
}

/** The threads of a process as they are now (a thread that ends while they are read is left out). */
export function threadsOf(pid: number): ThreadInfo[] {
  return readdirSync(`/proc/${pid}/task`).flatMap((t) => {
    try {
      const { comm, fields } = procStat(pid, Number(t));
      return [{ tid: Number(t), comm, nice: Number(fields[16]) }];
    } catch {
      return [];
    }
  });
}

/** A memory figure of /proc/PID/status in MiB: VmRSS (now) or VmHWM (the peak so far). */
export function memoryMb(pid: number, field: "VmRSS" | "VmHWM"): number {
  return Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, "utf8"))![1]) / 1024;
}
