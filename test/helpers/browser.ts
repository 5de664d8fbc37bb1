/**
 * The UI tests' browser: Debian's chromium driven by playwright-core. A test in it is skipped when
 * chromium is missing, unless EXHAUST_REQUIRE_BROWSER=1 (CI), where it fails naming the package.
 */
import { existsSync } from "node:fs";
import { chromium, type Browser, type Page, type ViewportSize } from "playwright-core";
import { it } from "vitest";

const CHROMIUM = "/usr/bin/chromium";
export const haveBrowser = existsSync(CHROMIUM);
if (!haveBrowser) {
  const msg = `\n!!! ${CHROMIUM} is missing: the UI browser test ${process.env.EXHAUST_REQUIRE_BROWSER === "1" ? "FAILS (EXHAUST_REQUIRE_BROWSER=1)" : "is SKIPPED"}. Install it with: apt-get install -y chromium\n`;
  process.stderr.write(msg);
}

/** The page's globals, typed here: the tests compile without the DOM library. Only inside page functions. */
export type PageGlobals = {
  getComputedStyle(e: unknown): { color: string; backgroundColor: string };
  document: {
    querySelectorAll(selector: string): { length: number };
    querySelector(selector: string): { textContent: string | null } | null;
    activeElement: { id: string } | null;
  };
  navigator: { clipboard: { readText(): Promise<string> } };
  location: { hash: string };
  exhaustNoReload?: number;
};

function launchBrowser(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    // Chromium's own background requests go to a closed loopback port, never out; the UI on
    // 127.0.0.1 is reached directly (loopback bypasses the proxy).
    args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--proxy-server=http://127.0.0.1:9"],
    headless: true,
  });
}

/**
 * A test in Debian's chromium, closed afterwards. Skipped when chromium is missing, unless
 * EXHAUST_REQUIRE_BROWSER=1 (CI), where a missing browser fails the test naming the package.
 */
export function inBrowser(name: string, body: (browser: Browser) => Promise<void>, timeoutMs: number): void {
  it.skipIf(!haveBrowser && process.env.EXHAUST_REQUIRE_BROWSER !== "1")(
    name,
    async () => {
      if (!haveBrowser)
        throw new Error(`${CHROMIUM} is missing and EXHAUST_REQUIRE_BROWSER=1: install Debian's chromium (apt-get install -y chromium)`);
      const browser = await launchBrowser();
      try {
        await body(browser);
      } finally {
        await browser.close();
      }
    },
    timeoutMs,
  );
}

/** What a page asked for beyond the UI (must stay empty) and the script errors it raised. */
export function watchPage(page: Page, base: string): { external: string[]; pageErrors: string[] } {
  const external: string[] = [];
  const pageErrors: string[] = [];
  page.on("request", (r) => {
    if (!r.url().startsWith(base)) external.push(r.url());
  });
  page.on("pageerror", (e) => pageErrors.push(e.message));
  return { external, pageErrors };
}

/** A new page at `url` (the UI), watched as watchPage does. */
export async function openUiPage(
  browser: Browser,
  url: string,
  viewport: ViewportSize,
): Promise<{ page: Page; external: string[]; pageErrors: string[] }> {
  const page = await browser.newPage({ viewport });
  const watched = watchPage(page, url);
  await page.goto(url);
  return { page, ...watched };
}
