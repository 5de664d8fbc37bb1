import http from "node:http";
import net, { type Socket } from "node:net";
import tls from "node:tls";
import { randomUUID } from "node:crypto";
import type { Duplex } from "node:stream";
import { exhaustError } from "../errors.js";
import type { EndpointCatalog } from "../catalog/endpoints.js";
import type { LeafIssuer } from "../ca/leaf.js";
import type { Logger } from "../log.js";
import type { ConnectionRecord } from "../types.js";
import { AccessPolicy, deniedResponse } from "./access.js";
import { AddonChain, type Addon, type ConnectDecision } from "./addons/addon.js";
import { ExhaustEngine } from "./engine.js";
import { MAX_HEADER_BYTES, parseHostPort, type HostPort, type ProxyOptions } from "./options.js";

export interface ProxyDeps {
  options: ProxyOptions;
  catalog: EndpointCatalog;
  issuer: LeafIssuer;
  addons: Addon[];
  log: Logger;
}

export interface RunningProxy {
  address: HostPort;
  /** Stops accepting, closes client connections, flushes the addons. */
  close(): Promise<void>;
}

/** A post-handshake close without a request counts as a pin check only this soon after the handshake. */
const PIN_CHECK_WINDOW_MS = 1000;

/** TLS alerts and closes that mean "the client did not accept our certificate". */
const CERT_REJECTION = /ALERT_(UNKNOWN_CA|BAD_CERTIFICATE|CERTIFICATE_UNKNOWN|UNSUPPORTED_CERTIFICATE|CERTIFICATE_REVOKED|CERTIFICATE_EXPIRED|ACCESS_DENIED|DECRYPT_ERROR)|ECONNRESET|EPIPE/;

/**
 * The listening side: accepts proxy requests and CONNECTs, applies the access policy, decides per
 * CONNECT between interception (TLS terminated with a leaf from our CA, requests handed to the
 * engine) and a byte-for-byte tunnel, and keeps a ConnectionRecord for every one of them.
 */
export async function startProxy(deps: ProxyDeps): Promise<RunningProxy> {
  const { options, catalog, issuer, log } = deps;
  const access = new AccessPolicy(options);
  const addons = new AddonChain(deps.addons, log);
  const connections = new WeakMap<Socket, ConnectionRecord>();
  const open = new Set<Socket>();

  const engine = new ExhaustEngine({
    options,
    catalog,
    addons,
    log,
    connectionOf: (socket) => connections.get(socket),
  });

  const openConnection = (c: ConnectionRecord) => void addons.run("onConnectionOpened", c);
  const closeConnection = (c: ConnectionRecord) => {
    if (c.endedAt !== undefined) return;
    c.endedAt = Date.now();
    void addons.run("onConnectionClosed", c);
  };

  // Decrypted client connections are fed to this server; it never listens.
  const decrypted = http.createServer({ noDelay: true, keepAlive: true, maxHeaderSize: MAX_HEADER_BYTES });
  // 0: no count limit (Node's default keeps the first ~1,000 headers and drops the rest silently);
  // the head's size is bounded by maxHeaderSize.
  decrypted.maxHeadersCount = 0;
  decrypted.on("request", (req, res) => engine.handle(req, res, true));
  decrypted.on("upgrade", (req, socket, head) => engine.upgrade(req, socket, head, true));
  decrypted.on("clientError", (err, socket) => {
    // The client spoke (badly) after the handshake: it accepted our certificate.
    const c = connections.get(socket as Socket);
    if (c) c.error ??= `malformed request: ${(err as Error & { code?: string }).code ?? err.message}`;
    answerClientError(socket, err);
  });

  const server = http.createServer({ noDelay: true, keepAlive: true, maxHeaderSize: MAX_HEADER_BYTES });
  server.maxHeadersCount = 0;
  server.on("connection", (socket: Socket) => {
    open.add(socket);
    socket.on("close", () => open.delete(socket));
    socket.setNoDelay(true);
  });
  server.on("clientError", (err, socket) => answerClientError(socket, err));

  /** A refused client is evidence too (something on the lab network tried to use the proxy). */
  const refuse = (socket: Socket, target: string, defaultPort: number, status: 403 | 407) => {
    const hp = safeHostPort(target, defaultPort);
    const c = newConnection(socket, hp?.host ?? "", hp?.port ?? defaultPort, "denied");
    c.error = status === 407 ? "proxy authentication required" : "client address not allowed";
    openConnection(c);
    socket.end(deniedResponse(status));
    closeConnection(c);
  };

  /** A plain-HTTP proxy request's connection gets its record on its first request. */
  const plainConnection = (req: http.IncomingMessage) => {
    if (connections.has(req.socket)) return;
    const target = safeHostPort(req.headers.host ?? "", 80);
    const c = newConnection(req.socket, target?.host ?? "", target?.port ?? 80, "plain-http");
    connections.set(req.socket, c);
    openConnection(c);
    req.socket.once("close", () => {
      c.bytesFromClient = req.socket.bytesRead;
      c.bytesToClient = req.socket.bytesWritten;
      closeConnection(c);
    });
  };

  server.on("upgrade", (req: http.IncomingMessage, socket: Socket, head: Buffer) => {
    const denied = access.check(req);
    if (denied) {
      refuse(socket, req.headers.host ?? "", 80, denied);
      return;
    }
    plainConnection(req);
    engine.upgrade(req, socket, head, false);
  });

  server.on("request", (req, res) => {
    const denied = access.check(req);
    if (denied) {
      refuse(req.socket, req.headers.host ?? "", 80, denied);
      return;
    }
    plainConnection(req);
    engine.handle(req, res, false);
  });

  server.on("connect", (req: http.IncomingMessage, socket: Socket, head: Buffer) => {
    socket.on("error", () => socket.destroy());
    const denied = access.check(req);
    if (denied) {
      refuse(socket, req.url ?? "", 443, denied);
      return;
    }
    const target = safeHostPort(req.url ?? "", 443);
    if (!target) {
      socket.end("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
      return;
    }
    const entry = catalog.match(target.host);
    const decision: ConnectDecision = {
      host: target.host,
      port: target.port,
      clientAddress: socket.remoteAddress ?? "",
      action: options.intercept === "all" || entry ? "intercept" : "tunnel",
      reason: options.intercept === "all" ? "intercept-all" : entry ? `catalog:${entry.id}` : "not-in-catalog",
    };
    addons.runSync("onConnect", decision);
    if (decision.action === "refuse") {
      const refused = newConnection(socket, target.host, target.port, "closed-by-policy");
      refused.error = `${decision.reason}; mode ${decision.mode ?? options.mode} keeps its data in`;
      openConnection(refused);
      socket.end("HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
      closeConnection(refused);
      return;
    }
    const c = newConnection(socket, target.host, target.port, decision.action === "intercept" ? "intercepted" : "tunnelled");
    if (decision.upstream) c.upstream = `${decision.upstream.host}:${decision.upstream.port}`;
    connections.set(socket, c);
    openConnection(c);
    // Counted from here on: what the client sends after its CONNECT line (head included).
    const readBase = socket.bytesRead - head.length;
    const established = "HTTP/1.1 200 Connection Established\r\n\r\n";
    socket.write(established);
    const writtenBase = socket.bytesWritten + Buffer.byteLength(established);
    // Called once the client side is closed: by the raw socket for tunnels, by the TLS socket for
    // interception (its outcome is only known when the TLS socket closes).
    const finished = () => {
      c.bytesFromClient = Math.max(0, socket.bytesRead - readBase);
      c.bytesToClient = Math.max(0, socket.bytesWritten - writtenBase);
      closeConnection(c);
    };
    if (decision.action === "tunnel") {
      socket.once("close", finished);
      tunnel(socket, head, decision, c);
      return;
    }
    const decide = (first: Buffer) => {
      socket.pause();
      socket.unshift(first);
      // Not TLS (plain HTTP or another protocol inside CONNECT): nothing to decrypt, relay it.
      if (first[0] !== 0x16) {
        c.outcome = "tunnelled";
        socket.once("close", finished);
        tunnel(socket, Buffer.alloc(0), decision, c);
        return;
      }
      intercept(socket, decision, c, finished);
    };
    if (head.length) decide(head);
    else socket.once("data", decide);
  });

  function intercept(socket: Socket, d: ConnectDecision, c: ConnectionRecord, finished: () => void): void {
    let secure = false;
    let secureAt = 0;
    let defaultContext: tls.SecureContext;
    try {
      defaultContext = issuer.secureContextFor(d.host);
    } catch (e) {
      c.outcome = "tls-failed";
      c.error = (e as Error).message;
      socket.destroy();
      finished();
      return;
    }
    const tlsSocket = new tls.TLSSocket(socket, {
      isServer: true,
      secureContext: defaultContext,
      ALPNProtocols: ["http/1.1"],
      SNICallback: (servername, cb) => {
        c.sni = servername;
        try {
          cb(null, servername && servername !== d.host ? issuer.secureContextFor(servername) : defaultContext);
        } catch (e) {
          cb(e as Error);
        }
      },
    });
    connections.set(tlsSocket as unknown as Socket, c);
    tlsSocket.on("secure", () => {
      secure = true;
      secureAt = Date.now();
      decrypted.emit("connection", tlsSocket);
    });
    // CONNECT sockets come from an allowHalfOpen server: a client that hangs up after reading our
    // certificate (what pinning looks like) would otherwise leave the socket half open forever.
    tlsSocket.on("end", () => {
      if (!secure) tlsSocket.destroy();
    });
    tlsSocket.on("error", (err: Error & { code?: string }) => {
      if (!secure && c.outcome === "intercepted") {
        const why = `${err.code ?? ""} ${err.message}`;
        c.outcome = CERT_REJECTION.test(why) ? "client-rejected-certificate" : "tls-failed";
        c.error = err.code ?? err.message;
      }
      tlsSocket.destroy();
    });
    tlsSocket.on("close", () => {
      // A client that completes the handshake but hangs up at once, before any request, is
      // treated like one that refused the certificate: some stacks (OkHttp's CertificatePinner)
      // check the pin after the handshake. An idle preconnect that closes later is not.
      const quietClose = secure && c.exchanges === 0 && !c.error && Date.now() - secureAt < PIN_CHECK_WINDOW_MS;
      if (c.outcome === "intercepted" && (!secure || quietClose)) {
        c.outcome = "client-rejected-certificate";
        c.error ??= secure ? "closed before the first request" : "closed during the TLS handshake";
      }
      finished();
      socket.destroy();
    });
  }

  function tunnel(socket: Socket, head: Buffer, d: ConnectDecision, c: ConnectionRecord): void {
    const to = d.upstream ?? { host: d.host, port: d.port };
    const onUpstream = (upstream: Duplex) => {
      if (head.length) upstream.write(head);
      socket.pipe(upstream);
      upstream.pipe(socket);
      socket.resume();
    };
    const fail = (err: Error & { code?: string }) => {
      c.outcome = "upstream-failed";
      c.error = err.code ?? err.message;
      socket.destroy();
    };
    if (options.upstreamProxy) {
      connectThroughProxy(options.upstreamProxy, to, onUpstream, fail, socket);
      return;
    }
    const upstream = net.connect({ host: to.host, port: to.port, noDelay: true });
    upstream.once("connect", () => onUpstream(upstream));
    upstream.on("error", (err) => {
      if (!upstream.readyState || upstream.connecting) fail(err);
      socket.destroy();
    });
    upstream.on("close", () => socket.destroy());
    socket.on("close", () => upstream.destroy());
  }

  function newConnection(socket: Socket, host: string, port: number, outcome: ConnectionRecord["outcome"]): ConnectionRecord {
    return {
      id: randomUUID(),
      clientAddress: (socket.remoteAddress ?? "").replace(/^::ffff:/, ""),
      clientPort: socket.remotePort ?? 0,
      host: host.toLowerCase(),
      port,
      outcome,
      bytesFromClient: 0,
      bytesToClient: 0,
      startedAt: Date.now(),
      exchanges: 0,
    };
  }

  await new Promise<void>((resolve, reject) => {
    server.once("error", (e) =>
      reject(exhaustError("EXH_LISTEN_FAILED", { address: `${options.listen.host}:${options.listen.port}`, reason: e.message }, e)),
    );
    server.listen(options.listen.port, options.listen.host, () => resolve());
  });
  const bound = server.address() as net.AddressInfo;
  log.info({ listen: `${bound.address}:${bound.port}`, mode: options.mode, intercept: options.intercept }, "proxy listening");

  return {
    address: { host: bound.address, port: bound.port },
    async close() {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const s of open) s.destroy();
      });
      engine.destroyAgents();
      await addons.close();
    },
  };
}

function safeHostPort(text: string, defaultPort: number): HostPort | undefined {
  try {
    const hp = parseHostPort("CONNECT", text, undefined);
    return { host: hp.host.toLowerCase(), port: hp.port };
  } catch {
    const host = text.trim().toLowerCase();
    return /^[a-z0-9.-]+$/.test(host) ? { host, port: defaultPort } : undefined;
  }
}

/** A malformed request line or header: answer 400 if the socket can still take it, never crash. */
function answerClientError(socket: Duplex, err: Error & { code?: string }): void {
  if (socket.writable && err.code !== "ECONNRESET") {
    socket.end("HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\nexhaust: malformed request\n");
  } else {
    socket.destroy();
  }
}

/** Opens a CONNECT tunnel through the corporate proxy given by --upstream. */
function connectThroughProxy(
  proxy: URL,
  to: HostPort,
  onReady: (s: Duplex) => void,
  fail: (e: Error) => void,
  client: Socket,
): void {
  const authority = to.host.includes(":") ? `[${to.host}]:${to.port}` : `${to.host}:${to.port}`;
  const headers: Record<string, string> = { host: authority };
  if (proxy.username) {
    headers["proxy-authorization"] = `Basic ${Buffer.from(`${decodeURIComponent(proxy.username)}:${decodeURIComponent(proxy.password)}`).toString("base64")}`;
  }
  const req = http.request({ host: proxy.hostname, port: Number(proxy.port || 80), method: "CONNECT", path: authority, headers });
  req.once("connect", (res, upstream) => {
    if (res.statusCode !== 200) {
      upstream.destroy();
      fail(new Error(`upstream proxy answered ${res.statusCode} to CONNECT`));
      return;
    }
    upstream.on("error", () => client.destroy());
    upstream.on("close", () => client.destroy());
    client.on("close", () => upstream.destroy());
    onReady(upstream);
  });
  req.once("error", fail);
  req.end();
}
