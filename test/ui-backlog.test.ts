/**
 * The decoding backlog in the web UI (issue 19): a real `exhaust proxy` child captures uploads
 * (sinkhole mode, real TLS on loopback) while its processing thread is held back, first starved by
 * two busy loops, then frozen with the whole proxy (SIGSTOP) once it has fallen behind. The UI
 * server, on the same database, says how many exchanges are not decoded yet, in its API, on its
 * live stream and in the browser, and the count goes to 0 (and the notice away) once the proxy
 * resumes (SIGCONT) and catches up.
 */
import { spawn, type ChildProcess } from "node:child_process";
import http from "node:http";
import { readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { Writable } from "node:stream";
import { request } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLogger } from "../src/log.js";
import { undecodedCount } from "../src/store/completeness.js";
import { openDatabase } from "../src/store/database.js";
import { sessionByName } from "../src/store/sessions.js";
import { startUiServer, type RunningUi } from "../src/web/server.js";
import { inBrowser, openUiPage, type PageGlobals } from "./helpers/browser.js";
import { spawnProxy, waitExit, type ProxyProcess } from "./helpers/cli.js";
import { httpsThroughProxy } from "./helpers/client.js";
import { JSON_HEADERS, JSON_PATH } from "./helpers/capture-session.js";
import { jsonLines, renderJsonEvent } from "./helpers/json-events.js";
import { tempDir } from "./helpers/proxy.js";

const SESSION = "backlog";
const EVENTS_PER_UPLOAD = 10;
/** Uploads sent a round; rounds go on until the frozen proxy has a backlog. */
const ROUND = 40;

function upload(n: number): Buffer {
  return jsonLines(
    Array.from({ length: EVENTS_PER_UPLOAD }, (_, i) =>
      renderJsonEvent({
        name: "Office.Identity.SignOutEvent",
        time: "2026-11-24T08:00:00.000Z",
        iKey: "o:0123456789abcdef0123456789abcdef",
        ext: { app: { name: "Word" } },
        data: { "Activity.Success": true, "Data.Upload": n, "Data.Index": i, "Data.Padding": "x".repeat(200) },
      }),
    ),
  );
}

/** Uploads `from` .. `from + count - 1` through the proxy, 8 at a time; how many were acknowledged. */
async function sendUploads(port: number, ca: string, from: number, count: number): Promise<number> {
  let next = from;
  let acknowledged = 0;
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      while (next < from + count) {
        const res = await httpsThroughProxy({
          proxyPort: port,
          host: "browser.events.data.microsoft.com",
          path: JSON_PATH,
          headers: JSON_HEADERS,
          body: upload(next++),
          ca: [ca],
        });
        if (res.status === 200) acknowledged++;
      }
    }),
  );
  return acknowledged;
}

/** Straight from the file: exchanges stored and not decoded yet. */
function undecodedInFile(dbFile: string): number {
  const db = openDatabase(dbFile, { readonly: true });
  try {
    return undecodedCount(db);
  } finally {
    db.close();
  }
}

async function getJson(url: string): Promise<any> {
  const res = await request(url, { headers: { accept: "application/json" } });
  expect(res.statusCode).toBe(200);
  return res.body.json();
}

interface BacklogMessage {
  sessions: Array<{ id: number; undecoded: number; decodingByProxy: boolean }>;
  total: number;
}

/** The `backlog` messages of one /api/live stream, in order. */
function backlogMessages(text: string): BacklogMessage[] {
  return text
    .split("\n\n")
    .filter((m) => /^event: backlog$/m.test(m))
    .map((m) => JSON.parse(m.slice(m.indexOf("data: ") + 6)) as BacklogMessage);
}

/**
 * A sinkhole proxy whose processing thread has fallen behind, frozen (SIGSTOP) with a backlog: two
 * busy loops at normal priority starve its niced thread while rounds of uploads go through. The
 * loops are handed to `onLoops` at once, so a failing setup still has them killed.
 */
async function proxyFallenBehind(
  dir: string,
  dbFile: string,
  onLoops: (loops: ChildProcess[]) => void,
): Promise<{ proxy: ProxyProcess; uploads: number; held: number; sessionId: number }> {
  const certs = join(dir, "certs");
  const proxy = await spawnProxy(["--db", dbFile, "--certs", certs, "--session", SESSION, "--mode", "sinkhole"]);
  const ca = readFileSync(join(certs, "exhaust-ca.pem"), "utf8");
  const loops = [0, 1].map(() => spawn(process.execPath, ["-e", "for (;;) {}"], { stdio: "ignore" }));
  onLoops(loops);
  const deadline = Date.now() + 120_000;
  let uploads = 0;
  let held = 0;
  while (held === 0) {
    if (Date.now() > deadline) throw new Error(`the processing thread kept up with ${uploads} uploads`);
    if (uploads > 0) proxy.child.kill("SIGCONT");
    expect(await sendUploads(proxy.port, ca, uploads, ROUND)).toBe(ROUND);
    uploads += ROUND;
    // Frozen (relay and processing thread alike) with what it has not decoded yet.
    proxy.child.kill("SIGSTOP");
    held = undecodedInFile(dbFile);
  }
  const db = openDatabase(dbFile, { readonly: true });
  const sessionId = sessionByName(db, SESSION)!.id;
  db.close();
  return { proxy, uploads, held, sessionId };
}

/** An /api/live stream of the UI at `url`, its text handed to `onText` as it comes. */
async function watchLive(url: string, onText: (text: string) => void): Promise<http.IncomingMessage> {
  const live = await new Promise<http.IncomingMessage>((resolve, reject) => http.get(`${url}api/live`, resolve).on("error", reject));
  live.on("data", (c: Buffer) => onText(c.toString("utf8")));
  return live;
}

const quietLog = () => createLogger({ level: "warn", destination: new Writable({ write: (_c, _e, cb) => cb() }) });

describe("exhaust ui beside a proxy whose processing thread is behind", () => {
  let dir: string;
  let dbFile: string;
  let proxy: ProxyProcess;
  let loops: ChildProcess[] = [];
  let frozen = false;
  let ui: RunningUi;
  let sessionId: number;
  let uploads = 0;
  /** What was undecoded when the proxy was frozen. */
  let held = 0;
  let live: http.IncomingMessage;
  let liveText = "";

  const stopLoops = () => {
    for (const l of loops) l.kill("SIGKILL");
    loops = [];
  };
  const resume = () => {
    if (frozen) proxy.child.kill("SIGCONT");
    frozen = false;
  };

  beforeAll(async () => {
    dir = tempDir("exhaust-ui-backlog-");
    dbFile = join(dir, "backlog.db");
    const behind = await proxyFallenBehind(dir, dbFile, (l) => (loops = l));
    ({ proxy, uploads, held, sessionId } = behind);
    frozen = true;
    stopLoops();
    ui = await startUiServer({ dbFile, host: "127.0.0.1", port: 0, log: quietLog() });
    // A live stream watching from the start: every backlog message it gets is kept.
    live = await watchLive(ui.url, (text) => (liveText += text));
  }, 180_000);

  afterAll(async () => {
    stopLoops();
    live?.destroy();
    await ui?.close();
    if (proxy) {
      resume();
      proxy.child.kill("SIGINT");
      await waitExit(proxy.child);
    }
    if (dir) rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  it("counts the exchanges not decoded yet in the session list, the session detail and the live stream", async () => {
    expect(held).toBeGreaterThan(0);
    expect(held).toBeLessThanOrEqual(uploads);
    const sessions = (await getJson(`${ui.url}api/sessions`)) as Array<{
      id: number;
      exchanges: number;
      undecoded: number;
      decodingByProxy: boolean;
    }>;
    const listed = sessions.find((s) => s.id === sessionId)!;
    expect(listed).toMatchObject({ exchanges: uploads, undecoded: held, decodingByProxy: true });
    const detail = await getJson(`${ui.url}api/sessions/${sessionId}`);
    expect(detail.info).toMatchObject({ exchanges: uploads, undecoded: held, decodingByProxy: true });
    // The events stored are fewer than were uploaded: what the page shows is incomplete.
    expect(detail.info.events).toBeLessThan(uploads * EVENTS_PER_UPLOAD);
    await expect.poll(() => backlogMessages(liveText).length, { timeout: 10_000 }).toBeGreaterThan(0);
    expect(backlogMessages(liveText)[0]).toEqual({ sessions: [{ id: sessionId, undecoded: held, decodingByProxy: true }], total: held });
  });

  inBrowser(
    "in a browser: the notice beside the session, over the views and on the session page counts down and goes away",
    async (browser) => {
      const { page, external, pageErrors } = await openUiPage(browser, ui.url, { width: 1200, height: 900 });
      await page.waitForSelector(`#f-session option[value="${sessionId}"]`, { state: "attached" });
      const option = page.locator(`#f-session option[value="${sessionId}"]`);
      expect(await option.textContent()).toBe(`${SESSION} (${uploads} exchanges, ${held} exchanges not decoded yet)`);
      // Over the events of every session ...
      const banner = page.locator("#backlog");
      await banner.waitFor();
      expect(await banner.textContent()).toContain(`${held} exchanges not decoded yet`);
      expect(await banner.textContent()).toContain("incomplete");
      // ... and of this one, and on its session page.
      await page.selectOption("#f-session", String(sessionId));
      expect(await banner.textContent()).toMatch(
        new RegExp(`^${held} exchanges not decoded yet in session ${SESSION}: the running proxy is decoding them`),
      );
      await page.click("#nav-session");
      const dd = page.locator("#session-undecoded");
      await dd.waitFor();
      expect(await dd.textContent()).toContain(`${held} exchanges not decoded yet`);

      // The proxy resumes: the count goes down to nothing, and the page reads the session again.
      resume();
      const seen: number[] = [];
      await expect
        .poll(
          async () => {
            const text = await page.evaluate(
              () => (globalThis as unknown as PageGlobals).document.querySelector("#backlog")?.textContent ?? "",
            );
            const hidden = await banner.isHidden();
            const n = hidden ? 0 : Number(/^([\d,]+) exchanges? not decoded yet/.exec(text)?.[1].replace(/,/g, "") ?? NaN);
            seen.push(n);
            return n;
          },
          { timeout: 90_000, interval: 100 },
        )
        .toBe(0);
      // Counted down: never up again, while nothing new was captured.
      expect(seen.every((n, i) => i === 0 || n <= seen[i - 1])).toBe(true);
      expect(await dd.isHidden()).toBe(true);
      expect(await option.textContent()).toBe(`${SESSION} (${uploads} exchanges)`);
      await page.waitForFunction(
        (events) =>
          [
            ...((globalThis as unknown as PageGlobals).document.querySelectorAll("main dd") as unknown as Array<{ textContent: string }>),
          ].some((d) => d.textContent === String(events)),
        uploads * EVENTS_PER_UPLOAD,
      );
      expect(external).toEqual([]);
      expect(pageErrors).toEqual([]);
    },
    150_000,
  );

  it("reaches 0 once the proxy has caught up: in the API, and in the live stream, counting down", async () => {
    resume();
    await expect
      .poll(
        async () =>
          ((await getJson(`${ui.url}api/sessions`)) as Array<{ id: number; undecoded: number }>).find((s) => s.id === sessionId)!.undecoded,
        {
          timeout: 90_000,
          interval: 200,
        },
      )
      .toBe(0);
    const detail = await getJson(`${ui.url}api/sessions/${sessionId}`);
    expect(detail.info).toMatchObject({ undecoded: 0, decodingByProxy: false, events: uploads * EVENTS_PER_UPLOAD });
    await expect.poll(() => backlogMessages(liveText).at(-1)?.total, { timeout: 10_000 }).toBe(0);
    const counts = backlogMessages(liveText).map((m) => m.sessions.find((s) => s.id === sessionId)?.undecoded ?? 0);
    expect(counts[0]).toBe(held);
    expect(counts.every((n, i) => i === 0 || n <= counts[i - 1])).toBe(true);
    expect(backlogMessages(liveText).at(-1)).toEqual({ sessions: [], total: 0 });
  }, 120_000);
});

describe("exhaust ui beside a proxy killed with a backlog", () => {
  let dir: string;
  let proxy: ProxyProcess | undefined;
  let loops: ChildProcess[] = [];
  let ui: RunningUi | undefined;
  let live: http.IncomingMessage | undefined;

  afterAll(async () => {
    for (const l of loops) l.kill("SIGKILL");
    live?.destroy();
    await ui?.close();
    if (proxy && proxy.child.exitCode === null && proxy.child.signalCode === null) {
      proxy.child.kill("SIGKILL");
      await waitExit(proxy.child);
    }
    if (dir) rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  it("stops saying the running proxy decodes them once that proxy is gone, though nothing was written since", async () => {
    dir = tempDir("exhaust-ui-backlog-killed-");
    const dbFile = join(dir, "backlog.db");
    const behind = await proxyFallenBehind(dir, dbFile, (l) => (loops = l));
    proxy = behind.proxy;
    for (const l of loops) l.kill("SIGKILL");
    ui = await startUiServer({ dbFile, host: "127.0.0.1", port: 0, log: quietLog() });
    let text = "";
    live = await watchLive(ui.url, (t) => (text += t));
    const entry = () =>
      backlogMessages(text)
        .at(-1)
        ?.sessions.find((s) => s.id === behind.sessionId);
    await expect.poll(entry, { timeout: 10_000 }).toEqual({ id: behind.sessionId, undecoded: behind.held, decodingByProxy: true });
    // Killed while frozen: it writes nothing more, so the store's version does not move.
    proxy.child.kill("SIGKILL");
    await waitExit(proxy.child);
    await expect.poll(entry, { timeout: 15_000 }).toEqual({ id: behind.sessionId, undecoded: behind.held, decodingByProxy: false });
    const sessions = (await getJson(`${ui.url}api/sessions`)) as Array<{ id: number; undecoded: number; decodingByProxy: boolean }>;
    expect(sessions.find((s) => s.id === behind.sessionId)).toMatchObject({ undecoded: behind.held, decodingByProxy: false });
  }, 180_000);
});
