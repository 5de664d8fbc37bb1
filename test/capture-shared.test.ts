/**
 * Bodies reach the capture writer thread as shared memory, not as a copy (src/store/capture-bytes.ts,
 * capture-writer.ts): every body the proxy keeps is made in a SharedArrayBuffer, and what is posted
 * to the thread is that very buffer (a view of shared memory is shared by postMessage, never
 * cloned). Checked on the parts (the collector, the WebSocket reader, the op the writer posts) and
 * end to end: a real client through the real proxy (forward mode to a local origin, sinkhole), an
 * addon after the capture addon looking at the bodies the capture addon handed over, and the
 * stored blobs equal to what was sent.
 */
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { ServerResponse } from "node:http";
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
import { bodyForThread } from "../src/store/capture-writer.js";
import type { Exchange } from "../src/types.js";

const COLLECTOR = "v10.events.data.microsoft.com";
const sha256 = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");
const isShared = (b: Uint8Array | undefined) => b !== undefined && b.buffer instanceof SharedArrayBuffer;

describe("bodies are made in shared memory", () => {
  const chunks = [Buffer.alloc(16_384, 1), Buffer.alloc(4_000, 2), Buffer.alloc(96, 3)];
  const whole = Buffer.concat(chunks);

  it("a body of declared length is received into one shared buffer, which toBuffer returns", () => {
    const c = new BodyCollector(1 << 20, new InflightBudget(1 << 20));
    expect(c.reserve(whole.length)).toBe(true);
    for (const chunk of chunks) c.push(chunk);
    const body = c.toBuffer();
    expect(isShared(body)).toBe(true);
    expect(body.equals(whole)).toBe(true);
    // Made once: the same buffer again, and later bytes do not change it.
    c.push(Buffer.from("late"));
    expect(c.toBuffer()).toBe(body);
    expect(body.equals(whole)).toBe(true);
  });

  it("a body without a declared length, a single chunk, a cut body and the empty body are shared too", () => {
    const chunked = new BodyCollector(1 << 20);
    for (const chunk of chunks) chunked.push(chunk);
    expect(isShared(chunked.toBuffer())).toBe(true);
    expect(chunked.toBuffer().equals(whole)).toBe(true);

    // A single socket read may be a view into a larger buffer: copied, not kept.
    const read = Buffer.alloc(65_536, 9);
    const single = new BodyCollector(1 << 20);
    single.push(read.subarray(0, 1000));
    expect(isShared(single.toBuffer())).toBe(true);
    expect(single.toBuffer().buffer).not.toBe(read.buffer);
    expect(single.toBuffer().equals(read.subarray(0, 1000))).toBe(true);

    const cut = new BodyCollector(10_000);
    cut.reserve(whole.length);
    for (const chunk of chunks) cut.push(chunk);
    expect(isShared(cut.toBuffer())).toBe(true);
    expect(cut.toBuffer().equals(whole.subarray(0, 10_000))).toBe(true);
    expect(cut.truncated).toBe(true);

    // A client that stops early: the part received, in the memory made for the whole.
    const aborted = new BodyCollector(1 << 20);
    aborted.reserve(whole.length);
    aborted.push(chunks[0]);
    expect(aborted.toBuffer().equals(chunks[0])).toBe(true);
    expect(isShared(aborted.toBuffer())).toBe(true);

    const empty = new BodyCollector(1 << 20);
    expect(empty.toBuffer().length).toBe(0);
    expect(isShared(empty.toBuffer())).toBe(true);
  });

  it("a body longer than declared is still kept whole", () => {
    const c = new BodyCollector(1 << 20);
    c.reserve(100);
    c.push(Buffer.alloc(60, 1));
    c.push(Buffer.alloc(60, 2));
    const body = c.toBuffer();
    expect(isShared(body)).toBe(true);
    expect(body.equals(Buffer.concat([Buffer.alloc(60, 1), Buffer.alloc(60, 2)]))).toBe(true);
  });

  it("a WebSocket message's payload is shared", () => {
    const messages: WebSocketMessage[] = [];
    const reader = new WebSocketMessageReader(1 << 20, (m) => messages.push(m));
    const frame = encodeFrame(Buffer.alloc(3000, 5), { masked: true, opcode: 2 });
    reader.push(frame.subarray(0, 1000));
    reader.push(frame.subarray(1000));
    expect(messages).toHaveLength(1);
    expect(isShared(messages[0].payload)).toBe(true);
    expect(messages[0].payload.equals(Buffer.alloc(3000, 5))).toBe(true);
  });

  it("the writer posts a shared body as it is (no copy), and copies any other body into shared memory once", () => {
    const shared = new BodyCollector(1 << 20);
    shared.push(whole);
    const body = shared.toBuffer();
    expect(bodyForThread(body)).toBe(body);
    // A view of part of a shared buffer is shared as it is too.
    const part = body.subarray(100, 200);
    expect(bodyForThread(part)).toBe(part);

    const answer = Buffer.from('{"acc":1}');
    const posted = bodyForThread(answer);
    expect(posted).not.toBe(answer);
    expect(isShared(posted)).toBe(true);
    expect(Buffer.from(posted).equals(answer)).toBe(true);
  });
});

describe("bodies reach the writer thread shared, end to end", () => {
  let origin: Origin;
  let p: TestProxy;
  /** What the capture addon handed over, as the addon after it sees it (its commit is done by then). */
  const seen = new Map<string, { request: boolean; response?: boolean }>();
  const watcher: Addon = {
    name: "shared-watcher",
    onResponse: (x: Exchange) => {
      seen.set(x.path, { request: isShared(x.requestBody) });
    },
    onExchangeEnd: (x: Exchange) => {
      const s = seen.get(x.path);
      if (s && x.response?.body) s.response = isShared(x.response.body);
    },
  };
  const answer = (req: ReceivedRequest, res: ServerResponse) => {
    const body = Buffer.alloc(50_000, req.url.length);
    if (req.url.startsWith("/chunked-response")) {
      // No Content-Length: the proxy collects the chunks and concatenates them.
      res.writeHead(200, { "content-type": "application/octet-stream" });
      res.write(body.subarray(0, 20_000));
      setTimeout(() => res.end(body.subarray(20_000)), 5);
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

  for (const [path, chunkSize] of [
    ["/declared", undefined],
    ["/chunked-upload", 4096],
    ["/chunked-response", undefined],
  ] as const) {
    it(`${path}: the request and response bodies the writer thread stored were shared memory, and are stored exactly`, async () => {
      const body = Buffer.alloc(120_000 + path.length, path.length);
      const res = await httpsThroughProxy({ proxyPort: p.port, host: COLLECTOR, path, body, chunkSize, ca: [p.caPem] });
      expect(res.status).toBe(200);
      const expected = Buffer.alloc(50_000, path.length);
      expect(Buffer.from(res.body).equals(expected)).toBe(true);
      const r = await completed(path);
      // The addon after the capture addon hears of the end once the completion is stored.
      expect(await eventually(() => seen.get(path)?.response !== undefined && seen.get(path))).toEqual({ request: true, response: true });
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
