import https from "node:https";
import type { AddressInfo } from "node:net";
import type { IncomingMessage, ServerResponse } from "node:http";
import { LeafIssuer } from "../../src/ca/leaf.js";
import type { CertificateAuthority } from "../../src/ca/authority.js";
import type { Duplex } from "node:stream";
import { acceptKey, encodeFrame, OPCODE, readFrame } from "./websocket.js";

export interface ReceivedRequest {
  method: string;
  url: string;
  rawHeaders: string[];
  body: Buffer;
}

export interface Origin {
  port: number;
  received: ReceivedRequest[];
  close(): Promise<void>;
}

type Handler = (req: ReceivedRequest, res: ServerResponse, raw: IncomingMessage) => void;

const collectorAnswer: Handler = (req, res) => {
  res.writeHead(200, { "content-type": "application/json", "time-delta-millis": "0" });
  res.end(JSON.stringify({ acc: req.body.length > 0 ? 1 : 0, origin: "local" }));
};

/**
 * A local HTTPS origin on 127.0.0.1 standing in for a Microsoft collector, with a certificate
 * from a test CA of its own (the proxy is told to trust it with --upstream-ca).
 */
export async function startOrigin(
  ca: CertificateAuthority,
  handler: Handler = collectorAnswer,
  options: { record?: boolean; port?: number } = {},
): Promise<Origin> {
  const issuer = await LeafIssuer.create(ca);
  const received: ReceivedRequest[] = [];
  const server = https.createServer({
    SNICallback: (name, cb) => cb(null, issuer.secureContextFor(name || "localhost")),
  });
  server.on("request", (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const r = { method: req.method ?? "", url: req.url ?? "", rawHeaders: req.rawHeaders, body: Buffer.concat(chunks) };
      if (options.record !== false) received.push(r);
      handler(r, res, req);
    });
  });
  const upgraded = new Set<Duplex>();
  server.on("upgrade", (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    upgraded.add(socket);
    socket.on("close", () => upgraded.delete(socket));
    received.push({ method: req.method ?? "", url: req.url ?? "", rawHeaders: req.rawHeaders, body: Buffer.alloc(0) });
    answerWebSocket(req, socket, head);
  });
  await new Promise<void>((resolve) => server.listen(options.port ?? 0, "127.0.0.1", resolve));
  return {
    port: (server.address() as AddressInfo).port,
    received,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        for (const s of upgraded) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/**
 * The WebSocket side of a test origin: answers the handshake on any path but /refuse (403), then
 * echoes each message (fragments joined, control frames other than close ignored) as "echo:<text>".
 */
export function answerWebSocket(req: IncomingMessage, socket: Duplex, head: Buffer): void {
  if (req.url === "/refuse") {
    socket.end("HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nContent-Length: 7\r\nConnection: close\r\n\r\nrefused");
    return;
  }
  socket.write(
    `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${acceptKey(String(req.headers["sec-websocket-key"]))}\r\n\r\n`,
  );
  let buf = head;
  let message: Buffer[] = [];
  const onData = (chunk: Buffer) => {
    buf = Buffer.concat([buf, chunk]);
    for (let r = readFrame(buf); r; r = readFrame(buf)) {
      buf = r.rest;
      const { fin, opcode, payload } = r.frame;
      if (opcode === OPCODE.close) socket.end(encodeFrame(Buffer.alloc(0), { opcode: OPCODE.close, masked: false }));
      if (opcode >= 0x8) continue;
      message.push(payload);
      if (!fin) continue;
      socket.write(encodeFrame(`echo:${Buffer.concat(message).toString()}`, { masked: false }));
      message = [];
    }
  };
  socket.on("data", onData);
  socket.on("error", () => socket.destroy());
  // Like a real WebSocket server: a peer that hangs up is gone.
  socket.on("end", () => socket.end());
  onData(Buffer.alloc(0));
}
