/**
 * The only module that imports http-mitm-proxy. We use its request pipeline (hooks around the
 * proxy→server request and the server→client response); exhaust's own server owns the sockets:
 * listening, CONNECT, TLS termination with our CA, tunnels and pinning detection (server.ts). We
 * feed it requests through `_onHttpServerRequest`, so its `listen()` (which would write a second,
 * unconstrained CA of its own to disk) is never called.
 */
import { Proxy as MitmProxy, type IContext } from "http-mitm-proxy";
import http from "node:http";
import https from "node:https";
import { randomUUID } from "node:crypto";
import type { Socket } from "node:net";
import type { Duplex } from "node:stream";
import { createSecureContext, rootCertificates } from "node:tls";
import { HttpsProxyAgent } from "https-proxy-agent";
import { ERROR_DEFINITIONS, exhaustError, type ErrorCode } from "../errors.js";
import type { EndpointCatalog } from "../catalog/endpoints.js";
import type { Logger } from "../log.js";
import type { ConnectionRecord, Exchange, ExchangeOutcome, RawHeaders } from "../types.js";
import type { AddonChain, HookFailure, LocalResponse } from "./addons/addon.js";
import { BodyCollector, headerPairs, type InflightBudget } from "./body.js";
import { formatHostPort, MAX_HEADER_BYTES, type HostPort, type ProxyOptions } from "./options.js";
import type { Route } from "./targets.js";
import { WebSocketMessageReader, type WebSocketMessage } from "./websocket.js";

/** An absolute-form request target: scheme and authority, then the path (group 1). */
const ABSOLUTE_FORM = /^https?:\/\/[^/?#]*([^#]*)/i;

/** Pending body bytes that are written upstream at once rather than at the end of the turn. */
const RELAY_WRITE_BYTES = 64 * 1024;

/** Hop-by-hop headers (RFC 9110 §7.6.1) and our own proxy's: never forwarded upstream. */
const HOP_BY_HOP = new Set(["connection", "keep-alive", "proxy-connection", "proxy-authorization", "te", "upgrade", "expect"]);

/**
 * A WebSocket handshake keeps its own Connection/Upgrade headers; our proxy's are dropped, and so is
 * the offer of compression, so that the messages can be read (the stored headers keep it).
 */
const NOT_RELAYED_IN_UPGRADE = new Set(["proxy-authorization", "proxy-connection", "sec-websocket-extensions"]);

interface RequestState {
  x: Exchange;
  conn?: ConnectionRecord;
  requestBody: BodyCollector;
  responseBody?: BodyCollector;
  requestDone: Promise<void>;
  markRequestDone: () => void;
  upstreamTimer?: NodeJS.Timeout;
  /** The upstream request is set up and its response head awaited: --upstream-timeout may end it. */
  awaitingUpstream?: boolean;
  upstreamTimedOut: boolean;
  /** The upstream's response body sent nothing for --body-timeout. */
  bodyStalled?: boolean;
  /** The exchange has been answered or failed; later errors are echoes. */
  settled: boolean;
  /** A required addon failed at the durable point: the client got 503, the upstream's answer is drained. */
  refused?: boolean;
  ctx: IContext;
}

export interface EngineDeps {
  options: ProxyOptions;
  catalog: EndpointCatalog;
  addons: AddonChain;
  log: Logger;
  /** The connection record a client socket belongs to (set by server.ts). */
  connectionOf(socket: Socket): ConnectionRecord | undefined;
  /** Where a request goes (set by server.ts): a connection's CONNECT target, a checked address. */
  routeOf(req: http.IncomingMessage): Route | undefined;
  /** Body bytes in memory across exchanges (--max-inflight). */
  budget: InflightBudget;
}

export class ExhaustEngine extends MitmProxy {
  private readonly states = new WeakMap<IContext, RequestState>();
  private readonly deps: EngineDeps;
  /** How upstream certificates are verified; also given per request, because a proxy agent
   * (https-proxy-agent) takes the target's TLS options from the request, not from itself. */
  private upstreamTls!: https.RequestOptions;

  constructor(deps: EngineDeps) {
    super();
    this.deps = deps;
    const { options } = deps;
    this.options = {};
    this.keepAlive = true;
    this.timeout = 0;
    // Extra trust goes in through one prebuilt SecureContext: a `ca` option would be built into the
    // agent's pool key (https.Agent#getName) and concatenated on every request.
    const tlsTrust = (this.upstreamTls = {
      rejectUnauthorized: !options.insecureUpstream,
      ...(options.upstreamCaPem.length
        ? { secureContext: createSecureContext({ ca: [...rootCertificates, ...options.upstreamCaPem] }) }
        : {}),
    });
    const agentOptions = { keepAlive: true, noDelay: true, maxSockets: 256 } as https.AgentOptions;
    this.httpAgent = withNoDelay(new http.Agent(agentOptions));
    this.httpsAgent = options.upstreamProxy
      ? allHeaders(new HttpsProxyAgent(options.upstreamProxy, { ...agentOptions, ...tlsTrust }) as unknown as https.Agent)
      : withNoDelay(new https.Agent({ ...agentOptions, ...tlsTrust }));
    this.onRequest((ctx, cb) => this.beginExchange(ctx, cb));
    this.onResponse((ctx, cb) => void this.upstreamResponded(ctx, cb));
  }

  /** Entry point for one request on a client connection (plain or decrypted). */
  handle(req: http.IncomingMessage, res: http.ServerResponse, isTls: boolean): void {
    const absolute = ABSOLUTE_FORM.exec(req.url ?? "");
    if (absolute && !isTls && /^https:/i.test(req.url!)) {
      // A plain proxy request for an https:// URL (the Application Insights Node.js SDK sends its
      // uploads so): exhaust makes the TLS connection, so it is an https exchange to host:443.
      req.headers.host = new URL(req.url!).host;
      isTls = true;
    }
    // Inside a tunnel the target is the CONNECT's: an absolute-form request line
    // (`POST https://host/path`) is stored and forwarded as its path, as the origin expects.
    if (absolute && isTls) req.url = absolute[1] || "/";
    this._onHttpServerRequest(isTls, req, res);
  }

  /** Upstream sockets the agents hold (open or pooled), for the descriptor gauge. */
  upstreamSockets(): number {
    let n = 0;
    for (const agent of [this.httpAgent, this.httpsAgent]) {
      for (const list of [...Object.values(agent.sockets ?? {}), ...Object.values(agent.freeSockets ?? {})]) n += list?.length ?? 0;
    }
    return n;
  }

  destroyAgents(): void {
    this.httpAgent.destroy();
    this.httpsAgent.destroy();
  }

  /** A new exchange for a request whose line and headers have arrived. */
  private newExchange(
    req: http.IncomingMessage,
    isTls: boolean,
    host: string,
    port: number,
    path: string,
  ): { x: Exchange; conn?: ConnectionRecord } {
    const { options } = this.deps;
    const conn = this.deps.connectionOf(req.socket);
    const endpoint = this.deps.catalog.match(host);
    const x: Exchange = {
      id: randomUUID(),
      connectionId: conn?.id,
      scheme: isTls ? "https" : "http",
      method: req.method ?? "GET",
      host,
      port,
      path,
      httpVersion: req.httpVersion,
      requestHeaders: headerPairs(req.rawHeaders),
      requestBody: Buffer.alloc(0),
      requestBodySize: 0,
      requestBodyTruncated: false,
      requestComplete: false,
      mode: options.mode,
      outcome: "ok",
      startedAt: Date.now(),
      endpointId: endpoint?.id,
      capture: isTls || options.intercept === "all" || endpoint !== undefined,
    };
    if (conn) conn.exchanges++;
    return { x, conn };
  }

  private beginExchange(ctx: IContext, cb: (err?: Error | null) => void): void {
    const { addons, options } = this.deps;
    const req = ctx.clientToProxyRequest;
    const target = ctx.proxyToServerRequestOptions!;
    const route = this.deps.routeOf(req);
    const { x, conn } = route?.bound
      ? this.newExchange(req, ctx.isSSL, route.host, route.port, req.url ?? "/")
      : this.newExchange(req, ctx.isSSL, String(target.host).toLowerCase(), Number(target.port ?? (ctx.isSSL ? 443 : 80)), req.url ?? "/");
    if (route?.bound) noteHostMismatch(x, conn, req.headers.host, route);
    let markRequestDone!: () => void;
    const st: RequestState = {
      x,
      conn,
      ctx,
      requestBody: new BodyCollector(options.maxBodyBytes, this.deps.budget),
      requestDone: new Promise<void>((r) => (markRequestDone = r)),
      markRequestDone: () => {},
      upstreamTimedOut: false,
      settled: false,
    };
    st.markRequestDone = () => {
      if (x.requestEndedAt !== undefined) return;
      x.requestEndedAt = Date.now();
      x.requestBody = st.requestBody.toBuffer();
      x.requestBodySize = st.requestBody.total;
      x.requestBodyTruncated = st.requestBody.truncated;
      markRequestDone();
    };
    this.states.set(ctx, st);
    this.requestHeadersKnown(x);

    req.on("close", () => {
      if (!req.complete) void this.clientAborted(st);
    });

    // The budget comes back when the exchange ends, or at the latest when its response is over
    // (a client gone mid-response never ends the exchange): a leak would refuse uploads for good.
    ctx.proxyToClientResponse.once("close", () => {
      st.requestBody.release();
      st.responseBody?.release();
    });
    if (!this.admit(st)) return;

    if (x.mode !== "forward") {
      this.answerLocally(st);
      return;
    }

    // Forward: the body streams upstream as it comes; we keep a copy as it passes. The chunks that
    // arrive in one turn of the event loop go upstream in one write (one TLS write, not one per
    // received record), and a body that is complete within the turn goes in one write with the head,
    // from the buffer that is stored (no second copy).
    let pending: Buffer[] = [];
    let pendingBytes = 0;
    let flushQueued = false;
    const flush = (whole?: Buffer) => {
      flushQueued = false;
      if (pending.length === 0) return;
      const data = whole ?? (pending.length === 1 ? pending[0] : Buffer.concat(pending, pendingBytes));
      pending = [];
      pendingBytes = 0;
      const upstream = ctx.proxyToServerRequest;
      if (upstream && !upstream.destroyed) upstream.write(data);
    };
    ctx.onRequestData((_ctx, chunk, next) => {
      st.requestBody.push(chunk);
      pending.push(chunk);
      pendingBytes += chunk.length;
      if (pendingBytes >= RELAY_WRITE_BYTES) flush();
      else if (!flushQueued) {
        flushQueued = true;
        setImmediate(flush);
      }
      // Nothing for the library to write: the chunk goes in our next write.
      next(null, undefined);
    });
    ctx.onRequestEnd((_ctx, next) => {
      x.requestComplete = true;
      st.markRequestDone();
      // Every byte of the body is still pending and all of it was kept: the stored buffer is the body.
      const whole = pendingBytes === st.requestBody.total && x.requestBody.length === pendingBytes ? x.requestBody : undefined;
      flush(whole);
      // --upstream-timeout is the wait for the response head once the upload is sent: a large or
      // slow upload is not the upstream's delay (a stalled one is --body-timeout's).
      this.startUpstreamTimer(st);
      next();
    });
    this.configureUpstream(st);
    cb();
  }

  private configureUpstream(st: RequestState): void {
    const { x, ctx } = st;
    const { options } = this.deps;
    // Plain HTTP through a corporate proxy goes to the proxy (below), not to a checked address.
    const target = upstreamTarget(
      x,
      x.scheme === "http" && options.upstreamProxy ? undefined : this.deps.routeOf(ctx.clientToProxyRequest),
    );
    const opts = ctx.proxyToServerRequestOptions as unknown as https.RequestOptions & { headers: unknown };
    opts.host = target.host;
    opts.port = target.port;
    // An array keeps the client's header order and case on the way upstream.
    opts.headers = forwardedHeaders(x.requestHeaders, HOP_BY_HOP);
    opts.maxHeaderSize = MAX_HEADER_BYTES;
    if (x.scheme === "https") {
      opts.servername = sniName(x.host);
      Object.assign(opts, this.upstreamTls);
    } else if (options.upstreamProxy) {
      // Plain HTTP through a corporate proxy: absolute-form request line to the proxy.
      opts.path = `http://${x.host}:${x.port}${x.path}`;
      opts.host = options.upstreamProxy.hostname;
      opts.port = Number(options.upstreamProxy.port || 80);
    }
    // No AbortController per request (a signal adds listeners and allocations to every request):
    // the timer destroys the upstream request itself.
    st.awaitingUpstream = true;
  }

  private startUpstreamTimer(st: RequestState): void {
    if (st.settled || st.upstreamTimer !== undefined || !st.awaitingUpstream) return;
    st.upstreamTimer = setTimeout(() => {
      if (!st.awaitingUpstream) return;
      st.upstreamTimedOut = true;
      st.ctx.proxyToServerRequest?.destroy(Object.assign(new Error("upstream timeout"), { code: "ETIMEDOUT" }));
    }, this.deps.options.upstreamTimeoutMs);
  }

  private async upstreamResponded(ctx: IContext, cb: (err?: Error | null) => void): Promise<void> {
    const st = this.states.get(ctx);
    const upstream = ctx.serverToProxyResponse!;
    if (!st || st.settled) return cb();
    clearTimeout(st.upstreamTimer);
    st.awaitingUpstream = false;
    const { x } = st;
    st.responseBody = new BodyCollector(this.deps.options.maxBodyBytes, this.deps.budget);
    this.watchStall(st, upstream);
    upstream.on("data", (chunk: Buffer) => st.responseBody!.push(chunk));
    // Node refuses to write a `Trailer` header on a response it does not chunk; we keep the
    // header (and the trailers) in the capture and do not pass them on.
    delete upstream.headers.trailer;
    ctx.onResponseEnd((_ctx, next) => {
      next();
      void this.finish(st);
    });
    await st.requestDone;
    if (st.settled) return;
    st.settled = true;
    x.respondedAt = Date.now();
    x.response = {
      status: upstream.statusCode ?? 502,
      statusMessage: upstream.statusMessage,
      headers: headerPairs(upstream.rawHeaders),
      source: "upstream",
    };
    x.outcome = "ok";
    const failure = await this.deps.addons.run("onResponse", x);
    if (failure) {
      // Fail closed: the upstream's answer is not passed on (the client would take it as an
      // acknowledgement of an upload that is not stored); it is read and dropped.
      st.refused = true;
      upstream.resume();
      writeLocal(ctx.proxyToClientResponse, refusal(x, failure));
      void this.finish(st);
      return;
    }
    cb();
  }

  /** Sinkhole and block: read the whole upload, then answer it ourselves. */
  private answerLocally(st: RequestState): void {
    const { x, ctx } = st;
    const req = ctx.clientToProxyRequest;
    req.on("data", (chunk: Buffer) => st.requestBody.push(chunk));
    req.on("end", async () => {
      x.requestComplete = true;
      st.markRequestDone();
      if (st.settled) return;
      st.settled = true;
      const answer = this.deps.addons.respond(x) ?? {
        status: 503,
        headers: [["Content-Type", "text/plain"]],
        body: Buffer.from("exhaust: no addon answered this request\n"),
      };
      x.outcome = x.mode === "sinkhole" ? "sinkholed" : "blocked";
      await this.releaseLocal(st, answer);
      void this.finish(st);
    });
    req.resume();
  }

  private async releaseLocal(st: RequestState, answer: LocalResponse): Promise<void> {
    const { x, ctx } = st;
    x.respondedAt = Date.now();
    x.response = { status: answer.status, headers: answer.headers, body: answer.body, source: "exhaust" };
    const failure = await this.deps.addons.run("onResponse", x);
    writeLocal(ctx.proxyToClientResponse, failure ? refusal(x, failure) : answer);
  }

  private async clientAborted(st: RequestState): Promise<void> {
    if (st.settled) return;
    st.settled = true;
    clearTimeout(st.upstreamTimer);
    const { x, ctx } = st;
    st.markRequestDone();
    x.requestComplete = false;
    x.outcome = "client-aborted";
    x.error = errorInfo("EXH_CLIENT_ABORTED", {});
    ctx.proxyToServerRequest?.destroy();
    await this.deps.addons.run("onError", x);
    void this.finish(st);
  }

  /**
   * The global body budget (--max-inflight): a request whose declared length does not fit, or that
   * arrives with the budget spent, is answered 503 with Retry-After before its body is read, and
   * stored as `refused-busy`. A body without a declared length takes from the budget as it comes
   * and is stored cut (flagged) if the budget runs out.
   */
  private admit(st: RequestState): boolean {
    const { x, ctx } = st;
    const { budget } = this.deps;
    const declared = Number(ctx.clientToProxyRequest.headers["content-length"] ?? 0);
    const fits = budget.used < budget.limit && (!(declared > 0) || st.requestBody.reserve(declared));
    if (fits) return true;
    st.settled = true;
    x.outcome = "refused-busy";
    x.error = errorInfo("EXH_PROXY_BUSY", { reason: `--max-inflight ${budget.limit} bytes in use` });
    this.deps.log.warn({ exchange: x.id, host: x.host, code: x.error.code, inflight: budget.used }, x.error.message);
    ctx.proxyToClientResponse.shouldKeepAlive = false;
    void (async () => {
      await this.releaseLocal(st, {
        status: 503,
        headers: [
          ["Content-Type", "text/plain; charset=utf-8"],
          ["Retry-After", "5"],
          ["X-Exhaust-Error", x.error!.code],
        ],
        body: Buffer.from(`exhaust: ${x.error!.message}\n`),
      });
      void this.finish(st);
    })();
    // The body is read and dropped, never kept.
    st.markRequestDone();
    ctx.clientToProxyRequest.resume();
    return false;
  }

  /** An upstream response body that sends nothing for --body-timeout is cut off. */
  private watchStall(st: RequestState, upstream: http.IncomingMessage): void {
    const ms = this.deps.options.bodyTimeoutMs;
    let timer: NodeJS.Timeout | undefined;
    const arm = () => {
      clearTimeout(timer);
      timer = setTimeout(() => {
        st.bodyStalled = true;
        upstream.destroy(Object.assign(new Error("response body stalled"), { code: "EXH_BODY_STALLED" }));
      }, ms);
    };
    arm();
    upstream.on("data", arm);
    upstream.once("close", () => clearTimeout(timer));
  }

  private async finish(st: RequestState): Promise<void> {
    const { x } = st;
    if (x.endedAt !== undefined) return;
    x.endedAt = Date.now();
    try {
      await this.finishExchange(st);
    } finally {
      st.requestBody.release();
      st.responseBody?.release();
    }
  }

  /** Request line and headers are known: the addons set the mode and the upstream, which the exchange records. */
  private requestHeadersKnown(x: Exchange): void {
    this.deps.addons.runSync("onRequestHeaders", x);
    if (x.upstreamTarget) x.upstream = formatHostPort(x.upstreamTarget);
  }

  private async finishExchange(st: RequestState): Promise<void> {
    const { x } = st;
    if (x.response && st.responseBody) {
      x.response.body = st.responseBody.toBuffer();
      x.response.bodyTruncated = st.responseBody.truncated;
      const trailers = st.ctx.serverToProxyResponse?.rawTrailers;
      if (trailers?.length) x.response.trailers = headerPairs(trailers);
    }
    await this.deps.addons.run("onExchangeEnd", x);
  }

  /**
   * A request to switch protocols (WebSocket): the library's pipeline only speaks HTTP, so the
   * handshake is relayed here. The upstream answers it first (a refusal reaches the client as the
   * upstream sent it); on 101 both sockets are joined byte for byte. The handshake is stored like
   * any exchange (committed before the answer is released); each message the client sends after it
   * is stored as an exchange of its own and decoded like an upload. Sinkhole and block answer locally, so nothing leaves.
   */
  upgrade(req: http.IncomingMessage, client: Duplex, head: Buffer, isTls: boolean): void {
    const { addons, options } = this.deps;
    client.on("error", () => client.destroy());
    let authority: { host: string; port: number; path: string };
    const route = this.deps.routeOf(req);
    try {
      authority = upgradeTarget(req, isTls);
      if (route?.bound) authority = { host: route.host, port: route.port, path: authority.path };
    } catch {
      client.end("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
      return;
    }
    const { x, conn } = this.newExchange(req, isTls, authority.host, authority.port, authority.path);
    if (route?.bound) noteHostMismatch(x, conn, req.headers.host, route);
    x.requestComplete = true;
    x.requestEndedAt = x.startedAt;
    this.requestHeadersKnown(x);
    const sendLocal = (answer: LocalResponse) => {
      client.write(
        rawResponseHead(answer.status, [...answer.headers, ["Content-Length", String(answer.body.length)], ["Connection", "close"]]),
      );
      client.end(answer.body);
    };
    const answerLocally = async (answer: LocalResponse) => {
      x.respondedAt = Date.now();
      x.response = { status: answer.status, headers: answer.headers, body: answer.body, source: "exhaust" };
      const failure = await addons.run("onResponse", x);
      sendLocal(failure ? refusal(x, failure) : answer);
      x.endedAt = Date.now();
      await addons.run("onExchangeEnd", x);
    };
    if (x.mode !== "forward") {
      x.outcome = x.mode === "sinkhole" ? "sinkholed" : "blocked";
      void answerLocally(
        addons.respond(x) ?? { status: 503, headers: [["Content-Type", "text/plain"]], body: Buffer.from("exhaust: not forwarded\n") },
      );
      return;
    }
    const target = upstreamTarget(x, route);
    const headers = forwardedHeaders(x.requestHeaders, NOT_RELAYED_IN_UPGRADE);
    const upstreamReq = (isTls ? https : http).request({
      host: target.host,
      port: target.port,
      method: x.method,
      path: x.path,
      headers,
      setHost: false,
      maxHeaderSize: MAX_HEADER_BYTES,
      agent: isTls ? this.httpsAgent : this.httpAgent,
      ...(isTls ? { servername: sniName(x.host), ...this.upstreamTls } : {}),
    } as https.RequestOptions);
    let settled = false;
    const timer = setTimeout(
      () => upstreamReq.destroy(Object.assign(new Error("timeout"), { code: "ETIMEDOUT" })),
      options.upstreamTimeoutMs,
    );
    /** Resolves false when the handshake could not be stored: the client got 503 and nothing is relayed. */
    const upstreamAnswered = async (res: http.IncomingMessage): Promise<boolean> => {
      settled = true;
      clearTimeout(timer);
      x.respondedAt = Date.now();
      x.response = {
        status: res.statusCode ?? 502,
        statusMessage: res.statusMessage,
        headers: headerPairs(res.rawHeaders),
        source: "upstream",
      };
      const failure = await addons.run("onResponse", x);
      if (!failure) return true;
      sendLocal(refusal(x, failure));
      x.endedAt = Date.now();
      void addons.run("onExchangeEnd", x);
      return false;
    };
    upstreamReq.on("upgrade", async (res: http.IncomingMessage, upstream: Duplex, upstreamHead: Buffer) => {
      if (!(await upstreamAnswered(res))) {
        upstream.destroy();
        return;
      }
      upstream.on("error", () => client.destroy());
      client.write(rawResponseHead(res.statusCode ?? 101, x.response!.headers, res.statusMessage));
      if (upstreamHead.length) client.write(upstreamHead);
      if (head.length) upstream.write(head);
      // Not piped with end: a WebSocket has no half-closed state, so when one side hangs up the
      // other is told (after what was sent before reaches it) and the relay ends.
      upstream.pipe(client, { end: false });
      client.pipe(upstream, { end: false });
      // A relay with nothing either way for --idle-timeout is ended.
      if ("setTimeout" in client) {
        (client as Socket).setTimeout(options.idleTimeoutMs);
        client.on("timeout", () => end());
      }
      upstream.once("end", () => client.end(end));
      client.once("end", () => upstream.end(end));
      if (res.statusCode === 101 && x.capture) {
        // A message that cannot be stored ends the relay (it has gone upstream already; the client
        // sees the socket close and cannot take the message as delivered and kept).
        const reader = new WebSocketMessageReader(
          options.maxBodyBytes,
          (m) => void this.storeWebSocketMessage(x, conn, m).then((stored) => stored || end()),
        );
        client.on("data", (chunk: Buffer) => reader.push(chunk));
      }
      let ended = false;
      const end = () => {
        if (ended) return;
        ended = true;
        upstream.destroy();
        client.destroy();
        x.endedAt = Date.now();
        void addons.run("onExchangeEnd", x);
      };
      upstream.on("close", end);
      client.on("close", end);
    });
    upstreamReq.on("response", async (res: http.IncomingMessage) => {
      // The upstream refused to switch: its answer goes to the client as it is.
      const body = new BodyCollector(options.maxBodyBytes);
      res.on("data", (chunk: Buffer) => body.push(chunk));
      if (!(await upstreamAnswered(res))) {
        res.resume();
        return;
      }
      client.write(rawResponseHead(res.statusCode ?? 502, x.response!.headers, res.statusMessage));
      res.pipe(client);
      res.on("end", () => {
        x.response!.body = body.toBuffer();
        x.response!.bodyTruncated = body.truncated;
        x.endedAt = Date.now();
        void addons.run("onExchangeEnd", x);
      });
    });
    upstreamReq.on("error", (err: Error & { code?: string }) => {
      clearTimeout(timer);
      if (settled) {
        client.destroy();
        return;
      }
      settled = true;
      const failure = classifyUpstreamError(err, err.code === "ETIMEDOUT", x.upstream ?? `${x.host}:${x.port}`, options.upstreamTimeoutMs);
      x.outcome = failure.outcome;
      x.error = failure.error;
      void answerLocally(errorAnswer(failure));
    });
    client.on("close", () => {
      if (!settled) upstreamReq.destroy();
    });
    upstreamReq.end();
  }

  /**
   * One message the client sent over a relayed WebSocket, stored as an exchange of its own (method
   * WEBSOCKET, the handshake's path, the payload as the body, no response) so it is chained,
   * decoded and classified like an upload: a connected experience's JSON messages become events.
   */
  private async storeWebSocketMessage(handshake: Exchange, conn: ConnectionRecord | undefined, m: WebSocketMessage): Promise<boolean> {
    const { addons } = this.deps;
    const now = Date.now();
    const x: Exchange = {
      ...handshake,
      id: randomUUID(),
      method: "WEBSOCKET",
      requestHeaders: [],
      requestBody: m.payload,
      requestBodySize: m.size,
      requestBodyTruncated: m.truncated,
      requestComplete: true,
      response: undefined,
      outcome: "ok",
      error: m.compressed ? errorInfo("EXH_WEBSOCKET_COMPRESSED", {}) : undefined,
      startedAt: now,
      requestEndedAt: now,
      respondedAt: undefined,
      endedAt: undefined,
    };
    if (conn) conn.exchanges++;
    const failure = await addons.run("onResponse", x);
    x.endedAt = Date.now();
    if (failure) x.error = { code: failure.code, message: failure.message };
    await addons.run("onExchangeEnd", x);
    return !failure;
  }

  /**
   * Replaces the library's handler, which prints to the console and answers 504 with the raw
   * error text. Ours answers with the status the error's code has in the error table (502, 504),
   * one short line, stores the outcome, and never throws.
   */
  override _onError(kind: string, ctx: IContext | null, err: Error): void {
    if (!ctx) {
      this.deps.log.debug({ kind, reason: err?.message }, "engine error outside an exchange");
      return;
    }
    const st = this.states.get(ctx);
    if (!st) {
      ctx.proxyToClientResponse?.destroy();
      return;
    }
    if (kind.startsWith("CLIENT_TO_PROXY") || kind.startsWith("PROXY_TO_CLIENT")) {
      void this.clientAborted(st);
      return;
    }
    clearTimeout(st.upstreamTimer);
    const { x } = st;
    const target = x.upstream ?? `${x.host}:${x.port}`;
    const failure = classifyUpstreamError(err, st.upstreamTimedOut, target, this.deps.options.upstreamTimeoutMs);
    const res = ctx.proxyToClientResponse;
    if (st.refused) return;
    if (st.settled) {
      // The response was already under way: the upstream died (or stalled) mid-body.
      if (x.outcome === "ok") {
        x.outcome = failure.outcome === "upstream-timeout" ? "upstream-failed" : failure.outcome;
        x.error = st.bodyStalled ? errorInfo("EXH_BODY_STALLED", { side: "response", ms: this.deps.options.bodyTimeoutMs }) : failure.error;
        if (st.bodyStalled) x.outcome = "upstream-failed";
      }
      res.destroy();
      void this.finish(st);
      return;
    }
    st.settled = true;
    x.outcome = failure.outcome;
    x.error = failure.error;
    this.deps.log.warn({ exchange: x.id, host: x.host, code: failure.error.code }, failure.error.message);
    void st.requestDone.then(async () => {
      await this.releaseLocal(st, errorAnswer(failure));
      void this.finish(st);
    });
    // Let the client finish sending (or give up) so the stored body is what it sent.
    ctx.clientToProxyRequest.resume();
  }
}

/**
 * Upstream sockets without Nagle: the engine writes the head and the body separately, and Nagle
 * plus the peer's delayed ACK would add ~40 ms to every forwarded upload. (tls.connect ignores the
 * agent's noDelay option.)
 */
function withNoDelay<A extends http.Agent>(agent: A): A {
  allHeaders(agent);
  const create = (agent as unknown as { createConnection: (...a: unknown[]) => Socket | undefined }).createConnection;
  (agent as unknown as { createConnection: unknown }).createConnection = function (this: A, ...args: unknown[]) {
    const socket = create.apply(this, args);
    socket?.setNoDelay(true);
    return socket;
  };
  return agent;
}

/**
 * Upstream responses keep all their headers: a request's header-count limit can only be lifted on
 * the request object before its socket is assigned, which is when the agent receives it.
 */
function allHeaders<A extends http.Agent>(agent: A): A {
  const add = (agent as unknown as { addRequest: (req: http.ClientRequest, ...rest: unknown[]) => unknown }).addRequest;
  (agent as unknown as { addRequest: unknown }).addRequest = function (this: A, req: http.ClientRequest, ...rest: unknown[]) {
    req.maxHeadersCount = 0;
    return add.call(this, req, ...rest);
  };
  return agent;
}

/** How long a client is asked to wait after a refused release (RFC 9110 Retry-After, seconds). */
const RETRY_AFTER_SECONDS = 5;

/**
 * The answer when a required addon failed at the durable point (the capture could not be
 * committed): 503 with Retry-After, so telemetry clients keep the batch and send it again.
 */
function refusal(x: Exchange, failure: HookFailure): LocalResponse {
  x.error = { code: failure.code, message: failure.message };
  const answer: LocalResponse = {
    status: 503,
    headers: [
      ["Content-Type", "text/plain; charset=utf-8"],
      ["Retry-After", String(RETRY_AFTER_SECONDS)],
      ["X-Exhaust-Error", failure.code],
    ],
    body: Buffer.from(`exhaust: ${failure.message}\n`),
  };
  x.response = { status: answer.status, headers: answer.headers, body: answer.body, source: "exhaust" };
  return answer;
}

function writeLocal(res: http.ServerResponse, answer: LocalResponse): void {
  if (res.headersSent || res.destroyed) return;
  res.writeHead(answer.status, answer.headers.flat());
  res.end(answer.body);
}

function errorInfo(code: ErrorCode, params: Record<string, string | number>): { code: string; message: string } {
  const e = exhaustError(code, params);
  return { code: e.code, message: e.message };
}

function classifyUpstreamError(err: Error & { code?: string }, timedOut: boolean, target: string, ms: number): UpstreamFailure {
  const failure = (outcome: ExchangeOutcome, code: UpstreamErrorCode, params: Record<string, string | number>): UpstreamFailure => ({
    outcome,
    status: ERROR_DEFINITIONS[code].httpStatus,
    error: errorInfo(code, params),
  });
  if (timedOut || err?.code === "ETIMEDOUT") return failure("upstream-timeout", "EXH_UPSTREAM_TIMEOUT", { target, ms });
  if (err?.code === "ECONNREFUSED") return failure("upstream-refused", "EXH_UPSTREAM_REFUSED", { target });
  if (err?.code === "ECONNRESET" || err?.code === "EPIPE" || /socket hang up/.test(err?.message ?? "")) {
    return failure("upstream-reset", "EXH_UPSTREAM_RESET", { target });
  }
  const reason = err?.code ?? err?.message?.split("\n")[0] ?? "unknown error";
  return failure("upstream-failed", "EXH_UPSTREAM_FAILED", { target, reason });
}

type UpstreamErrorCode = "EXH_UPSTREAM_TIMEOUT" | "EXH_UPSTREAM_REFUSED" | "EXH_UPSTREAM_RESET" | "EXH_UPSTREAM_FAILED";

/** An upstream that failed before answering: the outcome, the status its code has in the error table, the error. */
interface UpstreamFailure {
  outcome: ExchangeOutcome;
  status: number;
  error: { code: string; message: string };
}

/** The answer exhaust gives for an upstream that failed: its status, its code in X-Exhaust-Error, one line. */
function errorAnswer(failure: UpstreamFailure): LocalResponse {
  return {
    status: failure.status,
    headers: [
      ["Content-Type", "text/plain; charset=utf-8"],
      ["X-Exhaust-Error", failure.error.code],
    ],
    body: Buffer.from(`exhaust: ${failure.error.message}\n`),
  };
}

/**
 * Where a forwarded request goes: the upstream an addon set (--map-host), else the address the
 * target check resolved and approved for this connection (no second lookup: DNS rebinding), else
 * the host the client addressed.
 */
function upstreamTarget(x: Exchange, route: Route | undefined): HostPort {
  return x.upstreamTarget ?? route?.dial ?? { host: x.host, port: x.port };
}

/** The request headers that go upstream, as a flat name/value array in the client's order and case. */
function forwardedHeaders(headers: RawHeaders, dropped: ReadonlySet<string>): string[] {
  const out: string[] = [];
  for (const [name, value] of headers) {
    if (!dropped.has(name.toLowerCase())) out.push(name, value);
  }
  return out;
}

/** The TLS server name for the upstream: the host, unless it is an IP address (no SNI then). */
function sniName(host: string): string | undefined {
  return /^[\d.]+$|:/.test(host) ? undefined : host;
}

/** Host, port and path of an upgrade request: origin-form inside a tunnel, absolute-form in plain proxying. */
function upgradeTarget(req: http.IncomingMessage, isTls: boolean): { host: string; port: number; path: string } {
  const raw = req.url ?? "/";
  const u = raw.startsWith("/") ? new URL(`${isTls ? "https" : "http"}://${req.headers.host ?? ""}${raw}`) : new URL(raw);
  const secure = u.protocol === "https:" || u.protocol === "wss:";
  return {
    host: u.hostname.replace(/^\[|\]$/g, "").toLowerCase(),
    port: Number(u.port || (secure ? 443 : 80)),
    path: `${u.pathname}${u.search}`,
  };
}

/** A status line and headers as bytes, in the given order and case. */
function rawResponseHead(status: number, headers: RawHeaders, message = http.STATUS_CODES[status] ?? ""): string {
  return `HTTP/1.1 ${status} ${message}\r\n${headers.map(([n, v]) => `${n}: ${v}\r\n`).join("")}\r\n`;
}

/**
 * On a connection bound to a CONNECT the target is authoritative; a Host header naming another
 * host is recorded on the exchange (and the connection) as a finding, never followed.
 */
function noteHostMismatch(x: Exchange, conn: ConnectionRecord | undefined, hostHeader: string | undefined, route: Route): void {
  if (!hostHeader) return;
  // A Host without a port names the host only (plain HTTP inside a CONNECT to :443 is common).
  let named: { host: string; port?: number };
  try {
    const u = new URL(`${x.scheme}://${hostHeader}`);
    named = {
      host: u.hostname.replace(/^\[|\]$/g, "").toLowerCase(),
      port: /:\d+$/.test(hostHeader) ? Number(u.port || (x.scheme === "https" ? 443 : 80)) : undefined,
    };
  } catch {
    named = { host: hostHeader, port: -1 };
  }
  if (named.host === route.host && (named.port === undefined || named.port === route.port)) return;
  const target = route.host.includes(":") ? `[${route.host}]:${route.port}` : `${route.host}:${route.port}`;
  x.error ??= errorInfo("EXH_HOST_MISMATCH", { host: hostHeader, target });
  if (conn) conn.error ??= `Host header ${hostHeader} differs from the CONNECT target ${target}`;
}
