import http from "node:http";
import tls from "node:tls";
import type { Socket } from "node:net";
import { Duplex } from "node:stream";

export interface ClientResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  /** The certificate the client was shown (subject CN / issuer CN). */
  peer?: tls.PeerCertificate;
}

export interface ProxiedRequest {
  proxyPort: number;
  host: string;
  port?: number;
  method?: string;
  path?: string;
  headers?: Record<string, string> | string[];
  body?: Buffer | string;
  /** CAs the client trusts; it trusts nothing else. */
  ca: string[];
  /** Send the body with Transfer-Encoding: chunked, in pieces of this size. */
  chunkSize?: number;
  proxyAuthorization?: string;
  /** Source address of the client (127.0.0.2 etc.: another lab machine). */
  localAddress?: string;
}

/** Opens a CONNECT tunnel through the proxy and returns the raw socket (after 200). */
export function connectTunnel(proxyPort: number, authority: string, proxyAuthorization?: string, localAddress?: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const req = http.request({
      host: "127.0.0.1",
      port: proxyPort,
      localAddress,
      method: "CONNECT",
      path: authority,
      headers: { host: authority, ...(proxyAuthorization ? { "proxy-authorization": proxyAuthorization } : {}) },
    });
    req.once("connect", (res, socket) => {
      if (res.statusCode !== 200) {
        socket.destroy();
        reject(Object.assign(new Error(`CONNECT answered ${res.statusCode}`), { status: res.statusCode, headers: res.headers }));
        return;
      }
      resolve(socket);
    });
    req.once("error", reject);
    req.end();
  });
}

/** TLS over a CONNECT tunnel, verifying the peer against `ca` only. */
export async function tlsThroughProxy(
  proxyPort: number,
  host: string,
  port: number,
  ca: string[],
  localAddress?: string,
): Promise<tls.TLSSocket> {
  const raw = await connectTunnel(proxyPort, `${host}:${port}`, undefined, localAddress);
  return new Promise((resolve, reject) => {
    const s = tls.connect({ socket: raw, servername: host, ca, ALPNProtocols: ["http/1.1"] });
    s.once("secureConnect", () => resolve(s));
    s.once("error", (e: Error) => {
      raw.destroy();
      reject(e);
    });
  });
}

/** One HTTPS request through the proxy on a fresh tunnel, the way a 1DS client makes it. */
export async function httpsThroughProxy(r: ProxiedRequest): Promise<ClientResponse> {
  const port = r.port ?? 443;
  const socket = await tlsThroughProxy(r.proxyPort, r.host, port, r.ca, r.localAddress);
  const peer = socket.getPeerCertificate();
  // Raw header arrays are sent as given: Node adds no Host header to them.
  const headers =
    Array.isArray(r.headers) && !r.headers.some((h, i) => i % 2 === 0 && h.toLowerCase() === "host")
      ? ["Host", r.host, ...r.headers]
      : r.headers;
  return new Promise((resolve, reject) => {
    const req = http.request({
      createConnection: () => socket,
      host: r.host,
      port,
      method: r.method ?? "POST",
      path: r.path ?? "/",
      headers: headers as http.OutgoingHttpHeaders,
    });
    req.on("response", (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => {
        socket.destroy();
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks), peer });
      });
      res.on("error", reject);
    });
    req.on("error", reject);
    writeBody(req, r.body, r.chunkSize);
  });
}

export function writeBody(req: http.ClientRequest, body: Buffer | string | undefined, chunkSize?: number): void {
  if (body === undefined) {
    req.end();
    return;
  }
  const buf = Buffer.isBuffer(body) ? body : Buffer.from(body);
  if (!chunkSize) {
    req.end(buf);
    return;
  }
  for (let i = 0; i < buf.length; i += chunkSize) req.write(buf.subarray(i, i + chunkSize));
  req.end();
}

/**
 * A client that refuses the proxy's leaf the way SChannel or OpenSSL do: a real ClientHello
 * (TLS 1.2, so the alert travels in clear), then, once the server's certificate flight arrives, a
 * fatal `unknown_ca` alert and a close. (Node's own TLS client checks the certificate only after
 * the handshake and just hangs up, which the proxy treats as weak evidence.)
 */
export async function rejectLeafWithAlert(proxyPort: number, host: string, port = 443, localAddress?: string): Promise<void> {
  return rejectLeaf(proxyPort, host, port, localAddress, "alert");
}

/**
 * A client that reads the leaf, answers the server's flight (its key exchange and Finished) and
 * then hangs up without a word: what a stack that checks a pin after the handshake looks like.
 */
export async function hangUpAfterLeaf(proxyPort: number, host: string, port = 443, localAddress?: string): Promise<void> {
  return rejectLeaf(proxyPort, host, port, localAddress, "hangup");
}

async function rejectLeaf(
  proxyPort: number,
  host: string,
  port: number,
  localAddress: string | undefined,
  how: "alert" | "hangup",
): Promise<void> {
  const raw = await connectTunnel(proxyPort, `${host}:${port}`, undefined, localAddress);
  await new Promise<void>((resolve) => {
    let writes = 0;
    const hello = new Duplex({
      read() {},
      write(chunk: Buffer, _enc, cb) {
        if (!raw.destroyed) raw.write(chunk);
        // The second flight (ClientKeyExchange, ChangeCipherSpec, Finished) went out: hang up.
        if (how === "hangup" && ++writes === 2) setImmediate(() => raw.end());
        cb();
      },
    });
    const client = tls.connect({ socket: hello, servername: host, maxVersion: "TLSv1.2", rejectUnauthorized: false });
    client.on("error", () => {});
    let seen = Buffer.alloc(0);
    raw.on("data", (d: Buffer) => {
      if (how === "hangup") {
        hello.push(d);
        return;
      }
      seen = Buffer.concat([seen, d]);
      // ServerHelloDone (handshake type 14) ends the server's first flight.
      if (seen.includes(Buffer.from([0x0e, 0x00, 0x00, 0x00]))) {
        raw.end(Buffer.from([0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x30]));
        client.destroy();
      }
    });
    raw.on("close", () => resolve());
    raw.on("error", () => resolve());
  });
}
