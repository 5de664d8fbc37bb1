import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { EXHAUST_BIN, runCli } from "./helpers/cli.js";
import { httpsThroughProxy } from "./helpers/client.js";
import { eventually, startTestProxy, type TestProxy } from "./helpers/proxy.js";
import { fillCapture, PLANTED, type FilledCapture } from "./ui-capture.js";

const width = (text: string) => Math.max(...text.split("\n").map((l) => [...l].length));
const ids = (out: string) =>
  out
    .trim()
    .split("\n")
    .slice(1)
    .map((l) => Number(l.split(/\s+/)[0]));

describe("exhaust events / show: 80 columns, the UI's filters", () => {
  let p: TestProxy;
  let cap: FilledCapture;
  const events = (...args: string[]) => runCli(["events", "--db", p.dbFile, ...args]);

  beforeAll(async () => {
    p = await startTestProxy({ mode: "sinkhole" });
    cap = await fillCapture(p);
  }, 60_000);
  afterAll(() => p?.close());

  it("prints tables no wider than 80 columns", () => {
    const list = events("--limit", "1000");
    expect(list.status).toBe(0);
    expect(ids(list.stdout)).toHaveLength(36);
    expect(width(list.stdout)).toBeLessThanOrEqual(80);
    expect(list.stdout.split("\n")[0]).toMatch(/^ID\s+TIME\s+GROUP\s+CATEGORY\s+C\/P\s+NAME$/);

    const shown = runCli(["show", String(cap.plantedEventId), "--db", p.dbFile]);
    expect(shown.status).toBe(0);
    expect(width(shown.stdout)).toBeLessThanOrEqual(80);
    expect(shown.stdout).toMatch(
      /Data\.Doc\.FileName\s+content\s+\S+\s+detector\.windows-path\n {4}C:\\Users\\jdoe\\Documents\\Merger plan Zephyr-4471\.docx\n/,
    );
    // A value too long for the line is cut with an ellipsis, not wrapped.
    expect(shown.stdout).toMatch(/\n {4}Please read <script>.*…\n/);
  });

  it("filters by host, group, personal data, category and free text, and pages by id", () => {
    const byHost = events("--host", "browser.events.data.microsoft.com");
    expect(ids(byHost.stdout)).toHaveLength(5);
    expect(byHost.stdout).toMatch(/Office\.Outlook\.Sync\.Poll0/);
    expect(byHost.stdout).not.toMatch(/Office\.Excel/);

    expect(ids(events("--category", "content").stdout)).toEqual([cap.plantedEventId]);
    expect(ids(events("--personal").stdout)).toContain(cap.plantedEventId);
    expect(ids(events("--search", "ZEPHYR-4471").stdout)).toEqual([cap.plantedEventId]);
    expect(events("--search", "no-such-text-anywhere").stdout).toMatch(/^no events/);
    const groups = events("--group", "unknown", "--limit", "1000");
    expect(ids(groups.stdout)).toHaveLength(36);

    const first = ids(events("--name", "Office.Excel.*", "--limit", "10").stdout);
    const next = ids(events("--name", "Office.Excel.*", "--limit", "10", "--after", String(first[9])).stdout);
    expect(next).toHaveLength(10);
    expect(next[0]).toBeGreaterThan(first[9]);
    expect(ids(events("--name", "Office.Excel.*", "--limit", "10", "--offset", "10").stdout)).toEqual(next);
  });

  it("exits quietly when the reader closes the pipe early (events --json | head -1)", () => {
    // 36 events of JSON lines is more than a pipe takes after head has gone; repeat to be sure.
    for (let i = 0; i < 3; i++) {
      const r = spawnSync(
        "sh",
        ["-c", `"${process.execPath}" "${EXHAUST_BIN}" events --json --limit 1000 --db "${p.dbFile}" | head -c 10`],
        { encoding: "utf8" },
      );
      expect(r.stderr).toBe("");
      expect(r.stdout).toMatch(/^\{/);
    }
  });

  it("keeps the --json line shape and rejects bad filters with exit 2", () => {
    const line = JSON.parse(events("--json", "--category", "content").stdout.trim());
    expect(Object.keys(line)).toEqual(["session", "exchange", "event", "fields", "findings"]);
    expect(Object.keys(line.event)).toEqual(["id", "name", "time", "format", "iKey", "group", "category"]);
    expect(line.fields.find((f: { path: string }) => f.path === "Data.Doc.FileName")).toMatchObject({
      value: PLANTED,
      category: "content",
    });

    const bad = events("--group", "mandatory");
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/invalid option --group: .*\[EXH_OPT_INVALID\]/);
    expect(events("--after", "-1").status).toBe(2);
  });
});

describe("exhaust events / show: the terminal's width, --wide, names in any case, decode findings", () => {
  let p: TestProxy;
  const LONG = `Office.Word.${"VeryLongFeatureArea.".repeat(6)}SomethingHappened`;
  const CATALOGUED = "Office.Android.Intune.IntuneJavaExceptionGetProtectionInfoFromDescriptor";
  /** The CLI with a given $COLUMNS (stdout is a pipe: no terminal width of its own). */
  const cli = (columns: string | undefined, ...args: string[]) => {
    const env = { ...process.env };
    delete env.COLUMNS;
    if (columns !== undefined) env.COLUMNS = columns;
    const r = spawnSync(process.execPath, [EXHAUST_BIN, ...args, "--db", p.dbFile], { encoding: "utf8", env, timeout: 30_000 });
    return { status: r.status, stdout: r.stdout, stderr: r.stderr };
  };
  const idOf = (name: string) => (p.db.prepare("SELECT id FROM events WHERE name = ?").get(name) as { id: number }).id;

  beforeAll(async () => {
    p = await startTestProxy({ mode: "sinkhole" });
    const lines = [LONG, CATALOGUED].map((name) =>
      JSON.stringify({ name, time: "2026-12-03T08:00:00.000Z", ver: "4.0", data: { "Activity.Success": true } }),
    );
    const res = await httpsThroughProxy({
      proxyPort: p.port,
      host: "browser.events.data.microsoft.com",
      path: "/OneCollector/1.0/",
      headers: { "Content-Type": "application/x-json-stream" },
      body: `${lines[0]}\n{"name": "broken\n${lines[1]}\n`,
      ca: [p.caPem],
    });
    expect(res.status).toBe(200);
    await eventually(
      () => (p.db.prepare("SELECT COUNT(*) AS n FROM exchanges WHERE classified_with IS NOT NULL").get() as { n: number }).n === 1,
      15_000,
    );
  }, 60_000);
  afterAll(() => p?.close());

  it("fits tables to $COLUMNS (80 without it) and never cuts with --wide", () => {
    const narrow = cli(undefined, "events");
    expect(width(narrow.stdout)).toBeLessThanOrEqual(80);
    expect(narrow.stdout).not.toContain(LONG);
    expect(narrow.stdout).toContain("…");
    const wide200 = cli("200", "events");
    expect(wide200.stdout).toContain(LONG);
    expect(width(wide200.stdout)).toBeGreaterThan(80);
    expect(width(wide200.stdout)).toBeLessThanOrEqual(200);
    const wide = cli("60", "events", "--wide");
    expect(wide.stdout).toContain(LONG);
  });

  it("matches names ignoring case when nothing matches as typed, and says so; a filter that matches nothing says which", () => {
    const lower = cli(undefined, "events", "--name", "office.word.*", "--wide");
    expect(lower.status).toBe(0);
    expect(lower.stdout).toContain(LONG);
    expect(lower.stdout).not.toMatch(/capture something/);
    expect(lower.stderr).toMatch(/matched ignoring case/);
    const exact = cli(undefined, "events", "--name", "Office.Word.*", "--wide");
    expect(exact.stdout).toContain(LONG);
    expect(exact.stderr).toBe("");
    const none = cli(undefined, "events", "--name", "Office.Excel.*");
    expect(none.stdout).toBe('no events match --name "Office.Excel.*"\n');
  });

  it("show keeps the group line whole (wrapped under its label) and prints decode findings in text and JSON", () => {
    const id = idOf(CATALOGUED);
    const text = cli(undefined, "show", String(id));
    expect(text.status).toBe(0);
    expect(width(text.stdout)).toBeLessThanOrEqual(80);
    const squash = (t: string) => t.replace(/\s+/g, "");
    const group = text.stdout.slice(text.stdout.indexOf("\ngroup "), text.stdout.indexOf("\ncategory "));
    expect(group.split("\n").length).toBeGreaterThan(2); // wrapped, continuation lines under the text
    expect(squash(group)).toBe(
      squash(`group required (event.office.${CATALOGUED}), Product and service performance / Application activity error`),
    );
    expect(text.stdout).not.toMatch(/^(event|group) .*…/m);
    expect(text.stdout).toMatch(/\ndecode findings\n {2}\w+ +json\.bad-line {2}at byte \d+.*\n {6}line at byte/);
    const json = JSON.parse(cli(undefined, "show", String(id), "--json").stdout) as {
      decodeFindings: Array<{ code: string; severity: string }>;
    };
    expect(json.decodeFindings).toEqual([expect.objectContaining({ code: "json.bad-line" })]);
    // Wide: one line each.
    expect(cli(undefined, "show", String(id), "--wide").stdout).toContain(`group     required (event.office.${CATALOGUED}), Product`);
  });
});
