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
import { readlinkSync, writeFileSync } from "node:fs";
import { getPriority, setPriority } from "node:os";

/** The default nice value of a capture's background threads (`exhaust proxy --background-nice`). */
export const DEFAULT_BACKGROUND_NICE = 10;
/** The range of nice values a thread can take (raising needs no privilege; 0 leaves it alone). */
export const MAX_NICE = 19;

/**
 * Names the calling thread `name` (at most 15 characters: what `top -H`, `ps -L` and
 * /proc/PID/task/TID/comm show) and returns its kernel id; undefined elsewhere than on Linux, or
 * when /proc cannot tell it. A read-only /proc leaves the process's name.
 */
export function nameThread(name: string): number | undefined {
  if (process.platform !== "linux") return undefined;
  let tid: number;
  try {
    // "<pid>/task/<tid>": the id of this thread, not of the process.
    tid = Number(readlinkSync("/proc/thread-self").split("/").pop());
  } catch {
    return undefined;
  }
  if (!Number.isInteger(tid) || tid <= 0) return undefined;
  try {
    writeFileSync("/proc/thread-self/comm", name.slice(0, 15));
  } catch {
    // A read-only /proc: the thread keeps the process's name.
  }
  return tid;
}

/**
 * Lowers the calling thread's priority to `nice` (never raises it: a process started under
 * `nice -n 15` keeps its background threads at 15) and names it `name` (nameThread). Failures are
 * silent: the thread then runs at the priority it has.
 */
export function lowerThreadPriority(nice: number, name: string): void {
  const tid = nameThread(name);
  if (tid === undefined) return;
  try {
    if (nice > getPriority(tid)) setPriority(tid, Math.min(nice, MAX_NICE));
  } catch {
    // Not permitted in this environment (a seccomp profile): normal priority.
  }
}
