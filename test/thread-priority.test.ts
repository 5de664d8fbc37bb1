/**
 * Issue 19, goals 2 and 3: the proxy's thread keeps priority over the capture's background threads
 * at the OS level. `exhaust proxy` runs as a child process; its threads are read from
 * /proc/PID/task/TID/stat (field 2: the thread's name, field 19: its nice value). Under a CPU hog
 * on every core the niced decoding thread falls behind, and the stop decodes what it left.
 */
import { afterAll, describe, expect, it } from "vitest";
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readFileSync, rmSync } from "node:fs";
import { availableParallelism, getPriority } from "node:os";
import { join } from "node:path";
import { openDatabase } from "../src/store/database.js";
import { undecodedCount } from "../src/store/completeness.js";
import { httpsThroughProxy } from "./helpers/client.js";
import { runCli, spawnProxy, waitExit, type ProxyProcess } from "./helpers/cli.js";
import { threadsOf, type ThreadInfo } from "./helpers/proc.js";
import { eventually, tempDir } from "./helpers/proxy.js";

const COLLECTOR = "mobile.events.data.microsoft.com";
/** The nice value the proxy starts with: this thread's (a suite run under `nice` passes it on). */
const BASE = getPriority(0);
const dirs: string[] = [];
const children: ChildProcess[] = [];
afterAll(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

async function proxyInTemp(extra: string[] = []): Promise<{ dbFile: string; proxy: ProxyProcess; ca: string }> {
  const dir = tempDir("exhaust-nice-");
  dirs.push(dir);
  const dbFile = join(dir, "exhaust.db");
  const proxy = await spawnProxy(["--db", dbFile, "--certs", join(dir, "certs"), "--session", "nice", "--mode", "sinkhole", ...extra]);
  children.push(proxy.child);
  return { dbFile, proxy, ca: readFileSync(join(dir, "certs", "exhaust-ca.pem"), "utf8") };
}

/** The proxy's threads once both background threads and the capture writer have named themselves. */
function backgroundThreads(
  pid: number,
): Promise<{ main: ThreadInfo; decode: ThreadInfo; checkpoint: ThreadInfo; capture: ThreadInfo; all: ThreadInfo[] }> {
  return eventually(() => {
    const all = threadsOf(pid);
    const main = all.find((t) => t.tid === pid);
    const decode = all.filter((t) => t.comm === "exhaust-decode");
    const checkpoint = all.filter((t) => t.comm === "exhaust-ckpt");
    const capture = all.filter((t) => t.comm === "exhaust-capture");
    if (!main || decode.length !== 1 || checkpoint.length !== 1 || capture.length !== 1) return undefined;
    return { main, decode: decode[0], checkpoint: checkpoint[0], capture: capture[0], all };
  }, 20_000);
}

/** A 1DS JSON-lines upload of `events` distinct events of ten data fields each. */
function upload(events: number): Buffer {
  const tag = randomBytes(6).toString("hex");
  const lines = Array.from({ length: events }, (_, i) =>
    JSON.stringify({
      name: "Office.Word.FileIO.Save",
      time: "2026-11-24T08:00:00.000Z",
      ver: "4.0",
      iKey: "o:0123456789abcdef0123456789abcdef",
      ext: { app: { name: "WINWORD", ver: "16.0.17029" }, device: { localId: `s:${tag}-${i}` } },
      data: Object.fromEntries(Array.from({ length: 10 }, (_, f) => [`Data.Field${f}`, `${tag}-${i}-${f}`])),
    }),
  );
  return Buffer.from(`${lines.join("\n")}\n`);
}

async function sendUploads(port: number, ca: string, count: number, events: number): Promise<number[]> {
  const statuses: number[] = [];
  let next = 0;
  const worker = async () => {
    while (next++ < count) {
      const res = await httpsThroughProxy({
        proxyPort: port,
        host: COLLECTOR,
        path: "/OneCollector/1.0/",
        headers: { "content-type": "application/x-json-stream" },
        body: upload(events),
        ca: [ca],
      });
      statuses.push(res.status);
    }
  };
  await Promise.all(Array.from({ length: 4 }, worker));
  return statuses;
}

function storeCounts(dbFile: string): { exchanges: number; undecoded: number; events: number } {
  const db = openDatabase(dbFile, { readonly: true });
  try {
    return {
      exchanges: db.prepare("SELECT COUNT(*) FROM exchanges").pluck().get() as number,
      undecoded: undecodedCount(db),
      events: db.prepare("SELECT COUNT(*) FROM events").pluck().get() as number,
    };
  } finally {
    db.close();
  }
}

/** One busy process per core, at the normal priority: the machine has no idle CPU. */
function cpuHogs(): ChildProcess[] {
  const hogs = Array.from({ length: availableParallelism() }, () => spawn(process.execPath, ["-e", "for (;;) {}"], { stdio: "ignore" }));
  children.push(...hogs);
  return hogs;
}

async function stop(proxy: ProxyProcess): Promise<number | null> {
  proxy.child.kill("SIGTERM");
  await waitExit(proxy.child);
  return proxy.child.exitCode;
}

describe.runIf(process.platform === "linux")("a capture's background threads at a lower OS priority", () => {
  it("the decoding and checkpoint threads run at nice 10 by default, the proxy's own thread and the capture writer at the process's (0)", async () => {
    const { proxy } = await proxyInTemp();
    const pid = proxy.child.pid!;
    const { main, decode, checkpoint, capture, all } = await backgroundThreads(pid);
    expect(main.nice).toBe(BASE);
    // The capture writer is named but keeps the process's priority: clients wait for its commits.
    expect(capture.nice).toBe(BASE);
    expect(decode.nice).toBe(Math.max(BASE, 10));
    expect(checkpoint.nice).toBe(Math.max(BASE, 10));
    // Nothing else is lowered: the thread pool (TLS, leaf signatures) and V8's helpers keep the process's value.
    const lowered = all.filter((t) => t.nice !== BASE).map((t) => t.comm);
    expect(lowered.sort()).toEqual(BASE >= 10 ? [] : ["exhaust-ckpt", "exhaust-decode"]);
    expect(await stop(proxy)).toBe(0);
  });

  it("--background-nice 19 lowers them further, and 0 leaves them at the process's priority", async () => {
    for (const nice of [19, 0]) {
      const { proxy } = await proxyInTemp(["--background-nice", String(nice)]);
      const { main, decode, checkpoint } = await backgroundThreads(proxy.child.pid!);
      // Never below the value the process started with.
      expect([main.nice, decode.nice, checkpoint.nice]).toEqual([BASE, Math.max(BASE, nice), Math.max(BASE, nice)]);
      expect(await stop(proxy)).toBe(0);
    }
  });

  it("decoding catches up in a lull: once traffic stops, the backlog drains before any stop", async () => {
    const { dbFile, proxy, ca } = await proxyInTemp();
    const statuses = await sendUploads(proxy.port, ca, 24, 150);
    expect(statuses.every((s) => s === 200)).toBe(true);
    const drained = await eventually(() => {
      const c = storeCounts(dbFile);
      return c.exchanges === 24 && c.undecoded === 0 ? c : undefined;
    }, 60_000);
    expect(drained.events).toBe(24 * 150);
    expect(await stop(proxy)).toBe(0);
    // The stop found nothing left to decode.
    expect(proxy.stderr()).not.toMatch(/decoding \d+ pending exchange/);
  }, 120_000);

  it("while uploads keep coming, decoding waits for a lull (one exchange a second at most), then catches up", async () => {
    // At the process's priority: the gate, not the nice value, is what holds decoding back.
    const { dbFile, proxy, ca } = await proxyInTemp(["--background-nice", "0"]);
    const started = Date.now();
    const statuses = await sendUploads(proxy.port, ca, 120, 20);
    const floodSeconds = (Date.now() - started) / 1000;
    expect(statuses.every((s) => s === 200)).toBe(true);
    const during = storeCounts(dbFile);
    expect(during.exchanges).toBe(120);
    // With a core to spare the thread would keep up with this flood; it waited instead. A pause in
    // the flood of 25 ms (a busy test machine) lets it take one exchange: allow a few.
    const decoded = during.exchanges - during.undecoded;
    expect(decoded, `${decoded} decoded during ${floodSeconds.toFixed(1)} s of uploads`).toBeLessThanOrEqual(Math.ceil(floodSeconds) + 10);
    // Once the flood ends, the lull: everything is decoded before any stop.
    const drained = await eventually(() => {
      const c = storeCounts(dbFile);
      return c.undecoded === 0 ? c : undefined;
    }, 60_000);
    expect(drained.events).toBe(120 * 20);
    expect(await stop(proxy)).toBe(0);
    expect(proxy.stderr()).not.toMatch(/decoding \d+ pending exchange/);
  }, 120_000);

  it("under a CPU hog on every core the niced thread falls behind, and the stop decodes every exchange it left", async () => {
    const { dbFile, proxy, ca } = await proxyInTemp(["--background-nice", "19"]);
    const hogs = cpuHogs();
    try {
      const statuses = await sendUploads(proxy.port, ca, 16, 100);
      expect(statuses.every((s) => s === 200)).toBe(true);
      // Every upload was stored (and acknowledged) while the decoding thread had next to no CPU.
      expect(storeCounts(dbFile).exchanges).toBe(16);
      expect(await stop(proxy)).toBe(0);
    } finally {
      for (const h of hogs) h.kill("SIGKILL");
    }
    // The stop said how many were left and decoded them on the proxy's (normal-priority) thread.
    const left = /decoding (\d+) pending exchange/.exec(proxy.stderr());
    expect(left, proxy.stderr()).not.toBeNull();
    expect(Number(left![1])).toBeGreaterThan(0);
    const after = storeCounts(dbFile);
    expect(after).toEqual({ exchanges: 16, undecoded: 0, events: 16 * 100 });
  }, 180_000);
});

describe("--background-nice", () => {
  it("refuses a value outside 0-19 with one line and exit 2", () => {
    const dir = tempDir("exhaust-nice-");
    dirs.push(dir);
    for (const bad of ["20", "-1", "ten", "2.5"]) {
      const r = runCli([
        "proxy",
        "--listen",
        "127.0.0.1:0",
        "--db",
        join(dir, "x.db"),
        "--certs",
        join(dir, "certs"),
        "--init-ca",
        "--background-nice",
        bad,
      ]);
      expect(r.status).toBe(2);
      expect(r.stderr.trim().split("\n")).toHaveLength(1);
      expect(r.stderr).toContain("--background-nice");
      expect(r.stderr).not.toMatch(/\bat .*\.js:\d+/);
    }
  });
});
