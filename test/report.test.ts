import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli } from "./helpers/cli.js";
import { startTestProxy, type TestProxy } from "./helpers/proxy.js";
import { CANARY, fillCapture, HOSTILE, PLANTED, TICKET_SECRET, type FilledCapture } from "./ui-capture.js";

/**
 * Every way the markup of an HTML file can make a viewer fetch something: URL attributes of real
 * tags (escaped captured text is not a tag), fetching elements, and url()/@import in CSS.
 */
function externalReferences(html: string): string[] {
  const found: string[] = [];
  const fetching = /^(script|link|iframe|frame|object|embed|img|image|video|audio|source|track|base|use|feimage)$/i;
  const urlAttr =
    /\b(src|href|srcset|action|formaction|poster|data|background|xlink:href|ping|manifest)\s*=\s*("([^"]*)"|'([^']*)'|([^\s>]+))/gi;
  for (const tag of html.matchAll(/<([a-zA-Z][\w:-]*)\b([^>]*)>/g)) {
    const [whole, name, attrs] = tag;
    if (fetching.test(name)) found.push(whole);
    if (/^meta$/i.test(name) && /http-equiv/i.test(attrs)) found.push(whole);
    for (const a of attrs.matchAll(urlAttr)) {
      const value = a[3] ?? a[4] ?? a[5];
      if (!value.startsWith("#")) found.push(a[0]);
    }
    const style = /\bstyle\s*=\s*("([^"]*)"|'([^']*)')/i.exec(attrs);
    if (style && /url\(|@import/i.test(style[2] ?? style[3])) found.push(style[0]);
  }
  for (const block of html.matchAll(/<style\b[^>]*>([\s\S]*?)<\/style>/gi)) {
    for (const m of block[1].matchAll(/url\([^)]*\)|@import[^;]*/gi)) found.push(m[0]);
  }
  return found;
}

describe("exhaust report", () => {
  let p: TestProxy;
  let cap: FilledCapture;
  let html: string;

  beforeAll(async () => {
    p = await startTestProxy({ mode: "sinkhole" });
    cap = await fillCapture(p);
    const out = join(p.dir, "report.html");
    const r = runCli(["report", "--db", p.dbFile, "--session", "test", "--out", out]);
    expect(r.stderr).toContain("report written");
    expect(r.status).toBe(0);
    html = readFileSync(out, "utf8");
  }, 60_000);
  afterAll(() => p?.close());

  it("contains the content finding with its evidence, and the verdict", () => {
    const escaped = PLANTED.replace(/&/g, "&amp;");
    const findings = html.slice(html.indexOf('<section id="content">'), html.indexOf('<section id="canaries">'));
    expect(findings).toContain(escaped);
    expect(findings).toContain("Data.Doc.FileName");
    expect(findings).toContain("detector.windows-path");
    const exchangeId = (p.db.prepare("SELECT exchange_id AS x FROM events WHERE id = ?").get(cap.plantedEventId) as { x: string }).x;
    const sha = (p.db.prepare("SELECT request_body_sha256 AS s FROM exchanges WHERE id = ?").get(exchangeId) as { s: string }).s;
    expect(findings).toContain(exchangeId);
    expect(findings).toContain(sha);
    expect(findings).toContain(`#${cap.plantedEventId}`);

    const verdicts = html.slice(html.indexOf('<section id="verdicts">'), html.indexOf('<section id="chain">'));
    expect(verdicts).toContain("zero-exhaust-test");
    expect(verdicts).toContain('<span class="fail">FAIL</span>');
    expect(verdicts).toContain("no-content");
    expect(verdicts).toContain("1 more not shown");
  });

  it("opens with a one-screen summary: verdicts per profile with counts, content findings, endpoints, pinned hosts, chain head", () => {
    const first = html.indexOf("<section ");
    expect(html.indexOf('<section id="summary">')).toBe(first);
    const summary = html.slice(first, html.indexOf("</section>", first));
    expect(summary).toMatch(
      /<a href="#verdict-1" class="mono">zero-exhaust-test<\/a><\/td><td><span class="fail">FAIL<\/span><\/td><td>2 fail, 0 warn, 1 pass<\/td>/,
    );
    expect(html).toContain('<div class="verdict" id="verdict-1">');
    const contentFields = (p.db.prepare("SELECT COUNT(*) AS n FROM fields WHERE category = 'content'").get() as { n: number }).n;
    expect(summary).toContain(`<a href="#content">${contentFields} fields classified content</a>`);
    const hosts = (p.db.prepare("SELECT DISTINCT host FROM connections").all() as Array<{ host: string }>).map((x) => x.host);
    expect(hosts.length).toBeGreaterThanOrEqual(2);
    expect(summary).toContain(`${hosts.length} hosts</a>`);
    for (const host of hosts) expect(summary).toContain(host);
    expect(summary).toContain("<dt>Pinned hosts</dt><dd>none</dd>");
    const head = p.db.prepare("SELECT hash, seq FROM exchanges ORDER BY seq DESC LIMIT 1").get() as { hash: string; seq: number };
    expect(summary).toContain(`seq ${head.seq}</a> <span class="mono">${head.hash}</span>`);
    // No evidence in the summary: it fits a screen.
    expect(summary).not.toContain(PLANTED.replace(/&/g, "&amp;"));
    expect(summary.length).toBeLessThan(3000);
  });

  it("prints each piece of evidence once; verdicts link to it", () => {
    const count = (needle: string) => html.split(needle).length - 1;
    expect(count(PLANTED.replace(/&/g, "&amp;"))).toBe(1);
    expect(count(CANARY)).toBe(1);
    const verdicts = html.slice(html.indexOf('<section id="verdicts">'), html.indexOf('<section id="chain">'));
    // The content evidence is a link to its row under Content findings, which carries the anchor.
    const link = new RegExp(
      `<a href="#(evidence-\\d+)">event #${cap.plantedEventId} field Data\\.Doc\\.FileName</a> \\(in Content findings\\)`,
    ).exec(verdicts);
    expect(link).not.toBeNull();
    const findings = html.slice(html.indexOf('<section id="content">'), html.indexOf('<section id="canaries">'));
    expect(findings).toContain(`<span class="mono" id="${link![1]}">#${cap.plantedEventId}</span>`);
    // The canary hit likewise, to its row under Canary hits.
    const canaryLink = /<a href="#(evidence-\d+)">host mobile\.events\.data\.microsoft\.com<\/a> \(listed above\)/.exec(verdicts);
    expect(canaryLink).not.toBeNull();
    const canaries = html.slice(html.indexOf('<section id="canaries">'), html.indexOf('<section id="verdicts">'));
    expect(canaries).toContain(`id="${canaryLink![1]}"`);
    // Every in-page link has its target.
    for (const m of html.matchAll(/href="#([^"]+)"/g)) expect(html, m[1]).toContain(`id="${m[1]}"`);
  });

  it("lists canary hits with form and location, the endpoints, groups, categories and the chain head", () => {
    const canaries = html.slice(html.indexOf('<section id="canaries">'), html.indexOf('<section id="verdicts">'));
    expect(canaries).toContain("1 canary hit.");
    expect(canaries).toContain(CANARY);
    expect(canaries).toMatch(/<td>base64<\/td><td>request body<\/td>/);

    expect(html).toMatch(/<td class="mono">mobile\.events\.data\.microsoft\.com<\/td><td>443<\/td><td class="">intercepted<\/td>/);
    expect(html).toContain("browser.events.data.microsoft.com");
    const groups = html.slice(html.indexOf('<section id="groups">'), html.indexOf('<section id="categories">'));
    expect(groups).toMatch(/<td>unknown<\/td><td>36<\/td><td>1<\/td>/);
    const categories = html.slice(html.indexOf('<section id="categories">'), html.indexOf('<section id="content">'));
    const contentFields = (p.db.prepare("SELECT COUNT(*) AS n FROM fields WHERE category = 'content'").get() as { n: number }).n;
    expect(contentFields).toBeGreaterThanOrEqual(2);
    expect(categories).toContain(`<td class="cat-content">content</td><td>${contentFields}</td>`);
    expect(categories).toContain("<svg");

    const head = p.db.prepare("SELECT hash, seq FROM exchanges ORDER BY seq DESC LIMIT 1").get() as { hash: string; seq: number };
    const chain = html.slice(html.indexOf('<section id="chain">'));
    expect(chain).toContain(`<dd>${head.hash}</dd>`);
    expect(chain).toContain(`<dt>Last sequence number</dt><dd>${head.seq}</dd>`);
  });

  it("is self-contained: no external references, captured markup escaped, no credentials", () => {
    expect(externalReferences(html)).toEqual([]);
    // The checker itself finds what it must: the hostile value unescaped would be caught.
    expect(externalReferences(`<p>${HOSTILE}</p><style>b { background: url(x.png) }</style>`)).toHaveLength(4);
    expect([...html.matchAll(/href="([^"]*)"/g)].every((m) => m[1].startsWith("#"))).toBe(true);
    // No address at all outside captured text: the only http(s):// is the escaped hostile value.
    expect(html.match(/https?:\/\//g)).toHaveLength(1);
    expect(html).not.toContain("<script");
    expect(html).not.toContain('<img src="https://evil.example');
    expect(html).toContain(HOSTILE.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;"));
    expect(html).not.toContain(TICKET_SECRET);
    expect(html).toContain("@media print");
    expect(html.startsWith("<!DOCTYPE html>")).toBe(true);
  });

  it("without --session reports the newest session; an unknown session is a usage error", () => {
    const out = join(p.dir, "latest.html");
    expect(runCli(["report", "--db", p.dbFile, "--out", out]).status).toBe(0);
    expect(readFileSync(out, "utf8")).toContain('exhaust report: session <span class="mono">test</span>');
    // An existing --out is refused without --force, and replaced with it.
    const again = runCli(["report", "--db", p.dbFile, "--out", out]);
    expect(again.status).toBe(2);
    expect(again.stderr).toMatch(/latest\.html already exists.*--force.*\[EXH_EXPORT_OUT_EXISTS\]/);
    writeFileSync(out, "old");
    expect(runCli(["report", "--db", p.dbFile, "--out", out, "--force"]).status).toBe(0);
    expect(readFileSync(out, "utf8")).toMatch(/^<!DOCTYPE html>/);
    const bad = runCli(["report", "--db", p.dbFile, "--session", "nope", "--out", join(p.dir, "x.html")]);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/no session named nope .*\[EXH_DB_SESSION_UNKNOWN\]/);
  });
});
