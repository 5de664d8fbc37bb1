/**
 * The Application Insights web SDK in a real browser (Debian's chromium), through the proxy in plain
 * sinkhole mode: the page's cross-origin upload needs a CORS preflight answered, then its POST is
 * stored, decoded and answered in the shape the SDK reads (no retries, no errors in its own log).
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { chromium, type Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PACKAGE_ROOT } from "../src/paths.js";
import { startOrigin, type Origin } from "./helpers/origin.js";
import { decodedFieldWithValue, eventually, makeOriginAuthority, startTestProxy, type TestProxy } from "./helpers/proxy.js";

const CHROMIUM = "/usr/bin/chromium";
const haveBrowser = existsSync(CHROMIUM);
const SDK = join(PACKAGE_ROOT, "node_modules", "@microsoft", "applicationinsights-web", "browser", "es5", "ai.3.gbl.min.js");
const PAGE_HOST = "app.contoso.test";
const PAGE_ORIGIN = `https://${PAGE_HOST}`;
const IKEY = "0fdcec70-0ce5-4085-89d9-9ae8ead9af66";

const PAGE = `<!doctype html><html><head><script src="/ai.js"></script></head><body><script>
  const ai = new Microsoft.ApplicationInsights.ApplicationInsights({ config: {
    instrumentationKey: "${IKEY}", disableAjaxTracking: true, disableFetchTracking: true,
    disableExceptionTracking: true, maxBatchInterval: 0, loggingLevelConsole: 2, enableDebug: false,
  } });
  ai.loadAppInsights();
  ai.trackEvent({ name: "exhaust-browser-test", properties: { planted: "Zephyr-4471" } });
  ai.flush();
  window.__sent = true;
</script></body></html>`;

const BEACON_URL = (n: number) =>
  `https://browser.events.data.microsoft.com/OneCollector/1.0/?cors=true&content-type=application/x-json-stream&client-id=NO_AUTH&apikey=0123456789abcdef0123456789abcdef-00000000-0000-0000-0000-000000000000-7000&n=${n}`;
const line = (name: string) =>
  JSON.stringify({
    ver: "4.0",
    name,
    time: "2026-12-03T10:00:00Z",
    iKey: "o:0123456789abcdef0123456789abcdef",
    data: { planted: "Zephyr-4471" },
  });

/** The two ways a page sends telemetry as it goes away: sendBeacon and fetch(keepalive). */
const BEACON_PAGE = `<!doctype html><html><body><script>
  navigator.sendBeacon(${JSON.stringify(BEACON_URL(1))}, new Blob([${JSON.stringify(line("Exhaust.Beacon"))}], { type: "text/plain" }));
  fetch(${JSON.stringify(BEACON_URL(2))}, { method: "POST", keepalive: true, body: ${JSON.stringify(line("Exhaust.Keepalive"))}, headers: { "Content-Type": "text/plain" } });
</script></body></html>`;

describe("Application Insights web SDK in chromium, sinkhole mode", () => {
  let p: TestProxy;
  let browser: Browser | undefined;

  let site: Origin;

  beforeAll(async () => {
    // The web app's pages come from a local HTTPS origin (mapped), so the browser's CORS machinery
    // runs for real: no request interception in the browser.
    const siteCa = await makeOriginAuthority();
    const sdk = readFileSync(SDK);
    site = await startOrigin(siteCa, (req, res) => {
      if (req.url === "/ai.js") res.writeHead(200, { "Content-Type": "application/javascript" }).end(sdk);
      else res.writeHead(200, { "Content-Type": "text/html" }).end(req.url === "/beacon" ? BEACON_PAGE : PAGE);
    });
    // Everything else the browser sends is intercepted and answered here: Chromium's own background
    // requests (component updates, accounts) must not leave the machine either.
    p = await startTestProxy({
      mode: "sinkhole",
      intercept: "all",
      hostMode: [`${PAGE_HOST}=forward`],
      mapHost: [`${PAGE_HOST}=127.0.0.1:${site.port}`],
      originCaPem: siteCa.certPem,
    });
  });
  afterAll(async () => {
    await browser?.close();
    await p?.close();
    await site?.close();
  });

  it.skipIf(!haveBrowser && process.env.EXHAUST_REQUIRE_BROWSER !== "1")(
    "stores and decodes the page's upload after answering its preflight",
    async () => {
      if (!haveBrowser) throw new Error(`${CHROMIUM} is missing and EXHAUST_REQUIRE_BROWSER=1: install Debian's chromium`);
      browser = await chromium.launch({
        executablePath: CHROMIUM,
        args: [
          "--no-sandbox",
          "--disable-gpu",
          "--disable-background-networking",
          "--disable-component-update",
          "--disable-sync",
          "--no-first-run",
          "--ignore-certificate-errors",
        ],
        proxy: { server: `http://127.0.0.1:${p.port}` },
      });
      const ctx = await browser.newContext({ ignoreHTTPSErrors: true });
      const tab = await ctx.newPage();

      const consoleProblems: string[] = [];
      tab.on("console", (m) => {
        if (m.type() === "error" || m.type() === "warning") consoleProblems.push(m.text());
      });
      await tab.goto(`${PAGE_ORIGIN}/`);

      const uploads = await eventually(() => {
        const rows = p.db
          .prepare("SELECT id, method, path, response_status FROM exchanges WHERE host = 'dc.services.visualstudio.com' ORDER BY seq")
          .all() as Array<{ id: string; method: string; path: string; response_status: number }>;
        return rows.some((r) => r.method === "POST") ? rows : undefined;
      }, 20_000);
      expect(uploads.find((r) => r.method === "OPTIONS")).toMatchObject({ path: "/v2/track", response_status: 200 });
      const post = uploads.find((r) => r.method === "POST")!;
      expect(post).toMatchObject({ path: "/v2/track", response_status: 200 });
      const field = await decodedFieldWithValue(p.db, post.id, "Zephyr-4471");
      expect(field.path).toBe("data.baseData.properties.planted");
      // The answer satisfied the SDK: no retry of the batch, nothing in its own console log.
      await new Promise((r) => setTimeout(r, 1500));
      const posts = p.db
        .prepare("SELECT COUNT(*) AS n FROM exchanges WHERE host = 'dc.services.visualstudio.com' AND method = 'POST'")
        .get() as { n: number };
      expect(posts.n).toBe(1);
      expect(consoleProblems).toEqual([]);
      // Nothing left the machine: every connection the browser opened was intercepted and answered here.
      const conns = p.db.prepare("SELECT host, outcome FROM connections").all() as Array<{ host: string; outcome: string }>;
      expect(conns.filter((c) => c.outcome === "tunnelled")).toEqual([]);
      expect(site.received.map((r) => r.url)).toEqual(expect.arrayContaining(["/", "/ai.js"]));
    },
    60_000,
  );

  it.skipIf(!haveBrowser && process.env.EXHAUST_REQUIRE_BROWSER !== "1")(
    "stores and decodes sendBeacon and fetch(keepalive) uploads",
    async () => {
      if (!browser) throw new Error("the browser of the previous test is not running");
      const tab = await (await browser.newContext({ ignoreHTTPSErrors: true })).newPage();
      await tab.goto(`${PAGE_ORIGIN}/beacon`);
      const names = await eventually(() => {
        const rows = p.db
          .prepare(
            `SELECT e.name, x.method, x.response_status FROM events e JOIN exchanges x ON x.id = e.exchange_id
            WHERE x.host = 'browser.events.data.microsoft.com' ORDER BY e.name`,
          )
          .all() as Array<{ name: string; method: string; response_status: number }>;
        return rows.length >= 2 ? rows : undefined;
      }, 20_000);
      expect(names).toEqual([
        { name: "Exhaust.Beacon", method: "POST", response_status: 200 },
        { name: "Exhaust.Keepalive", method: "POST", response_status: 200 },
      ]);
    },
    60_000,
  );
});
