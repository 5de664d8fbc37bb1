import { readdirSync, readFileSync } from "node:fs";
import http from "node:http";
import net, { type Socket } from "node:net";
import tls from "node:tls";
import { randomUUID } from "node:crypto";
import type { Duplex } from "node:stream";
import { exhaustError } from "../errors.js";
import { codeAnswer, rawAnswer, type HttpErrorCode } from "./relay.js";
import type { EndpointCatalog } from "../catalog/endpoints.js";
import type { LeafIssuer } from "../ca/leaf.js";
import type { Logger } from "../log.js";
import type { ConnectionRecord } from "../types.js";
import { deniedResponse } from "./addons/access.js";
import { AddonChain, type Addon, type ConnectDecision } from "./addons/addon.js";
import { InflightBudget } from "./body.js";
import { ExhaustEngine } from "./engine.js";
import { TargetPolicy, type Route, type TargetCheck } from "./targets.js";
import { formatHostPort, MAX_HEADER_BYTES, parseAuthority, requestTarget, type HostPort, type ProxyOptions } from "./options.js";

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

/** A post-handshake close without a request counts as (weak) pin evidence only this soon after the handshake. */
const PIN_CHECK_WINDOW_MS = 1000;

/** TLS alerts from the client that name our certificate: clear evidence it was refused. */
const CERT_ALERT =
  /ALERT_(UNKNOWN_CA|BAD_CERTIFICATE|CERTIFICATE_UNKNOWN|UNSUPPORTED_CERTIFICATE|CERTIFICATE_REVOKED|CERTIFICATE_EXPIRED|ACCESS_DENIED)/;

/** Most bytes gathered while waiting for a complete ClientHello. */
const MAX_CLIENT_HELLO = 64 * 1024;

/**
 * The listening side: accepts proxy requests and CONNECTs, applies the access policy and the
 * target policy (no relay to private space), decides per CONNECT between interception (TLS
 * terminated with a leaf from our CA, or plain HTTP parsed in place, requests handed to the
 * engine) and a byte-for-byte tunnel, and keeps a ConnectionRecord for every one of them.
 */
export async function startProxy(deps: ProxyDeps): Promise<RunningProxy> {
  const proxy = new ProxyServer(deps);
  const address = await proxy.listen();
  return { address, close: () => proxy.close() };
}

/**
 * The proxy's state and its pieces, each a method: the listener and its client connections
 * (`onClientConnection`), plain proxy requests and upgrades (`onPlainRequest`), CONNECT handling
 * (`onConnectRequest`, `connected`, `sniffInside`), TLS interception (`intercept`, the SNI
 * context provider `tlsSocketFor`, `watchHandshake`), tunnels (`tunnel`) and shutdown (`close`).
 */
class ProxyServer {
  private readonly options: ProxyOptions;
  private readonly log: Logger;
  private readonly issuer: LeafIssuer;
  private readonly addons: AddonChain;
  private readonly connections = new WeakMap<object, ConnectionRecord>();
  private readonly routes = new WeakMap<object, Route>();
  /** Connections whose client sent a request (or tried to) after the handshake. */
  private readonly spoke = new WeakSet<ConnectionRecord>();
  private readonly open = new Set<Socket>();
  /** Upstream sockets of byte-for-byte tunnels, for the descriptor gauge. */
  private tunnels = 0;
  private bound: HostPort | undefined;
  private readonly targets: TargetPolicy;
  private readonly engine: ExhaustEngine;
  /** Decrypted client connections are fed to this server; it never listens. */
  private readonly decrypted: http.Server;
  /** Plain HTTP sent inside a CONNECT to an intercepted host: parsed here, never tunnelled. */
  private readonly plainInside: http.Server;
  private readonly server: http.Server;
  private readonly descriptors: DescriptorGauge;
  private lastBusyWarning = 0;
  private lastAcceptWarning = 0;

  constructor(deps: ProxyDeps) {
    const { options, catalog, log } = deps;
    this.options = options;
    this.log = log;
    this.issuer = deps.issuer;
    this.addons = new AddonChain(deps.addons, log);
    this.targets = new TargetPolicy(options, () => this.bound);
    this.engine = new ExhaustEngine({
      options,
      catalog,
      addons: this.addons,
      log,
      budget: new InflightBudget(options.maxInflightBytes),
      connectionOf: (socket) => this.connections.get(socket),
      routeOf: (req) => this.routes.get(req) ?? this.routes.get(req.socket),
    });
    this.decrypted = this.innerServer(true);
    this.plainInside = this.innerServer(false);
    this.descriptors = new DescriptorGauge(() => this.open.size + this.tunnels + this.engine.upstreamSockets());
    const server = http.createServer({ noDelay: true, keepAlive: true, maxHeaderSize: MAX_HEADER_BYTES });
    server.maxHeadersCount = 0;
    server.timeout = options.idleTimeoutMs;
    server.on("connection", (socket: Socket) => this.onClientConnection(socket));
    server.on("clientError", (err, socket) => answerClientError(socket, err));
    server.on("upgrade", (req: http.IncomingMessage, socket: Socket, head: Buffer) =>
      this.onPlainRequest(req, socket, () => this.engine.upgrade(req, socket, head, false)),
    );
    server.on("request", (req, res) => this.onPlainRequest(req, req.socket, () => this.engine.handle(req, res, false)));
    server.on("connect", (req: http.IncomingMessage, socket: Socket, head: Buffer) => this.onConnectRequest(req, socket, head));
    this.server = server;
  }

  /** Listens on options.listen; resolves with the bound address. */
  async listen(): Promise<HostPort> {
    const { server, options, log } = this;
    await new Promise<void>((resolve, reject) => {
      server.once("error", (e) =>
        reject(exhaustError("EXH_LISTEN_FAILED", { address: formatHostPort(options.listen), reason: e.message }, e)),
      );
      server.listen(options.listen.port, options.listen.host, () => resolve());
    });
    // From here on an accept error (EMFILE, ENFILE at the descriptor limit) refuses that client
    // and is logged; the listener and everything in flight go on.
    server.on("error", (e: Error & { code?: string }) => {
      if (Date.now() - this.lastAcceptWarning < 1000) return;
      this.lastAcceptWarning = Date.now();
      log.warn(
        { code: "EXH_PROXY_BUSY", reason: e.code ?? e.message },
        "cannot accept a connection: refusing new work until descriptors free up",
      );
    });
    const boundAddress = server.address() as net.AddressInfo;
    this.bound = { host: boundAddress.address, port: boundAddress.port };
    log.info({ listen: formatHostPort(this.bound), mode: options.mode, intercept: options.intercept }, "proxy listening");
    return { ...this.bound };
  }

  /** Shutdown: stops accepting, closes client connections and upstream agents, flushes the addons. */
  async close(): Promise<void> {
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      for (const s of this.open) s.destroy();
    });
    this.engine.destroyAgents();
    await this.addons.close();
  }

  /** The access addon's verdict on a client (403 address, 407 credentials), or undefined. */
  private admit(req: http.IncomingMessage): 403 | 407 | undefined {
    return this.addons.admit({
      address: (req.socket.remoteAddress ?? "").replace(/^::ffff:/, ""),
      proxyAuthorization: req.headers["proxy-authorization"],
    });
  }

  private openConnection(c: ConnectionRecord): void {
    void this.addons.run("onConnectionOpened", c);
  }

  private closeConnection(c: ConnectionRecord): void {
    if (c.endedAt !== undefined) return;
    c.endedAt = Date.now();
    void this.addons.run("onConnectionClosed", c);
  }

  /** A request on a connection bound to a CONNECT: the client spoke; a missing Host is the target's. */
  private boundRequest(req: http.IncomingMessage): void {
    const c = this.connections.get(req.socket);
    if (c) this.spoke.add(c);
    const route = this.routes.get(req.socket);
    if (route && !req.headers.host) req.headers.host = formatHostPort(route);
  }

  /** A server for the requests inside an intercepted CONNECT, fed its sockets by `intercept`. */
  private innerServer(isTls: boolean): http.Server {
    const inner = http.createServer({ noDelay: true, keepAlive: true, maxHeaderSize: MAX_HEADER_BYTES });
    inner.timeout = this.options.idleTimeoutMs;
    // 0: no count limit (Node's default keeps the first ~1,000 headers and drops the rest silently);
    // the head's size is bounded by maxHeaderSize.
    inner.maxHeadersCount = 0;
    inner.on("request", (req, res) => {
      this.boundRequest(req);
      this.engine.handle(req, res, isTls);
    });
    inner.on("upgrade", (req, socket, head) => {
      this.boundRequest(req);
      this.engine.upgrade(req, socket, head, isTls);
    });
    inner.on("clientError", (err, socket) => {
      // The client spoke (badly) after the handshake: it accepted our certificate.
      const c = this.connections.get(socket);
      if (c) {
        this.spoke.add(c);
        c.error ??= `malformed request: ${(err as Error & { code?: string }).code ?? err.message}`;
      }
      answerClientError(socket, err);
    });
    return inner;
  }

  /**
   * A new client connection. At the descriptor limit (less a reserve for the store and the
   * threads) new clients get 503 at once, with a logged reason, instead of failing somewhere inside.
   */
  private onClientConnection(socket: Socket): void {
    const busy = this.descriptors.exhausted();
    if (busy) {
      if (Date.now() - this.lastBusyWarning > 1000) {
        this.lastBusyWarning = Date.now();
        this.log.warn({ code: "EXH_PROXY_BUSY", reason: busy }, "at the descriptor limit: refusing new connections");
      }
      socket.on("error", () => socket.destroy());
      socket.end(rawCodeAnswer("EXH_PROXY_BUSY", { reason: busy }));
      socket.setTimeout(1000, () => socket.destroy());
      return;
    }
    this.open.add(socket);
    socket.on("close", () => this.open.delete(socket));
    socket.setNoDelay(true);
  }

  /** A refused client is evidence too (something on the lab network tried to use the proxy). */
  private refuse(socket: Socket, target: string, defaultPort: number, status: 403 | 407): void {
    const hp = safeHostPort(target, defaultPort);
    const c = this.newConnection(socket, hp?.host ?? "", hp?.port ?? defaultPort, "denied");
    c.error = status === 407 ? "proxy authentication required" : "client address not allowed";
    this.openConnection(c);
    socket.end(deniedResponse(status));
    this.closeConnection(c);
  }

  /** A target the policy refused (private space, the proxy itself, the UI): 403 and a row. */
  private refuseTarget(socket: Socket, target: HostPort, reason: string): void {
    const c = this.newConnection(socket, target.host, target.port, "refused-private");
    c.error = reason;
    this.openConnection(c);
    this.log.warn({ module: "connection", host: target.host, port: target.port, client: c.clientAddress, reason }, "relay refused");
    socket.end(rawCodeAnswer("EXH_TARGET_REFUSED", { target: formatHostPort(target), reason }));
    this.closeConnection(c);
  }

  /** A target that could not be reached before anything was relayed: 502 (503 at a descriptor limit). */
  private failTarget(socket: Socket, c: ConnectionRecord, error: string): void {
    c.outcome = "upstream-failed";
    c.error = error;
    const busy = error === "EMFILE" || error === "ENFILE";
    if (busy) this.log.warn({ code: "EXH_PROXY_BUSY", reason: error, host: c.host }, "out of file descriptors: refusing new work");
    socket.end(
      busy
        ? rawCodeAnswer("EXH_PROXY_BUSY", { reason: error })
        : rawCodeAnswer("EXH_UPSTREAM_FAILED", { target: formatHostPort(c), reason: error }),
    );
  }

  /** A plain-HTTP proxy request's connection gets its record on its first request. */
  private plainConnection(req: http.IncomingMessage): void {
    if (this.connections.has(req.socket)) return;
    const target = safeHostPort(req.headers.host ?? "", 80);
    const c = this.newConnection(req.socket, target?.host ?? "", target?.port ?? 80, "plain-http");
    this.connections.set(req.socket, c);
    this.openConnection(c);
    req.socket.once("close", () => {
      c.bytesFromClient = req.socket.bytesRead;
      c.bytesToClient = req.socket.bytesWritten;
      this.closeConnection(c);
    });
  }

  /**
   * Checks a plain proxy request's target (absolute-form URL, else Host) before the engine sees
   * it; a refused one is answered here. Resolves to false when it was refused.
   */
  private async routePlain(req: http.IncomingMessage): Promise<boolean> {
    const { options } = this;
    const { target } = requestTarget(req, false);
    if (!target) return true; // no target at all: the engine answers 400
    // Answered here (sinkhole, block): nothing is relayed, so nothing to check, and no name is
    // looked up in DNS on the way.
    if ((this.addons.modeOf(target.host) ?? options.mode) !== "forward") return true;
    const mapped = options.mapHosts.get(target.host);
    const check = await this.targets.check(target, mapped, !options.upstreamProxy);
    if (check.ok) {
      this.routes.set(req, { host: target.host, port: target.port, dial: mapped ? undefined : check.dial, bound: false });
      return true;
    }
    if (check.code === "resolve-failed") return true; // the engine reports it as an upstream failure
    req.resume();
    this.refuseTarget(req.socket, target, check.reason);
    return false;
  }

  /**
   * Request and upgrade handling: a plain proxy request (absolute-form, or a WebSocket upgrade)
   * is admitted, its target checked, then handed to the engine by `relay`.
   */
  private onPlainRequest(req: http.IncomingMessage, socket: Socket, relay: () => void): void {
    const denied = this.admit(req);
    if (denied) {
      this.refuse(socket, req.headers.host ?? "", 80, denied);
      return;
    }
    void this.routePlain(req).then((ok) => {
      if (!ok) return;
      this.plainConnection(req);
      relay();
    });
  }

  /**
   * A CONNECT: the access addon admits the client, the addons decide (intercept, tunnel, refuse)
   * and the target policy checks where the bytes would go; then `connected` takes over.
   */
  private onConnectRequest(req: http.IncomingMessage, socket: Socket, head: Buffer): void {
    const { options } = this;
    socket.on("error", () => socket.destroy());
    const denied = this.admit(req);
    if (denied) {
      this.refuse(socket, req.url ?? "", 443, denied);
      return;
    }
    const target = safeHostPort(req.url ?? "", 443);
    if (!target) {
      socket.end("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
      return;
    }
    const decision = this.decideConnect(socket, target);
    if (!decision) return;
    // Nothing is read from the client until the target is checked (and, for a tunnel, reached).
    socket.pause();
    // Counted from here on: what the client sends after its CONNECT line (head included).
    const readBase = socket.bytesRead - head.length;
    const mode = decision.mode ?? options.mode;
    const relays = decision.action === "tunnel" || mode === "forward";
    const checked = relays
      ? this.targets.check(target, decision.upstream, !options.upstreamProxy)
      : Promise.resolve<TargetCheck>({ ok: true, dial: decision.upstream ?? target });
    void checked.then((check) => {
      if (socket.destroyed) return;
      if (!check.ok && check.code !== "resolve-failed") {
        this.refuseTarget(socket, target, check.reason);
        return;
      }
      const c = this.newConnection(socket, target.host, target.port, decision.action === "intercept" ? "intercepted" : "tunnelled");
      if (decision.upstream) c.upstream = formatHostPort(decision.upstream);
      this.connections.set(socket, c);
      this.openConnection(c);
      if (!check.ok) {
        this.failTarget(socket, c, check.error ?? check.reason);
        this.closeConnection(c);
        return;
      }
      const dial = decision.upstream ? undefined : check.dial;
      this.routes.set(socket, { host: target.host, port: target.port, dial, bound: true });
      this.connected(socket, head, decision, c, check.dial, readBase);
    });
  }

  /**
   * The intercept addon decides (addons/intercept.ts); without a decision nothing is relayed. A
   * refused CONNECT is answered 503 and recorded here (undefined is returned).
   */
  private decideConnect(socket: Socket, target: HostPort): ConnectDecision | undefined {
    const decision: ConnectDecision = {
      host: target.host,
      port: target.port,
      clientAddress: (socket.remoteAddress ?? "").replace(/^::ffff:/, ""),
      action: "refuse",
      reason: "no addon decided",
    };
    this.addons.runSync("onConnect", decision);
    if (decision.action !== "refuse") return decision;
    const refused = this.newConnection(socket, target.host, target.port, "closed-by-policy");
    refused.error = `${decision.reason}; mode ${decision.mode ?? this.options.mode} keeps its data in`;
    this.openConnection(refused);
    socket.end("HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    this.closeConnection(refused);
    return undefined;
  }

  /** After the target check: a tunnel connects first, interception answers and waits for bytes. */
  private connected(socket: Socket, head: Buffer, decision: ConnectDecision, c: ConnectionRecord, dial: HostPort, readBase: number): void {
    const established = "HTTP/1.1 200 Connection Established\r\n\r\n";
    let writtenBase = socket.bytesWritten;
    const answer = () => {
      socket.write(established);
      writtenBase = socket.bytesWritten;
    };
    // Called once the client side is closed: by the raw socket for tunnels, by the TLS socket for
    // interception (its outcome is only known when the TLS socket closes).
    const finished = () => {
      c.bytesFromClient = Math.max(0, socket.bytesRead - readBase);
      c.bytesToClient = Math.max(0, socket.bytesWritten - writtenBase);
      this.closeConnection(c);
    };
    if (decision.action === "tunnel") {
      socket.once("close", finished);
      this.tunnel(socket, head, dial, c, answer);
      return;
    }
    answer();
    this.sniffInside(socket, head, decision, c, dial, finished);
  }

  /**
   * An intercepted CONNECT, answered: its first bytes say what is inside. TLS is intercepted
   * (once the ClientHello is complete), plain HTTP is parsed in place, anything else is tunnelled
   * in forward mode and closed otherwise. A CONNECT that never speaks is reclaimed.
   */
  private sniffInside(
    socket: Socket,
    head: Buffer,
    decision: ConnectDecision,
    c: ConnectionRecord,
    dial: HostPort,
    finished: () => void,
  ): void {
    const { options } = this;
    const mode = decision.mode ?? options.mode;
    const onSilence = () => {
      if (c.outcome === "intercepted" && !c.error) {
        c.outcome = "tls-failed";
        c.error = `nothing usable within ${options.handshakeTimeoutMs} ms of the CONNECT (--handshake-timeout)`;
      }
      socket.destroy();
    };
    socket.setTimeout(options.handshakeTimeoutMs);
    socket.on("timeout", onSilence);
    socket.once("close", () => {
      if (!c.endedAt && !intercepting) finished();
    });
    let intercepting = false;
    let decided = false;
    // A client that half-closes before it said anything has nothing more to say.
    socket.once("end", () => {
      if (!decided) socket.destroy();
    });
    const gathered: Buffer[] = [];
    const decide = (chunk: Buffer) => {
      gathered.push(chunk);
      const first = gathered.length === 1 ? chunk : Buffer.concat(gathered);
      if (first[0] === 0x16) {
        const hello = clientHelloState(first);
        if (hello === "partial") {
          socket.once("data", decide);
          socket.resume();
          return;
        }
        socket.pause();
        socket.unshift(first);
        socket.removeListener("timeout", onSilence);
        socket.setTimeout(0);
        intercepting = true;
        decided = true;
        this.intercept(socket, decision, c, finished, hello === "complete");
        return;
      }
      socket.pause();
      socket.unshift(first);
      decided = true;
      if (looksLikeHttp(first)) {
        // Plain HTTP inside the CONNECT: captured and answered per mode like any request.
        socket.removeListener("timeout", onSilence);
        socket.setTimeout(0);
        this.plainInside.emit("connection", socket);
        socket.resume();
        return;
      }
      if (mode !== "forward") {
        c.outcome = "closed-by-policy";
        c.error = `neither TLS nor HTTP inside the CONNECT; mode ${mode} relays nothing`;
        socket.destroy();
        return;
      }
      // Another protocol, in forward mode: relayed as it is, and recorded as a tunnel.
      c.outcome = "tunnelled";
      c.error = "neither TLS nor HTTP inside the CONNECT: relayed unread";
      socket.removeListener("timeout", onSilence);
      this.tunnel(socket, Buffer.alloc(0), dial, c, () => {});
    };
    if (head.length) decide(head);
    else {
      socket.once("data", decide);
      socket.resume();
    }
  }

  /** TLS interception: the CONNECT target's leaf (signed now if new), then the handshake. */
  private intercept(socket: Socket, d: ConnectDecision, c: ConnectionRecord, finished: () => void, helloComplete: boolean): void {
    const refuse = (e: Error) => {
      c.outcome = "tls-failed";
      c.error = e.message;
      socket.destroy();
      finished();
    };
    let ready: tls.SecureContext | undefined;
    try {
      // Cached, or a new host's leaf signed now by an ECDSA CA (~0.03 ms).
      ready = this.issuer.secureContextNow(d.host);
    } catch (e) {
      return refuse(e as Error);
    }
    if (ready) return this.terminate(socket, d, c, finished, helloComplete, ready);
    // A new host under an RSA CA: its leaf is signed on libuv's thread pool while the ClientHello
    // waits in the paused socket, and the event loop serves the other connections meanwhile.
    this.issuer.secureContextForAsync(d.host).then((context) => {
      if (!socket.destroyed) return this.terminate(socket, d, c, finished, helloComplete, context);
      c.outcome = "tls-failed";
      c.error ??= "closed before the TLS handshake";
      finished();
    }, refuse);
  }

  /** Terminates TLS on the client socket; a secure socket is fed to the `decrypted` server. */
  private terminate(
    socket: Socket,
    d: ConnectDecision,
    c: ConnectionRecord,
    finished: () => void,
    helloComplete: boolean,
    defaultContext: tls.SecureContext,
  ): void {
    const helloRead = socket.bytesRead;
    const tlsSocket = this.tlsSocketFor(socket, d, c, defaultContext);
    this.connections.set(tlsSocket, c);
    this.routes.set(tlsSocket, this.routes.get(socket)!);
    this.watchHandshake(tlsSocket, socket, c, finished, helloComplete, helloRead);
  }

  /**
   * The TLS/SNI context provider: a server-side TLS socket over the client's, with the CONNECT
   * target's leaf, and a leaf for any other name the client sends in SNI (recorded, not followed).
   */
  private tlsSocketFor(socket: Socket, d: ConnectDecision, c: ConnectionRecord, defaultContext: tls.SecureContext): tls.TLSSocket {
    return new tls.TLSSocket(socket, {
      isServer: true,
      secureContext: defaultContext,
      ALPNProtocols: ["http/1.1"],
      SNICallback: (servername, cb) => {
        c.sni = servername;
        if (servername && servername.toLowerCase() !== d.host) {
          // Recorded, not followed: the upstream stays the CONNECT target.
          c.error ??= `SNI ${servername} differs from the CONNECT target ${d.host}`;
        }
        if (!servername || servername === d.host) return cb(null, defaultContext);
        let ready: tls.SecureContext | undefined;
        try {
          ready = this.issuer.secureContextNow(servername);
        } catch (e) {
          return cb(e as Error);
        }
        if (ready) cb(null, ready);
        else this.issuer.secureContextForAsync(servername).then((context) => cb(null, context), cb);
      },
    });
  }

  /**
   * Follows the handshake to its end: a secure socket goes to the `decrypted` server; a failed or
   * abandoned one is recorded, with pinning evidence where the client's behaviour gives some.
   */
  private watchHandshake(
    tlsSocket: tls.TLSSocket,
    socket: Socket,
    c: ConnectionRecord,
    finished: () => void,
    helloComplete: boolean,
    /** What the raw socket had read when the handshake began. */
    helloRead: number,
  ): void {
    const { options } = this;
    let secure = false;
    // The client went on with the handshake after its ClientHello (it read our certificate and
    // answered): only then can giving up be about the certificate.
    const answeredOurFlight = () => helloComplete && socket.bytesRead > helloRead;
    let secureAt = 0;
    const onHandshakeTimeout = () => {
      if (!secure && c.outcome === "intercepted") {
        c.outcome = "tls-failed";
        c.error = `TLS handshake not finished within ${options.handshakeTimeoutMs} ms (--handshake-timeout)`;
      }
      tlsSocket.destroy();
    };
    tlsSocket.setTimeout(options.handshakeTimeoutMs);
    tlsSocket.on("timeout", onHandshakeTimeout);
    tlsSocket.on("secure", () => {
      secure = true;
      secureAt = Date.now();
      tlsSocket.removeListener("timeout", onHandshakeTimeout);
      tlsSocket.setTimeout(0);
      this.decrypted.emit("connection", tlsSocket);
    });
    // CONNECT sockets come from an allowHalfOpen server: a client that hangs up after reading our
    // certificate (what pinning looks like) would otherwise leave the socket half open forever.
    tlsSocket.on("end", () => {
      if (!secure) tlsSocket.destroy();
    });
    tlsSocket.on("error", (err: Error & { code?: string }) => {
      if (!secure && c.outcome === "intercepted") {
        const why = `${err.code ?? ""} ${err.message}`;
        if (CERT_ALERT.test(why)) {
          c.outcome = "client-rejected-certificate";
          c.pinEvidence = "certificate-alert";
        } else {
          c.outcome = "tls-failed";
          if (/ECONNRESET|EPIPE/.test(why) && answeredOurFlight()) c.pinEvidence = "abandoned-handshake";
        }
        c.error = err.code ?? err.message;
      }
      tlsSocket.destroy();
    });
    tlsSocket.on("close", () => {
      if (c.outcome === "intercepted" && !secure) {
        // A quiet close during the handshake: evidence only after a complete ClientHello, and only
        // when it repeats (the pinning addon counts); garbage and partial hellos never count.
        c.outcome = "tls-failed";
        const answered = answeredOurFlight();
        c.error ??= answered
          ? "closed during the TLS handshake, after answering our certificate"
          : helloComplete
            ? "closed during the TLS handshake, without answering our certificate"
            : "closed before a complete ClientHello";
        if (answered) c.pinEvidence = "abandoned-handshake";
      } else if (c.outcome === "intercepted" && c.exchanges === 0 && !this.spoke.has(c) && Date.now() - secureAt < PIN_CHECK_WINDOW_MS) {
        // Completed the handshake and hung up at once, before any request: some stacks (OkHttp's
        // CertificatePinner) check the pin after the handshake. Weak evidence: it must repeat.
        c.error ??= "closed before the first request";
        c.pinEvidence = "quiet-close";
      }
      finished();
      socket.destroy();
    });
  }

  /**
   * A byte-for-byte tunnel. The upstream is connected first; only then is `ready` called (which
   * answers the CONNECT), so a failure is answered 502 and stored as upstream-failed.
   */
  private tunnel(socket: Socket, head: Buffer, to: HostPort, c: ConnectionRecord, ready: () => void): void {
    const { options } = this;
    let joined = false;
    const onUpstream = (upstream: Duplex) => {
      if (socket.destroyed) {
        upstream.destroy();
        return;
      }
      joined = true;
      ready();
      socket.setTimeout(options.idleTimeoutMs);
      socket.on("timeout", () => {
        socket.destroy();
        upstream.destroy();
      });
      if (head.length) upstream.write(head);
      socket.pipe(upstream);
      upstream.pipe(socket);
      socket.resume();
    };
    const fail = (err: Error & { code?: string }) => {
      if (joined) {
        socket.destroy();
        return;
      }
      this.failTarget(socket, c, err.code ?? err.message);
    };
    if (options.upstreamProxy) {
      connectThroughProxy(options.upstreamProxy, to, onUpstream, fail, socket);
      return;
    }
    const upstream = net.connect({ host: to.host, port: to.port, noDelay: true, timeout: options.upstreamTimeoutMs });
    this.tunnels++;
    upstream.once("close", () => this.tunnels--);
    upstream.once("timeout", () => {
      if (!joined) upstream.destroy(Object.assign(new Error("connect timeout"), { code: "ETIMEDOUT" }));
    });
    upstream.once("connect", () => {
      upstream.setTimeout(0);
      onUpstream(upstream);
    });
    upstream.on("error", (err) => {
      if (!joined) fail(err);
      else socket.destroy();
    });
    upstream.on("close", () => {
      if (joined) socket.destroy();
    });
    socket.on("close", () => upstream.destroy());
  }

  private newConnection(socket: Socket, host: string, port: number, outcome: ConnectionRecord["outcome"]): ConnectionRecord {
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
}

/**
 * How close the process is to its descriptor limit (RLIMIT_NOFILE, read from /proc on Linux;
 * elsewhere unknown and never reported exhausted). Descriptors in use = those open at start (the
 * store, the threads, the listener) + the proxy's sockets as counted by `inUse`.
 */
class DescriptorGauge {
  private readonly limit: number;
  private readonly reserve: number;
  /** Descriptors open beside the counted sockets (store, threads, log), as last counted. */
  private base = 0;
  private countedAt = 0;

  constructor(private readonly inUse: () => number) {
    this.limit = Infinity;
    try {
      const m = /^Max open files\s+(\d+)/m.exec(readFileSync("/proc/self/limits", "utf8"));
      if (m) this.limit = Number(m[1]);
      this.recount();
    } catch {
      // Not Linux: no gauge.
    }
    this.reserve = Math.max(32, Math.ceil(this.limit / 8));
  }

  /** A reason when new work must be refused, else undefined. */
  exhausted(): string | undefined {
    if (this.limit === Infinity) return undefined;
    let used = this.base + this.inUse();
    // Past half the limit, count for real (at most every 100 ms): the threads, SQLite and module
    // loading open descriptors the sockets do not account for, and once the process is really out,
    // libuv closes new clients at accept without a word (its spare-descriptor trick), so the
    // estimate must not run behind. Below half, the estimate costs nothing per connection.
    if (used >= this.limit / 2 && Date.now() - this.countedAt >= 100) {
      try {
        this.recount();
        used = this.base + this.inUse();
      } catch {
        // Listing /proc/self/fd takes a descriptor itself: failing (EMFILE) means there is none left.
        this.countedAt = Date.now();
        used = this.limit;
      }
    }
    if (used < this.limit - this.reserve) return undefined;
    return `about ${used} of ${this.limit} file descriptors in use (${this.reserve} kept in reserve)`;
  }

  private recount(): void {
    // readdir's own descriptor is in the listing.
    this.base = Math.max(0, readdirSync("/proc/self/fd").length - 1 - this.inUse());
    this.countedAt = Date.now();
  }
}

/** An answer for an error code (relay.ts's codeAnswer), as bytes for the raw client socket. */
function rawCodeAnswer(code: HttpErrorCode, params: Record<string, string | number>): Buffer {
  return rawAnswer(codeAnswer(code, params));
}

/** An HTTP request line starts with a method token and a space. */
function looksLikeHttp(b: Buffer): boolean {
  let i = 0;
  while (i < b.length && i < 16 && b[i] >= 0x41 && b[i] <= 0x5a) i++;
  return i > 0 && (i === b.length || b[i] === 0x20);
}

/**
 * Whether the bytes hold a whole ClientHello (handshake type 1, its length covered by the records
 * gathered), need more, or are something else. The hello decides whether a failed handshake can
 * be pin evidence: a client that gave up before sending one said nothing about our certificate.
 */
function clientHelloState(b: Buffer): "complete" | "partial" | "other" {
  const payload: Buffer[] = [];
  let at = 0;
  let have = 0;
  while (at + 5 <= b.length) {
    if (b[at] !== 0x16) return "other";
    const len = b.readUInt16BE(at + 3);
    const part = b.subarray(at + 5, Math.min(at + 5 + len, b.length));
    payload.push(part);
    have += part.length;
    if (have >= 4) {
      const hs = Buffer.concat(payload, have);
      if (hs[0] !== 1) return "other";
      const need = hs.readUIntBE(1, 3) + 4;
      if (have >= need) return "complete";
    }
    if (part.length < len) break;
    at += 5 + len;
  }
  return b.length >= MAX_CLIENT_HELLO ? "other" : "partial";
}

/** A CONNECT target or Host header as parseAuthority reads it, the host lower-cased. */
function safeHostPort(text: string, defaultPort: number): HostPort | undefined {
  const hp = parseAuthority(text.trim(), defaultPort);
  return hp && { host: hp.host.toLowerCase(), port: hp.port };
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
function connectThroughProxy(proxy: URL, to: HostPort, onReady: (s: Duplex) => void, fail: (e: Error) => void, client: Socket): void {
  const authority = formatHostPort(to);
  const headers: Record<string, string> = { host: authority };
  if (proxy.username) {
    headers["proxy-authorization"] =
      `Basic ${Buffer.from(`${decodeURIComponent(proxy.username)}:${decodeURIComponent(proxy.password)}`).toString("base64")}`;
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
