/**
 * When the processing thread takes its next exchange: in a lull of capture traffic. While the
 * proxy keeps handing captures to the writer thread (a flood of uploads), decoding waits, so the
 * cores go to relaying and committing what clients wait for; it catches up as soon as the capture
 * side has been quiet for `quietMs`. A flood that never pauses still gets one exchange decoded
 * every `maxDeferMs`, and what is left at the stop is decoded there (docs/architecture.md).
 * Real captures (a few uploads a second per client) are all lulls: their exchanges are decoded
 * about `quietMs` after their commit.
 */
import type { WriterPriority } from "../store/writer-priority.js";

/** Quiet time on the capture side after which the thread decodes (ms). */
export const LULL_QUIET_MS = 25;
/** Longest the thread waits for a lull before it decodes one exchange anyway (ms). */
export const LULL_MAX_DEFER_MS = 1000;

export class LullGate {
  private seen: number;
  private deferredSince: number | undefined;

  constructor(
    private readonly priority: WriterPriority,
    private readonly quietMs = LULL_QUIET_MS,
    private readonly maxDeferMs = LULL_MAX_DEFER_MS,
  ) {
    this.seen = priority.captureBatches();
  }

  /**
   * 0 when the next exchange may be decoded now; otherwise how long to wait before asking again.
   * Asked before each exchange: captures since the last question mean traffic, so the thread
   * waits one quiet window and asks again.
   */
  wait(now = Date.now()): number {
    const batches = this.priority.captureBatches();
    if (batches === this.seen) {
      this.deferredSince = undefined;
      return 0;
    }
    this.seen = batches;
    this.deferredSince ??= now;
    if (now - this.deferredSince >= this.maxDeferMs) {
      this.deferredSince = undefined;
      return 0;
    }
    return this.quietMs;
  }
}
