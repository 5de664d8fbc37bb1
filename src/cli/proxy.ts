import { readFileSync } from "node:fs";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { Option, type Command } from "commander";
import { exhaustError } from "../errors.js";
import { startCapture } from "../pipeline/start-capture.js";
import { banner, ExchangeConsole, humanLogStream, resolveLogFormat, type LogFormat } from "./console.js";
import { createLogger } from "../log.js";
import { DEFAULT_CERTS_DIR, DEFAULT_DB_FILE } from "../paths.js";
import type { AddonOption } from "../proxy/addons/addon.js";
import { ADDON_MODULES } from "../proxy/addons/registry.js";
import { parseHostPort, parseNice, parsePositiveInteger, parseUpstreamProxy, PROXY_DEFAULTS, type ProxyOptions } from "../proxy/options.js";
import { decodePendingWithProgress } from "./complete.js";
import { requireCaIfExplicit } from "./files.js";
import { validateLabel } from "../export/parquet-schema.js";
import { collect, runCommand } from "./run.js";
import { UI_DEFAULT_LISTEN } from "./ui.js";

/** The core flags; the addons' flags (addons/registry.ts) come under their attribute names. */
interface ProxyFlags extends Record<string, unknown> {
  listen: string;
  db: string;
  session?: string;
  upstream?: string;
  certs: string;
  initCa?: boolean;
  catalog?: string;
  maxBody?: string;
  upstreamTimeout?: string;
  upstreamCa?: string[];
  insecureUpstream?: boolean;
  allowPrivate?: boolean;
  idleTimeout?: string;
  handshakeTimeout?: string;
  bodyTimeout?: string;
  maxInflight?: string;
  uiPort?: string[];
  backgroundNice?: string;
  logFormat?: string;
  quiet?: boolean;
  lab?: string;
  machine?: string;
}

/** An addon's option as commander takes it; a repeatable one collects its values in a list. */
function commanderOption(spec: AddonOption): Option {
  const option = new Option(spec.flags, spec.description);
  if (spec.repeatable) return option.argParser(collect).default([]);
  return spec.default === undefined ? option : option.default(spec.default);
}

/**
 * The value commander would give a flag that was not on the command line (for callers of
 * parseProxyFlags that pass only some flags): its default, [] when repeatable, true for --no-X.
 */
function defaultOf(spec: AddonOption, option: Option): unknown {
  if (spec.repeatable) return [];
  if (spec.default !== undefined) return spec.default;
  return option.negate ? true : undefined;
}

export function registerProxyCommand(program: Command): void {
  const command = program
    .command("proxy")
    .description("run the intercepting proxy")
    .option("--listen <host:port>", "address to listen on", PROXY_DEFAULTS.listen)
    .option("--db <file>", "SQLite database", DEFAULT_DB_FILE)
    .option("--session <name>", "session name (an existing one is continued); default: the start time")
    .option("--upstream <url>", "chain to this HTTP proxy (http://[user:pass@]host:port)")
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
    .option("--ui-port <port>", "web UI port on loopback, never relayed to (repeatable)", collect, [])
    .option(
      "--background-nice <n>",
      "nice value (0-19) of the decoding and checkpoint threads on Linux, so the proxy keeps the CPU under load; 0: normal priority",
      String(PROXY_DEFAULTS.backgroundNice),
    );
  // Each addon's own options (access, intercept, host-map, modes, pinning: addons/registry.ts).
  for (const m of ADDON_MODULES) for (const spec of m.options) command.addOption(commanderOption(spec));
  command
    .option("--log-format <format>", "human (banner and one line per exchange) | json (pino lines) | auto: human on a terminal", "auto")
    .option("--quiet", "no banner and no exchange lines; warnings and errors only")
    .option("--lab <name>", "lab label recorded with the session (the Parquet export partitions by it; docs/fleet.md)")
    .option("--machine <name>", "machine label recorded with the session (the Parquet export partitions by it)")
    .action((flags: ProxyFlags, cmd: Command) => runCommand(() => (requireCaIfExplicit(cmd, flags.certs, flags.initCa), runProxy(flags))));
}

/** The addons' parts of ProxyOptions, each from its own flags (a flag not given takes its default). */
function parseAddonFlags(flags: ProxyFlags): Array<Partial<ProxyOptions>> {
  return ADDON_MODULES.map((m) => {
    if (!m.parseOptions) return {};
    const own: Record<string, unknown> = {};
    for (const spec of m.options) {
      const option = new Option(spec.flags, spec.description);
      const key = option.attributeName();
      own[key] = flags[key] ?? defaultOf(spec, option);
    }
    return m.parseOptions(own);
  });
}

export function parseProxyFlags(flags: ProxyFlags): ProxyOptions {
  const addonParts = parseAddonFlags(flags);
  const positive = parsePositiveInteger;
  const core = {
    listen: parseHostPort("--listen", flags.listen, "127.0.0.1"),
    dbFile: flags.db,
    session: flags.session ?? new Date().toISOString().slice(0, 19).replace(/:/g, "-"),
    upstreamProxy: flags.upstream ? parseUpstreamProxy(flags.upstream) : undefined,
    certsDir: flags.certs,
    catalogFile: flags.catalog,
    maxBodyBytes: positive("--max-body", flags.maxBody ?? String(PROXY_DEFAULTS.maxBodyBytes)),
    upstreamTimeoutMs: positive("--upstream-timeout", flags.upstreamTimeout ?? String(PROXY_DEFAULTS.upstreamTimeoutMs)),
    upstreamCaPem: (flags.upstreamCa ?? []).map((file) => {
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
    uiPorts: (flags.uiPort?.length ? flags.uiPort : [String(parseHostPort("--ui-port", UI_DEFAULT_LISTEN).port)]).map((p) => {
      const n = positive("--ui-port", p);
      if (n > 65535) throw exhaustError("EXH_OPT_INVALID", { option: "--ui-port", reason: `port ${n} is out of range` });
      return n;
    }),
    backgroundNice: parseNice("--background-nice", flags.backgroundNice ?? String(PROXY_DEFAULTS.backgroundNice)),
  };
  return Object.assign(core, ...addonParts) as ProxyOptions;
}

/** How long a stop on a lost store waits for the log to be written before its error line. */
const LOG_DRAIN_LIMIT_MS = 500;

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
    // Written out before the one-line error, which is the last line the user sees: the log's
    // destination writes asynchronously, stderr's error line synchronously. Its flush callback
    // waits for a 'drain' that does not come when nothing was pending, hence the time limit.
    await new Promise<void>((resolve) => {
      const limit = setTimeout(resolve, LOG_DRAIN_LIMIT_MS);
      log.flush(() => {
        clearTimeout(limit);
        resolve();
      });
    });
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
