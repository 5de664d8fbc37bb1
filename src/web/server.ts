import { randomBytes, timingSafeEqual } from "node:crypto";
import { readFileSync } from "node:fs";
import { isIP } from "node:net";
import { join } from "node:path";
import { Readable } from "node:stream";
import type { IncomingMessage, ServerResponse } from "node:http";
import Fastify, { LogController, type FastifyInstance, type FastifyReply, type FastifyRequest, type RawServerDefault } from "fastify";
import { decodeContentEncoding, effectiveContentEncoding } from "../decode/content-encoding.js";
import { exhaustError } from "../errors.js";
import { isSecretHeader, REDACTED, type Logger } from "../log.js";
import { PACKAGE_ROOT } from "../paths.js";
import { BacklogWatch, sessionsOwnedByLiveProxy } from "../store/completeness.js";
import { openDatabase, type Db } from "../store/database.js";
import { CSV_COLUMNS, csvRecord, eventCsvRecords } from "../export/csv.js";
import { eventJson } from "../export/jsonl.js";
import { blobData } from "../store/blobs.js";
import { decodeFindingsOfExchange, requestItemsOfExchange } from "../store/findings.js";
import { getEvent, listEventsPage, type EventDetail, type EventFilter } from "../store/events.js";
import { exchangeDetail } from "../store/exchanges.js";
import { listFieldsPage } from "../store/fields.js";
import { listSessions, sessionOverview } from "../store/sessions.js";
import {
  categoriesPerEventName,
  eventsOverTime,
  eventsPerGroup,
  exchangeEvents,
  liveHeads,
  liveSince,
  sessionConnections,
  sessionEndpoints,
  sessionExchanges,
  uploadHosts,
} from "../store/ui-queries.js";
import { latestVerdicts } from "../store/verdicts.js";
import type { RawHeaders } from "../types.js";
import { checkUiRequest, redactCredentialParams, redactDeep, uiHostNames } from "./containment.js";
import { categoryShareChart, escapeHtml, eventsOverTimeChart } from "../html/charts.js";
import { SecretView } from "./secret-view.js";
import { CATEGORIES, GROUPS } from "../classify/schema.js";

export const STATIC_DIR = join(PACKAGE_ROOT, "src", "web", "static");
const STATIC_FILES: Record<string, string> = {
  "/": "index.html",
  "/app.js": "app.js",
  "/app.css": "app.css",
};
const CONTENT_TYPES: Record<string, string> = {
  html: "text/html; charset=utf-8",
  js: "text/javascript; charset=utf-8",
  css: "text/css; charset=utf-8",
};
/** The filter lists the page offers, from their one source (src/classify/schema.ts). */
const PAGE_OPTIONS: Record<string, readonly string[]> = { GROUPS, CATEGORIES };

/** index.html with its `<!-- options: NAME -->` markers replaced by one <option> per value. */
function pageHtml(): string {
  return readFileSync(join(STATIC_DIR, "index.html"), "utf8").replace(/<!-- options: (\w+) -->/g, (_, name: string) =>
    PAGE_OPTIONS[name].map((v) => `<option>${escapeHtml(v)}</option>`).join(""),
  );
}

const TOKEN_COOKIE = "exhaust_ui_token";
const TOKEN_HEADER = "x-exhaust-token";
/** Page sizes the API accepts; the UI asks for 100. */
const MAX_PAGE = 500;
/** Body bytes sent to the page at most (text or hex dump); the full body is in the database. */
const MAX_BODY_VIEW = 256 * 1024;
const CHART_BUCKETS = 48;
/** How often a live view's stream compares the store's newest ids (two index lookups). */
const LIVE_POLL_MS = 500;
/** How often a live stream with a backlog looks again at who decodes it (a dead proxy's claim). */
const OWNER_RECHECK_MS = 2000;
/** Rows of each kind one live message carries at most; the page re-reads its view anyway. */
const LIVE_BATCH = 200;
/** A comment line this often keeps proxies and the browser from timing the stream out. */
const LIVE_HEARTBEAT_MS = 15_000;
/** Events one "export this view" holds at most (the CLI's `exhaust export` has no limit). */
const EXPORT_MAX_EVENTS = 100_000;
/** Headers every answer carries; set by hand on the streams that bypass fastify's onSend. */
const SECURITY_HEADERS: Record<string, string> = {
  "content-security-policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
};

export interface UiServerOptions {
  dbFile: string;
  host: string;
  port: number;
  log: Logger;
  /** Required when host is not a loopback address; generated when not given. */
  token?: string;
  /** More names the UI answers to in Host (beyond its address, and localhost on loopback). */
  hostNames?: string[];
}

export interface RunningUi {
  url: string;
  host: string;
  port: number;
  /** Set when listening beyond loopback: give it as ?token= once (then a cookie), or the x-exhaust-token header. */
  token: string | undefined;
  close(): Promise<void>;
}

export function isLoopback(host: string): boolean {
  if (host === "localhost") return true;
  if (isIP(host) === 4) return host.startsWith("127.");
  return host === "::1" || host === "[::1]";
}

/**
 * `exhaust ui`: a read-only JSON API and a single page over the database. Opened read-only, so the
 * UI can run beside a capturing proxy. Listening beyond loopback requires a token on every request.
 */
export async function startUiServer(options: UiServerOptions): Promise<RunningUi> {
  const db = openDatabase(options.dbFile, { readonly: true });
  const token = isLoopback(options.host) ? undefined : (options.token ?? randomBytes(24).toString("base64url"));
  // Request lines are left out: URLs carry search terms typed over captured (personal) data.
  const app = Fastify({ loggerInstance: options.log, logController: new LogController({ disableRequestLogging: true }) });
  // Host (and Origin beyond GET/HEAD) first: a foreign page reaching the UI by DNS rebinding gets nothing.
  // The names are fixed once the port is known (port 0 picks one on listen).
  let allowedHosts: ReadonlySet<string> = new Set();
  app.addHook("onRequest", async (req, reply) => {
    const verdict = checkUiRequest(req.method, req.headers, allowedHosts);
    if (verdict.ok) return;
    const code = verdict.status === 421 ? "EXH_UI_HOST_REFUSED" : "EXH_UI_ORIGIN_REFUSED";
    void reply.code(verdict.status).send({ error: exhaustError(code, { reason: verdict.reason }).message, code });
    return reply;
  });
  if (token) app.addHook("onRequest", async (req, reply) => checkToken(req, reply, token));
  // Every answer passes here: credential query parameters are redacted wherever a URL or path appears.
  app.addHook("preSerialization", async (_req, _reply, payload) => redactDeep(payload));
  app.addHook("onSend", async (_req, reply) => {
    // The page loads nothing from elsewhere; say so to the browser too.
    for (const [name, value] of Object.entries(SECURITY_HEADERS)) reply.header(name, value);
  });
  app.setErrorHandler((err: Error & { statusCode?: number; code?: string }, _req, reply) => {
    const status = err.statusCode && err.statusCode < 500 ? err.statusCode : 500;
    if (status === 500) options.log.error({ err }, "ui request failed");
    void reply.code(status).send({ error: err.message, code: err.code ?? null });
  });
  // Credentials (and their values wherever they went) out of every API answer.
  const secrets = new SecretView(db);
  app.addHook("preSerialization", async (_req, _reply, payload) => secrets.redact(payload));
  const live = new Set<ServerResponse>();
  // One count of the decoding backlog for every page and stream (recounted only when the store moved).
  const backlog = new BacklogWatch(db, LIVE_POLL_MS / 2);
  registerRoutes(app, db, secrets, live, backlog);
  try {
    // Fastify names each address the UI is reachable at (every interface for 0.0.0.0): said as
    // such, beside our own "ui listening" line with the address actually bound.
    await app.listen({ host: options.host, port: options.port, listenTextResolver: (address) => `ui reachable at ${address}` });
  } catch (e) {
    db.close();
    throw exhaustError("EXH_LISTEN_FAILED", { address: `${options.host}:${options.port}`, reason: (e as Error).message }, e);
  }
  const address = app.server.address();
  const port = typeof address === "object" && address ? address.port : options.port;
  allowedHosts = uiHostNames(options.host, port, { loopback: isLoopback(options.host), extra: options.hostNames });
  const hostInUrl = options.host.includes(":") && !options.host.startsWith("[") ? `[${options.host}]` : options.host;
  return {
    url: `http://${hostInUrl}:${port}/`,
    host: options.host,
    port,
    token,
    async close() {
      // Live streams never go idle: end them, or closing would wait for the browsers to leave.
      for (const res of live) res.end();
      await app.close();
      db.close();
    },
  };
}

async function checkToken(req: FastifyRequest, reply: FastifyReply, token: string): Promise<void> {
  const url = new URL(req.url, "http://ui.invalid");
  const fromQuery = url.searchParams.get("token");
  if (fromQuery !== null && sameSecret(fromQuery, token)) {
    // First visit with the printed link: keep the token in a cookie, drop it from the address bar.
    url.searchParams.delete("token");
    void reply
      .header("set-cookie", `${TOKEN_COOKIE}=${token}; HttpOnly; SameSite=Strict; Path=/`)
      .redirect(url.pathname + (url.search || ""), 303);
    return reply;
  }
  const header = req.headers[TOKEN_HEADER];
  const cookie = cookieValue(req.headers.cookie, TOKEN_COOKIE);
  const given = typeof header === "string" ? header : cookie;
  if (given !== undefined && sameSecret(given, token)) return;
  void reply.code(401).send({ error: "token required: open the address printed by `exhaust ui` (it carries ?token=)" });
  return reply;
}

function sameSecret(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

function cookieValue(header: string | undefined, name: string): string | undefined {
  for (const part of (header ?? "").split(";")) {
    const i = part.indexOf("=");
    if (i > 0 && part.slice(0, i).trim() === name) return part.slice(i + 1).trim();
  }
  return undefined;
}

type Query = Record<string, string | undefined>;

function badRequest(message: string): Error {
  return Object.assign(new Error(message), { statusCode: 400, code: "EXH_OPT_INVALID" });
}

function notFound(message: string): Error {
  return Object.assign(new Error(message), { statusCode: 404 });
}

function intParam(q: Query, name: string, min = 0): number | undefined {
  const text = q[name];
  if (text === undefined || text === "") return undefined;
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n < min) throw badRequest(`${name} must be an integer ≥ ${min}`);
  return n;
}

function textParam(q: Query, name: string): string | undefined {
  const text = q[name];
  return text === undefined || text === "" ? undefined : text;
}

/** The filters of the event list, from the query string; the same names the page and the CLI use. */
export function eventFilterFromQuery(q: Query): EventFilter {
  return {
    sessionId: intParam(q, "session", 1),
    nameGlob: textParam(q, "name"),
    category: textParam(q, "category"),
    host: textParam(q, "host"),
    group: textParam(q, "group"),
    personal: q.personal === "1" || q.personal === "true",
    search: textParam(q, "q"),
    afterId: intParam(q, "after"),
    limit: Math.min(MAX_PAGE, intParam(q, "limit", 1) ?? 100),
  };
}

/** Headers as [name, value] pairs with credential values replaced (src/log.ts decides which). */
export function redactHeaders(headers: RawHeaders): RawHeaders {
  return headers.map(([name, value]) => [name, isSecretHeader(name) ? REDACTED : value]);
}

/** A session's decoding backlog as the page shows it. */
export interface SessionBacklog {
  /** Exchanges stored but not decoded yet: events, fields and verdicts leave them out. */
  undecoded: number;
  /** A running proxy owns the session: its processing thread is decoding them (the count goes down). */
  decodingByProxy: boolean;
}

/** The backlog of every session that has one (by id), and the total: what `backlog` messages carry. */
function backlogNow(db: Db, counts: ReadonlyMap<number, number>): { sessions: Array<{ id: number } & SessionBacklog>; total: number } {
  const ids = [...counts.keys()];
  const byProxy = ids.length ? sessionsOwnedByLiveProxy(db, ids) : new Set<number>();
  const sessions = ids.map((id) => ({ id, undecoded: counts.get(id)!, decodingByProxy: byProxy.has(id) }));
  return { sessions, total: sessions.reduce((n, s) => n + s.undecoded, 0) };
}

/** One session's backlog, from the shared counts. */
function sessionBacklog(db: Db, backlog: BacklogWatch, id: number): SessionBacklog {
  const undecoded = backlog.bySession().get(id) ?? 0;
  return { undecoded, decodingByProxy: undecoded > 0 && sessionsOwnedByLiveProxy(db, [id]).has(id) };
}

function registerRoutes(
  app: FastifyInstance<RawServerDefault, IncomingMessage, ServerResponse, Logger>,
  db: Db,
  secrets: SecretView,
  live: Set<ServerResponse>,
  backlog: BacklogWatch,
): void {
  for (const [route, file] of Object.entries(STATIC_FILES)) {
    app.get(route, async (_req, reply) => {
      const ext = file.split(".").pop()!;
      // Read on each request: cheap, and edits to the page show without a restart.
      return reply
        .type(CONTENT_TYPES[ext])
        .header("cache-control", "no-store")
        .send(file === "index.html" ? pageHtml() : readFileSync(join(STATIC_DIR, file)));
    });
  }

  app.get("/api/sessions", async () => {
    const { sessions } = backlogNow(db, backlog.bySession());
    const behind = new Map(sessions.map(({ id, ...b }) => [id, b]));
    return listSessions(db).map((s) => ({ ...s, ...(behind.get(s.id) ?? { undecoded: 0, decodingByProxy: false }) }));
  });

  app.get("/api/sessions/:id", async (req) => {
    const id = intParam(req.params as Query, "id", 1)!;
    const info = sessionOverview(db, id);
    if (!info) throw notFound(`no session ${id}`);
    return {
      info: { ...info, ...sessionBacklog(db, backlog, id) },
      endpoints: sessionEndpoints(db, id),
      connections: sessionConnections(db, id, 1000),
      groups: eventsPerGroup(db, id),
      verdicts: latestVerdicts(db, id),
    };
  });

  app.get("/api/sessions/:id/exchanges", async (req) => {
    const id = intParam(req.params as Query, "id", 1)!;
    const q = req.query as Query;
    return sessionExchanges(db, id, {
      afterSeq: intParam(q, "after"),
      limit: Math.min(MAX_PAGE, intParam(q, "limit", 1) ?? 100),
      host: textParam(q, "host"),
      category: textParam(q, "category"),
    });
  });

  app.get("/api/hosts", async (req) => uploadHosts(db, intParam(req.query as Query, "session", 1)));

  app.get("/api/events", async (req) => listEventsPage(db, eventFilterFromQuery(req.query as Query)));

  app.get("/api/fields", async (req) => {
    const q = req.query as Query;
    return listFieldsPage(db, {
      sessionId: intParam(q, "session", 1),
      category: textParam(q, "category"),
      afterEventId: intParam(q, "afterEvent"),
      afterIdx: intParam(q, "afterIdx"),
      limit: Math.min(MAX_PAGE, intParam(q, "limit", 1) ?? 100),
    });
  });

  app.get("/api/events/:id", async (req) => {
    const id = intParam(req.params as Query, "id", 1)!;
    const event = getEvent(db, id);
    if (!event) throw notFound(`no event ${id}`);
    return event;
  });

  app.get("/api/exchanges/:id", async (req) => {
    const { id } = req.params as { id: string };
    const x = exchangeDetail(db, id);
    if (!x) throw notFound(`no exchange ${id}`);
    const { requestHeaders, responseHeaders, uploadFacts, ...rest } = x;
    return {
      ...rest,
      requestHeaders: redactHeaders(requestHeaders),
      responseHeaders: responseHeaders ? redactHeaders(responseHeaders) : null,
      uploadFacts,
      requestItems: requestItemsOfExchange(db, id),
      decodeFindings: decodeFindingsOfExchange(db, id),
      eventList: exchangeEvents(db, id),
    };
  });

  app.get("/api/exchanges/:id/body", async (req) => {
    const { id } = req.params as { id: string };
    const q = req.query as Query;
    const x = exchangeDetail(db, id);
    if (!x) throw notFound(`no exchange ${id}`);
    if (q.part !== undefined && q.part !== "request" && q.part !== "response") throw badRequest("part must be request or response");
    const response = q.part === "response";
    const sha256 = response ? x.responseBodySha256 : x.requestBodySha256;
    const headers: RawHeaders = response ? (x.responseHeaders ?? []) : x.requestHeaders;
    const stored = (sha256 ? blobData(db, sha256) : undefined) ?? Buffer.alloc(0);
    // A body holding a credential (as stored or decompressed) is not shown.
    const hidden = secrets.bodyHasSecret(stored, headers, response ? undefined : x.path);
    const raw = hidden ? Buffer.from(`${REDACTED} this body holds a credential value; export with --include-secrets to see it`) : stored;
    let bytes: Uint8Array = raw;
    let decoded: string[] = [];
    let error: string | null = null;
    if (q.decompress === "1" && !hidden) {
      try {
        // Only a request names its encoding in the query string too (the 1DS `content-encoding` parameter).
        const params = response ? new URLSearchParams() : new URL(x.path, "https://body.invalid").searchParams;
        const r = decodeContentEncoding(raw, effectiveContentEncoding(headers, params));
        bytes = r.body;
        decoded = r.applied;
      } catch (e) {
        error = (e as Error).message;
      }
    }
    const shown = Buffer.from(bytes.buffer, bytes.byteOffset, Math.min(bytes.length, MAX_BODY_VIEW));
    const asText = q.view === "text" || (q.view !== "hex" && looksLikeText(shown));
    return {
      part: response ? "response" : "request",
      sha256,
      size: bytes.length,
      storedSize: stored.length,
      decompressed: decoded,
      error,
      view: asText ? "text" : "hex",
      truncated: bytes.length > shown.length,
      text: asText ? shown.toString("utf8") : hexDump(shown),
    };
  });

  // Live view: server-sent events with what the processing thread stored since the page opened.
  // Each tick compares the store's newest ids (index lookups) and reads rows only when they moved.
  app.get("/api/live", (req, reply) => {
    const q = req.query as Query;
    const resumed = /^(\d+):(\d+)$/.exec(String(req.headers["last-event-id"] ?? ""));
    const heads = liveHeads(db);
    const after = resumed
      ? { event: Number(resumed[1]), exchange: Number(resumed[2]) }
      : { event: intParam(q, "afterEvent") ?? heads.event, exchange: intParam(q, "afterExchange") ?? heads.exchange };
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, {
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-store",
      connection: "keep-alive",
      ...SECURITY_HEADERS,
    });
    const send = (type: string, data: unknown, id?: string) =>
      res.write(`${id ? `id: ${id}\n` : ""}event: ${type}\ndata: ${JSON.stringify(secrets.redact(redactDeep(data)))}\n\n`);
    send("hello", { heads: after, pollMs: LIVE_POLL_MS }, `${after.event}:${after.exchange}`);
    let lastWrite = Date.now();
    // The decoding backlog: sent on connecting and whenever a session's count (or who decodes it) changed.
    let lastCounts: ReadonlyMap<number, number> | undefined;
    let ownersCheckedAt = 0;
    let lastBacklog = "";
    const sendBacklog = () => {
      const counts = backlog.bySession();
      // Unchanged counts need no message, unless the proxy decoding them may have died since: a
      // killed proxy writes nothing more, so only a fresh look at its claim (its pid) tells.
      if (counts === lastCounts && (counts.size === 0 || Date.now() - ownersCheckedAt < OWNER_RECHECK_MS)) return;
      lastCounts = counts;
      ownersCheckedAt = Date.now();
      const now = backlogNow(db, counts);
      const text = JSON.stringify(now);
      if (text === lastBacklog) return;
      lastBacklog = text;
      send("backlog", now);
      lastWrite = Date.now();
    };
    const tick = () => {
      try {
        sendBacklog();
        const now = liveHeads(db);
        if (now.event > after.event || now.exchange > after.exchange) {
          const rows = liveSince(db, after, LIVE_BATCH);
          if (rows.exchanges.length) after.exchange = rows.exchanges[rows.exchanges.length - 1].rowid;
          if (rows.events.length) after.event = rows.events[rows.events.length - 1].id;
          const exchanges = rows.exchanges.map(({ rowid: _rowid, ...x }) => x);
          send("stored", { exchanges, events: rows.events, heads: { ...after } }, `${after.event}:${after.exchange}`);
          lastWrite = Date.now();
        } else if (Date.now() - lastWrite >= LIVE_HEARTBEAT_MS) {
          res.write(": keep-alive\n\n");
          lastWrite = Date.now();
        }
      } catch (e) {
        app.log.warn({ err: e }, "live view stream failed");
        res.end();
      }
    };
    const timer = setInterval(tick, LIVE_POLL_MS);
    tick();
    live.add(res);
    res.on("close", () => {
      clearInterval(timer);
      live.delete(res);
    });
  });

  // "Export this view": what the Events view's filters select (every field of each event), or with
  // view=fields what the Fields view lists (each event with only its fields of that category), as
  // the CLI's CSV (one record per field) or JSONL (one event per line), credentials redacted as in
  // every export.
  app.get("/api/export", async (req, reply) => {
    const q = req.query as Query;
    const format = q.format ?? "csv";
    if (format !== "csv" && format !== "jsonl") throw badRequest("format must be csv or jsonl");
    const view = q.view ?? "events";
    if (view !== "events" && view !== "fields") throw badRequest("view must be events or fields");
    const filter = { ...eventFilterFromQuery(q), limit: MAX_PAGE, afterId: undefined };
    const category = view === "fields" ? (filter.category ?? "content") : filter.category;
    const redactor = secrets.redactor();
    const encode = function* (ev: EventDetail): Generator<string> {
      if (format === "jsonl") yield `${JSON.stringify(redactDeep(eventJson(ev, redactor)))}\n`;
      else for (const line of eventCsvRecords(ev, redactor)) yield redactCredentialParams(line);
    };
    function* events(): Generator<EventDetail> {
      for (let after: number | undefined = 0, n = 0; after !== undefined && n < EXPORT_MAX_EVENTS;) {
        const page = listEventsPage(db, { ...filter, afterId: after });
        for (const row of page.rows.slice(0, EXPORT_MAX_EVENTS - n)) {
          const ev = getEvent(db, row.id);
          if (ev) yield ev;
          n++;
        }
        after = page.nextAfterId ?? undefined;
      }
    }
    function* fieldEvents(): Generator<EventDetail> {
      // The Fields view's rows in its order, grouped by event: each event once, with the listed fields.
      let after: [number, number] | undefined;
      for (let n = 0; n < EXPORT_MAX_EVENTS;) {
        const rows = listFieldsPage(db, {
          sessionId: filter.sessionId,
          category,
          afterEventId: after?.[0],
          afterIdx: after?.[1],
          limit: MAX_PAGE,
        });
        const full = rows.length === MAX_PAGE;
        let next = rows[rows.length - 1];
        for (let i = 0; i < rows.length && n < EXPORT_MAX_EVENTS;) {
          const start = i;
          const id = rows[i].eventId;
          const idx = new Set<number>();
          for (; i < rows.length && rows[i].eventId === id; i++) idx.add(rows[i].idx);
          // An event cut by the end of a full page is read whole with the next page (one line per event).
          if (full && i === rows.length && start > 0) {
            next = rows[start - 1];
            break;
          }
          const ev = getEvent(db, id);
          if (ev) yield { ...ev, fields: ev.fields.filter((f) => idx.has(f.idx)) };
          n++;
        }
        if (!full || next === undefined) return;
        after = [next.eventId, next.idx];
      }
    }
    function* chunks(): Generator<string> {
      if (format === "csv") yield csvRecord(CSV_COLUMNS);
      for (const ev of view === "fields" ? fieldEvents() : events()) yield* encode(ev);
    }
    const name = `exhaust-${view}${filter.sessionId ? `-session-${filter.sessionId}` : ""}${category ? `-${category}` : ""}.${format}`;
    return reply
      .type(format === "csv" ? "text/csv; charset=utf-8" : "application/x-ndjson; charset=utf-8")
      .header("content-disposition", `attachment; filename="${name.replace(/[^\w.-]/g, "_")}"`)
      .header("cache-control", "no-store")
      .send(Readable.from(chunks()));
  });

  app.get("/api/charts/time", async (req) => {
    const session = intParam(req.query as Query, "session", 1);
    return { svg: eventsOverTimeChart(eventsOverTime(db, session, CHART_BUCKETS), CHART_BUCKETS) };
  });

  app.get("/api/charts/categories", async (req) => {
    const session = intParam(req.query as Query, "session", 1);
    // Field-level shares read every field row; over large scopes the events' own categories are counted.
    const events = session === undefined ? Infinity : (sessionOverview(db, session)?.events ?? 0);
    const unit = events <= 50_000 ? "fields" : "events";
    return { unit, svg: categoryShareChart(categoriesPerEventName(db, session, 15, unit)) };
  });
}

function looksLikeText(b: Buffer): boolean {
  if (b.length === 0) return true;
  let bad = 0;
  for (const c of b.subarray(0, 4096)) if (c === 0 || (c < 9 && c !== 0) || (c > 13 && c < 32)) bad++;
  return bad === 0 && !b.toString("utf8").includes("\ufffd");
}

/** `offset  hex bytes  |ascii|`, 16 bytes a line, like `hexdump -C`. */
export function hexDump(b: Uint8Array): string {
  const lines: string[] = [];
  for (let off = 0; off < b.length; off += 16) {
    const chunk = b.subarray(off, off + 16);
    const hex = [...chunk].map((c) => c.toString(16).padStart(2, "0"));
    const left = hex.slice(0, 8).join(" ");
    const right = hex.slice(8).join(" ");
    const ascii = [...chunk].map((c) => (c >= 32 && c < 127 ? String.fromCharCode(c) : ".")).join("");
    lines.push(`${off.toString(16).padStart(8, "0")}  ${left.padEnd(23)}  ${right.padEnd(23)}  |${ascii}|`);
  }
  return lines.join("\n");
}
