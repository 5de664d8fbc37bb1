/**
 * One capture's whole lifecycle in one place: CA and leaf issuer, database, session claim,
 * checkpointer, writer priority, session, capture writer thread, processing thread and proxy — started in
 * that order and stopped in the reverse one. `exhaust proxy`, `exhaust demo` and the tests' proxy
 * helper all start a capture through here.
 */
import { randomUUID } from "node:crypto";
import { hostname } from "node:os";
import { loadOrCreateAuthority, type CertificateAuthority } from "../ca/authority.js";
import { LeafIssuer } from "../ca/leaf.js";
import { checkpointOnStop } from "../capture/stop-checkpoint.js";
import { EndpointCatalog } from "../catalog/endpoints.js";
import { exhaustError, type ExhaustError } from "../errors.js";
import type { Logger } from "../log.js";
import { assertListenAllowed } from "../proxy/addons/access.js";
import type { Addon } from "../proxy/addons/addon.js";
import { defaultAddons } from "../proxy/addons/index.js";
import { ADDON_MODULES } from "../proxy/addons/registry.js";
import type { PinningAddon } from "../proxy/addons/pinning.js";
import type { HostPort, ProxyOptions } from "../proxy/options.js";
import { startProxy, type RunningProxy } from "../proxy/server.js";
import { CaptureStore, type SessionInfo } from "../store/capture-store.js";
import { CaptureWriterThread } from "../store/capture-writer.js";
import { setSessionLabels } from "../store/parquet-queries.js";
import { Checkpointer } from "../store/checkpointer.js";
import { openDatabase, watchStore, type Db } from "../store/database.js";
import { claimSession, ownerIsLive, releaseSession, type SessionOwner } from "../store/session-owner.js";
import { WriterPriority } from "../store/writer-priority.js";
import { TOOL_VERSION } from "../version.js";
import { ProcessingThread, type ProcessedNotice } from "./processing.js";

export interface StartCaptureOptions {
  options: ProxyOptions;
  log: Logger;
  /** Stored with the session (default: this build's version). */
  toolVersion?: string;
  /**
   * A CA created here (none in the directory yet) is unconstrained when the capture intercepts
   * every host. Without it a missing CA is created name-constrained to the catalogue, and
   * `--intercept all` then refuses it (EXH_CA_CONSTRAINED), as `exhaust proxy` always did.
   */
  unconstrainedCaForAll?: boolean;
  /** Called once when the store's files are deleted or replaced: nothing more is committed. */
  onStoreGone?: (e: ExhaustError) => void;
  /** Addons after the capture addon (before the log line): they see durably stored exchanges. */
  addons?: Addon[];
  /** Told each exchange the processing thread has decoded (or found nothing to do for). */
  onProcessed?: (notice: ProcessedNotice) => void;
  /** Where the stop checkpoint's line goes (default stderr). */
  stderr?: NodeJS.WritableStream;
  /** Lab and machine labels recorded with the session (the Parquet export partitions by them). */
  labels?: { lab?: string; machine?: string };
}

export interface CloseOptions {
  /**
   * Decodes what the processing thread left undecoded, after it stopped and before the session
   * ends (the CLI's progress line). Failures are logged: the captures are stored whatever happens.
   */
  decodeBacklog?: (db: Db, session: SessionInfo) => Promise<unknown>;
}

export interface RunningCapture {
  /** The address actually bound (port 0 resolved). */
  address: HostPort;
  session: SessionInfo;
  ca: CertificateAuthority;
  catalog: EndpointCatalog;
  db: Db;
  dbFile: string;
  proxy: RunningProxy;
  processing: ProcessingThread;
  /** Forgets every pin (SIGHUP in the CLI); returns how many there were. */
  clearPins(): number;
  /** Set once the store's files went away under the capture. */
  storeGone(): ExhaustError | undefined;
  /**
   * Stops everything in order. After a store loss: closes what is open and writes nothing.
   * Otherwise ends the session, writes the stop checkpoint and releases the session; throws
   * EXH_STOP_FAILED when what the stop writes cannot be written (every capture is already stored).
   */
  close(options?: CloseOptions): Promise<void>;
}

/** How often the store's files are checked when no commit does it (every commit checks too). */
const STORE_CHECK_MS = 1000;
/** The session owner's heartbeat, in store checks (5 s); a claim older than OWNER_STALE_MS lapses. */
const OWNER_HEARTBEAT_TICKS = 5;

export async function startCapture(o: StartCaptureOptions): Promise<RunningCapture> {
  const { options, log } = o;
  const catalog = EndpointCatalog.load(options.catalogFile);
  const ca = await loadOrCreateAuthority(options.certsDir, {
    permittedDomains: catalog.constraintDomains(),
    unconstrained: o.unconstrainedCaForAll === true && options.intercept === "all",
  });
  if (options.intercept === "all" && ca.constrained) throw exhaustError("EXH_CA_CONSTRAINED", { dir: options.certsDir });
  const issuer = await LeafIssuer.create(ca);
  assertListenAllowed(options);
  const db = openDatabase(options.dbFile);
  const owner = claimOwnSession(db, options);
  // Checked before every commit and every second: a store whose files were deleted or replaced
  // takes no more commits (nothing is acknowledged into the void) and the owner is told.
  const sameStore = watchStore(options.dbFile);
  let storeGone: ExhaustError | undefined;
  const markGone = () => {
    if (!storeGone) {
      storeGone = exhaustError("EXH_STORE_GONE", { file: options.dbFile });
      log.error({ code: storeGone.code, db: options.dbFile }, storeGone.message);
      o.onStoreGone?.(storeGone);
    }
    return storeGone;
  };
  const guard = () => (storeGone || sameStore() ? storeGone : markGone());
  // Checkpoints inside a commit would hold the event loop for milliseconds: done on a thread.
  const checkpointer = Checkpointer.start(db, options.dbFile, undefined, options.backgroundNice);
  const priority = new WriterPriority();
  // This thread's own writes (the session row at the start, its end at the stop) go through a
  // CaptureStore on its connection; the captures go through the writer thread (below).
  const store = new CaptureStore(db);
  const session = store.openSession(options.session, {
    toolVersion: o.toolVersion ?? TOOL_VERSION,
    caFingerprint: ca.fingerprint256,
    options: describeOptions(options),
  });
  if (o.labels) setSessionLabels(db, session.id, o.labels);
  // The capture commit (hashes, chain link, INSERTs, store check, group commit) runs on a thread of
  // its own, which raises the writer priority and retries a busy lock from its own loop; the
  // proxy's loop hands each write over and releases a response once it committed. Started after
  // the session row is written: until the stop, this thread writes nothing itself.
  let writer: CaptureWriterThread;
  try {
    writer = await CaptureWriterThread.start({
      dbFile: options.dbFile,
      priority,
      // A checkpoint thread beside the proxy turned SQLite's own checkpoints off on this connection:
      // then the writer thread's connection must not checkpoint either.
      autoCheckpoint: db.pragma("wal_autocheckpoint", { simple: true }) !== 0,
      owner,
      onStoreGone: markGone,
      onThreadExit: (reason) => log.error({ code: "EXH_CAPTURE_FAILED", reason }, "capture writer thread stopped; starting it again"),
    });
  } catch (e) {
    store.discardSessionIfEmpty(session);
    releaseSession(db, owner);
    await checkpointer.stop().catch(() => {});
    db.close();
    throw exhaustError("EXH_DB_OPEN", { file: options.dbFile, reason: (e as Error).message.split("\n")[0] }, e);
  }
  // Decoding runs on its own thread, fed each exchange once it is stored: it never delays a client.
  const processing = ProcessingThread.start(options.dbFile, log, priority, session.id, o.onProcessed, options.backgroundNice);
  const addons = defaultAddons({ options, catalog, log }, writer, session, [processing.addon(), ...(o.addons ?? [])]);
  const pinning = addons.find((a) => a.name === "pinning") as PinningAddon | undefined;
  let proxy: RunningProxy;
  try {
    proxy = await startProxy({ options, catalog, issuer, addons, log });
  } catch (e) {
    await processing.stop();
    await writer.close();
    store.discardSessionIfEmpty(session);
    releaseSession(db, owner);
    await checkpointer.stop();
    db.close();
    throw e;
  }
  let ticks = 0;
  const watch = setInterval(() => {
    if (guard()) return;
    if (++ticks % OWNER_HEARTBEAT_TICKS === 0) writer.heartbeat().catch(() => {});
  }, STORE_CHECK_MS);
  watch.unref();
  let closing: Promise<void> | undefined;

  async function stopAll(options_: CloseOptions): Promise<void> {
    clearInterval(watch);
    if (storeGone) {
      // Nothing more can be stored: close what is open, writing nothing.
      await proxy.close();
      await processing.stop();
      await writer.close();
      await checkpointer.stop().catch(() => {});
      db.close();
      return;
    }
    await proxy.close();
    // The processing thread first: afterwards nothing else writes while the session is closed.
    await processing.stop();
    await writer.close();
    if (options_.decodeBacklog) {
      db.pragma("busy_timeout = 5000");
      try {
        await options_.decodeBacklog(db, session);
      } catch (e) {
        log.error({ code: "EXH_PROCESS_FAILED", reason: (e as Error).message }, "decoding the backlog failed");
      }
    }
    // What the stop writes can fail too (a full disk): every capture is already stored, so release
    // and close what is open, then say plainly what could not be written.
    let stopFailure: unknown;
    try {
      store.endSession(session);
      // A signed checkpoint of the chain head as the capture stops (stderr and the checkpoints table).
      checkpointOnStop(db, session, ca, o.stderr);
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
      throw exhaustError(
        "EXH_STOP_FAILED",
        { session: session.name, file: options.dbFile, reason: (stopFailure as Error).message.split("\n")[0] },
        stopFailure,
      );
    }
  }

  return {
    address: proxy.address,
    session,
    ca,
    catalog,
    db,
    dbFile: options.dbFile,
    proxy,
    processing,
    clearPins: () => pinning?.clear() ?? 0,
    storeGone: () => storeGone,
    close(closeOptions = {}) {
      closing ??= stopAll(closeOptions);
      return closing;
    },
  };
}

/**
 * One proxy captures a session at a time: two would interleave one hash chain. A claim whose
 * proxy was killed lapses as soon as its pid is gone (same host), or its heartbeat is old.
 */
function claimOwnSession(db: Db, options: ProxyOptions): SessionOwner {
  const now = Date.now();
  const owner: SessionOwner = {
    session: options.session,
    pid: process.pid,
    host: hostname(),
    token: randomUUID(),
    startedAt: now,
    heartbeatAt: now,
  };
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

/** The options stored with the session: enough to know how it was captured, no credentials; each addon describes its own. */
function describeOptions(o: ProxyOptions): object {
  return {
    listen: `${o.listen.host}:${o.listen.port}`,
    upstreamProxy: o.upstreamProxy ? `${o.upstreamProxy.protocol}//${o.upstreamProxy.host}` : undefined,
    maxBodyBytes: o.maxBodyBytes,
    upstreamTimeoutMs: o.upstreamTimeoutMs,
    insecureUpstream: o.insecureUpstream,
    allowPrivate: o.allowPrivate,
    idleTimeoutMs: o.idleTimeoutMs,
    handshakeTimeoutMs: o.handshakeTimeoutMs,
    bodyTimeoutMs: o.bodyTimeoutMs,
    maxInflightBytes: o.maxInflightBytes,
    ...(Object.assign({}, ...ADDON_MODULES.map((m) => m.describeOptions?.(o))) as Record<string, unknown>),
  };
}
