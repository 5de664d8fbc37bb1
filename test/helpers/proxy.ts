import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { initAuthority, loadOrCreateAuthority, type CertificateAuthority } from "../../src/ca/authority.js";
import { LeafIssuer } from "../../src/ca/leaf.js";
import { EndpointCatalog } from "../../src/catalog/endpoints.js";
import { parseProxyFlags } from "../../src/cli/proxy.js";
import { createLogger } from "../../src/log.js";
import { defaultAddons } from "../../src/proxy/addons/index.js";
import { startProxy, type RunningProxy } from "../../src/proxy/server.js";
import { CaptureStore } from "../../src/store/capture-store.js";
import { WriterPriority } from "../../src/store/writer-priority.js";
import { ProcessingThread } from "../../src/pipeline/processing.js";
import { openDatabase, type Db } from "../../src/store/database.js";

export interface TestProxy {
  proxy: RunningProxy;
  port: number;
  /** The proxy CA's certificate: what `exhaust ca export` prints. */
  caPem: string;
  db: Db;
  dbFile: string;
  dir: string;
  logLines: string[];
  /** The processing thread feeding on this proxy's captures. */
  processing: ProcessingThread;
  close(): Promise<void>;
}

export function tempDir(prefix = "exhaust-test-"): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** A test origin CA, unconstrained, separate from the proxy's. */
export async function makeOriginAuthority(): Promise<CertificateAuthority> {
  return initAuthority(tempDir("exhaust-origin-ca-"), { permittedDomains: [], unconstrained: true });
}

/**
 * Starts the real proxy in this process with CLI-style flags (parsed by the CLI's own parser), a
 * fresh CA, database and session in a temp dir, and logs collected in memory.
 */
export async function startTestProxy(
  flags: Partial<Parameters<typeof parseProxyFlags>[0]> & { originCaPem?: string } = {},
): Promise<TestProxy> {
  const dir = tempDir();
  const { originCaPem, ...rest } = flags;
  const options = parseProxyFlags({
    listen: "127.0.0.1:0",
    db: join(dir, "exhaust.db"),
    session: "test",
    mode: "forward",
    hostMode: [],
    intercept: "catalog",
    mapHost: [],
    allow: [],
    certs: join(dir, "certs"),
    maxBody: String(32 * 1024 * 1024),
    upstreamTimeout: "30000",
    upstreamCa: [],
    ...rest,
  });
  if (originCaPem) options.upstreamCaPem.push(originCaPem);
  const logLines: string[] = [];
  const log = createLogger({
    level: "debug",
    destination: new Writable({
      write(chunk, _enc, cb) {
        logLines.push(String(chunk));
        cb();
      },
    }),
  });
  const catalog = EndpointCatalog.load();
  const ca = await loadOrCreateAuthority(options.certsDir, {
    permittedDomains: catalog.constraintDomains(),
    unconstrained: options.intercept === "all",
  });
  const issuer = await LeafIssuer.create(ca);
  const db = openDatabase(options.dbFile);
  const priority = new WriterPriority();
  const store = new CaptureStore(db, priority);
  const session = store.openSession(options.session, { toolVersion: "test", caFingerprint: ca.fingerprint256 });
  const processing = ProcessingThread.start(options.dbFile, log, priority);
  const proxy = await startProxy({
    options,
    catalog,
    issuer,
    addons: defaultAddons({ options, catalog, log }, store, session, [processing.addon()]),
    log,
  });
  return {
    proxy,
    port: proxy.address.port,
    caPem: readFileSync(join(options.certsDir, "exhaust-ca.pem"), "utf8"),
    db,
    dbFile: options.dbFile,
    dir,
    logLines,
    processing,
    async close() {
      await proxy.close();
      await processing.stop();
      await store.close();
      db.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Waits until `check` returns a truthy value (stored rows land a tick after the response). */
export async function eventually<T>(check: () => T | undefined | false | null, ms = 5000): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    const v = check();
    if (v) return v;
    if (Date.now() > until) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 20));
  }
}
