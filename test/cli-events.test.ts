import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { EXHAUST_BIN, runCli } from "./helpers/cli.js";
import { startTestProxy, type TestProxy } from "./helpers/proxy.js";
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
    expect(shown.stdout).toMatch(/Data\.Doc\.FileName\s+content\s+\S+\s+detector\.windows-path\n {4}C:\\Users\\jdoe\\Documents\\Merger plan Zephyr-4471\.docx\n/);
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
      const r = spawnSync("sh", ["-c", `"${process.execPath}" "${EXHAUST_BIN}" events --json --limit 1000 --db "${p.dbFile}" | head -c 10`], { encoding: "utf8" });
      expect(r.stderr).toBe("");
      expect(r.stdout).toMatch(/^\{/);
    }
  });

  it("keeps the --json line shape and rejects bad filters with exit 2", () => {
    const line = JSON.parse(events("--json", "--category", "content").stdout.trim());
    expect(Object.keys(line)).toEqual(["session", "exchange", "event", "fields", "findings"]);
    expect(Object.keys(line.event)).toEqual(["id", "name", "time", "format", "iKey", "group", "category"]);
    expect(line.fields.find((f: { path: string }) => f.path === "Data.Doc.FileName")).toMatchObject({ value: PLANTED, category: "content" });

    const bad = events("--group", "mandatory");
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/invalid option --group: .*\[EXH_OPT_INVALID\]/);
    expect(events("--after", "-1").status).toBe(2);
  });
});
