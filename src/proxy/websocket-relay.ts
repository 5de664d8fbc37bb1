/**
 * The WebSocket relay: a request to switch protocols is relayed here, beside the HTTP engine
 * (engine.ts), whose request pipeline only speaks HTTP.
 */
import http from "node:http";
import https from "node:https";
import { randomUUID } from "node:crypto";
import type { Socket } from "node:net";
import type { Duplex } from "node:stream";
import type { ConnectionRecord, Exchange } from "../types.js";
import type { LocalResponse } from "./addons/addon.js";
import { BodyCollector } from "./body.js";
import type { EngineDeps } from "./engine.js";
import { formatHostPort, MAX_HEADER_BYTES, requestTarget } from "./options.js";
import {
  classifyUpstreamError,
  errorAnswer,
  errorInfo,
  forwardedHeaders,
  localAnswer,
  noteHostMismatch,
  NOT_RELAYED_IN_UPGRADE,
  rawAnswer,
  rawResponseHead,
  recordUpstreamResponse,
  refusal,
  sniName,
  upstreamTarget,
} from "./relay.js";
import { WebSocketMessageReader, type WebSocketMessage } from "./websocket.js";

/** What the relay takes from the engine: its services, its upstream agents and TLS trust, its exchanges. */
export interface RelayEnv {
  deps: EngineDeps;
  agents: { http: http.Agent; https: https.Agent };
  upstreamTls: https.RequestOptions;
  newExchange(
    req: http.IncomingMessage,
    isTls: boolean,
    host: string,
    port: number,
    path: string,
  ): { x: Exchange; conn?: ConnectionRecord };
  /** Runs the onRequestHeaders hooks and records the upstream they chose. */
  requestHeadersKnown(x: Exchange): void;
}

/**
 * A request to switch protocols (WebSocket): the engine's pipeline only speaks HTTP, so the
 * handshake is relayed here. The upstream answers it first (a refusal reaches the client as the
 * upstream sent it); on 101 both sockets are joined byte for byte. The handshake is stored like
 * any exchange (committed before the answer is released); each message the client sends after it
 * is stored as an exchange of its own and decoded like an upload. Sinkhole and block answer locally, so nothing leaves.
 */
export function relayWebSocket(env: RelayEnv, req: http.IncomingMessage, client: Duplex, head: Buffer, isTls: boolean): void {
  const { addons, options } = env.deps;
  client.on("error", () => client.destroy());
  const route = env.deps.routeOf(req);
  const parsed = requestTarget(req, isTls);
  const named = route?.bound ? route : parsed.target;
  if (!named) {
    client.end("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    return;
  }
  if (parsed.upgradesToTls) isTls = true;
  const authority = { host: named.host, port: named.port, path: parsed.path || "/" };
  const { x, conn } = env.newExchange(req, isTls, authority.host, authority.port, authority.path);
  if (route?.bound) noteHostMismatch(x, conn, req.headers.host, route);
  x.requestComplete = true;
  x.requestEndedAt = x.startedAt;
  env.requestHeadersKnown(x);
  const sendLocal = (answer: LocalResponse) => {
    client.end(rawAnswer(answer));
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
    void answerLocally(localAnswer(addons, x));
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
    agent: isTls ? env.agents.https : env.agents.http,
    ...(isTls ? { servername: sniName(x.host), ...env.upstreamTls } : {}),
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
    recordUpstreamResponse(x, res);
    const failure = await addons.run("onResponse", x);
    if (!failure) return true;
    sendLocal(refusal(x, failure));
    x.endedAt = Date.now();
    void addons.run("onExchangeEnd", x);
    return false;
  };
  const onUpgrade = async (res: http.IncomingMessage, upstream: Duplex, upstreamHead: Buffer): Promise<void> => {
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
        (m) => void storeWebSocketMessage(env, x, conn, m).then((stored) => stored || end()),
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
  };
  // A relay that fails unexpectedly ends both sides: the client cannot take it as working.
  upstreamReq.on("upgrade", (res: http.IncomingMessage, upstream: Duplex, upstreamHead: Buffer) => {
    onUpgrade(res, upstream, upstreamHead).catch(() => {
      upstream.destroy();
      client.destroy();
    });
  });
  const onRefused = async (res: http.IncomingMessage): Promise<void> => {
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
  };
  upstreamReq.on("response", (res: http.IncomingMessage) => {
    onRefused(res).catch(() => client.destroy());
  });
  upstreamReq.on("error", (err: Error & { code?: string }) => {
    clearTimeout(timer);
    if (settled) {
      client.destroy();
      return;
    }
    settled = true;
    const failure = classifyUpstreamError(err, err.code === "ETIMEDOUT", x.upstream ?? formatHostPort(x), options.upstreamTimeoutMs);
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
async function storeWebSocketMessage(
  env: RelayEnv,
  handshake: Exchange,
  conn: ConnectionRecord | undefined,
  m: WebSocketMessage,
): Promise<boolean> {
  const { addons } = env.deps;
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
