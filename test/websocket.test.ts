import { afterAll, beforeAll, describe, expect, it } from "vitest";
import http from "node:http";
import net, { type AddressInfo } from "node:net";
import type { TLSSocket } from "node:tls";
import type { CertificateAuthority } from "../src/ca/authority.js";
import { tlsThroughProxy } from "./helpers/client.js";
import { answerWebSocket, startOrigin, type Origin } from "./helpers/origin.js";
import { eventually, makeOriginAuthority, startTestProxy, type TestProxy } from "./helpers/proxy.js";
import { acceptKey, encodeFrame, frameReader, newKey, OPCODE, readResponseHead } from "./helpers/websocket.js";

// A connected-experience service in the catalogue (intercepted) that speaks WebSocket.
const HOST = "augloop.office.com";
const SENTENCE = "The quarterly salaries of the whole finance team will be cut by twelve percent next spring, says the board.";

let originCa: CertificateAuthority;
let origin: Origin;

beforeAll(async () => {
  originCa = await makeOriginAuthority();
  origin = await startOrigin(originCa);
});
afterAll(() => origin?.close());

/** Opens a TLS tunnel through the proxy and sends a WebSocket handshake for `path`. */
async function handshake(
  p: TestProxy,
  path: string,
): Promise<{ socket: TLSSocket; key: string; response: Awaited<ReturnType<typeof readResponseHead>> }> {
  const socket = await tlsThroughProxy(p.port, HOST, 443, [p.caPem]);
  const key = newKey();
  socket.write(
    `GET ${path} HTTP/1.1\r\nHost: ${HOST}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\n` +
      `Sec-WebSocket-Version: 13\r\nSec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\nX-Lab-Case: KeepMe\r\n\r\n`,
  );
  return { socket, key, response: await readResponseHead(socket) };
}

interface Row {
  path: string;
  method: string;
  response_status: number | null;
  response_source: string | null;
  outcome: string;
  mode: string;
  request_headers: string;
  connection_outcome: string;
}

const rows = (p: TestProxy, path: string) =>
  p.db
    .prepare(
      `SELECT x.path, x.method, x.response_status, x.response_source, x.outcome, x.mode, x.request_headers, c.outcome AS connection_outcome
         FROM exchanges x LEFT JOIN connections c ON c.id = x.connection_id WHERE x.path = ?`,
    )
    .all(path) as Row[];

describe("WebSocket on an intercepted host, forward mode", () => {
  let p: TestProxy;
  beforeAll(async () => {
    p = await startTestProxy({ mapHost: [`${HOST}=127.0.0.1:${origin.port}`], originCaPem: originCa.certPem });
  });
  afterAll(() => p.close());

  it("relays the handshake and the frames both ways, and stores the handshake as an exchange", async () => {
    const { socket, key, response } = await handshake(p, "/v2/ws?session=1");
    expect(response.status).toBe(101);
    // The origin's own answer to the client's own key: the handshake really went through.
    expect(response.headers.get("sec-websocket-accept")).toBe(acceptKey(key));
    const next = frameReader(socket, response.rest);
    socket.resume();
    socket.write(encodeFrame("hello", { masked: true }));
    expect((await next()).payload.toString()).toBe("echo:hello");
    const big = "x".repeat(70_000);
    socket.write(encodeFrame(big, { masked: true }));
    expect((await next()).payload.toString()).toBe(`echo:${big}`);
    // A connected-experience-like JSON message in two frames, with a ping between them.
    const message = JSON.stringify({ name: "AugLoop.Editor.Check", time: "2026-11-24T08:00:00Z", data: { "Data.Text": SENTENCE } });
    socket.write(encodeFrame(message.slice(0, 40), { masked: true, fin: false }));
    socket.write(encodeFrame("", { opcode: OPCODE.ping, masked: true }));
    socket.write(encodeFrame(message.slice(40), { opcode: OPCODE.continuation, masked: true }));
    expect((await next()).payload.toString()).toBe(`echo:${message}`);
    socket.write(encodeFrame(Buffer.alloc(0), { opcode: OPCODE.close, masked: true }));
    expect((await next()).opcode).toBe(OPCODE.close);
    socket.destroy();

    // The origin saw the client's headers in order and case, without our proxy's and without the
    // compression offer (so the messages stay readable).
    const seen = origin.received.find((r) => r.url === "/v2/ws?session=1")!;
    expect(seen.rawHeaders).toEqual(expect.arrayContaining(["X-Lab-Case", "KeepMe", "Upgrade", "websocket"]));
    expect(seen.rawHeaders.map((h) => h.toLowerCase())).not.toContain("sec-websocket-extensions");

    // Each message the client sent is an exchange of its own, byte for byte, decoded and classified.
    const messages = await eventually(() => {
      const r = p.db
        .prepare(
          `SELECT x.id, b.data AS body, x.request_body_size AS size FROM exchanges x JOIN blobs b ON b.sha256 = x.request_body_sha256
            WHERE x.method = 'WEBSOCKET' AND x.path = '/v2/ws?session=1' ORDER BY x.seq`,
        )
        .all() as Array<{ id: string; body: Buffer; size: number }>;
      return r.length === 3 ? r : undefined;
    });
    expect(messages.map((m) => m.body.toString())).toEqual(["hello", big, message]);
    const field = await eventually(
      () =>
        p.db
          .prepare(
            `SELECT e.name, f.path, f.value, f.category FROM events e JOIN fields f ON f.event_id = e.id WHERE e.exchange_id = ? AND f.path = 'Data.Text'`,
          )
          .get(messages[2].id) as { name: string; value: string; category: string } | undefined,
    );
    expect(field).toMatchObject({ name: "AugLoop.Editor.Check", value: SENTENCE, category: "content" });
    const [row] = await eventually(() => (rows(p, "/v2/ws?session=1").length ? rows(p, "/v2/ws?session=1") : undefined));
    expect(row).toMatchObject({
      method: "GET",
      response_status: 101,
      response_source: "upstream",
      outcome: "ok",
      mode: "forward",
      connection_outcome: "intercepted",
    });
    expect(JSON.parse(row.request_headers)).toContainEqual(["Sec-WebSocket-Key", key]);
  });

  it("passes the upstream's refusal to the client as it was sent", async () => {
    const { socket, response } = await handshake(p, "/refuse");
    expect(response.status).toBe(403);
    socket.destroy();
    const [row] = await eventually(() => (rows(p, "/refuse").length ? rows(p, "/refuse") : undefined));
    expect(row).toMatchObject({ response_status: 403, response_source: "upstream", outcome: "ok" });
  });
});

describe("WebSocket on an intercepted host, sinkhole mode", () => {
  let p: TestProxy;
  beforeAll(async () => {
    p = await startTestProxy({ mode: "sinkhole", mapHost: [`${HOST}=127.0.0.1:${origin.port}`], originCaPem: originCa.certPem });
  });
  afterAll(() => p.close());

  it("answers the handshake itself, so nothing reaches the service", async () => {
    const before = origin.received.length;
    const { socket, response } = await handshake(p, "/v2/ws?sinkholed=1");
    expect(response.status).not.toBe(101);
    socket.destroy();
    expect(origin.received.length).toBe(before);
    const [row] = await eventually(() => (rows(p, "/v2/ws?sinkholed=1").length ? rows(p, "/v2/ws?sinkholed=1") : undefined));
    expect(row).toMatchObject({ outcome: "sinkholed", response_source: "exhaust", mode: "sinkhole" });
  });
});

describe("WebSocket through the proxy as plain HTTP (ws://, absolute-form request)", () => {
  let p: TestProxy;
  let plain: http.Server;
  beforeAll(async () => {
    plain = http.createServer();
    plain.on("connection", (s: net.Socket) => {
      sockets.add(s);
      s.on("close", () => sockets.delete(s));
    });
    plain.on("upgrade", (req, socket, head) => answerWebSocket(req, socket, head));
    await new Promise<void>((r) => plain.listen(0, "127.0.0.1", r));
    p = await startTestProxy({ mapHost: [`${HOST}=127.0.0.1:${(plain.address() as AddressInfo).port}`] });
  });
  const sockets = new Set<net.Socket>();
  afterAll(async () => {
    await p.close();
    // Upgraded sockets are not the HTTP server's any more: close them by hand.
    for (const s of sockets) s.destroy();
    await new Promise((r) => plain.close(r));
  });

  it("relays the handshake and the messages, and stores both", async () => {
    const socket = net.connect(p.port, "127.0.0.1");
    await new Promise((r) => socket.once("connect", r));
    const key = newKey();
    socket.write(
      `GET http://${HOST}/plain?x=1 HTTP/1.1\r\nHost: ${HOST}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
        `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
    );
    const response = await readResponseHead(socket);
    expect(response.status).toBe(101);
    expect(response.headers.get("sec-websocket-accept")).toBe(acceptKey(key));
    const next = frameReader(socket, response.rest);
    socket.resume();
    socket.write(encodeFrame("over plain http", { masked: true }));
    expect((await next()).payload.toString()).toBe("echo:over plain http");
    socket.destroy();
    const stored = await eventually(() => {
      const r = p.db.prepare("SELECT method, scheme, path, response_status FROM exchanges WHERE path = '/plain?x=1' ORDER BY seq").all();
      return r.length === 2 ? r : undefined;
    });
    expect(stored).toEqual([
      { method: "GET", scheme: "http", path: "/plain?x=1", response_status: 101 },
      { method: "WEBSOCKET", scheme: "http", path: "/plain?x=1", response_status: null },
    ]);
    // The client hung up, so the proxy closed its side to the service too.
    await eventually(() => [...sockets].every((s) => s.destroyed) || undefined);
    // ... and its own connection with the client is over (not left half open).
    await eventually(() =>
      p.db.prepare("SELECT ended_at FROM connections WHERE outcome = 'plain-http' AND host = ? AND ended_at IS NOT NULL").get(HOST),
    );
  });
});
