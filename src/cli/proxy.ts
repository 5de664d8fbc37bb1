import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import { hostname } from "node:os";
import { monitorEventLoopDelay } from "node:perf_hooks";
import type { Command } from "commander";
import { loadOrCreateAuthority } from "../ca/authority.js";
import { LeafIssuer } from "../ca/leaf.js";
import { EndpointCatalog } from "../catalog/endpoints.js";
import { exhaustError, type ExhaustError } from "../errors.js";
import { createLogger } from "../log.js";
import { DEFAULT_CERTS_DIR, DEFAULT_DB_FILE } from "../paths.js";
import { defaultAddons } from "../proxy/addons/index.js";
import type { PinningAddon } from "../proxy/addons/pinning.js";
import {
  parseAuth,
  parseCidr,
  parseHostMode,
  parseHostPort,
  parseMapHost,
  parseMode,
  parseUpstreamProxy,
  PROXY_DEFAULTS,
  type ProxyOptions,
} from "../proxy/options.js";
import { startProxy } from "../proxy/server.js";
import { assertListenAllowed } from "../proxy/access.js";
import { CaptureStore } from "../store/capture-store.js";
import { checkpointOnStop } from "../capture/stop-checkpoint.js";
import { Checkpointer } from "../store/checkpointer.js";
import { ProcessingThread } from "../pipeline/processing.js";
import { openDatabase, watchStore, type Db } from "../store/database.js";
import { claimSession, heartbeatWrite, ownerIsLive, releaseSession, type SessionOwner } from "../store/session-owner.js";
import { WriterPriority } from "../store/writer-priority.js";
import { TOOL_VERSION } from "../version.js";
import { decodePendingWithProgress } from "./complete.js";
import { validateLabel } from "../export/parquet-schema.js";
import { setSessionLabels } from "../store/parquet-queries.js";
import { collect, runCommand } from "./run.js";
import { UI_DEFAULT_LISTEN } from "./ui.js";

interface ProxyFlags {
  listen: string;
  db: string;
  session?: string;
  mode: string;
  hostMode: string[];
  intercept: string;
  upstream?: string;
  mapHost: string[];
  auth?: string;
  allow: string[];
  certs: string;
  catalog?: string;
  maxBody: string;
  upstreamTimeout: string;
  upstreamCa: string[];
  insecureUpstream?: boolean;
  allowPrivate?: boolean;
  idleTimeout?: string;
  handshakeTimeout?: string;
  bodyTimeout?: string;
  maxInflight?: string;
  pinExpiry?: string;
  pinBypass?: boolean;
  uiPort?: string[];
  lab?: string;
  machine?: string;
}

export function registerProxyCommand(program: Command): void {
  program
    .command("proxy")
    .description("run the intercepting proxy")
    .option("--listen <host:port>", "address to listen on", PROXY_DEFAULTS.listen)
    .option("--db <file>", "SQLite database", DEFAULT_DB_FILE)
    .option("--session <name>", "session name (an existing one is continued); default: the start time")
    .option("--mode <mode>", "forward | sinkhole | block", PROXY_DEFAULTS.mode)
    .option("--host-mode <pattern=mode>", "mode for hosts matching a glob (repeatable)", collect, [])
    .option("--intercept <what>", "catalog (hosts in classifiers/endpoints.yaml) | all", PROXY_DEFAULTS.intercept)
    .option("--upstream <url>", "chain to this HTTP proxy (http://[user:pass@]host:port)")
    .option("--map-host <host=ip:port>", "connect upstream for HOST to IP:PORT (repeatable)", collect, [])
    .option("--auth <user:pass>", "require Proxy-Authorization (needed to listen beyond loopback)")
    .option("--allow <cidr>", "client addresses allowed on a non-loopback listener (repeatable)", collect, [])
    .option("--certs <dir>", "CA directory", DEFAULT_CERTS_DIR)
    .option("--catalog <file>", "endpoint catalogue (default classifiers/endpoints.yaml)")
    .option("--max-body <bytes>", "bodies above this are stored cut, with a flag", String(PROXY_DEFAULTS.maxBodyBytes))
    .option("--upstream-timeout <ms>", "wait this long for the upstream's response head once the request is sent", String(PROXY_DEFAULTS.upstreamTimeoutMs))
    .option("--upstream-ca <file>", "extra PEM CA to trust for upstream TLS (repeatable)", collect, [])
    .option("--insecure-upstream", "do not verify upstream certificates (lab only)")
    .option("--allow-private", "relay to loopback, link-local and private (RFC 1918, ULA) addresses (refused by default)")
    .option("--idle-timeout <ms>", "close a client connection with no traffic either way for this long", String(PROXY_DEFAULTS.idleTimeoutMs))
    .option("--handshake-timeout <ms>", "limit from a CONNECT's answer to its first byte and through the TLS handshake", String(PROXY_DEFAULTS.handshakeTimeoutMs))
    .option("--body-timeout <ms>", "cut off a request or response body that stalls this long", String(PROXY_DEFAULTS.bodyTimeoutMs))
    .option("--max-inflight <bytes>", "body bytes held in memory across all exchanges; beyond it uploads get 503", String(PROXY_DEFAULTS.maxInflightBytes))
    .option("--pin-expiry <ms>", "how long a client's certificate rejection keeps its host bypassed", String(PROXY_DEFAULTS.pinExpiryMs))
    .option("--no-pin-bypass", "keep intercepting hosts whose client rejected the certificate")
    .option("--ui-port <port>", "web UI port on loopback, never relayed to (repeatable)", collect, [])
    .option("--lab <name>", "lab label recorded with the session (the Parquet export partitions by it; docs/fleet.md)")
    .option("--machine <name>", "machine label recorded with the session (the Parquet export partitions by it)")
    .action((flags: ProxyFlags) => runCommand(() => runProxy(flags)));
}

export function parseProxyFlags(flags: ProxyFlags): ProxyOptions {
  const intercept = flags.intercept;
  if (intercept !== "catalog" && intercept !== "all") {
    throw exhaustError("EXH_OPT_INVALID", { option: "--intercept", reason: `expected catalog or all, got "${intercept}"` });
  }
  const positive = (option: string, text: string) => {
    const n = Number(text);
    if (!Number.isInteger(n) || n <= 0) throw exhaustError("EXH_OPT_INVALID", { option, reason: `expected a positive integer, got "${text}"` });
    return n;
  };
  return {
    listen: parseHostPort("--listen", flags.listen, "127.0.0.1"),
    dbFile: flags.db,
    session: flags.session ?? new Date().toISOString().slice(0, 19).replace(/:/g, "-"),
    mode: parseMode("--mode", flags.mode),
    hostModes: flags.hostMode.map(parseHostMode),
    intercept,
    upstreamProxy: flags.upstream ? parseUpstreamProxy(flags.upstream) : undefined,
    mapHosts: new Map(flags.mapHost.map(parseMapHost)),
    auth: flags.auth ? parseAuth(flags.auth) : undefined,
    allow: flags.allow.map(parseCidr),
    certsDir: flags.certs,
    catalogFile: flags.catalog,
    maxBodyBytes: positive("--max-body", flags.maxBody),
    upstreamTimeoutMs: positive("--upstream-timeout", flags.upstreamTimeout),
    upstreamCaPem: flags.upstreamCa.map((file) => {
      try {
        return readFileSync(file, "utf8");
      } catch (e) {
        throw exhaustError("EXH_OPT_INVALID", { option: "--upstream-ca", reason: `cannot read ${file}: ${(e as Error).message}` });
      }
    }),
    insecureUpstream: flags.insecureUpstream ?? false,
    allowPrivate: flags.allowPrivate ?? false,
    idleTimeoutMs: positive("--idle-timeout", flags.idleTimeout ?? String(PROXY_DEFAULTS.idleTimeoutMs)),
    handshakeTimeoutMs: positive("--handshake-timeout", flags.handshakeTimeout ?? String(PROXY_DEFAULTS.handshakeTimeoutMs)),
    bodyTimeoutMs: positive("--body-timeout", flags.bodyTimeout ?? String(PROXY_DEFAULTS.bodyTimeoutMs)),
    maxInflightBytes: positive("--max-inflight", flags.maxInflight ?? String(PROXY_DEFAULTS.maxInflightBytes)),
    pinExpiryMs: positive("--pin-expiry", flags.pinExpiry ?? String(PROXY_DEFAULTS.pinExpiryMs)),
    pinBypass: flags.pinBypass ?? true,
    uiPorts: (flags.uiPort?.length ? flags.uiPort : [String(parseHostPort("--ui-port", UI_DEFAULT_LISTEN).port)]).map((p) => {
      const n = positive("--ui-port", p);
      if (n > 65535) throw exhaustError("EXH_OPT_INVALID", { option: "--ui-port", reason: `port ${n} is out of range` });
      return n;
    }),
  };
}

async function runProxy(flags: ProxyFlags): Promise<void> {
  const options = parseProxyFlags(flags);
  const labels = {
    lab: flags.lab === undefined ? undefined : validateLabel("--lab", flags.lab),
    machine: flags.machine === undefined ? undefined : validateLabel("--machine", flags.machine),
  };
  const log = createLogger();
  const catalog = EndpointCatalog.load(options.catalogFile);
  const ca = await loadOrCreateAuthority(options.certsDir, { permittedDomains: catalog.constraintDomains() });
  if (options.intercept === "all" && ca.constrained) throw exhaustError("EXH_CA_CONSTRAINED", { dir: options.certsDir });
  const issuer = await LeafIssuer.create(ca);
  assertListenAllowed(options);
  const db = openDatabase(options.dbFile);
  const owner = claimOwnSession(db, options);
  // A stop asked for by a signal, or forced by the store going away under the proxy.
  let stop!: () => void;
  const stopped = new Promise<void>((resolve) => (stop = resolve));
  // From here on a signal is a clean stop, even one that comes while the proxy is starting.
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
  // Checked before every commit and every second: a store whose files were deleted or replaced
  // takes no more commits (nothing is acknowledged into the void) and the proxy exits.
  const sameStore = watchStore(options.dbFile);
  let storeGone: ExhaustError | undefined;
  const guard = () => {
    if (!storeGone && !sameStore()) {
      storeGone = exhaustError("EXH_STORE_GONE", { file: options.dbFile });
      log.error({ code: storeGone.code, db: options.dbFile }, storeGone.message);
      stop();
    }
    return storeGone;
  };
  // Checkpoints inside a commit would hold the event loop for milliseconds: done on a thread.
  const checkpointer = Checkpointer.start(db, options.dbFile);
  const priority = new WriterPriority();
  const store = new CaptureStore(db, priority, { guard });
  const session = store.openSession(options.session, {
    toolVersion: TOOL_VERSION,
    caFingerprint: ca.fingerprint256,
    options: describeOptions(options),
  });
  setSessionLabels(db, session.id, labels);
  // Decoding runs on its own thread, fed each exchange once it is stored: it never delays a client.
  // Started after the session row is written: from here on the proxy's thread writes only through
  // the capture store, which retries a busy lock from the event loop.
  const processing = ProcessingThread.start(options.dbFile, log, priority, session.id);
  let proxy;
  const addons = defaultAddons({ options, catalog, log }, store, session, [processing.addon()]);
  // SIGHUP forgets every pin (docs/containment.md): the next connections are intercepted again.
  const pinning = addons.find((a) => a.name === "pinning") as PinningAddon | undefined;
  process.on("SIGHUP", () => log.warn({ cleared: pinning?.clear() ?? 0 }, "pins cleared (SIGHUP)"));
  try {
    proxy = await startProxy({
      options,
      catalog,
      issuer,
      addons,
      log,
    });
  } catch (e) {
    await processing.stop();
    await store.close();
    store.discardSessionIfEmpty(session);
    releaseSession(db, owner);
    await checkpointer.stop();
    db.close();
    throw e;
  }
  const beat = heartbeatWrite(db, owner);
  let ticks = 0;
  const watch = setInterval(() => {
    if (guard()) return;
    if (++ticks % OWNER_HEARTBEAT_TICKS === 0) store.write(beat).catch(() => {});
  }, STORE_CHECK_MS);
  watch.unref();
  log.info({ session: session.name, db: options.dbFile, ca: ca.fingerprint256 }, "capturing");
  // How long the event loop was ever held up: leaf issuance and SQLite commits must stay short.
  const LOOP_RESOLUTION_MS = 10;
  const loopDelay = monitorEventLoopDelay({ resolution: LOOP_RESOLUTION_MS });
  loopDelay.enable();
  await stopped;
  // What the event loop did while clients were served: the stop's own work (decoding the backlog
  // on this thread) is not time any client waited for.
  loopDelay.disable();
  clearInterval(watch);
  if (storeGone) {
    // Nothing more can be stored: close what is open and say so (exit 1), writing nothing.
    await proxy.close();
    await processing.stop();
    await checkpointer.stop().catch(() => {});
    db.close();
    log.flush();
    throw storeGone;
  }
  // From here a second Ctrl-C (or SIGTERM) skips decoding the backlog instead of killing the process.
  let skipBacklog = false;
  const skip = () => {
    skipBacklog = true;
  };
  process.on("SIGINT", skip);
  process.on("SIGTERM", skip);
  await proxy.close();
  // The processing thread first: afterwards nothing else writes while the session is closed.
  await processing.stop();
  await store.close();
  // Complete before it answers: what the processing thread had not decoded yet is decoded here, on
  // this (normal-priority) thread, with a progress line; a second Ctrl-C leaves it to the next
  // reading command or `exhaust reprocess`, and says how much that is.
  db.pragma("busy_timeout = 5000");
  try {
    await decodePendingWithProgress(db, { sessionIds: [session.id] }, { busySessions: new Set(), skipHint: "Ctrl-C again", stopRequested: () => skipBacklog });
  } catch (e) {
    // The captures are stored whatever happens here: end the session cleanly and say what failed.
    log.error({ code: "EXH_PROCESS_FAILED", reason: (e as Error).message }, "decoding the backlog failed");
  }
  // What the stop writes can fail too (a full disk): every capture is already stored, so release
  // and close what is open, then say plainly what could not be written (exit 1), no stack trace.
  let stopFailure: unknown;
  try {
    store.endSession(session);
    // A signed checkpoint of the chain head as the capture stops (stderr and the checkpoints table).
    checkpointOnStop(db, session, ca);
  } catch (e) {
    stopFailure = e;
  }
  try {
    releaseSession(db, owner);
  } catch {
    // The claim lapses by itself once this process is gone (its pid is checked).
  }
  await checkpointer.stop().catch(() => {});
  db.close();
  if (stopFailure !== undefined) {
    log.flush();
    throw exhaustError("EXH_STOP_FAILED", { session: session.name, file: options.dbFile, reason: (stopFailure as Error).message.split("\n")[0] }, stopFailure);
  }
  // The histogram's samples include the sampling interval itself; what is left is time blocked.
  const blockedMs = (ns: number) => Math.max(0, Math.round(ns / 1e4) / 100 - LOOP_RESOLUTION_MS);
  log.info(
    {
      session: session.name,
      eventLoopBlockedMs: {
        p50: blockedMs(loopDelay.percentile(50)),
        p99: blockedMs(loopDelay.percentile(99)),
        max: blockedMs(loopDelay.max),
      },
      peakRssMb: Math.round(process.resourceUsage().maxRSS / 1024),
    },
    "stopped",
  );
  log.flush();
  process.off("SIGINT", skip);
  process.off("SIGTERM", skip);
}

/** How often the store's files are checked when no commit does it (every commit checks too). */
const STORE_CHECK_MS = 1000;
/** The session owner's heartbeat, in store checks (5 s); a claim older than OWNER_STALE_MS lapses. */
const OWNER_HEARTBEAT_TICKS = 5;

/**
 * One proxy captures a session at a time: two would interleave one hash chain. A claim whose
 * proxy was killed lapses as soon as its pid is gone (same host), or its heartbeat is old.
 */
function claimOwnSession(db: Db, options: ProxyOptions): SessionOwner {
  const now = Date.now();
  const owner: SessionOwner = { session: options.session, pid: process.pid, host: hostname(), token: randomUUID(), startedAt: now, heartbeatAt: now };
  const isStale = (o: SessionOwner) => !ownerIsLive(o, process.pid);
  let current: SessionOwner | undefined;
  try {
    current = claimSession(db, owner, isStale);
  } catch (e) {
    db.close();
    throw exhaustError("EXH_DB_OPEN", { file: options.dbFile, reason: (e as Error).message }, e);
  }
  if (current) {
    db.close();
    throw exhaustError("EXH_SESSION_BUSY", {
      session: options.session,
      file: options.dbFile,
      owner: `pid ${current.pid} on ${current.host}, since ${new Date(current.startedAt).toISOString()}`,
    });
  }
  return owner;
}

/** The options stored with the session: enough to know how it was captured, no credentials. */
function describeOptions(o: ProxyOptions): object {
  return {
    listen: `${o.listen.host}:${o.listen.port}`,
    mode: o.mode,
    hostModes: o.hostModes,
    intercept: o.intercept,
    upstreamProxy: o.upstreamProxy ? `${o.upstreamProxy.protocol}//${o.upstreamProxy.host}` : undefined,
    mapHosts: Object.fromEntries([...o.mapHosts].map(([k, v]) => [k, `${v.host}:${v.port}`])),
    auth: o.auth ? "required" : "none",
    allow: o.allow,
    maxBodyBytes: o.maxBodyBytes,
    upstreamTimeoutMs: o.upstreamTimeoutMs,
    insecureUpstream: o.insecureUpstream,
    allowPrivate: o.allowPrivate,
    idleTimeoutMs: o.idleTimeoutMs,
    handshakeTimeoutMs: o.handshakeTimeoutMs,
    bodyTimeoutMs: o.bodyTimeoutMs,
    maxInflightBytes: o.maxInflightBytes,
    pinExpiryMs: o.pinExpiryMs,
    pinBypass: o.pinBypass,
  };
}
