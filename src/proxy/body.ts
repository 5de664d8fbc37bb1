import { bodyBuffer, bodyBytes } from "../store/capture-bytes.js";

/**
 * Body bytes held in memory by all exchanges in flight (--max-inflight). Collectors take from it
 * as they keep bytes and give back when their exchange is stored; a request that does not fit is
 * answered 503 before its body is read.
 */
export class InflightBudget {
  used = 0;
  constructor(readonly limit: number) {}

  take(n: number): boolean {
    if (this.used + n > this.limit) return false;
    this.used += n;
    return true;
  }

  give(n: number): void {
    this.used = Math.max(0, this.used - n);
  }
}

/** Collects a body up to a cap, counting every byte, so that nothing is cut silently. */
export class BodyCollector {
  private chunks: Buffer[] = [];
  /**
   * The body's memory, made when its length is declared (reserve): each chunk is copied in as it
   * comes, so no chunk is kept and nothing is concatenated at the end (one copy of the body in
   * memory, never its chunks and their concatenation side by side).
   */
  private into: Buffer | undefined;
  /** The body once made (toBuffer). */
  private body: Buffer | undefined;
  private kept = 0;
  /** Bytes taken from the budget (reserved ahead or as kept). */
  private held = 0;
  total = 0;
  /** The global budget ran out: the rest of the body was counted, not kept. */
  overBudget = false;

  constructor(
    private readonly cap: number,
    private readonly budget?: InflightBudget,
  ) {}

  /**
   * Reserves room for a declared length, and makes the body's memory for it; false (and nothing
   * held or made) when the budget cannot.
   */
  reserve(declared: number): boolean {
    const n = Math.min(declared, this.cap);
    if (this.budget && n > this.held) {
      if (!this.budget.take(n - this.held)) return false;
      this.held = n;
    }
    if (n > 0 && this.kept === 0 && !this.into && !this.body) this.into = bodyBuffer(n);
    return true;
  }

  push(chunk: Buffer): void {
    this.total += chunk.length;
    // Once the body is made (toBuffer) it does not change: later bytes are counted, not kept.
    if (this.kept >= this.cap || this.overBudget || this.released || this.body) return;
    const room = this.cap - this.kept;
    const part = chunk.length <= room ? chunk : chunk.subarray(0, room);
    const need = this.kept + part.length - this.held;
    if (need > 0 && this.budget) {
      if (!this.budget.take(need)) {
        this.overBudget = true;
        return;
      }
      this.held += need;
    }
    if (this.into) {
      if (this.kept + part.length <= this.into.length) {
        this.into.set(part, this.kept);
        this.kept += part.length;
        return;
      }
      // More than was declared (HTTP's framing never lets that through): collected as chunks.
      this.chunks.push(this.into.subarray(0, this.kept));
      this.into = undefined;
    }
    this.chunks.push(part);
    this.kept += part.length;
  }

  private released = false;

  /** Gives the held bytes back to the budget (the exchange is stored or dropped); keeps no more. */
  release(): void {
    this.released = true;
    this.budget?.give(this.held);
    this.held = 0;
  }

  get truncated(): boolean {
    return this.total > this.kept;
  }

  /**
   * The kept bytes as one buffer of their own (store/capture-bytes.ts): from 64 KiB on in shared
   * memory, so that the capture writer thread reads the very bytes the engine relays and the later
   * addons read, not a clone of them. Made once; nothing writes to it afterwards. Without a
   * declared length the chunks are concatenated here; a single chunk is copied too (at most one
   * socket read): it may be a view into a larger read buffer, which would be cloned whole or copied
   * again on its way to the thread.
   */
  toBuffer(): Buffer {
    this.body ??= this.into ? this.into.subarray(0, this.kept) : bodyBytes(this.chunks, this.kept);
    this.into = undefined;
    this.chunks = [];
    return this.body;
  }
}

/** rawHeaders ([k, v, k, v, ...]) to pairs. */
export function headerPairs(raw: readonly string[]): Array<[string, string]> {
  const pairs: Array<[string, string]> = [];
  for (let i = 0; i + 1 < raw.length; i += 2) pairs.push([raw[i], raw[i + 1]]);
  return pairs;
}
