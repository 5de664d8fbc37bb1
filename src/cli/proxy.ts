import { readFileSync } from "node:fs";
import { monitorEventLoopDelay } from "node:perf_hooks";
import type { Command } from "commander";
import { loadOrCreateAuthority } from "../ca/authority.js";
import { LeafIssuer } from "../ca/leaf.js";
import { EndpointCatalog } from "../catalog/endpoints.js";
import { exhaustError } from "../errors.js";
import { createLogger } from "../log.js";
import { DEFAULT_CERTS_DIR, DEFAULT_DB_FILE } from "../paths.js";
import { defaultAddons } from "../proxy/addons/index.js";
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
import { Checkpointer } from "../store/checkpointer.js";
import { ProcessingThread } from "../pipeline/processing.js";
import { openDatabase } from "../store/database.js";
import { WriterPriority } from "../store/writer-priority.js";
import { TOOL_VERSION } from "../version.js";
import { decodePendingWithProgress } from "./complete.js";
import { collect, runCommand } from "./run.js";

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
    .option("--upstream-timeout <ms>", "wait this long for the upstream's response head", String(PROXY_DEFAULTS.upstreamTimeoutMs))
    .option("--upstream-ca <file>", "extra PEM CA to trust for upstream TLS (repeatable)", collect, [])
    .option("--insecure-upstream", "do not verify upstream certificates (lab only)")
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
  };
}

async function runProxy(flags: ProxyFlags): Promise<void> {
  const options = parseProxyFlags(flags);
  const log = createLogger();
  const catalog = EndpointCatalog.load(options.catalogFile);
  const ca = await loadOrCreateAuthority(options.certsDir, { permittedDomains: catalog.constraintDomains() });
  if (options.intercept === "all" && ca.constrained) throw exhaustError("EXH_CA_CONSTRAINED", { dir: options.certsDir });
  const issuer = await LeafIssuer.create(ca);
  assertListenAllowed(options);
  const db = openDatabase(options.dbFile);
  // Checkpoints inside a commit would hold the event loop for milliseconds: done on a thread.
  const checkpointer = Checkpointer.start(db, options.dbFile);
  const priority = new WriterPriority();
  const store = new CaptureStore(db, priority);
  const session = store.openSession(options.session, {
    toolVersion: TOOL_VERSION,
    caFingerprint: ca.fingerprint256,
    options: describeOptions(options),
  });
  // Decoding runs on its own thread, fed each exchange once it is stored: it never delays a client.
  // Started after the session row is written: from here on the proxy's thread writes only through
  // the capture store, which retries a busy lock from the event loop.
  const processing = ProcessingThread.start(options.dbFile, log, priority);
  let proxy;
  try {
    proxy = await startProxy({
      options,
      catalog,
      issuer,
      addons: defaultAddons({ options, catalog, log }, store, session, [processing.addon()]),
      log,
    });
  } catch (e) {
    await processing.stop();
    await store.close();
    store.discardSessionIfEmpty(session);
    await checkpointer.stop();
    db.close();
    throw e;
  }
  log.info({ session: session.name, db: options.dbFile, ca: ca.fingerprint256 }, "capturing");
  // How long the event loop was ever held up: leaf issuance and SQLite commits must stay short.
  const LOOP_RESOLUTION_MS = 10;
  const loopDelay = monitorEventLoopDelay({ resolution: LOOP_RESOLUTION_MS });
  loopDelay.enable();
  await new Promise<void>((resolve) => {
    const stop = () => resolve();
    process.once("SIGINT", stop);
    process.once("SIGTERM", stop);
  });
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
  store.endSession(session);
  await checkpointer.stop();
  db.close();
  loopDelay.disable();
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
  };
}
