import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { afterAll, beforeAll } from "vitest";
import { startOrigin, type Origin } from "./origin.js";
import { initAuthority, type CertificateAuthority } from "../../src/ca/authority.js";
import { parseProxyFlags } from "../../src/cli/proxy.js";
import { createLogger } from "../../src/log.js";
import type { Addon } from "../../src/proxy/addons/addon.js";
import { type RunningProxy } from "../../src/proxy/server.js";
import type { ProcessingThread } from "../../src/pipeline/processing.js";
import { startCapture } from "../../src/pipeline/start-capture.js";
import type { Db } from "../../src/store/database.js";

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
/** A local HTTPS origin with its own CA for one test file: started before its tests, closed after them. */
export function useLocalOrigin(): { ca: CertificateAuthority; origin: Origin } {
  const local = {} as { ca: CertificateAuthority; origin: Origin };
  beforeAll(async () => {
    local.ca = await makeOriginAuthority();
    local.origin = await startOrigin(local.ca);
  });
  afterAll(async () => {
    await local.origin?.close();
  });
  return local;
}

export async function makeOriginAuthority(): Promise<CertificateAuthority> {
  return initAuthority(tempDir("exhaust-origin-ca-"), { permittedDomains: [], unconstrained: true });
}

/**
 * Starts the real proxy in this process with CLI-style flags (parsed by the CLI's own parser), a
 * fresh CA, database and session in a temp dir, and logs collected in memory.
 */
export async function startTestProxy(
  flags: Partial<Parameters<typeof parseProxyFlags>[0]> & { originCaPem?: string; addons?: Addon[] } = {},
): Promise<TestProxy> {
  const dir = tempDir();
  const { originCaPem, addons, ...rest } = flags;
  const options = parseProxyFlags({
    listen: "127.0.0.1:0",
    db: join(dir, "exhaust.db"),
    session: "test",
    certs: join(dir, "certs"),
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
  // The same lifecycle as `exhaust proxy` (src/pipeline/start-capture.ts): session claim,
  // checkpointer, store guard and processing thread, all stopped by close().
  const capture = await startCapture({
    options,
    log,
    toolVersion: "test",
    addons,
    unconstrainedCaForAll: true,
    stderr: new Writable({
      write(chunk, _enc, cb) {
        logLines.push(String(chunk));
        cb();
      },
    }),
  });
  return {
    proxy: capture.proxy,
    port: capture.address.port,
    caPem: readFileSync(join(options.certsDir, "exhaust-ca.pem"), "utf8"),
    db: capture.db,
    dbFile: options.dbFile,
    dir,
    logLines,
    processing: capture.processing,
    async close() {
      await capture.close();
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

/** The decoded field of exchange `exchangeId` holding `value`, once the processing thread has stored it. */
export function decodedFieldWithValue(db: Db, exchangeId: string, value: string): Promise<{ name: string; path: string }> {
  return eventually(
    () =>
      db
        .prepare("SELECT e.name, f.path FROM events e JOIN fields f ON f.event_id = e.id WHERE e.exchange_id = ? AND f.value = ?")
        .get(exchangeId, value) as { name: string; path: string } | undefined,
    20_000,
  );
}
