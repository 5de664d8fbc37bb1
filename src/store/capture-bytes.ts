/**
 * The memory bodies are kept in. A body is made here once, written only while it is received, and
 * only read afterwards (relayed, hashed, stored, shown).
 *
 * From SHARED_BODY_BYTES on a body is made in a SharedArrayBuffer, which the proxy's loop and the
 * capture writer thread both read (see capture-writer.ts): posting a view of it to the thread shares
 * it instead of cloning it, so a large body is never held twice. V8 does not count shared memory as
 * an isolate's external memory, so making or dropping it never starts a garbage collection: a body
 * that outlived a young-generation collection would stay allocated until a full one happens to
 * run, which a proxy moving large bodies (few objects, many bytes) may not do for a long time. Each
 * thread therefore collects after every so many bytes of shared bodies made (here, on the proxy's
 * loop) or stored (on the writer thread): see SharedMemoryReclaim.
 *
 * A smaller body (the bench's 20 KB upload, nearly every answer) is made in ordinary memory and
 * copied to the writer thread by postMessage (bodyForThread): V8 counts it and frees it in its
 * young-generation collections, so its memory is used again while still mapped. Shared, those
 * bodies were freed only in bulk by the collection every LOOP_RECLAIM_BYTES, the C heap gave the
 * pages back, and the next bodies took them again: up to 6 page faults on the loop per 20 KB upload
 * (0.1 in a relay of Node's HTTP alone), about a tenth of the loop's CPU (docs/performance.md,
 * seventh round).
 */
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";

/**
 * Bytes of shared bodies made on this thread after which it runs a full collection (unless one is
 * scheduled): what lies unreferenced in shared memory waiting for a collection stays under this.
 * Half the default --max-inflight; at 64 KiB a body it is one collection per 2,000 bodies.
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

/**
 * Bodies from this size on are made in shared memory; smaller ones in ordinary memory of their own.
 * A copy of a body this small costs a few microseconds. A small body is held twice only until its
 * commit, and the writer thread collects its dead copies after every 16 MiB
 * (capture-writer-worker.ts).
 */
export const SHARED_BODY_BYTES = 64 * 1024;

/** `length` bytes of shared memory (zeroed), counted towards this thread's next collection. */
function sharedBuffer(length: number): Buffer {
  loopReclaim.note(length);
  return Buffer.from(new SharedArrayBuffer(length), 0, length);
}

/**
 * `length` bytes (zeroed) for a body: shared from SHARED_BODY_BYTES on, else an ArrayBuffer of its
 * own (never a slice of Node's pool, which postMessage would clone whole).
 */
export function bodyBuffer(length: number): Buffer {
  return length < SHARED_BODY_BYTES ? Buffer.alloc(length) : sharedBuffer(length);
}

/** Chunks concatenated into a body's memory (bodyBuffer). The empty body is a buffer of its own too. */
export function bodyBytes(chunks: readonly Uint8Array[], length: number): Buffer {
  return concatInto(bodyBuffer(length), chunks);
}

/** Chunks concatenated into shared memory, whatever their length. */
export function sharedBytes(chunks: readonly Uint8Array[], length: number): Buffer {
  return concatInto(sharedBuffer(length), chunks);
}

function concatInto(out: Buffer, chunks: readonly Uint8Array[]): Buffer {
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}
