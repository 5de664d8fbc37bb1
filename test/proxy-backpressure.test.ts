/**
 * A slow peer on either side of the proxy: the engine holds a bounded amount, not the body.
 *
 * Measured from outside the engine: how many bytes the sending side managed to hand over before
 * its writes stopped draining (an engine that buffers the body lets the sender write all 64 MiB),
 * and the bytes the whole test process holds in ArrayBuffers after a full GC while the transfer is
 * stalled (proxy, client and origin share this process; a buffering proxy holds the body).
 */
import { createHash, randomBytes } from "node:crypto";
import https from "node:https";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { Writable } from "node:stream";
import type tls from "node:tls";
import v8 from "node:v8";
import vm from "node:vm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LeafIssuer } from "../src/ca/leaf.js";
import type { CertificateAuthority } from "../src/ca/authority.js";
import { tlsThroughProxy } from "./helpers/client.js";
import { eventually, makeOriginAuthority, startTestProxy, type TestProxy } from "./helpers/proxy.js";

const MB = 1024 * 1024;
/** The body relayed each way. */
const TOTAL = 64 * MB;
/** --max-body: what the capture keeps of each body (stored cut, flagged, with the full size). */
const MAX_BODY = MB;
/**
 * What may sit between a stalled receiver and the sender: the loopback sockets' kernel buffers on
 * both legs (a few MiB each at most here), the streams' high-water marks and one chunk in flight.
 * Far below the 64 MiB an engine that buffers the body lets through.
 */
const IN_FLIGHT_BOUND = 32 * MB;
/** Live ArrayBuffer bytes a stalled transfer may add to this process (kept body, chunks in flight). */
const HELD_BOUND = 16 * MB;
const HOST = "mobile.events.data.microsoft.com";

v8.setFlagsFromString("--expose-gc");
const gc = vm.runInNewContext("gc") as () => void;

/** Bytes in live ArrayBuffers (Buffers) of this process, after a full collection. */
function liveBufferBytes(): number {
  gc();
  gc();
  return process.memoryUsage().arrayBuffers;
}

const sha256 = (b: Buffer) => createHash("sha256").update(b).digest("hex");

/**
 * A deterministic body made as it is written (nobody holds it whole): 1 MiB chunks of one random
 * block, each stamped with its index. `digest` is the SHA-256 of what was handed to the stream.
 */
class StreamedBody {
  private readonly base = randomBytes(MB);
  private readonly hash = createHash("sha256");
  /** Bytes handed to the stream so far (accepted by write(), buffered or not). */
  accepted = 0;
  private digestHex?: string;

  /** Writes the whole body, waiting for 'drain' whenever the stream says it is full. */
  async pump(out: Writable): Promise<void> {
    for (let k = 0; this.accepted < TOTAL; k++) {
      const chunk = Buffer.from(this.base);
      chunk.writeUInt32BE(k, 0);
      this.hash.update(chunk);
      this.accepted += chunk.length;
      if (!out.write(chunk)) {
        await new Promise<void>((resolve, reject) => {
          const drained = () => {
            out.off("close", closed);
            resolve();
          };
          const closed = () => {
            out.off("drain", drained);
            reject(new Error("stream closed before the body was written"));
          };
          out.once("drain", drained);
          out.once("close", closed);
        });
      }
    }
  }

  digest(): string {
    return (this.digestHex ??= this.hash.digest("hex"));
  }
}

/** Resolves once `count()` has not moved for `quietMs`: the sender is blocked. */
async function stalled(count: () => number, quietMs = 1000): Promise<number> {
  let last = count();
  let since = Date.now();
  for (;;) {
    await new Promise((r) => setTimeout(r, 100));
    const now = count();
    if (now !== last) {
      last = now;
      since = Date.now();
    } else if (Date.now() - since >= quietMs) return now;
  }
}

/**
 * Reads one HTTP/1.1 response with a Content-Length off a raw socket, hashing its body as it comes;
 * `prefix` is its first --max-body bytes.
 */
function readResponse(socket: tls.TLSSocket): Promise<{ status: number; size: number; sha256: string; prefix: Buffer }> {
  return new Promise((resolve, reject) => {
    let head = Buffer.alloc(0);
    let status = 0;
    let length = -1;
    let size = 0;
    const parts: Buffer[] = [];
    let kept = 0;
    const hash = createHash("sha256");
    const take = (b: Buffer) => {
      size += b.length;
      hash.update(b);
      if (kept < MAX_BODY) {
        parts.push(b.subarray(0, MAX_BODY - kept));
        kept += parts.at(-1)!.length;
      }
      if (size >= length) {
        socket.off("data", onData);
        resolve({ status, size, sha256: hash.digest("hex"), prefix: Buffer.concat(parts) });
      }
    };
    const onData = (chunk: Buffer) => {
      if (length >= 0) return take(chunk);
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf("\r\n\r\n");
      if (end < 0) return;
      const text = head.subarray(0, end).toString("latin1");
      status = Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0);
      length = Number(/\r\ncontent-length: *(\d+)/i.exec(text)?.[1] ?? 0);
      take(head.subarray(end + 4));
    };
    socket.on("data", onData);
    socket.once("error", reject);
    socket.once("close", () => reject(new Error(`connection closed after ${size} body bytes`)));
  });
}

interface StoredBodies {
  request_body_size: number;
  request_body_truncated: number;
  request_kept: number;
  response_body_size: number | null;
  response_body_truncated: number | null;
  response_kept: number | null;
  response_kept_sha256: string | null;
  outcome: string;
}

function storedBodies(db: TestProxy["db"], path: string): Promise<StoredBodies> {
  return eventually(
    () =>
      db
        .prepare(
          `SELECT x.request_body_size, x.request_body_truncated, rq.size AS request_kept,
                  x.response_body_size, x.response_body_truncated, rs.size AS response_kept, rs.sha256 AS response_kept_sha256,
                  x.outcome
             FROM exchanges x JOIN blobs rq ON rq.sha256 = x.request_body_sha256
             LEFT JOIN blobs rs ON rs.sha256 = x.response_body_sha256
            WHERE x.path = ? AND (x.response_body_sha256 IS NOT NULL OR x.response_source = 'exhaust')`,
        )
        .get(path) as StoredBodies | undefined,
    20_000,
  );
}

/** A local HTTPS origin whose handlers get the request unread (startOrigin reads every body first). */
async function startSlowOrigin(ca: CertificateAuthority, handle: (req: IncomingMessage, res: ServerResponse) => void) {
  const issuer = await LeafIssuer.create(ca);
  const server = https.createServer({ SNICallback: (name, cb) => cb(null, issuer.secureContextFor(name || "localhost")) }, handle);
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

describe("back-pressure: a slow client or a slow upstream is paused, not buffered (forward mode)", () => {
  let originCa: CertificateAuthority;
  let origin: Awaited<ReturnType<typeof startSlowOrigin>>;
  let p: TestProxy;
  /** The response the origin streams to /download. */
  const download = new StreamedBody();
  /** The upload the origin holds unread until `readUpload` is called. */
  let heldUpload: { req: IncomingMessage; res: ServerResponse } | undefined;

  beforeAll(async () => {
    originCa = await makeOriginAuthority();
    origin = await startSlowOrigin(originCa, (req, res) => {
      if (req.url === "/download") {
        req.resume();
        res.writeHead(200, { "content-type": "application/octet-stream", "content-length": String(TOTAL) });
        download.pump(res).then(
          () => res.end(),
          () => res.destroy(),
        );
        return;
      }
      // /upload: not read until the test says so.
      req.pause();
      heldUpload = { req, res };
    });
    p = await startTestProxy({ mapHost: [`${HOST}=127.0.0.1:${origin.port}`], originCaPem: originCa.certPem, maxBody: String(MAX_BODY) });
  });
  afterAll(async () => {
    await p?.close();
    await origin?.close();
  });

  it("(a) a client that does not read a 64 MiB response holds the origin back; then it gets every byte", async () => {
    const baseline = liveBufferBytes();
    const client = await tlsThroughProxy(p.port, HOST, 443, [p.caPem]);
    // The client sends its request and reads nothing (the socket stays paused: no 'data' listener).
    client.write(`GET /download HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`);
    await eventually(() => download.accepted > 0, 10_000);
    const written = await stalled(() => download.accepted);
    const held = liveBufferBytes() - baseline;
    console.log(`slow client: origin wrote ${written} bytes before blocking; ${held} buffer bytes held`);
    expect(written, `the origin could write ${written} bytes to a client reading nothing`).toBeLessThan(IN_FLIGHT_BOUND);
    expect(held, `${held} bytes of buffers held while the client reads nothing`).toBeLessThan(HELD_BOUND);

    const got = await readResponse(client);
    client.destroy();
    expect(got.status).toBe(200);
    expect(got.size).toBe(TOTAL);
    expect(got.sha256).toBe(download.digest());

    // Stored as docs/containment.md says: cut at --max-body, flagged, with the full size; the kept
    // part is the body's first bytes.
    const row = await storedBodies(p.db, "/download");
    expect(row.outcome).toBe("ok");
    expect(row.response_body_truncated).toBe(1);
    expect(row.response_kept).toBe(MAX_BODY);
    expect(row.response_kept_sha256).toBe(sha256(got.prefix));
  });

  it("(b) a 64 MiB upload to an origin that does not read holds the client back; then the origin gets every byte", async () => {
    const baseline = liveBufferBytes();
    const client = await tlsThroughProxy(p.port, HOST, 443, [p.caPem]);
    const upload = new StreamedBody();
    client.write(`POST /upload HTTP/1.1\r\nHost: ${HOST}\r\nContent-Type: application/octet-stream\r\nContent-Length: ${TOTAL}\r\n\r\n`);
    const sending = upload.pump(client);
    await eventually(() => heldUpload, 10_000);
    const written = await stalled(() => upload.accepted);
    const held = liveBufferBytes() - baseline;
    console.log(`slow upstream: client wrote ${written} bytes before blocking; ${held} buffer bytes held`);
    expect(written, `the client could write ${written} bytes to an origin reading nothing`).toBeLessThan(IN_FLIGHT_BOUND);
    expect(held, `${held} bytes of buffers held while the origin reads nothing`).toBeLessThan(HELD_BOUND);

    // The origin reads now: every byte arrives, in order.
    const { req, res } = heldUpload!;
    const received = await new Promise<{ size: number; sha256: string }>((resolve, reject) => {
      const hash = createHash("sha256");
      let size = 0;
      req.on("data", (c: Buffer) => {
        size += c.length;
        hash.update(c);
      });
      req.on("end", () => resolve({ size, sha256: hash.digest("hex") }));
      req.on("error", reject);
      req.resume();
    });
    res.writeHead(200, { "content-type": "text/plain", "content-length": "3" });
    res.end("ok\n");
    await sending;
    const answer = await readResponse(client);
    client.destroy();
    expect(received.size).toBe(TOTAL);
    expect(received.sha256).toBe(upload.digest());
    expect(answer.status).toBe(200);

    const row = await storedBodies(p.db, "/upload");
    expect(row.request_body_size).toBe(TOTAL);
    expect(row.request_body_truncated).toBe(1);
    expect(row.request_kept).toBe(MAX_BODY);
  });
});

describe("back-pressure in sinkhole mode: nothing goes upstream, and an upload is not held whole", () => {
  let p: TestProxy;
  beforeAll(async () => {
    p = await startTestProxy({ mode: "sinkhole", maxBody: String(MAX_BODY) });
  });
  afterAll(async () => {
    await p?.close();
  });

  it("reads a 64 MiB upload keeping only --max-body of it, and answers once it is all in", async () => {
    const baseline = liveBufferBytes();
    const client = await tlsThroughProxy(p.port, HOST, 443, [p.caPem]);
    const upload = new StreamedBody();
    client.write(`POST /sink HTTP/1.1\r\nHost: ${HOST}\r\nContent-Type: application/octet-stream\r\nContent-Length: ${TOTAL}\r\n\r\n`);
    // Sampled while the upload streams in: what the process holds after a full collection.
    let peak = 0;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        peak = Math.max(peak, liveBufferBytes() - baseline);
        await new Promise((r) => setTimeout(r, 50));
      }
    })();
    const answered = readResponse(client);
    // The upload's bytes handed over when the answer's first byte arrives: all of them, if the
    // answer waited for the whole upload.
    let acceptedAtAnswer = -1;
    client.once("data", () => (acceptedAtAnswer = upload.accepted));
    await upload.pump(client);
    const answer = await answered;
    sampling = false;
    await sampler;
    client.destroy();
    expect(answer.status).toBe(200);
    expect(acceptedAtAnswer, "upload bytes handed over when the answer arrived").toBe(TOTAL);
    console.log(`sinkhole: peak ${peak} buffer bytes held during a ${TOTAL}-byte upload`);
    expect(peak, `${peak} bytes of buffers held while a 64 MiB upload was sinkholed`).toBeLessThan(HELD_BOUND);

    const row = await storedBodies(p.db, "/sink");
    expect(row.outcome).toBe("sinkholed");
    expect(row.request_body_size).toBe(TOTAL);
    expect(row.request_body_truncated).toBe(1);
    expect(row.request_kept).toBe(MAX_BODY);
  });
});
