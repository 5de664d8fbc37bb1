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

  /** Reserves room for a declared length; false (and nothing held) when the budget cannot. */
  reserve(declared: number): boolean {
    const n = Math.min(declared, this.cap);
    if (!this.budget || n <= this.held) return true;
    if (!this.budget.take(n - this.held)) return false;
    this.held = n;
    return true;
  }

  push(chunk: Buffer): void {
    this.total += chunk.length;
    if (this.kept >= this.cap || this.overBudget || this.released) return;
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

  toBuffer(): Buffer {
    if (this.chunks.length !== 1) this.chunks = [Buffer.concat(this.chunks, this.kept)];
    return this.chunks[0] ?? Buffer.alloc(0);
  }
}

/** rawHeaders ([k, v, k, v, ...]) to pairs. */
export function headerPairs(raw: readonly string[]): Array<[string, string]> {
  const pairs: Array<[string, string]> = [];
  for (let i = 0; i + 1 < raw.length; i += 2) pairs.push([raw[i], raw[i + 1]]);
  return pairs;
}
