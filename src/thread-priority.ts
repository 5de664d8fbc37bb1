/**
 * The OS scheduling priority of a capture's background threads (decoding, WAL checkpoints): they
 * run at a higher nice value than the proxy's event loop, so that on a busy machine the kernel
 * gives the loop the CPU and the background work catches up in lulls (and at the stop, on the
 * main thread, for whatever is left).
 *
 * On Linux the nice value belongs to a thread (`setpriority` with a thread id acts on that thread
 * only, and raising it needs no privilege). Elsewhere it belongs to the whole process, so nothing
 * is changed there. Called from inside the thread itself.
 */
import { readFileSync, readlinkSync, writeFileSync } from "node:fs";
import { getPriority, setPriority } from "node:os";

/** The default nice value of a capture's background threads (`exhaust proxy --background-nice`). */
export const DEFAULT_BACKGROUND_NICE = 10;
/** The range of nice values a thread can take (raising needs no privilege; 0 leaves it alone). */
export const MAX_NICE = 19;

export interface ThreadPriority {
  /** The thread's kernel id, when the platform has one this can read. */
  tid?: number;
  /** The nice value the thread runs at after the call (undefined: not Linux, or not readable). */
  nice?: number;
}

/**
 * Lowers the calling thread's priority to `nice` (never raises it: a process started under
 * `nice -n 15` keeps its background threads at 15) and names it `name` (at most 15 characters,
 * what `top -H`, `ps -L` and /proc/PID/task/TID/comm show). Failures are silent: the thread then
 * runs at the priority it has.
 */
export function lowerThreadPriority(nice: number, name: string): ThreadPriority {
  if (process.platform !== "linux") return {};
  let tid: number;
  try {
    // "<pid>/task/<tid>": the id of this thread, not of the process.
    tid = Number(readlinkSync("/proc/thread-self").split("/").pop());
  } catch {
    return {};
  }
  if (!Number.isInteger(tid) || tid <= 0) return {};
  try {
    writeFileSync("/proc/thread-self/comm", name.slice(0, 15));
  } catch {
    // A read-only /proc: the thread keeps the process's name.
  }
  let current: number | undefined;
  try {
    current = getPriority(tid);
    if (nice > current) {
      setPriority(tid, Math.min(nice, MAX_NICE));
      current = getPriority(tid);
    }
  } catch {
    // Not permitted in this environment (a seccomp profile): normal priority.
  }
  return { tid, nice: current };
}

/** A thread's name and nice value, from /proc/PID/task/TID/stat (fields 2 and 19); undefined when gone. */
export function threadStat(pid: number, tid: number): { comm: string; nice: number } | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, "utf8");
    const comm = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    // Field 3 (state) is fields[0]; field 19 (nice) is fields[16].
    return { comm, nice: Number(fields[16]) };
  } catch {
    return undefined;
  }
}
