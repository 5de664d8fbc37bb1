/**
 * The proxy's capture commits must never wait behind background writers (decoding, classification):
 * SQLite has one writer per file, and a busy proxy thread sleeps in SQLite's busy handler with the
 * event loop stopped. So the capture writer raises this shared flag while it has commits queued, and
 * background writers check it before each (short) transaction and wait until it drops.
 */
export class WriterPriority {
  readonly signal: Int32Array;

  constructor(signal?: Int32Array) {
    this.signal = signal ?? new Int32Array(new SharedArrayBuffer(4));
  }

  /** Capture side: commits are queued. */
  raise(): void {
    Atomics.store(this.signal, 0, 1);
  }

  /** Capture side: the queue is committed. */
  lower(): void {
    Atomics.store(this.signal, 0, 0);
    Atomics.notify(this.signal, 0);
  }

  /** Background side: capture commits are queued, so a transaction in progress should end now. */
  captureWaiting(): boolean {
    return Atomics.load(this.signal, 0) !== 0;
  }

  /**
   * Background side (a worker thread: Atomics.wait blocks it): wait while capture commits are
   * queued, at most `maxMs` in all so that a stuck flag cannot stop processing for good.
   */
  yieldToCapture(maxMs = 1000): void {
    const until = Date.now() + maxMs;
    while (Atomics.load(this.signal, 0) !== 0) {
      const left = until - Date.now();
      if (left <= 0) return;
      Atomics.wait(this.signal, 0, 1, Math.min(left, 50));
    }
  }
}
