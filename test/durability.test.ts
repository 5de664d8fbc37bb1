/**
 * Issue 12: nothing acknowledged is ever lost. Child processes and real SQLite files throughout:
 * the proxy is `exhaust proxy` (bin/exhaust.js), the outside client a stock SQLite library in a
 * process of its own, faults are real (SIGKILL, a full filesystem, a held lock, deleted files).
 */
import { afterAll, describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  rmSync,
  statfsSync,
  unlinkSync,
  writeFileSync,
  writeSync,
} from "node:fs";
import { join } from "node:path";
import { httpsThroughProxy, tlsThroughProxy } from "./helpers/client.js";
import { encodeFrame, newKey, readResponseHead } from "./helpers/websocket.js";
import { runCli, spawnProxy, waitExit, type ProxyProcess } from "./helpers/cli.js";
import {
  checkStore,
  COLLECTOR,
  lostAcknowledged,
  outsideClient,
  sendUploads,
  sha256,
  uniqueUpload,
  type UploadResult,
} from "./helpers/durability.js";
import { startOrigin } from "./helpers/origin.js";
import { eventually, makeOriginAuthority, startTestProxy, tempDir } from "./helpers/proxy.js";

const dirs: string[] = [];
function workDir(): string {
  const d = tempDir("exhaust-durability-");
  dirs.push(d);
  return d;
}
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function proxyArgs(dir: string, dbFile: string, session: string): string[] {
  return ["--db", dbFile, "--certs", join(dir, "certs"), "--session", session, "--mode", "sinkhole"];
}

/** `exhaust proxy` in sinkhole mode on a new database in a temp dir. */
async function spawnInTemp(session: string): Promise<{ dir: string; dbFile: string; proxy: ProxyProcess; ca: string }> {
  const dir = workDir();
  const dbFile = join(dir, "exhaust.db");
  const proxy = await spawnProxy(proxyArgs(dir, dbFile, session));
  return { dir, dbFile, proxy, ca: readFileSync(join(dir, "certs", "exhaust-ca.pem"), "utf8") };
}

const acked = (rs: UploadResult[]) => rs.filter((r) => r.status === 200);

describe("an outside SQLite client on the live database", () => {
  for (const hold of [false, true]) {
    it(`costs no capture when the proxy is killed (client ${hold ? "still open during the kill" : "opened and closed before"})`, async () => {
      const { dbFile, proxy, ca } = await spawnInTemp("outside");
      const first = await sendUploads(proxy.port, ca, 20);
      expect(acked(first)).toHaveLength(20);

      // A researcher opens the live database read-write: writes, reads, and closes (or keeps it open).
      const client = outsideClient(
        dbFile,
        [
          "CREATE TABLE IF NOT EXISTS researcher_notes (id INTEGER PRIMARY KEY, note TEXT)",
          "INSERT INTO researcher_notes (note) VALUES ('looked at the capture')",
          "SELECT COUNT(*) FROM exchanges",
        ],
        hold,
      );
      const [seen] = (await client.result) as [number];
      expect(seen).toBeGreaterThanOrEqual(20);
      if (!hold) await client.close();

      // 200 more; the kill comes while the last ones are in flight.
      let killed = false;
      const second = await sendUploads(proxy.port, ca, 200, {
        onAnswer: (_r, all) => {
          if (!killed && acked(all).length >= 190) {
            killed = true;
            proxy.child.kill("SIGKILL");
          }
        },
      });
      await waitExit(proxy.child);
      expect(killed).toBe(true);

      const all = [...first, ...second];
      const check = checkStore(dbFile, "outside");
      if (hold) await client.close();
      expect(lostAcknowledged(all, check.stored)).toEqual([]);
      expect(acked(all).length).toBeGreaterThanOrEqual(210);
      expect(check.chainProblems).toEqual([]);
      // After the outside client closed too (it may be the last connection: it checkpoints).
      const after = checkStore(dbFile, "outside");
      expect(lostAcknowledged(all, after.stored)).toEqual([]);
      expect(after.chainProblems).toEqual([]);
      expect(after.exchanges).toBe(check.exchanges);
      // The researcher's own write is there too.
      const notes = outsideClient(dbFile, ["SELECT COUNT(*) FROM researcher_notes"], false);
      expect(await notes.result).toEqual([1]);
      await notes.close();
    });
  }
});

describe("the database path is honest", () => {
  it("a read command on a missing database creates nothing and exits 2 with EXH_DB_NOT_FOUND", () => {
    const dir = workDir();
    for (const command of [
      ["sessions"],
      ["events"],
      ["verify", "--profile", "no-content"],
      ["export", "--format", "jsonl", "--out", join(dir, "out.jsonl")],
    ]) {
      const r = runCli([...command, "--db", join(dir, "nowhere", "missing.db")]);
      expect(r.status, command[0]).toBe(2);
      expect(r.stderr).toMatch(/^exhaust: no database at .*missing\.db.*\[EXH_DB_NOT_FOUND\]\n$/);
    }
    const here = runCli(["sessions", "--db", "missing.db"], dir);
    expect(here.status).toBe(2);
    expect(existsSync(join(dir, "nowhere"))).toBe(false);
    expect(existsSync(join(dir, "missing.db"))).toBe(false);
  });

  it("a corrupt or non-SQLite file exits 2 with EXH_DB_OPEN on one line, no stack trace", async () => {
    const dir = workDir();
    const bad = join(dir, "bad.db");
    writeFileSync(bad, Buffer.concat([Buffer.from("this is not a database\n"), Buffer.alloc(8192, 0x5a)]));
    for (const command of [["sessions"], ["events"], ["reprocess", "--all"]]) {
      const r = runCli([...command, "--db", bad]);
      expect(r.status, command[0]).toBe(2);
      expect(r.stderr).toMatch(/^exhaust: cannot open database .*bad\.db: file is not a database \[EXH_DB_OPEN\]\n$/);
      expect(r.stderr).not.toMatch(/\n\s+at /);
    }
    // Nothing was made beside it either.
    expect(existsSync(`${bad}-wal`)).toBe(false);
    // An empty file, and an SQLite database that is not exhaust's, are not written into.
    const empty = join(dir, "empty.db");
    writeFileSync(empty, "");
    const other = join(dir, "other.db");
    const notes = outsideClient(other, ["CREATE TABLE notes (t TEXT)", "SELECT COUNT(*) FROM notes"], false);
    await notes.result;
    await notes.close();
    const otherBytes = readFileSync(other);
    for (const file of [empty, other]) {
      const r = runCli(["sessions", "--db", file]);
      expect(r.status).toBe(2);
      expect(r.stderr).toMatch(
        /^exhaust: cannot open database .*: not an exhaust database \(it has no exhaust schema\) \[EXH_DB_OPEN\]\n$/,
      );
    }
    expect(readFileSync(empty).length).toBe(0);
    expect(readFileSync(other).equals(otherBytes)).toBe(true);
  });

  it("the default database is the same from any working directory (EXHAUST_DB, else captures/ in the package)", () => {
    const dir = workDir();
    const env = { ...process.env, EXHAUST_DB: join(dir, "env.db") };
    const a = spawnSync(process.execPath, [join(process.cwd(), "bin", "exhaust.js"), "sessions"], { cwd: dir, env, encoding: "utf8" });
    expect(a.status).toBe(2);
    expect(a.stderr).toContain(join(dir, "env.db"));
    mkdirSync(join(dir, "sub"));
    const b = spawnSync(process.execPath, [join(process.cwd(), "bin", "exhaust.js"), "sessions"], {
      cwd: join(dir, "sub"),
      env,
      encoding: "utf8",
    });
    expect(b.stderr).toBe(a.stderr);
    // Without EXHAUST_DB: captures/exhaust.db of the package, whatever the working directory.
    const { EXHAUST_DB: _, ...plain } = process.env;
    const c = spawnSync(process.execPath, [join(process.cwd(), "bin", "exhaust.js"), "sessions", "--json"], {
      cwd: dir,
      env: plain,
      encoding: "utf8",
    });
    const d = spawnSync(process.execPath, [join(process.cwd(), "bin", "exhaust.js"), "sessions", "--json"], {
      cwd: join(dir, "sub"),
      env: plain,
      encoding: "utf8",
    });
    expect([c.status, c.stdout, c.stderr]).toEqual([d.status, d.stdout, d.stderr]);
    if (c.status === 2) expect(c.stderr).toContain(join(process.cwd(), "captures", "exhaust.db"));
    expect(existsSync(join(dir, "captures"))).toBe(false);
  });
});

/** Mounts a small tmpfs (the tests run as root in CI); undefined where mounting is not permitted. */
function mountTmpfs(dir: string, size: string): (() => void) | undefined {
  mkdirSync(dir, { recursive: true });
  const r = spawnSync("mount", ["-t", "tmpfs", "-o", `size=${size}`, "tmpfs", dir], { stdio: "ignore" });
  if (r.status !== 0) return undefined;
  return () => void spawnSync("umount", ["-l", dir], { stdio: "ignore" });
}

/**
 * Fills the filesystem of `dir` up to `leaveBytes` free, with one file; returns its path. Written in
 * pieces, the free space read again before each: the proxy's threads may still be writing (the
 * decoding of the uploads before), and a file sized from one reading then found no room (ENOSPC,
 * seen with three copies of this file running at once). Full is full enough.
 */
function fill(dir: string, leaveBytes: number): string {
  const filler = join(dir, "filler.bin");
  const fd = openSync(filler, "w");
  try {
    for (;;) {
      const s = statfsSync(dir);
      const room = s.bavail * s.bsize - leaveBytes;
      if (room <= 0) break;
      try {
        writeSync(fd, Buffer.alloc(Math.min(room, 1024 * 1024)));
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === "ENOSPC") break;
        throw e;
      }
    }
  } finally {
    closeSync(fd);
  }
  return filler;
}

async function stopProxy(p: ProxyProcess): Promise<number | null> {
  p.child.kill("SIGTERM");
  await waitExit(p.child);
  return p.child.exitCode;
}

/** `exhaust proxy` with its database on a tmpfs of `size`; undefined where mounting is not permitted. */
async function proxyOnTmpfs(
  size: string,
  session: string,
): Promise<{ mnt: string; dbFile: string; proxy: ProxyProcess; ca: string; unmount: () => void } | undefined> {
  const dir = workDir();
  const mnt = join(dir, "small");
  const unmount = mountTmpfs(mnt, size);
  if (!unmount) return undefined;
  const dbFile = join(mnt, "exhaust.db");
  try {
    const proxy = await spawnProxy(proxyArgs(dir, dbFile, session));
    return { mnt, dbFile, proxy, ca: readFileSync(join(dir, "certs", "exhaust-ca.pem"), "utf8"), unmount };
  } catch (e) {
    unmount();
    throw e;
  }
}

describe("fail closed: an upload that could not be committed is never acknowledged", () => {
  it("on a full filesystem uploads get 503 + Retry-After + EXH_CAPTURE_FAILED, none acknowledged unstored; with space back they are acknowledged again", async (ctx) => {
    const small = await proxyOnTmpfs("16m", "full");
    if (!small) {
      ctx.skip(); // mounting not permitted here: the held-lock test below covers the same release path
      return;
    }
    const { mnt, dbFile, proxy, ca, unmount } = small;
    try {
      const before = await sendUploads(proxy.port, ca, 10, { size: 16 * 1024 });
      expect(acked(before)).toHaveLength(10);
      const filler = fill(mnt, 160 * 1024);
      const during = await sendUploads(proxy.port, ca, 80, { size: 16 * 1024 });
      const refused = during.filter((r) => r.status === 503);
      expect(refused.length).toBeGreaterThan(0);
      for (const r of refused) {
        expect(r.headers?.["x-exhaust-error"]).toBe("EXH_CAPTURE_FAILED");
        expect(Number(r.headers?.["retry-after"])).toBeGreaterThan(0);
      }
      expect(during.every((r) => r.status === 200 || r.status === 503)).toBe(true);
      expect(proxy.child.exitCode).toBeNull();
      // Space back: acknowledged again, by the same process.
      unlinkSync(filler);
      const after = await sendUploads(proxy.port, ca, 20, { size: 16 * 1024 });
      expect(acked(after)).toHaveLength(20);
      expect(proxy.child.exitCode).toBeNull();
      // The cause is logged once per burst, not once per refused upload.
      const failureLines = proxy
        .stderr()
        .split("\n")
        .filter((l) => l.includes('"code":"EXH_CAPTURE_FAILED"'));
      expect(failureLines.length).toBeGreaterThanOrEqual(1);
      expect(failureLines.length).toBeLessThan(refused.length);
      expect(proxy.stderr()).toMatch(/addon capture works again in onResponse/);
      // Room for what the stop writes (the backlog decoded, the session ended, its checkpoint) is
      // there again; a non-zero exit shows the proxy's own account of it.
      const code = await stopProxy(proxy);
      expect(code, proxy.stderr().split("\n").slice(-15).join("\n")).toBe(0);

      const all = [...before, ...during, ...after];
      const check = checkStore(dbFile, "full");
      expect(lostAcknowledged(all, check.stored)).toEqual([]);
      // Refused uploads are not in the store (they were never acknowledged; the client retries them).
      for (const r of refused) expect(check.stored.has(sha256(r.body))).toBe(false);
      expect(check.exchanges).toBe(acked(all).length);
      expect(check.chainProblems).toEqual([]);
    } finally {
      unmount();
    }
  });

  it("stopping on a full filesystem ends with one EXH_STOP_FAILED line and exit 1, every acknowledged upload stored", async (ctx) => {
    const small = await proxyOnTmpfs("6m", "full-stop");
    if (!small) {
      ctx.skip();
      return;
    }
    const { mnt, dbFile, proxy, ca, unmount } = small;
    try {
      const before = await sendUploads(proxy.port, ca, 10, { size: 16 * 1024 });
      fill(mnt, 160 * 1024);
      const during = await sendUploads(proxy.port, ca, 80, { size: 16 * 1024 });
      expect(await stopProxy(proxy)).toBe(1);
      // One error line (the progress and undecoded-count lines of the stop come before it).
      const lines = proxy
        .stderr()
        .split("\n")
        .filter((l) => /^exhaust: .*\[EXH_[A-Z_]+\]$/.test(l));
      expect(lines, proxy.stderr().slice(-1500)).toHaveLength(1);
      expect(lines[0]).toMatch(/EXH_STOP_FAILED/);
      expect(proxy.stderr()).not.toMatch(/\n\s+at /);
      const all = [...before, ...during];
      expect(lostAcknowledged(all, checkStore(dbFile, "full-stop").stored)).toEqual([]);
    } finally {
      unmount();
    }
  });

  it("while another client holds the write lock, uploads get 503 after the busy limit (never 200 unstored), and 200 again once it lets go", async () => {
    const { dbFile, proxy, ca } = await spawnInTemp("locked");
    const before = await sendUploads(proxy.port, ca, 5);
    const holder = outsideClient(dbFile, ["BEGIN EXCLUSIVE", "SELECT COUNT(*) FROM exchanges"], true);
    await holder.result;
    const during = await sendUploads(proxy.port, ca, 6, { parallel: 3 });
    await holder.close();
    const after = await sendUploads(proxy.port, ca, 5);
    expect(during.map((r) => r.status)).toEqual(during.map(() => 503));
    for (const r of during) {
      expect(r.headers?.["x-exhaust-error"]).toBe("EXH_CAPTURE_FAILED");
      expect(r.answeredAt - r.sentAt).toBeGreaterThanOrEqual(4000);
    }
    expect(acked(after)).toHaveLength(5);
    expect(await stopProxy(proxy)).toBe(0);
    const check = checkStore(dbFile, "locked");
    expect(lostAcknowledged([...before, ...during, ...after], check.stored)).toEqual([]);
    expect(check.exchanges).toBe(10);
    expect(check.chainProblems).toEqual([]);
  });

  it("forward mode: the upstream's answer is not passed on when the capture fails", async () => {
    const originCa = await makeOriginAuthority();
    const origin = await startOrigin(originCa);
    const p = await startTestProxy({ mode: "forward", mapHost: [`${COLLECTOR}=127.0.0.1:${origin.port}`], originCaPem: originCa.certPem });
    try {
      const holder = outsideClient(p.dbFile, ["BEGIN EXCLUSIVE", "SELECT 1"], true);
      await holder.result;
      const refused = await httpsThroughProxy({
        proxyPort: p.port,
        host: COLLECTOR,
        path: "/OneCollector/1.0/",
        body: uniqueUpload(),
        ca: [p.caPem],
      });
      await holder.close();
      // The origin answered 200 with its JSON; the client got neither.
      expect(origin.received.length).toBe(1);
      expect(refused.status).toBe(503);
      expect(refused.headers["x-exhaust-error"]).toBe("EXH_CAPTURE_FAILED");
      expect(refused.headers["retry-after"]).toBe("5");
      expect(refused.body.toString()).not.toContain("local");
      const ok = await httpsThroughProxy({
        proxyPort: p.port,
        host: COLLECTOR,
        path: "/OneCollector/1.0/",
        body: uniqueUpload(),
        ca: [p.caPem],
      });
      expect(ok.status).toBe(200);
      expect(JSON.parse(ok.body.toString())).toMatchObject({ origin: "local" });
    } finally {
      await p.close();
      await origin.close();
    }
  });
});

describe("fail closed on WebSockets", () => {
  it("a handshake that cannot be stored is answered 503, a message that cannot be stored ends the WebSocket", async () => {
    const originCa = await makeOriginAuthority();
    const origin = await startOrigin(originCa);
    const HOST = "augloop.office.com";
    const p = await startTestProxy({ mapHost: [`${HOST}=127.0.0.1:${origin.port}`], originCaPem: originCa.certPem });
    const handshake = async () => {
      const socket = await tlsThroughProxy(p.port, HOST, 443, [p.caPem]);
      socket.write(
        `GET /ws HTTP/1.1\r\nHost: ${HOST}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${newKey()}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
      );
      return { socket, response: await readResponseHead(socket) };
    };
    try {
      let holder = outsideClient(p.dbFile, ["BEGIN EXCLUSIVE", "SELECT 1"], true);
      await holder.result;
      const refused = await handshake();
      await holder.close();
      expect(refused.response.status).toBe(503);
      expect(refused.response.headers.get("x-exhaust-error")).toBe("EXH_CAPTURE_FAILED");
      refused.socket.destroy();

      const { socket, response } = await handshake();
      expect(response.status).toBe(101);
      const closed = new Promise<void>((resolve) => socket.once("close", () => resolve()));
      socket.resume();
      holder = outsideClient(p.dbFile, ["BEGIN EXCLUSIVE", "SELECT 1"], true);
      await holder.result;
      socket.write(encodeFrame("not kept", { masked: true }));
      await closed;
      await holder.close();
    } finally {
      await p.close();
      await origin.close();
    }
  });
});

describe("one proxy owns a session", () => {
  it("a second proxy on the same database and session exits 2 with EXH_SESSION_BUSY; after a SIGKILL the session can be taken again", async () => {
    const dir = workDir();
    const dbFile = join(dir, "exhaust.db");
    const first = await spawnProxy(proxyArgs(dir, dbFile, "owned"));
    const second = runCli(["proxy", "--listen", "127.0.0.1:0", ...proxyArgs(dir, dbFile, "owned")]);
    expect(second.status).toBe(2);
    expect(second.stderr).toMatch(
      /^exhaust: session owned in .* is being captured by another proxy \(pid \d+ on .*\).*\[EXH_SESSION_BUSY\]\n$/,
    );
    first.child.kill("SIGKILL");
    await waitExit(first.child);
    const third = await spawnProxy(proxyArgs(dir, dbFile, "owned"));
    expect(await stopProxy(third)).toBe(0);
  });

  it("two proxies on two sessions of one database lose nothing, and both processing threads decode their own", async () => {
    const dir = workDir();
    const dbFile = join(dir, "exhaust.db");
    const a = await spawnProxy(proxyArgs(dir, dbFile, "alpha"));
    const b = await spawnProxy(proxyArgs(dir, dbFile, "beta"));
    const ca = readFileSync(join(dir, "certs", "exhaust-ca.pem"), "utf8");
    const [ra, rb] = await Promise.all([sendUploads(a.port, ca, 150), sendUploads(b.port, ca, 150)]);
    expect(acked(ra)).toHaveLength(150);
    expect(acked(rb)).toHaveLength(150);
    const reader = new (await import("better-sqlite3")).default(dbFile, { readonly: true });
    await eventually(() => {
      const r = reader.prepare("SELECT COUNT(*) AS n, SUM(classified_with IS NULL) AS pending FROM exchanges").get() as {
        n: number;
        pending: number;
      };
      return r.n === 300 && r.pending === 0;
    }, 30_000);
    reader.close();
    expect(await stopProxy(a)).toBe(0);
    expect(await stopProxy(b)).toBe(0);
    for (const [session, results] of [
      ["alpha", ra],
      ["beta", rb],
    ] as const) {
      const check = checkStore(dbFile, session);
      expect(lostAcknowledged(results, check.stored)).toEqual([]);
      expect(check.exchanges).toBe(150);
      expect(check.chainProblems).toEqual([]);
    }
    expect(a.stderr() + b.stderr()).not.toMatch(/EXH_ADDON_FAILED|EXH_CAPTURE_FAILED|EXH_PROCESS_FAILED/);
  });
});

describe("a store that is gone", () => {
  it("deleting the database files under a running proxy: it exits non-zero with EXH_STORE_GONE and acknowledges nothing after", async () => {
    const { dbFile, proxy, ca } = await spawnInTemp("gone");
    const before = await sendUploads(proxy.port, ca, 10);
    expect(acked(before)).toHaveLength(10);
    let deletedAt = 0;
    const traffic = sendUploads(proxy.port, ca, 60, {
      parallel: 2,
      onAnswer: (_r, all) => {
        if (!deletedAt && all.length >= 20) {
          for (const f of [dbFile, `${dbFile}-wal`, `${dbFile}-shm`]) rmSync(f, { force: true });
          deletedAt = Date.now();
        }
      },
    });
    const results = await traffic;
    await waitExit(proxy.child);
    expect(deletedAt).toBeGreaterThan(0);
    expect(proxy.child.exitCode).toBe(1);
    expect(proxy.stderr()).toMatch(
      /exhaust: the database .*exhaust\.db was deleted or replaced under the running proxy; capture stopped \[EXH_STORE_GONE\]\n$/,
    );
    // Said once: the connections closing on the way out do not repeat it as addon failures (an
    // upload refused with 503 in the meantime is reported, as every refused upload is).
    expect(proxy.stderr()).not.toMatch(/addon capture failed in (onConnectionOpened|onConnectionClosed|onExchangeEnd)/);
    // Nothing sent after the deletion was acknowledged.
    const late = results.filter((r) => r.sentAt > deletedAt);
    expect(late.length).toBeGreaterThan(0);
    expect(late.filter((r) => r.status === 200)).toEqual([]);
    // And nothing was made in its place.
    expect(existsSync(dbFile)).toBe(false);
  });
});

describe("nothing silently cut", () => {
  it("1,100 request headers are all stored in order and chained, Content-Type and Content-Length included", async () => {
    const p = await startTestProxy({ mode: "sinkhole" });
    try {
      const body = uniqueUpload();
      const headers: string[] = [];
      for (let i = 0; i < 1100; i++) headers.push(`X-Probe-${String(i).padStart(4, "0")}`, `value-${i}-${"v".repeat(8)}`);
      headers.push("Content-Type", "application/x-json-stream", "Content-Length", String(body.length));
      const res = await httpsThroughProxy({ proxyPort: p.port, host: COLLECTOR, path: "/OneCollector/1.0/", headers, body, ca: [p.caPem] });
      expect(res.status).toBe(200);
      const row = p.db.prepare("SELECT request_headers FROM exchanges").get() as { request_headers: string };
      const stored = JSON.parse(row.request_headers) as Array<[string, string]>;
      const sent: Array<[string, string]> = [["Host", COLLECTOR]];
      for (let i = 0; i < headers.length; i += 2) sent.push([headers[i], headers[i + 1]]);
      expect(stored.slice(0, sent.length)).toEqual(sent);
      expect(stored.filter(([n]) => /^x-probe-/i.test(n))).toHaveLength(1100);
      const check = checkStore(p.dbFile, "test");
      expect(check.stored.has(sha256(body))).toBe(true);
      expect(check.chainProblems).toEqual([]);
    } finally {
      await p.close();
    }
  });
});
