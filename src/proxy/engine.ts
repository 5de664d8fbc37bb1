/**
 * The HTTP engine: one request on a client connection (plain, or decrypted by server.ts) becomes
 * one exchange, answered locally (sinkhole, block, refusals) or forwarded upstream through the
 * agents, behind the addon hooks (access, modes, intercept, host-map, pinning, capture).
 *
 * This per-request path was http-mitm-proxy's until issue 19: its async.js handler loops, a
 * context with a dozen closures, two filter objects piped in between, a header copy and a UUID per
 * request were most of the proxy thread's overhead. exhaust's own server (server.ts) already owned
 * the sockets (listening, CONNECT, TLS termination with our CA, tunnels, pinning detection), so
 * the library no longer earned its place and is not used.
 */
import http from "node:http";
import https from "node:https";
import { randomUUID } from "node:crypto";
import type { Socket } from "node:net";
import type { Duplex } from "node:stream";
import { createSecureContext, rootCertificates } from "node:tls";
import { HttpsProxyAgent } from "https-proxy-agent";
import type { EndpointCatalog } from "../catalog/endpoints.js";
import type { Logger } from "../log.js";
import type { ConnectionRecord, Exchange } from "../types.js";
import type { AddonChain, LocalResponse } from "./addons/addon.js";
import { BodyCollector, headerPairs, type InflightBudget } from "./body.js";
import { formatHostPort, MAX_HEADER_BYTES, requestTarget, type HostPort, type ProxyOptions } from "./options.js";
import type { Route } from "./targets.js";
import {
  classifyUpstreamError,
  errorAnswer,
  errorInfo,
  forwardedHeaders,
  HOP_BY_HOP,
  localAnswer,
  noteHostMismatch,
  recordUpstreamResponse,
  refusal,
  retryLaterAnswer,
  sniName,
  upstreamTarget,
  writeLocal,
} from "./relay.js";
import { relayWebSocket } from "./websocket-relay.js";

/** Pending body bytes that are written upstream at once rather than at the end of the turn. */
const RELAY_WRITE_BYTES = 64 * 1024;

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
  /** The client's request and our response to it. */
  req: http.IncomingMessage;
  res: http.ServerResponse;
  /** The forwarded request and the upstream's response, once made / once its head is in. */
  upstream?: http.ClientRequest;
  upstreamResponse?: http.IncomingMessage;
}

/** Which side an error came from: the client's connection, or the upstream's. */
type ErrorSide = "client" | "upstream";

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

export class ExhaustEngine {
  private readonly deps: EngineDeps;
  private readonly httpAgent: http.Agent;
  private readonly httpsAgent: https.Agent;
  /** How upstream certificates are verified; also given per request, because a proxy agent
   * (https-proxy-agent) takes the target's TLS options from the request, not from itself. */
  private upstreamTls!: https.RequestOptions;

  constructor(deps: EngineDeps) {
    this.deps = deps;
    const { options } = deps;
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
  }

  /** Entry point for one request on a client connection (plain or decrypted). */
  handle(req: http.IncomingMessage, res: http.ServerResponse, isTls: boolean): void {
    // The request target, parsed once (requestTarget, as the target policy read it): an
    // absolute-form URL (`POST https://host/path`) is stored and forwarded as its path, as the
    // origin expects; outside a tunnel its authority names the target, else the Host header does.
    const parsed = requestTarget(req, isTls);
    req.url = parsed.path;
    if (parsed.upgradesToTls) {
      // A plain proxy request for an https:// URL (the Application Insights Node.js SDK sends its
      // uploads so): exhaust makes the TLS connection, so it is an https exchange to host:443.
      req.headers.host = parsed.authority;
      isTls = true;
    }
    // On a connection bound to a CONNECT the target is the CONNECT's (a Host naming another is
    // recorded as a finding, whatever it says); elsewhere a request without one is refused.
    const route = this.deps.routeOf(req);
    const target = route?.bound ? route : parsed.target;
    if (!target) {
      req.resume();
      res.writeHead(400, { "Content-Type": "text/html; charset=utf-8" });
      res.end("Bad request: Host missing...", "utf-8");
      return;
    }
    this.beginExchange(req, res, isTls, target, route);
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
      clientAddress: conn?.clientAddress,
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

  private beginExchange(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    isTls: boolean,
    target: HostPort,
    route: Route | undefined,
  ): void {
    const { options } = this.deps;
    const { x, conn } = this.newExchange(req, isTls, route?.bound ? route.host : target.host.toLowerCase(), target.port, req.url ?? "/");
    if (route?.bound) noteHostMismatch(x, conn, req.headers.host, route);
    let markRequestDone!: () => void;
    const st: RequestState = {
      x,
      conn,
      req,
      res,
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
    req.on("error", (e: Error) => this.failed(st, "client", e));
    res.on("error", (e: Error) => this.failed(st, "client", e));
    this.requestHeadersKnown(x);

    req.on("close", () => {
      if (!req.complete) void this.clientAborted(st);
    });

    // The budget comes back when the exchange ends, or at the latest when its response is over
    // (a client gone mid-response never ends the exchange): a leak would refuse uploads for good.
    res.once("close", () => {
      st.requestBody.release();
      st.responseBody?.release();
    });
    if (!this.admit(st)) return;

    if (x.mode !== "forward") {
      this.answerLocally(st);
      return;
    }

    const upstream = this.openUpstream(st);
    // Forward: the body streams upstream as it comes; we keep a copy as it passes. The chunks that
    // arrive in one turn of the event loop go upstream in one write (one TLS write, not one per
    // received record), and a body that is complete within the turn goes in one write with the head,
    // from the buffer that is stored (no second copy).
    let pending: Buffer[] = [];
    let pendingBytes = 0;
    let flushQueued = false;
    const flush = () => {
      flushQueued = false;
      if (pending.length === 0) return;
      const data = pending.length === 1 ? pending[0] : Buffer.concat(pending, pendingBytes);
      pending = [];
      pendingBytes = 0;
      // Back-pressure: a slow upstream pauses the client's upload instead of filling our memory.
      if (!upstream.destroyed && !upstream.write(data) && !req.isPaused()) {
        req.pause();
        upstream.once("drain", () => req.resume());
      }
    };
    req.on("data", (chunk: Buffer) => {
      st.requestBody.push(chunk);
      pending.push(chunk);
      pendingBytes += chunk.length;
      if (pendingBytes >= RELAY_WRITE_BYTES) flush();
      else if (!flushQueued) {
        flushQueued = true;
        setImmediate(flush);
      }
    });
    req.on("end", () => {
      x.requestComplete = true;
      st.markRequestDone();
      // Every byte of the body is still pending and all of it was kept: the stored buffer is the body,
      // and it goes with the head in one write.
      const whole = pendingBytes > 0 && pendingBytes === st.requestBody.total && x.requestBody.length === pendingBytes;
      if (whole) {
        pending = [];
        pendingBytes = 0;
      } else flush();
      if (!upstream.destroyed) upstream.end(whole ? x.requestBody : undefined);
      // --upstream-timeout is the wait for the response head once the upload is sent: a large or
      // slow upload is not the upstream's delay (a stalled one is --body-timeout's).
      this.startUpstreamTimer(st);
    });
  }

  /** The upstream request for a forwarded exchange: where it goes, its headers, its TLS trust. */
  private openUpstream(st: RequestState): http.ClientRequest {
    const { x, req } = st;
    const { options } = this.deps;
    // Plain HTTP through a corporate proxy goes to the proxy (below), not to a checked address.
    const target = upstreamTarget(x, x.scheme === "http" && options.upstreamProxy ? undefined : this.deps.routeOf(req));
    const opts: https.RequestOptions = {
      method: req.method,
      path: req.url,
      host: target.host,
      port: target.port,
      // An array keeps the client's header order and case on the way upstream.
      headers: forwardedHeaders(x.requestHeaders, HOP_BY_HOP),
      maxHeaderSize: MAX_HEADER_BYTES,
      agent: x.scheme === "https" ? this.httpsAgent : this.httpAgent,
    };
    if (x.scheme === "https") {
      opts.servername = sniName(x.host);
      Object.assign(opts, this.upstreamTls);
    } else if (options.upstreamProxy) {
      // Plain HTTP through a corporate proxy: absolute-form request line to the proxy.
      opts.path = `http://${formatHostPort(x)}${x.path}`;
      opts.host = options.upstreamProxy.hostname;
      opts.port = Number(options.upstreamProxy.port || 80);
    }
    const upstream = (x.scheme === "https" ? https : http).request(opts);
    st.upstream = upstream;
    upstream.on("response", (r: http.IncomingMessage) => void this.upstreamResponded(st, r));
    upstream.on("error", (e: Error) => this.failed(st, "upstream", e));
    // No AbortController per request (a signal adds listeners and allocations to every request):
    // the timer destroys the upstream request itself.
    st.awaitingUpstream = true;
    return upstream;
  }

  private startUpstreamTimer(st: RequestState): void {
    if (st.settled || st.upstreamTimer !== undefined || !st.awaitingUpstream) return;
    st.upstreamTimer = setTimeout(() => {
      if (!st.awaitingUpstream) return;
      st.upstreamTimedOut = true;
      st.upstream?.destroy(Object.assign(new Error("upstream timeout"), { code: "ETIMEDOUT" }));
    }, this.deps.options.upstreamTimeoutMs);
  }

  private async upstreamResponded(st: RequestState, upstream: http.IncomingMessage): Promise<void> {
    upstream.on("error", (e: Error) => this.failed(st, "upstream", e));
    upstream.pause();
    st.upstreamResponse = upstream;
    if (st.settled) {
      upstream.resume();
      return;
    }
    clearTimeout(st.upstreamTimer);
    st.awaitingUpstream = false;
    const { x, res } = st;
    st.responseBody = new BodyCollector(this.deps.options.maxBodyBytes, this.deps.budget);
    // A declared length (of a response that has a body) is reserved and its memory made now, as
    // for an upload: the body is then received into one buffer. Without room in the budget it is
    // collected as it comes, as any body without a length.
    const declared = Number(upstream.headers["content-length"]);
    const status = upstream.statusCode ?? 0;
    if (declared > 0 && x.method !== "HEAD" && status >= 200 && status !== 204 && status !== 304) st.responseBody.reserve(declared);
    this.watchStall(st, upstream);
    upstream.on("data", (chunk: Buffer) => st.responseBody!.push(chunk));
    // Node refuses to write a `Trailer` header on a response it does not chunk; we keep the
    // header (and the trailers) in the capture and do not pass them on.
    delete upstream.headers.trailer;
    await st.requestDone;
    if (st.settled) return;
    st.settled = true;
    recordUpstreamResponse(x, upstream);
    x.outcome = "ok";
    const failure = await this.deps.addons.run("onResponse", x);
    if (failure) {
      // Fail closed: the upstream's answer is not passed on (the client would take it as an
      // acknowledgement of an upload that is not stored); it is read and dropped.
      st.refused = true;
      upstream.resume();
      writeLocal(res, refusal(x, failure));
      void this.finish(st);
      return;
    }
    // The release: the upstream's head and body go to the client as they come.
    if (res.destroyed) {
      upstream.resume();
      return;
    }
    res.writeHead(upstream.statusCode ?? 502, releasedHeaders(upstream.headers, st.req.headers["proxy-connection"] !== undefined));
    // Back-pressure, as on the upload side: a slow client pauses the upstream's body instead of
    // filling our memory; a client gone meanwhile lets it flow out (and be captured) again.
    upstream.on("data", (chunk: Buffer) => {
      if (!res.write(chunk) && !res.destroyed && !upstream.isPaused()) {
        upstream.pause();
        res.once("drain", () => upstream.resume());
      }
    });
    res.once("close", () => upstream.resume());
    upstream.on("end", () => {
      res.end();
      void this.finish(st);
    });
    upstream.resume();
  }

  /** Sinkhole and block: read the whole upload, then answer it ourselves. */
  private answerLocally(st: RequestState): void {
    const { x, req } = st;
    req.on("data", (chunk: Buffer) => st.requestBody.push(chunk));
    req.on("end", () => {
      x.requestComplete = true;
      st.markRequestDone();
      if (st.settled) return;
      st.settled = true;
      const answer = localAnswer(this.deps.addons, x);
      x.outcome = x.mode === "sinkhole" ? "sinkholed" : "blocked";
      // An answer that cannot be written ends the client's connection: nothing is acknowledged by accident.
      this.releaseLocal(st, answer).then(
        () => void this.finish(st),
        (e: unknown) => st.res.destroy(e as Error),
      );
    });
    req.resume();
  }

  private async releaseLocal(st: RequestState, answer: LocalResponse): Promise<void> {
    const { x } = st;
    x.respondedAt = Date.now();
    x.response = { status: answer.status, headers: answer.headers, body: answer.body, source: "exhaust" };
    const failure = await this.deps.addons.run("onResponse", x);
    writeLocal(st.res, failure ? refusal(x, failure) : answer);
  }

  private async clientAborted(st: RequestState): Promise<void> {
    if (st.settled) return;
    st.settled = true;
    clearTimeout(st.upstreamTimer);
    const { x } = st;
    st.markRequestDone();
    x.requestComplete = false;
    x.outcome = "client-aborted";
    x.error = errorInfo("EXH_CLIENT_ABORTED", {});
    st.upstream?.destroy();
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
    const { x, req, res } = st;
    const { budget } = this.deps;
    const declared = Number(req.headers["content-length"] ?? 0);
    const fits = budget.used < budget.limit && (!(declared > 0) || st.requestBody.reserve(declared));
    if (fits) return true;
    st.settled = true;
    x.outcome = "refused-busy";
    x.error = errorInfo("EXH_PROXY_BUSY", { reason: `--max-inflight ${budget.limit} bytes in use` });
    this.deps.log.warn({ exchange: x.id, host: x.host, code: x.error.code, inflight: budget.used }, x.error.message);
    res.shouldKeepAlive = false;
    void (async () => {
      await this.releaseLocal(st, retryLaterAnswer(x.error!));
      void this.finish(st);
    })();
    // The body is read and dropped, never kept.
    st.markRequestDone();
    req.resume();
    return false;
  }

  /** An upstream response body that sends nothing for --body-timeout is cut off. */
  private watchStall(st: RequestState, upstream: http.IncomingMessage): void {
    // One timer per response, pushed back on each chunk (no new timer per chunk).
    const timer = setTimeout(() => {
      st.bodyStalled = true;
      upstream.destroy(Object.assign(new Error("response body stalled"), { code: "EXH_BODY_STALLED" }));
    }, this.deps.options.bodyTimeoutMs);
    upstream.on("data", () => timer.refresh());
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
      const trailers = st.upstreamResponse?.rawTrailers;
      if (trailers?.length) x.response.trailers = headerPairs(trailers);
    }
    await this.deps.addons.run("onExchangeEnd", x);
  }

  /** A request to switch protocols (WebSocket): relayed by websocket-relay.ts. */
  upgrade(req: http.IncomingMessage, client: Duplex, head: Buffer, isTls: boolean): void {
    relayWebSocket(
      {
        deps: this.deps,
        agents: { http: this.httpAgent, https: this.httpsAgent },
        upstreamTls: this.upstreamTls,
        newExchange: (r, tls, host, port, path) => this.newExchange(r, tls, host, port, path),
        requestHeadersKnown: (x) => this.requestHeadersKnown(x),
      },
      req,
      client,
      head,
      isTls,
    );
  }

  /**
   * An error on either side of an exchange. Ours answers with the status the error's code has in
   * the error table (502, 504), one short line, stores the outcome, and never throws.
   */
  private failed(st: RequestState, side: ErrorSide, err: Error): void {
    if (side === "client") {
      void this.clientAborted(st);
      return;
    }
    clearTimeout(st.upstreamTimer);
    const { x, res } = st;
    const target = x.upstream ?? formatHostPort(x);
    const failure = classifyUpstreamError(err, st.upstreamTimedOut, target, this.deps.options.upstreamTimeoutMs);
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
    st.req.resume();
  }
}

/**
 * The upstream's response headers as released to the client: names trimmed, HTTP public-key pins
 * dropped (they would pin the client to our leaf), keep-alive confirmed to a client that asked in
 * Proxy-Connection.
 */
function releasedHeaders(headers: http.IncomingHttpHeaders, proxyConnection: boolean): http.OutgoingHttpHeaders {
  const out: http.OutgoingHttpHeaders = {};
  for (const key in headers) {
    const name = key.trim();
    if (/^public-key-pins/i.test(name)) continue;
    out[name] = headers[key];
  }
  if (proxyConnection) {
    out["proxy-connection"] = "keep-alive";
    out["connection"] = "keep-alive";
  }
  return out;
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
