/**
 * Helpers for the durability tests: an outside SQLite client in a process of its own (Python's
 * sqlite3 module when there is a python3, else a node process with better-sqlite3: either way a
 * stock SQLite library that knows nothing of exhaust), uploads through a spawned proxy with their
 * answers recorded, and the check that what the store holds is what was acknowledged.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { join } from "node:path";
import Database from "better-sqlite3";
import { CHAIN_GENESIS } from "../../src/store/chain.js";
import { rowChainHash, type ChainedRow } from "./chain.js";
import { PACKAGE_ROOT } from "../../src/paths.js";
import { httpsThroughProxy } from "./client.js";

export const COLLECTOR = "mobile.events.data.microsoft.com";
export const sha256 = (b: Buffer) => createHash("sha256").update(b).digest("hex");

const HAS_PYTHON = spawnSync("python3", ["-c", "import sqlite3"], { stdio: "ignore" }).status === 0;

/** Runs SQL statements one by one (autocommit unless they BEGIN), prints the last row, then holds or closes. */
const PYTHON_CLIENT = `
import sqlite3, sys, json
db = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=10)
row = None
for sql in json.loads(sys.argv[2]):
    row = db.execute(sql).fetchone()
print(json.dumps(row), flush=True)
if sys.argv[3] == "hold":
    sys.stdin.read()
db.close()
`;

const NODE_CLIENT = `
const Database = require(${JSON.stringify(join(PACKAGE_ROOT, "node_modules", "better-sqlite3"))});
const db = new Database(process.argv[1], { timeout: 10000 });
let row = null;
for (const sql of JSON.parse(process.argv[2])) {
  const st = db.prepare(sql);
  if (st.reader) row = Object.values(st.get() ?? {}); else st.run();
}
process.stdout.write(JSON.stringify(row) + "\\n");
const end = () => { db.close(); process.exit(0); };
if (process.argv[3] === "hold") { process.stdin.on("data", () => {}); process.stdin.on("end", end); } else end();
`;

export interface OutsideClient {
  /** Which stock client it is. */
  kind: "python3 sqlite3" | "node better-sqlite3";
  child: ChildProcess;
  /** The last statement's row, once all statements ran. */
  result: Promise<unknown>;
  /** Lets a holding client close its connection; resolves when its process has exited. */
  close(): Promise<void>;
}

/** Opens `file` read-write from another process with a stock SQLite client and runs `statements`. */
export function outsideClient(file: string, statements: string[], hold: boolean): OutsideClient {
  const args = [JSON.stringify(statements), hold ? "hold" : "close"];
  const child = HAS_PYTHON
    ? spawn("python3", ["-c", PYTHON_CLIENT, file, ...args], { stdio: ["pipe", "pipe", "pipe"] })
    : spawn(process.execPath, ["-e", NODE_CLIENT, file, ...args], { stdio: ["pipe", "pipe", "pipe"] });
  let out = "";
  let err = "";
  child.stderr.on("data", (d: Buffer) => (err += d.toString()));
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const result = new Promise<unknown>((resolve, reject) => {
    child.stdout.on("data", (d: Buffer) => {
      out += d.toString();
      const nl = out.indexOf("\n");
      if (nl !== -1) resolve(JSON.parse(out.slice(0, nl)));
    });
    child.once("exit", (code) => reject(new Error(`outside client exited ${code} before answering: ${err}`)));
  });
  return {
    kind: HAS_PYTHON ? "python3 sqlite3" : "node better-sqlite3",
    child,
    result,
    async close() {
      child.stdin.end();
      await exited;
    },
  };
}

export interface UploadResult {
  body: Buffer;
  status: number | "error";
  headers?: Record<string, string | string[] | undefined>;
  /** When the request was started and when its answer came (ms). */
  sentAt: number;
  answeredAt: number;
}

/** A JSON upload of about `size` bytes whose content is unique (random). */
export function uniqueUpload(size = 600): Buffer {
  const pad = randomBytes(Math.max(8, Math.floor(size / 2))).toString("hex");
  return Buffer.from(`{"name":"Office.Durability","pad":"${pad}"}\n`);
}

/** Sends `count` uploads through the proxy with `parallel` clients; each on a fresh TLS tunnel. */
export async function sendUploads(
  proxyPort: number,
  ca: string,
  count: number,
  options: { parallel?: number; size?: number; onAnswer?: (r: UploadResult, all: UploadResult[]) => void } = {},
): Promise<UploadResult[]> {
  const results: UploadResult[] = [];
  let next = 0;
  const worker = async () => {
    while (next < count) {
      next++;
      const body = uniqueUpload(options.size);
      const sentAt = Date.now();
      let r: UploadResult;
      try {
        const res = await httpsThroughProxy({
          proxyPort,
          host: COLLECTOR,
          path: "/OneCollector/1.0/",
          headers: { "content-type": "application/x-json-stream" },
          body,
          ca: [ca],
        });
        r = { body, status: res.status, headers: res.headers, sentAt, answeredAt: Date.now() };
      } catch {
        r = { body, status: "error", sentAt, answeredAt: Date.now() };
      }
      results.push(r);
      options.onAnswer?.(r, results);
    }
  };
  await Promise.all(Array.from({ length: options.parallel ?? 4 }, worker));
  return results;
}

export interface StoreCheck {
  /** request_body_sha256 of every stored exchange (of the session). */
  stored: Set<string>;
  exchanges: number;
  /** Problems found recomputing the session's hash chain (empty: intact). */
  chainProblems: string[];
}

/** Reads the store as it is on disk (after the proxy is gone) and recomputes the session's chain. */
export function checkStore(file: string, session: string): StoreCheck {
  const db = new Database(file, { fileMustExist: true });
  try {
    const rows = db
      .prepare(
        `SELECT x.id, x.seq, x.started_at, x.method, x.scheme, x.host, x.port, x.path, x.request_headers,
                x.request_body_sha256, x.request_body_size, x.response_status, x.prev_hash, x.hash,
                (SELECT COUNT(*) FROM blobs b WHERE b.sha256 = x.request_body_sha256) AS has_blob
           FROM exchanges x JOIN sessions s ON s.id = x.session_id WHERE s.name = ? ORDER BY x.seq`,
      )
      .all(session) as Array<Record<string, never>>;
    const problems: string[] = [];
    let prev = CHAIN_GENESIS;
    rows.forEach((r, i) => {
      if (r.seq !== i + 1) problems.push(`seq ${r.seq} at position ${i + 1}`);
      if (r.prev_hash !== prev) problems.push(`prev_hash of seq ${r.seq}`);
      if (r.has_blob !== 1) problems.push(`no body blob for seq ${r.seq}`);
      const hash = rowChainHash(session, prev, r as unknown as ChainedRow);
      if (hash !== r.hash) problems.push(`hash of seq ${r.seq}`);
      prev = r.hash;
    });
    return { stored: new Set(rows.map((r) => r.request_body_sha256 as string)), exchanges: rows.length, chainProblems: problems };
  } finally {
    db.close();
  }
}

/** The acknowledged (2xx) uploads that the store does not hold. */
export function lostAcknowledged(results: UploadResult[], stored: Set<string>): UploadResult[] {
  return results.filter((r) => typeof r.status === "number" && r.status >= 200 && r.status < 300 && !stored.has(sha256(r.body)));
}
