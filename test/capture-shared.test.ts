/**
 * Bodies reach the capture writer thread without a second copy where it matters
 * (src/store/capture-bytes.ts, capture-writer.ts): every body the proxy keeps from 64 KiB on
 * (SHARED_BODY_BYTES) is made in a SharedArrayBuffer, and what is posted to the thread is that very
 * buffer (a view of shared memory is shared by postMessage, never cloned). A smaller body is made in
 * an ArrayBuffer of its own, which postMessage clones: only its own bytes travel. Checked on the
 * parts (the collector, the WebSocket reader, the op the writer posts, a real MessageChannel) and
 * end to end: a real client through the real proxy (forward mode to a local origin, sinkhole), an
 * addon after the capture addon looking at the bodies the capture addon handed over, and the
 * stored blobs equal to what was sent.
 */
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { ServerResponse } from "node:http";
import { MessageChannel } from "node:worker_threads";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { httpsThroughProxy } from "./helpers/client.js";
import { spawnProxy, waitExit } from "./helpers/cli.js";
import { memoryMb } from "./helpers/proc.js";
import { startOrigin, type Origin, type ReceivedRequest } from "./helpers/origin.js";
import { eventually, makeOriginAuthority, startTestProxy, tempDir, type TestProxy } from "./helpers/proxy.js";
import { encodeFrame } from "./helpers/websocket.js";
import type { Addon } from "../src/proxy/addons/addon.js";
import { BodyCollector, InflightBudget } from "../src/proxy/body.js";
import { WebSocketMessageReader, type WebSocketMessage } from "../src/proxy/websocket.js";
import { SHARED_BODY_BYTES } from "../src/store/capture-bytes.js";
import { bodyForThread } from "../src/store/capture-writer.js";
import type { Exchange } from "../src/types.js";

const COLLECTOR = "v10.events.data.microsoft.com";
const sha256 = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");
const isShared = (b: Uint8Array | undefined) => b !== undefined && b.buffer instanceof SharedArrayBuffer;
/** An ordinary buffer holding exactly the body: what postMessage clones is the body and nothing else. */
const isOwn = (b: Uint8Array | undefined) => b !== undefined && !isShared(b) && b.byteOffset === 0 && b.buffer.byteLength === b.byteLength;
const kindOf = (b: Uint8Array | undefined) => (isShared(b) ? "shared" : isOwn(b) ? "own" : "view");

describe("bodies are made in memory of their own, shared from 64 KiB on", () => {
  const small = [Buffer.alloc(16_384, 1), Buffer.alloc(4_000, 2), Buffer.alloc(96, 3)];
  const large = [Buffer.alloc(SHARED_BODY_BYTES, 1), Buffer.alloc(4_000, 2), Buffer.alloc(96, 3)];

  for (const [name, chunks, kind] of [
    ["large", large, "shared"],
    ["small", small, "own"],
  ] as const) {
    const whole = Buffer.concat(chunks);
    it(`a ${name} body of declared length is received into one ${kind} buffer, which toBuffer returns`, () => {
      const c = new BodyCollector(1 << 20, new InflightBudget(1 << 20));
      expect(c.reserve(whole.length)).toBe(true);
      for (const chunk of chunks) c.push(chunk);
      const body = c.toBuffer();
      expect(kindOf(body)).toBe(kind);
      expect(body.equals(whole)).toBe(true);
      // Made once: the same buffer again, and later bytes do not change it.
      c.push(Buffer.from("late"));
      expect(c.toBuffer()).toBe(body);
      expect(body.equals(whole)).toBe(true);
    });

    it(`a ${name} body without a declared length, or cut, is ${kind} too`, () => {
      const chunked = new BodyCollector(1 << 20);
      for (const chunk of chunks) chunked.push(chunk);
      expect(kindOf(chunked.toBuffer())).toBe(kind);
      expect(chunked.toBuffer().equals(whole)).toBe(true);

      const cap = whole.length - 500;
      const cut = new BodyCollector(cap);
      cut.reserve(whole.length);
      for (const chunk of chunks) cut.push(chunk);
      expect(kindOf(cut.toBuffer())).toBe(kind);
      expect(cut.toBuffer().equals(whole.subarray(0, cap))).toBe(true);
      expect(cut.truncated).toBe(true);
    });
  }

  it("a single chunk, a body cut short by its client and the empty body are buffers of their own", () => {
    // A single socket read may be a view into a larger buffer: copied, not kept.
    const read = Buffer.alloc(65_536, 9);
    const single = new BodyCollector(1 << 20);
    single.push(read.subarray(0, 1000));
    expect(kindOf(single.toBuffer())).toBe("own");
    expect(single.toBuffer().buffer).not.toBe(read.buffer);
    expect(single.toBuffer().equals(read.subarray(0, 1000))).toBe(true);

    // A client that stops early: the part received, in the memory made for the whole (a view of
    // it, which bodyForThread copies before posting: below).
    for (const [chunks, kind] of [
      [large, "shared"],
      [small, "view"],
    ] as const) {
      const aborted = new BodyCollector(1 << 20);
      aborted.reserve(Buffer.concat(chunks).length);
      aborted.push(chunks[1]);
      expect(aborted.toBuffer().equals(chunks[1])).toBe(true);
      expect(kindOf(aborted.toBuffer())).toBe(kind);
    }

    const empty = new BodyCollector(1 << 20);
    expect(empty.toBuffer().length).toBe(0);
    expect(kindOf(empty.toBuffer())).toBe("own");
  });

  it("a body longer than declared is still kept whole", () => {
    const c = new BodyCollector(1 << 20);
    c.reserve(100);
    c.push(Buffer.alloc(60, 1));
    c.push(Buffer.alloc(60, 2));
    const body = c.toBuffer();
    expect(kindOf(body)).toBe("own");
    expect(body.equals(Buffer.concat([Buffer.alloc(60, 1), Buffer.alloc(60, 2)]))).toBe(true);
  });

  it("a WebSocket message's payload is a buffer of its own, shared from 64 KiB on", () => {
    for (const [size, kind] of [
      [3000, "own"],
      [SHARED_BODY_BYTES + 10, "shared"],
    ] as const) {
      const messages: WebSocketMessage[] = [];
      const reader = new WebSocketMessageReader(1 << 20, (m) => messages.push(m));
      const frame = encodeFrame(Buffer.alloc(size, 5), { masked: true, opcode: 2 });
      reader.push(frame.subarray(0, 1000));
      reader.push(frame.subarray(1000));
      expect(messages).toHaveLength(1);
      expect(kindOf(messages[0].payload)).toBe(kind);
      expect(messages[0].payload.equals(Buffer.alloc(size, 5))).toBe(true);
    }
  });

  it("the writer posts a shared or own body as it is, copies a view of a larger buffer, and a large ordinary body into shared memory", () => {
    const shared = new BodyCollector(1 << 20);
    shared.push(Buffer.concat(large));
    const body = shared.toBuffer();
    expect(bodyForThread(body)).toBe(body);
    // A view of part of a shared buffer is shared as it is too.
    const part = body.subarray(100, 200);
    expect(bodyForThread(part)).toBe(part);

    const own = Buffer.alloc(20_000, 7);
    expect(bodyForThread(own)).toBe(own);

    // Node's pool: a small Buffer.from is a slice of an 8 KiB buffer shared with other allocations.
    const answer = Buffer.from('{"acc":1}');
    expect(isOwn(answer)).toBe(false);
    const posted = bodyForThread(answer);
    expect(isOwn(posted)).toBe(true);
    expect(Buffer.from(posted).equals(answer)).toBe(true);

    const big = Buffer.alloc(SHARED_BODY_BYTES + 1, 4);
    const bigPosted = bodyForThread(big);
    expect(isShared(bigPosted)).toBe(true);
    expect(Buffer.from(bigPosted).equals(big)).toBe(true);
  });

  it("through a real MessageChannel: a small body arrives as a copy of its bytes alone, a large one as the same memory", async () => {
    const { port1, port2 } = new MessageChannel();
    const received = (u: Uint8Array) =>
      new Promise<Uint8Array>((resolve) => {
        port2.once("message", resolve);
        port1.postMessage(u);
      });
    try {
      // A view of 1,000 bytes of a 65,536-byte read buffer: only the 1,000 bytes travel.
      const read = Buffer.alloc(65_536, 9);
      const small = await received(bodyForThread(read.subarray(0, 1000)));
      expect(isShared(small)).toBe(false);
      expect(small.buffer.byteLength).toBe(1000);
      expect(Buffer.from(small).equals(read.subarray(0, 1000))).toBe(true);

      const collector = new BodyCollector(1 << 20);
      collector.push(Buffer.concat(large));
      const body = collector.toBuffer();
      const arrived = await received(bodyForThread(body));
      expect(isShared(arrived)).toBe(true);
      // The same memory: a byte written on one side is seen on the other (never done to a real body).
      const probe = Buffer.from(arrived.buffer, arrived.byteOffset, arrived.byteLength);
      probe[0] = 0xee;
      expect(body[0]).toBe(0xee);
    } finally {
      port1.close();
    }
  });
});

describe("bodies reach the writer thread shared (large) or as their own copy (small), end to end", () => {
  let origin: Origin;
  let p: TestProxy;
  /** What the capture addon handed over, as the addon after it sees it (its commit is done by then). */
  const seen = new Map<string, { request: string; response?: string }>();
  const watcher: Addon = {
    name: "shared-watcher",
    onResponse: (x: Exchange) => {
      seen.set(x.path, { request: kindOf(x.requestBody) });
    },
    onExchangeEnd: (x: Exchange) => {
      const s = seen.get(x.path);
      if (s && x.response?.body) s.response = kindOf(x.response.body);
    },
  };
  /** The origin's answer: large (shared) unless the path says small. */
  const answerSize = (path: string) => (path.startsWith("/small") ? 2_000 : 70_000);
  const answer = (req: ReceivedRequest, res: ServerResponse) => {
    const body = Buffer.alloc(answerSize(req.url), req.url.length);
    if (req.url.includes("chunked-response")) {
      // No Content-Length: the proxy collects the chunks and concatenates them.
      res.writeHead(200, { "content-type": "application/octet-stream" });
      res.write(body.subarray(0, 1_000));
      setTimeout(() => res.end(body.subarray(1_000)), 5);
    } else {
      res.writeHead(200, { "content-type": "application/octet-stream", "content-length": String(body.length) });
      res.end(body);
    }
  };

  beforeAll(async () => {
    const ca = await makeOriginAuthority();
    origin = await startOrigin(ca, answer);
    p = await startTestProxy({ mapHost: [`${COLLECTOR}=127.0.0.1:${origin.port}`], originCaPem: ca.certPem, addons: [watcher] });
  });
  afterAll(async () => {
    await p?.close();
    await origin?.close();
  });

  const blob = (sha: string) => (p.db.prepare("SELECT data FROM blobs WHERE sha256 = ?").get(sha) as { data: Buffer }).data;
  /** The exchange's row once its completion (the response body) is stored. */
  const completed = (path: string) =>
    eventually(() => {
      const x = p.db.prepare("SELECT request_body_sha256 AS req, response_body_sha256 AS res FROM exchanges WHERE path = ?").get(path) as
        { req: string; res: string | null } | undefined;
      return x?.res ? { req: x.req, res: x.res } : undefined;
    });

  for (const [path, chunkSize, size, kind] of [
    ["/declared", undefined, 120_000, "shared"],
    ["/chunked-upload", 4096, 120_000, "shared"],
    ["/chunked-response", undefined, 120_000, "shared"],
    ["/small-declared", undefined, 20_000, "own"],
    ["/small-chunked-upload", 4096, 20_000, "own"],
    ["/small-chunked-response", undefined, 20_000, "own"],
  ] as const) {
    it(`${path}: the request and response bodies handed to the writer thread were ${kind} memory, and are stored exactly`, async () => {
      const body = Buffer.alloc(size + path.length, path.length);
      const res = await httpsThroughProxy({ proxyPort: p.port, host: COLLECTOR, path, body, chunkSize, ca: [p.caPem] });
      expect(res.status).toBe(200);
      const expected = Buffer.alloc(answerSize(path), path.length);
      expect(Buffer.from(res.body).equals(expected)).toBe(true);
      const r = await completed(path);
      // The addon after the capture addon hears of the end once the completion is stored.
      expect(await eventually(() => seen.get(path)?.response !== undefined && seen.get(path))).toEqual({ request: kind, response: kind });
      expect(r.req).toBe(sha256(body));
      expect(blob(r.req).equals(body)).toBe(true);
      expect(r.res).toBe(sha256(expected));
      expect(blob(r.res).equals(expected)).toBe(true);
    });
  }
});

describe("a sinkholed upload is shared too, and the proxy's own answer stored as it was sent", () => {
  let p: TestProxy;
  const seen: boolean[] = [];
  beforeAll(async () => {
    p = await startTestProxy({
      mode: "sinkhole",
      addons: [{ name: "shared-watcher", onResponse: (x) => void seen.push(isShared(x.requestBody)) }],
    });
  });
  afterAll(() => p?.close());

  it("stores the upload and the answer", async () => {
    const body = Buffer.alloc(70_000, 0x41);
    const res = await httpsThroughProxy({ proxyPort: p.port, host: COLLECTOR, path: "/OneCollector/1.0/", body, ca: [p.caPem] });
    expect(res.status).toBe(200);
    expect(seen).toEqual([true]);
    const r = await eventually(
      () =>
        p.db
          .prepare("SELECT request_body_sha256 AS req, response_body_sha256 AS res FROM exchanges WHERE response_body_sha256 IS NOT NULL")
          .get() as { req: string; res: string } | undefined,
    );
    expect(r.req).toBe(sha256(body));
    expect(r.res).toBe(sha256(Buffer.from(res.body)));
  });
});

describe("shared bodies are freed once stored (child proxy)", () => {
  // V8 starts no collection for shared memory: without the collections the threads run themselves
  // (store/capture-bytes.ts), every stored body stayed allocated and this run grew by about 128 MiB
  // a round (1.4 GiB peak after eight rounds of four); with them it stays flat.
  it("48 uploads of 32 MiB, four at a time, keep the proxy's RSS under the containment bound", async () => {
    const dir = tempDir();
    const proc = await spawnProxy([
      "--db",
      join(dir, "exhaust.db"),
      "--certs",
      join(dir, "certs"),
      "--session",
      "many",
      "--mode",
      "sinkhole",
    ]);
    try {
      const ca = readFileSync(join(dir, "certs", "exhaust-ca.pem"), "utf8");
      const body = Buffer.alloc(32 * 1024 * 1024, 0x42);
      const mb = (field: "VmRSS" | "VmHWM") => memoryMb(proc.child.pid!, field);
      const rounds: number[] = [];
      for (let round = 0; round < 12; round++) {
        const answers = await Promise.all(
          Array.from({ length: 4 }, (_, i) =>
            httpsThroughProxy({ proxyPort: proc.port, host: COLLECTOR, path: `/big-${round}-${i}`, body, ca: [ca] }),
          ),
        );
        expect(answers.map((a) => a.status)).toEqual([200, 200, 200, 200]);
        rounds.push(Math.round(mb("VmRSS")));
      }
      console.log(`RSS after each round of 4 × 32 MiB (MiB): ${rounds.join(" ")}; peak ${Math.round(mb("VmHWM"))}`);
      // docs/containment.md: 3 × --max-inflight + 256 MiB (1 GiB at the defaults).
      expect(mb("VmHWM")).toBeLessThan(3 * 256 + 256);
      // Flat, not growing with what was stored: the last rounds no higher than the first ones allow.
      expect(Math.max(...rounds.slice(-4))).toBeLessThan(Math.max(...rounds.slice(0, 4)) + 256);
    } finally {
      proc.child.kill("SIGTERM");
      await waitExit(proc.child);
    }
  }, 180_000);
});
