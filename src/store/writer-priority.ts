/**
 * The proxy's capture commits must never wait behind background writers (decoding, classification):
 * SQLite has one writer per file, and a busy proxy thread sleeps in SQLite's busy handler with the
 * event loop stopped. So the capture writer raises a shared flag while it has commits queued, and
 * background writers check it before each transaction, end a running one early when it rises, and
 * wait until it drops. A background writer also says when it holds the lock, so a capture commit
 * that found the lock taken retries the moment it is released instead of polling.
 */
/** Atomics.waitAsync is ES2024 (in Node since 16); the project's lib stays at what Node 20 fully has. */
interface AtomicsWithWaitAsync {
  waitAsync(
    a: Int32Array,
    index: number,
    value: number,
    timeoutMs?: number,
  ): { async: false; value: string } | { async: true; value: Promise<string> };
}

const CAPTURE_WAITING = 0;
const BACKGROUND_WRITING = 1;
/**
 * Raised by the proxy's thread from the moment it hands captures to the capture writer thread until
 * the last answer is in: between the hand-over and the writer's queueing (and between its commit
 * and the answer) the writer's own flag is down, and a background transaction begun then would
 * hold the lock the next commit needs.
 */
const CAPTURE_HANDED_OVER = 2;
/** Counts the capture side's batches (each raise()): a background reader tells traffic from a lull by it. */
const CAPTURE_BATCHES = 3;

export class WriterPriority {
  readonly signal: Int32Array;

  constructor(signal?: Int32Array) {
    this.signal = signal ?? new Int32Array(new SharedArrayBuffer(16));
  }

  /** Capture side: commits are queued. */
  raise(): void {
    Atomics.store(this.signal, CAPTURE_WAITING, 1);
    Atomics.add(this.signal, CAPTURE_BATCHES, 1);
  }

  /** Capture batches queued so far (wraps around): unchanged between two readings means no capture traffic. */
  captureBatches(): number {
    return Atomics.load(this.signal, CAPTURE_BATCHES);
  }

  /** Capture side: the queue is committed. */
  lower(): void {
    Atomics.store(this.signal, CAPTURE_WAITING, 0);
    Atomics.notify(this.signal, CAPTURE_WAITING);
  }

  /** The proxy's side of a capture writer thread: captures are handed over, not all answered. */
  handedOver(waiting: boolean): void {
    Atomics.store(this.signal, CAPTURE_HANDED_OVER, waiting ? 1 : 0);
    if (!waiting) Atomics.notify(this.signal, CAPTURE_HANDED_OVER);
  }

  /**
   * Capture side, after finding the lock taken: resolves when the background writer's transaction
   * ends (at most `maxMs`). When no background writer says it holds the lock, another connection
   * does (`exhaust reprocess`, a `sqlite3` shell): then it resolves after a millisecond, a timer,
   * so the retries never starve the event loop.
   */
  async backgroundDone(maxMs = 5): Promise<void> {
    const wait = (Atomics as unknown as AtomicsWithWaitAsync).waitAsync(this.signal, BACKGROUND_WRITING, 1, maxMs);
    if (!wait.async) {
      await new Promise((resolve) => setTimeout(resolve, 1));
      return;
    }
    // A pending waitAsync is no handle of the event loop: at a stop, with the listeners closed and
    // the processing thread unref'd, a commit waiting here would let the process run out of work
    // and exit 13 with the stop half done. A timer of the same length holds the loop.
    let hold: NodeJS.Timeout | undefined;
    await Promise.race([wait.value, new Promise((resolve) => (hold = setTimeout(resolve, maxMs + 1)))]);
    clearTimeout(hold);
  }

  /** Background side: capture commits are queued, so a transaction in progress should end now. */
  captureWaiting(): boolean {
    return Atomics.load(this.signal, CAPTURE_WAITING) !== 0 || Atomics.load(this.signal, CAPTURE_HANDED_OVER) !== 0;
  }

  /** Background side: runs one write transaction, marked as holding the lock while it runs. */
  writing<T>(transaction: () => T): T {
    Atomics.store(this.signal, BACKGROUND_WRITING, 1);
    try {
      return transaction();
    } finally {
      Atomics.store(this.signal, BACKGROUND_WRITING, 0);
      Atomics.notify(this.signal, BACKGROUND_WRITING);
    }
  }

  /**
   * Background side (a worker thread: Atomics.wait blocks it): wait while capture commits are
   * queued, at most `maxMs` in all so that a stuck flag cannot stop processing for good.
   */
  yieldToCapture(maxMs = 1000, stop?: StopSignal): void {
    const until = Date.now() + maxMs;
    while (this.captureWaiting() && !stop?.requested()) {
      const left = until - Date.now();
      if (left <= 0) return;
      const index = Atomics.load(this.signal, CAPTURE_WAITING) !== 0 ? CAPTURE_WAITING : CAPTURE_HANDED_OVER;
      Atomics.wait(this.signal, index, 1, Math.min(left, 50));
    }
  }
}

/**
 * Asks a background writer on another thread to end between two of its transactions. A message
 * cannot: the thread reads its messages only between exchanges, and one exchange can take many
 * transactions, each of which may wait seconds for the lock. `Worker.terminate()` is no way to end
 * such a thread (see thread-exit.ts).
 */
export class StopSignal {
  readonly signal: Int32Array;

  constructor(signal?: Int32Array) {
    this.signal = signal ?? new Int32Array(new SharedArrayBuffer(4));
  }

  /** Owner's side. */
  request(): void {
    Atomics.store(this.signal, 0, 1);
  }

  /** Writer's side, between transactions. */
  requested(): boolean {
    return Atomics.load(this.signal, 0) !== 0;
  }
}

/** Thrown by a background writer that was asked to stop; what it had not committed stays undone. */
export class StopRequested extends Error {
  constructor() {
    super("stop requested");
    this.name = "StopRequested";
  }
}
