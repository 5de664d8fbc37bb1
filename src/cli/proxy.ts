import { readFileSync } from "node:fs";
import { monitorEventLoopDelay } from "node:perf_hooks";
import type { Command } from "commander";
import { exhaustError } from "../errors.js";
import { startCapture } from "../pipeline/start-capture.js";
import { banner, ExchangeConsole, humanLogStream, resolveLogFormat, type LogFormat } from "./console.js";
import { createLogger } from "../log.js";
import { DEFAULT_CERTS_DIR, DEFAULT_DB_FILE } from "../paths.js";
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
import { decodePendingWithProgress } from "./complete.js";
import { requireCaIfExplicit } from "./files.js";
import { validateLabel } from "../export/parquet-schema.js";
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
  initCa?: boolean;
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
  logFormat?: string;
  quiet?: boolean;
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
    .option("--certs <dir>", "CA directory (one given here must hold a CA, unless --init-ca)", DEFAULT_CERTS_DIR)
    .option("--init-ca", "create a CA in --certs when it has none (the default ./certs gets one on first run anyway)")
    .option("--catalog <file>", "endpoint catalogue (default classifiers/endpoints.yaml)")
    .option("--max-body <bytes>", "bodies above this are stored cut, with a flag", String(PROXY_DEFAULTS.maxBodyBytes))
    .option(
      "--upstream-timeout <ms>",
      "wait this long for the upstream's response head once the request is sent",
      String(PROXY_DEFAULTS.upstreamTimeoutMs),
    )
    .option("--upstream-ca <file>", "extra PEM CA to trust for upstream TLS (repeatable)", collect, [])
    .option("--insecure-upstream", "do not verify upstream certificates (lab only)")
    .option("--allow-private", "relay to loopback, link-local and private (RFC 1918, ULA) addresses (refused by default)")
    .option(
      "--idle-timeout <ms>",
      "close a client connection with no traffic either way for this long",
      String(PROXY_DEFAULTS.idleTimeoutMs),
    )
    .option(
      "--handshake-timeout <ms>",
      "limit from a CONNECT's answer to its first byte and through the TLS handshake",
      String(PROXY_DEFAULTS.handshakeTimeoutMs),
    )
    .option("--body-timeout <ms>", "cut off a request or response body that stalls this long", String(PROXY_DEFAULTS.bodyTimeoutMs))
    .option(
      "--max-inflight <bytes>",
      "body bytes held in memory across all exchanges; beyond it uploads get 503",
      String(PROXY_DEFAULTS.maxInflightBytes),
    )
    .option("--pin-expiry <ms>", "how long a client's certificate rejection keeps its host bypassed", String(PROXY_DEFAULTS.pinExpiryMs))
    .option("--no-pin-bypass", "keep intercepting hosts whose client rejected the certificate")
    .option("--ui-port <port>", "web UI port on loopback, never relayed to (repeatable)", collect, [])
    .option("--log-format <format>", "human (banner and one line per exchange) | json (pino lines) | auto: human on a terminal", "auto")
    .option("--quiet", "no banner and no exchange lines; warnings and errors only")
    .option("--lab <name>", "lab label recorded with the session (the Parquet export partitions by it; docs/fleet.md)")
    .option("--machine <name>", "machine label recorded with the session (the Parquet export partitions by it)")
    .action((flags: ProxyFlags, cmd: Command) => runCommand(() => (requireCaIfExplicit(cmd, flags.certs, flags.initCa), runProxy(flags))));
}

export function parseProxyFlags(flags: ProxyFlags): ProxyOptions {
  const intercept = flags.intercept;
  if (intercept !== "catalog" && intercept !== "all") {
    throw exhaustError("EXH_OPT_INVALID", { option: "--intercept", reason: `expected catalog or all, got "${intercept}"` });
  }
  const positive = (option: string, text: string) => {
    const n = Number(text);
    if (!Number.isInteger(n) || n <= 0)
      throw exhaustError("EXH_OPT_INVALID", { option, reason: `expected a positive integer, got "${text}"` });
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
  let format: LogFormat;
  try {
    format = resolveLogFormat(flags.logFormat, process.stderr.isTTY === true);
  } catch (e) {
    throw exhaustError("EXH_OPT_INVALID", { option: "--log-format", reason: (e as Error).message });
  }
  const quiet = flags.quiet === true;
  // Human form: the banner and the exchange lines say what the info lines would; logs keep warnings.
  const log =
    format === "json"
      ? createLogger(quiet ? { level: "warn" } : {})
      : createLogger({ level: process.env.EXHAUST_LOG_LEVEL ?? "warn", destination: humanLogStream(process.stderr) });
  const console_ = format === "human" && !quiet ? new ExchangeConsole(process.stdout, process.stdout.isTTY === true) : undefined;
  // A stop asked for by a signal, or forced by the store going away under the proxy.
  let stop!: () => void;
  const stopped = new Promise<void>((resolve) => (stop = resolve));
  // From here on a signal is a clean stop, even one that comes while the proxy is starting.
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
  const capture = await startCapture({
    options,
    log,
    onStoreGone: () => stop(),
    addons: console_ ? [console_.addon()] : [],
    onProcessed: console_ ? (n) => console_.processed(n) : undefined,
    labels,
  });
  const { session } = capture;
  if (console_) {
    process.stdout.write(
      banner({
        address: capture.address,
        certsDir: options.certsDir,
        fingerprint256: capture.ca.fingerprint256,
        dbFile: options.dbFile,
        session: session.name,
        mode: options.mode,
        intercept: options.intercept,
      }),
    );
  }
  // SIGHUP forgets every pin (docs/containment.md): the next connections are intercepted again.
  process.on("SIGHUP", () => log.warn({ cleared: capture.clearPins() }, "pins cleared (SIGHUP)"));
  log.info({ session: session.name, db: options.dbFile, ca: capture.ca.fingerprint256 }, "capturing");
  // How long the event loop was ever held up: leaf issuance and SQLite commits must stay short.
  const LOOP_RESOLUTION_MS = 10;
  const loopDelay = monitorEventLoopDelay({ resolution: LOOP_RESOLUTION_MS });
  loopDelay.enable();
  await stopped;
  // What the event loop did while clients were served: the stop's own work (decoding the backlog
  // on this thread) is not time any client waited for.
  loopDelay.disable();
  const storeGone = capture.storeGone();
  if (storeGone) {
    // Nothing more can be stored: close what is open and say so (exit 1), writing nothing.
    await capture.close();
    console_?.flush();
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
  try {
    // Complete before it answers: what the processing thread had not decoded yet is decoded here, on
    // this (normal-priority) thread, with a progress line; a second Ctrl-C leaves it to the next
    // reading command or `exhaust reprocess`, and says how much that is.
    await capture.close({
      decodeBacklog: (db, s) =>
        decodePendingWithProgress(
          db,
          { sessionIds: [s.id] },
          { busySessions: new Set(), skipHint: "Ctrl-C again", stopRequested: () => skipBacklog },
        ),
    });
  } catch (e) {
    log.flush();
    throw e;
  } finally {
    console_?.flush();
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
