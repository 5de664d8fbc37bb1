import { mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { Writable } from "node:stream";
import http from "node:http";
import { request } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLogger } from "../src/log.js";
import { PACKAGE_ROOT } from "../src/paths.js";
import { startUiServer, type RunningUi } from "../src/web/server.js";
import { CSV_COLUMNS } from "../src/export/csv.js";
import { inBrowser, openUiPage, watchPage, type PageGlobals } from "./helpers/browser.js";
import { httpsThroughProxy } from "./helpers/client.js";
import { eventually, startTestProxy, type TestProxy } from "./helpers/proxy.js";
import { AUTH_SECRET, fillCapture, HOSTILE, PLANTED, TICKET_SECRET, type FilledCapture } from "./ui-capture.js";

const ARTIFACTS = join(PACKAGE_ROOT, "test", "artifacts");

/** Rows of an RFC 4180 text (quoted fields may hold commas, quotes and line breaks). */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = "";
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') ((field += '"'), i++);
      else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ",") (row.push(field), (field = ""));
    else if (c === "\r" && text[i + 1] === "\n") (row.push(field), rows.push(row), (row = []), (field = ""), i++);
    else field += c;
  }
  if (field !== "" || row.length) (row.push(field), rows.push(row));
  return rows;
}

/** A JSON-lines upload through the real proxy to a host the capture has not seen yet. */
async function sendLiveUpload(
  p: TestProxy,
  name: string,
  lines = 1,
  data: Record<string, unknown> = { "Activity.Success": true },
): Promise<string> {
  const line = JSON.stringify({ name, time: new Date().toISOString(), ver: "4.0", data });
  const body = `${line}\n`.repeat(lines);
  const res = await httpsThroughProxy({
    proxyPort: p.port,
    host: "self.events.data.microsoft.com",
    path: "/OneCollector/1.0/",
    headers: { "Content-Type": "application/x-json-stream" },
    body,
    ca: [p.caPem],
  });
  expect(res.status).toBe(200);
  return body;
}

const quietLog = () => createLogger({ level: "warn", destination: new Writable({ write: (_c, _e, cb) => cb() }) });

async function getJson(
  url: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: any; text: string; headers: Record<string, unknown> }> {
  const res = await request(url, { headers });
  const text = await res.body.text();
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  return { status: res.statusCode, body, text, headers: res.headers };
}

describe("exhaust ui over a capture made through the real proxy", () => {
  let p: TestProxy;
  let ui: RunningUi;
  let cap: FilledCapture;

  beforeAll(async () => {
    p = await startTestProxy({ mode: "sinkhole" });
    cap = await fillCapture(p);
    ui = await startUiServer({ dbFile: p.dbFile, host: "127.0.0.1", port: 0, log: quietLog() });
  }, 60_000);
  afterAll(async () => {
    await ui?.close();
    await p?.close();
  });

  it("lists events with the filters of the CLI, keyset-paged", async () => {
    const content = await getJson(`${ui.url}api/events?session=${cap.sessionId}&category=content`);
    expect(content.status).toBe(200);
    expect(content.body.rows.map((r: { id: number }) => r.id)).toEqual([cap.plantedEventId]);
    expect(content.body.rows[0]).toMatchObject({
      name: "Office.Word.FileIO.Save",
      host: "mobile.events.data.microsoft.com",
      category: "content",
    });
    expect(content.body.rows[0].contentFields).toBeGreaterThanOrEqual(1);

    const byHost = await getJson(`${ui.url}api/events?host=browser.events.data.microsoft.com`);
    expect(byHost.body.rows).toHaveLength(5);
    expect(byHost.body.rows.every((r: { name: string }) => r.name.startsWith("Office.Outlook."))).toBe(true);

    const glob = await getJson(`${ui.url}api/events?name=${encodeURIComponent("Office.Excel.*")}&limit=7`);
    expect(glob.body.rows).toHaveLength(7);
    const next = await getJson(`${ui.url}api/events?name=${encodeURIComponent("Office.Excel.*")}&limit=7&after=${glob.body.nextAfterId}`);
    expect(next.body.rows[0].id).toBeGreaterThan(glob.body.rows[6].id);
    const all: number[] = [];
    for (let after: number | null = 0; after !== null;) {
      const page: { body: { rows: Array<{ id: number }>; nextAfterId: number | null } } = await getJson(
        `${ui.url}api/events?name=${encodeURIComponent("Office.Excel.*")}&limit=7&after=${after}`,
      );
      all.push(...page.body.rows.map((r) => r.id));
      after = page.body.nextAfterId;
    }
    expect(all).toHaveLength(30);
    expect(new Set(all).size).toBe(30);

    const search = await getJson(`${ui.url}api/events?q=${encodeURIComponent("zephyr-4471")}`);
    expect(search.body.rows.map((r: { id: number }) => r.id)).toEqual([cap.plantedEventId]);
    const fields = await getJson(`${ui.url}api/fields?category=content`);
    expect(fields.body.map((f: { path: string }) => f.path)).toContain("Data.Doc.FileName");
    expect(fields.body.every((f: { category: string }) => f.category === "content")).toBe(true);

    const bad = await getJson(`${ui.url}api/events?after=-3`);
    expect(bad.status).toBe(400);

    // "Export this view" as JSONL: the filtered events, one per line, in the shape of `events --json`.
    const jsonl = await getJson(`${ui.url}api/export?format=jsonl&session=${cap.sessionId}&category=content`);
    expect(jsonl.status).toBe(200);
    expect(String(jsonl.headers["content-disposition"])).toMatch(/^attachment; filename="exhaust-events-session-\d+-content\.jsonl"$/);
    const lines = jsonl.text
      .trimEnd()
      .split("\n")
      .map((l) => JSON.parse(l) as { event: { id: number }; fields: Array<{ path: string; value: unknown }> });
    expect(lines.map((l) => l.event.id)).toEqual([cap.plantedEventId]);
    expect(lines[0].fields.find((f) => f.path === "Data.Doc.FileName")?.value).toBe(PLANTED);
    const excel = await getJson(`${ui.url}api/export?format=jsonl&name=${encodeURIComponent("Office.Excel.*")}`);
    expect(excel.text.trimEnd().split("\n")).toHaveLength(30);
    expect((await getJson(`${ui.url}api/export?format=xml`)).status).toBe(400);
    // The Fields view's export: only the fields it lists (content by default), each event once.
    const contentFields = await getJson(`${ui.url}api/export?view=fields&format=jsonl&session=${cap.sessionId}`);
    const only = contentFields.text
      .trimEnd()
      .split("\n")
      .map((l) => JSON.parse(l) as { event: { id: number }; fields: Array<{ path: string; category: string }> });
    expect(only.map((l) => l.event.id)).toEqual([cap.plantedEventId]);
    expect(only[0].fields.map((f) => f.path).sort()).toEqual(["Data.Doc.Comment", "Data.Doc.FileName"]);
    const diagnostic = await getJson(`${ui.url}api/export?view=fields&format=csv&category=diagnostic&session=${cap.sessionId}`);
    const diagRecords = parseCsv(diagnostic.text).slice(1);
    expect(diagRecords.length).toBeGreaterThan(30 * 3);
    expect(diagRecords.every((r) => r[CSV_COLUMNS.indexOf("category")] === "diagnostic")).toBe(true);
  });

  it("shows headers with credentials redacted and the raw body as a hex dump", async () => {
    const ev = await getJson(`${ui.url}api/events/${cap.plantedEventId}`);
    const x = await getJson(`${ui.url}api/exchanges/${ev.body.exchangeId}`);
    expect(x.status).toBe(200);
    const headers = new Map<string, string>(x.body.requestHeaders);
    expect(headers.get("Tickets")).toBe("[redacted]");
    expect(headers.get("Authorization")).toBe("[redacted]");
    expect(headers.get("Content-Type")).toBe("application/bond-compact-binary");
    expect(x.text).not.toContain(TICKET_SECRET);
    expect(x.text).not.toContain(AUTH_SECRET.split(" ")[1]);

    const raw = await getJson(`${ui.url}api/exchanges/${ev.body.exchangeId}/body`);
    expect(raw.body.view).toBe("hex");
    expect(raw.body.text).toMatch(/^00000000 {2}[0-9a-f]{2} /);
    const inflated = await getJson(`${ui.url}api/exchanges/${ev.body.exchangeId}/body?decompress=1&view=hex`);
    expect(inflated.body.decompressed).toEqual(["deflate(raw)"]);
    expect(inflated.body.size).toBeGreaterThan(raw.body.size);
    // The planted path is in the inflated Bond body, byte for byte (UTF-8 in the dump's ASCII column).
    const ascii = (inflated.body.text as string)
      .split("\n")
      .map((l) => l.slice(l.indexOf("|") + 1, -1))
      .join("");
    expect(ascii).toContain("Zephyr-4471.docx");
  });

  it("shows the session's connections, verdicts and charts", async () => {
    const s = await getJson(`${ui.url}api/sessions/${cap.sessionId}`);
    expect(s.body.verdicts[0]).toMatchObject({ status: "fail", profile: { name: "zero-exhaust-test" } });
    expect(s.body.connections.map((c: { outcome: string }) => c.outcome)).toContain("intercepted");
    const chart = await getJson(`${ui.url}api/charts/time?session=${cap.sessionId}`);
    expect(chart.body.svg).toMatch(/^<svg[^>]*class="chart"/);
    expect(chart.body.svg).toContain("mobile.events.data.microsoft.com (31)");
    expect(chart.body.svg).toContain("browser.events.data.microsoft.com (5)");
    const shares = await getJson(`${ui.url}api/charts/categories?session=${cap.sessionId}`);
    expect(shares.body.unit).toBe("fields");
    expect(shares.body.svg).toContain("Office.Word.FileIO.Save: content");
  });

  it("requires a token when listening beyond loopback", async () => {
    const open = await startUiServer({ dbFile: p.dbFile, host: "0.0.0.0", port: 0, log: quietLog() });
    try {
      expect(open.token).toMatch(/^[A-Za-z0-9_-]{32}$/);
      const base = `http://127.0.0.1:${open.port}`;
      expect((await getJson(`${base}/api/sessions`)).status).toBe(401);
      expect((await getJson(`${base}/`)).status).toBe(401);
      expect((await getJson(`${base}/api/sessions`, { "x-exhaust-token": "wrong" })).status).toBe(401);
      expect((await getJson(`${base}/api/sessions`, { "x-exhaust-token": open.token! })).status).toBe(200);
      const first = await getJson(`${base}/?token=${open.token}`);
      expect(first.status).toBe(303);
      const cookie = String(first.headers["set-cookie"]).split(";")[0];
      expect(cookie).toBe(`exhaust_ui_token=${open.token}`);
      expect((await getJson(`${base}/api/sessions`, { cookie })).status).toBe(200);
      expect((await getJson(`${base}/api/live`)).status).toBe(401);
      expect((await getJson(`${base}/api/export?format=csv`)).status).toBe(401);
    } finally {
      await open.close();
    }
  });

  inBrowser(
    "in a browser: filter to content, open the event, the planted value is highlighted as content",
    async (browser) => {
      const { page, external, pageErrors } = await openUiPage(browser, ui.url, { width: 1400, height: 1000 });
      await page.waitForSelector("#events tbody tr[data-event]");
      await page.selectOption("#f-session", String(cap.sessionId));
      await page.selectOption("#f-category", "content");
      await page.click("#apply");
      await page.waitForFunction(
        () => (globalThis as unknown as PageGlobals).document.querySelectorAll("#events tbody tr[data-event]").length === 1,
      );
      const row = page.locator(`#events tbody tr[data-event="${cap.plantedEventId}"]`);
      await expect(row.textContent()).resolves.toContain("Office.Word.FileIO.Save");
      await row.click();
      const field = page.locator('#fields tr[data-path="Data.Doc.FileName"]');
      await field.waitFor();
      expect(await field.getAttribute("data-category")).toBe("content");
      expect(await field.getAttribute("class")).toContain("field-content");
      expect(await field.locator("td.value").textContent()).toBe(PLANTED);
      // Highlighted: the content colour on the value, the content background on the row.
      expect(await field.locator("td.value").evaluate((e) => (globalThis as unknown as PageGlobals).getComputedStyle(e).color)).toBe(
        "rgb(198, 40, 40)",
      );
      expect(await field.evaluate((e) => (globalThis as unknown as PageGlobals).getComputedStyle(e).backgroundColor)).toBe(
        "rgb(253, 236, 234)",
      );
      expect(await field.getAttribute("title")).toContain("rule: detector.windows-path");
      // Hostile captured markup stays text: no element was created from it.
      const comment = page.locator('#fields tr[data-path="Data.Doc.Comment"] td.value');
      expect(await comment.textContent()).toBe(HOSTILE);
      expect(await comment.locator("script, img").count()).toBe(0);
      await page.waitForSelector("#body pre.body");
      expect(await page.locator("table.headers").textContent()).not.toContain(TICKET_SECRET);
      mkdirSync(ARTIFACTS, { recursive: true });
      await page.screenshot({ path: join(ARTIFACTS, "ui-event.png"), fullPage: true });

      await page.click("#nav-session");
      await page.waitForSelector("#verdicts .verdict");
      await page.waitForSelector("section svg.chart");
      expect(await page.locator("#verdicts").textContent()).toContain("FAIL");
      await page.screenshot({ path: join(ARTIFACTS, "ui-session.png"), fullPage: true });
      expect(external).toEqual([]);
      expect(pageErrors).toEqual([]);
    },
    60_000,
  );

  inBrowser(
    "in a browser at 800 px: exchange → event links, response body, CSV export of a filtered view, keys, copy, then live update with pause",
    async (browser) => {
      const context = await browser.newContext({ viewport: { width: 800, height: 900 }, acceptDownloads: true });
      await context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: ui.url.replace(/\/$/, "") });
      const page = await context.newPage();
      const { external, pageErrors } = watchPage(page, ui.url);
      const planted = cap.plantedEventId;
      await page.goto(ui.url);
      await page.waitForSelector("#events tbody tr[data-event]");
      await page.selectOption("#f-session", String(cap.sessionId));

      // Keys: j moves the selection, Enter opens it, / goes to the search box.
      await page.waitForSelector(`#events tbody tr[data-event="${planted}"].selected`);
      await page.keyboard.press("j");
      const second = Number(await page.locator("#events tbody tr[data-event]").nth(1).getAttribute("data-event"));
      expect(await page.locator("#events tbody tr.selected").getAttribute("data-event")).toBe(String(second));
      await page.keyboard.press("k");
      expect(await page.locator("#events tbody tr.selected").getAttribute("data-event")).toBe(String(planted));
      await page.keyboard.press("Enter");
      await page.waitForSelector(`#fields tr[data-path="Data.Doc.FileName"]`);
      expect(await page.evaluate(() => (globalThis as unknown as PageGlobals).location.hash)).toBe(`#/event/${planted}`);
      // On the event page j/k step through the list it came from; Esc goes back to it.
      await page.keyboard.press("j");
      await page.waitForFunction((id) => (globalThis as unknown as PageGlobals).location.hash === `#/event/${id}`, second);
      await page.waitForSelector(`h2:has-text("Event ${second}:")`);
      await page.keyboard.press("k");
      await page.waitForSelector(`#fields tr[data-path="Data.Doc.FileName"]`);
      await page.keyboard.press("Escape");
      await page.waitForSelector(`#events tbody tr[data-event="${planted}"].selected`);
      await page.keyboard.press("Enter");
      await page.waitForSelector(`#fields tr[data-path="Data.Doc.FileName"]`);

      // At 800 px the value column keeps a readable width (the issue saw ~6 characters).
      const valueCell = page.locator('#fields tr[data-path="Data.Doc.FileName"] td.value');
      expect((await valueCell.boundingBox())!.width).toBeGreaterThanOrEqual(150);
      // ... and the whole table fits the window: nothing hides off to the right.
      const fieldsBox = (await page.locator("#fields").boundingBox())!;
      expect(fieldsBox.x + fieldsBox.width).toBeLessThanOrEqual(800);
      // Findings name the path once.
      const findings = await page.locator("#findings").textContent();
      expect(findings).toContain("Data.Doc.FileName");
      expect(findings).not.toMatch(/Data\.Doc\.FileName: Data\.Doc\.FileName/);
      // Copy button: the field's value on the clipboard.
      await page.locator('#fields tr[data-path="Data.Doc.FileName"] button[data-copy="value"]').click();
      await expect.poll(() => page.evaluate(() => (globalThis as unknown as PageGlobals).navigator.clipboard.readText())).toBe(PLANTED);
      await page.locator('#fields tr[data-path="Data.Doc.FileName"] button[data-copy="path"]').click();
      await expect
        .poll(() => page.evaluate(() => (globalThis as unknown as PageGlobals).navigator.clipboard.readText()))
        .toBe("Data.Doc.FileName");
      await page.screenshot({ path: join(ARTIFACTS, "ui-event-800.png"), fullPage: true });

      // Event → its exchange → each decoded event is a link; the planted one leads back.
      await page.click("#exchange-link");
      await page.waitForSelector("#exchange-events table");
      // A page without a list shows no filter bar (nothing there would apply).
      expect(await page.locator("#filters").isHidden()).toBe(true);
      expect(await page.locator("#exchange-events tbody tr[data-event]").count()).toBe(31);
      // The response: headers and body (what the sinkhole answered, as stored).
      const ev = await getJson(`${ui.url}api/events/${planted}`);
      const stored = p.db
        .prepare("SELECT b.data FROM exchanges x JOIN blobs b ON b.sha256 = x.response_body_sha256 WHERE x.id = ?")
        .get(ev.body.exchangeId) as { data: Buffer } | undefined;
      expect(stored).toBeDefined();
      await page.waitForSelector("#response-body pre.body");
      expect(await page.locator("#response-body pre.body").textContent()).toBe(stored!.data.toString("utf8"));
      expect((await page.locator("#response table.headers").textContent())!.toLowerCase()).toContain("content-type");
      await page.selectOption("#body-view-response", "hex");
      await page.waitForFunction(() =>
        /^00000000 {2}/.test((globalThis as unknown as PageGlobals).document.querySelector("#response-body pre.body")?.textContent ?? ""),
      );
      await page.screenshot({ path: join(ARTIFACTS, "ui-exchange-800.png"), fullPage: true });
      await page.click(`#exchange-events a[href="#/event/${planted}"] >> nth=0`);
      await page.waitForSelector(`#fields tr[data-path="Data.Doc.FileName"]`);
      expect(await page.locator("h2").first().textContent()).toContain(`Event ${planted}`);

      // Exchanges apply the Category filter they show; Events keep their own filters.
      await page.click("#nav-exchanges");
      await page.waitForSelector("#exchanges tbody tr[data-exchange]");
      expect(await page.locator("#exchanges tbody tr[data-exchange]").count()).toBe(2);
      expect(await page.locator("#filters label:has(#f-name)").isHidden()).toBe(true);
      await page.selectOption("#f-category", "content");
      await page.click("#apply");
      await page.waitForFunction(
        () => (globalThis as unknown as PageGlobals).document.querySelectorAll("#exchanges tbody tr[data-exchange]").length === 1,
      );
      expect(await page.locator("#exchanges tbody tr[data-exchange]").getAttribute("data-exchange")).toBe(ev.body.exchangeId);
      const exchangesBox = (await page.locator("#exchanges").boundingBox())!;
      expect(exchangesBox.x + exchangesBox.width).toBeLessThanOrEqual(800);
      await page.screenshot({ path: join(ARTIFACTS, "ui-exchanges-800.png"), fullPage: true });
      // Fields: content by default, its own export (only the listed fields).
      await page.click("#nav-fields");
      await page.waitForSelector("table.fields tbody tr");
      expect(await page.locator("table.fields tbody tr").count()).toBe(2);
      expect(await page.locator("#export-csv").getAttribute("href")).toContain("view=fields");
      await page.screenshot({ path: join(ARTIFACTS, "ui-fields-800.png"), fullPage: true });
      await page.click("#nav-events");
      await page.waitForSelector("#events tbody tr[data-event]");
      expect(await page.locator("#f-category").inputValue()).toBe("");

      // CSV export of a filtered view: the download holds exactly the filtered events' fields.
      await page.selectOption("#f-category", "content");
      await page.click("#apply");
      await page.waitForFunction(
        () => (globalThis as unknown as PageGlobals).document.querySelectorAll("#events tbody tr[data-event]").length === 1,
      );
      const [download] = await Promise.all([page.waitForEvent("download"), page.click("#export-csv")]);
      const csv = readFileSync(await download.path(), "utf8");
      const records = parseCsv(csv);
      expect(records[0]).toEqual([...CSV_COLUMNS]);
      const body = records.slice(1);
      expect(body).toHaveLength(ev.body.fields.length);
      const col = (name: string) => CSV_COLUMNS.indexOf(name as (typeof CSV_COLUMNS)[number]);
      expect(new Set(body.map((r) => r[col("event")]))).toEqual(new Set([String(planted)]));
      expect(body.find((r) => r[col("path")] === "Data.Doc.FileName")![col("value")]).toBe(PLANTED);
      expect(body.find((r) => r[col("path")] === "Data.Doc.Comment")![col("value")]).toBe(HOSTILE);
      expect(csv).not.toContain(TICKET_SECRET);
      expect(download.suggestedFilename()).toMatch(/\.csv$/);

      // Live: an upload through the real proxy while the page is open shows without a reload.
      await page.selectOption("#f-category", "");
      await page.click("#apply");
      await page.waitForSelector("#events tbody tr[data-event] >> nth=35");
      await page.waitForSelector("#live-toggle.connected");
      const eventsBox = (await page.locator("#events").boundingBox())!;
      expect(eventsBox.x + eventsBox.width).toBeLessThanOrEqual(800);
      await page.evaluate(() => void ((globalThis as unknown as PageGlobals).exhaustNoReload = 1));
      await sendLiveUpload(p, "Office.Live.Arrived");
      const arrived = page.locator("#events tbody tr[data-event]", { hasText: "Office.Live.Arrived" });
      await arrived.waitFor({ timeout: 20_000 });
      expect(await page.evaluate(() => (globalThis as unknown as PageGlobals).exhaustNoReload)).toBe(1);
      // Paused: the next upload is counted, not shown, until resumed.
      await page.click("#live-toggle");
      expect(await page.locator("#live-toggle").getAttribute("aria-pressed")).toBe("false");
      await sendLiveUpload(p, "Office.Live.WhilePaused");
      await page.waitForFunction(
        () =>
          /paused: \d+ new event/.test((globalThis as unknown as PageGlobals).document.querySelector("#live-status")?.textContent ?? ""),
        undefined,
        { timeout: 20_000 },
      );
      const paused = page.locator("#events tbody tr[data-event]", { hasText: "Office.Live.WhilePaused" });
      expect(await paused.count()).toBe(0);
      await page.click("#live-toggle");
      await paused.waitFor({ timeout: 20_000 });
      expect(await page.evaluate(() => (globalThis as unknown as PageGlobals).exhaustNoReload)).toBe(1);
      await page.keyboard.press("/");
      expect(await page.evaluate(() => (globalThis as unknown as PageGlobals).document.activeElement?.id)).toBe("f-q");
      await page.screenshot({ path: join(ARTIFACTS, "ui-live-800.png"), fullPage: true });
      expect(external).toEqual([]);
      expect(pageErrors).toEqual([]);
    },
    120_000,
  );
  it("sends at most 256 KiB of a body to the page and says the rest was cut", async () => {
    // 300 lines of about 1 KiB: a body above the view's limit, stored whole.
    const sent = await sendLiveUpload(p, "Office.Test.LargeBody", 300, { "Activity.Note": "x".repeat(1000) });
    expect(sent.length).toBeGreaterThan(256 * 1024);
    let eventId = 0;
    for (const until = Date.now() + 20_000; eventId === 0 && Date.now() < until; await new Promise((r) => setTimeout(r, 50))) {
      const found = await getJson(`${ui.url}api/events?name=Office.Test.LargeBody&limit=1`);
      eventId = found.body.rows[0]?.id ?? 0;
    }
    expect(eventId, "the large upload was decoded").toBeGreaterThan(0);
    const ev = await getJson(`${ui.url}api/events/${eventId}`);
    const body = await getJson(`${ui.url}api/exchanges/${ev.body.exchangeId}/body`);
    expect(body.body).toMatchObject({ view: "text", truncated: true, size: sent.length, storedSize: sent.length });
    expect(body.body.text).toBe(sent.slice(0, 256 * 1024));
  });

  it("pushes what the processing thread stores over /api/live, and closing the UI ends open streams", async () => {
    const own = await startUiServer({ dbFile: p.dbFile, host: "127.0.0.1", port: 0, log: quietLog() });
    let text = "";
    let ended = false;
    const res = await new Promise<http.IncomingMessage>((resolve, reject) => {
      http.get(`${own.url}api/live`, resolve).on("error", reject);
    });
    res.on("data", (c: Buffer) => (text += c.toString("utf8")));
    res.on("end", () => (ended = true));
    res.on("error", () => (ended = true));
    try {
      expect(res.statusCode).toBe(200);
      expect(res.headers["content-type"]).toMatch(/^text\/event-stream/);
      expect(res.headers["content-security-policy"]).toContain("default-src 'self'");
      await eventually(() => text.includes("event: hello"), 5000);
      // Started at the newest rows: nothing stored before is replayed.
      expect(text).not.toContain("Office.Word.FileIO.Save");
      await sendLiveUpload(p, "Office.Live.OverTheStream");
      await eventually(() => /event: stored\n/.test(text) && text.includes("Office.Live.OverTheStream"), 20_000);
      const stored = text.split("\n\n").find((m) => m.includes("Office.Live.OverTheStream"))!;
      expect(stored).toMatch(/^id: \d+:\d+\nevent: stored\ndata: /);
      const data = JSON.parse(stored.slice(stored.indexOf("data: ") + 6)) as {
        exchanges: Array<{ host: string }>;
        events: Array<{ name: string; sessionId: number }>;
      };
      expect(data.events.map((e) => e.name)).toContain("Office.Live.OverTheStream");
      expect(data.events.every((e) => e.sessionId === cap.sessionId)).toBe(true);
      expect(data.exchanges.map((x) => x.host)).toContain("self.events.data.microsoft.com");
    } finally {
      const t0 = Date.now();
      await own.close();
      expect(Date.now() - t0).toBeLessThan(5000);
    }
    await eventually(() => ended, 5000);
  }, 60_000);
});
