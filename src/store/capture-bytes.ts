/**
 * Bodies in memory that the proxy's loop and the capture writer thread both read (see
 * capture-writer.ts): posting a view of a SharedArrayBuffer to a thread shares it instead of
 * cloning it. A body is made here once, written only while it is received, and only read
 * afterwards (relayed, hashed, stored, shown).
 *
 * V8 does not count shared memory as an isolate's external memory, so making or dropping it never
 * starts a garbage collection: a body that outlived a young-generation collection would stay
 * allocated until a full one happens to run, which a proxy moving large bodies (few objects,
 * many bytes) may not do for a long time. Each thread therefore collects after every so many
 * bytes of bodies made (here, on the proxy's loop) or stored (on the writer thread): see
 * SharedMemoryReclaim.
 */
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";

/**
 * Bytes of bodies made on this thread after which it runs a full collection (unless one is
 * scheduled): what lies unreferenced in shared memory waiting for a collection stays under this.
 * Half the default --max-inflight; at 20 KB a body it is one collection per 6,500 bodies.
 */
export const LOOP_RECLAIM_BYTES = 128 * 1024 * 1024;

let gc: (() => void) | undefined;

/** A full garbage collection of this thread's heap, now. */
export function collectGarbage(): void {
  if (!gc) {
    // The flag is V8's, for the whole process: on only while a fresh context hands out its gc().
    setFlagsFromString("--expose-gc");
    gc = runInNewContext("gc") as () => void;
    setFlagsFromString("--no-expose-gc");
  }
  gc();
}

/** Runs a full collection on this thread after every `every` bytes noted (on the next turn). */
export class SharedMemoryReclaim {
  private since = 0;
  private scheduled = false;
  constructor(private readonly every: number) {}

  note(bytes: number): void {
    this.since += bytes;
    if (this.since < this.every || this.scheduled) return;
    this.scheduled = true;
    // On the next turn: what is being replied or written in this one goes first.
    setImmediate(() => {
      this.scheduled = false;
      this.since = 0;
      collectGarbage();
    });
  }
}

const loopReclaim = new SharedMemoryReclaim(LOOP_RECLAIM_BYTES);

/** `length` bytes of shared memory (zeroed), counted towards this thread's next collection. */
export function sharedBuffer(length: number): Buffer {
  loopReclaim.note(length);
  return Buffer.from(new SharedArrayBuffer(length), 0, length);
}

/**
 * Chunks concatenated into shared memory. The empty body is shared too (a zero-length
 * SharedArrayBuffer), so no body needs a special case.
 */
export function sharedBytes(chunks: readonly Uint8Array[], length: number): Buffer {
  const out = sharedBuffer(length);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}
