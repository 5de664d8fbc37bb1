import { readdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { demoCorpus, PINNED_HOST } from "../src/demo/corpus.js";
import type { VerdictReport } from "../src/verdict.js";
import { runCli } from "./helpers/cli.js";
import { tempDir } from "./helpers/proxy.js";

// The demo runs a proxy, seven uploads, a verdict and a report: more than runCli's default 30 s on a busy machine.
const run = (args: string[]) => runCli(args, undefined, 120_000);

describe("exhaust demo", () => {
  const dir = tempDir("exhaust-demo-test-");
  let demo: ReturnType<typeof run>;
  beforeAll(() => {
    demo = run(["demo", "--dir", dir]);
  }, 150_000);
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("captures the corpus in a sinkhole, exits 0 and says where the verdict and report are", () => {
    expect(demo.status, demo.stderr).toBe(0);
    for (const u of demoCorpus()) expect(demo.stdout).toMatch(new RegExp(`sent ${u.file.replace(/\./g, "\\.")}\\s+→ 200`));
    expect(demo.stdout).toContain(`pinned client imitated for ${PINNED_HOST}`);
    expect(demo.stdout).toContain(join(dir, "verdict-zero-exhaust.json"));
    expect(demo.stdout).toContain(join(dir, "report.html"));
    expect(demo.stdout).toMatch(/^verdict zero-exhaust: FAIL/m);
  });

  it("writes a zero-exhaust verdict that fails on the planted content, the Required event and the pinned client", () => {
    const report = JSON.parse(readFileSync(join(dir, "verdict-zero-exhaust.json"), "utf8")) as VerdictReport;
    expect(report.profile.name).toBe("zero-exhaust");
    expect(report.session.name).toBe("demo");
    expect(report.status).toBe("fail");
    const rule = (id: string) => report.rules.find((r) => r.id === id)!;
    expect(rule("office-neither.no-diagnostic-events")).toMatchObject({ status: "fail", count: 1 });
    expect(rule("office-neither.no-diagnostic-events").evidence[0].eventName).toBe(
      "Office.Word.Accessibility.LearningTools.ReadAloud.PlayReadAloud",
    );
    expect(rule("windows-security.no-diagtrack")).toMatchObject({ status: "fail" });
    expect(rule("windows-security.no-diagtrack").evidence[0]).toMatchObject({ host: PINNED_HOST });
    const content = rule("no-content.no-content-fields");
    expect(content.status).toBe("fail");
    // Content planted in every decoded family: JSON lines, CS Bond, Aria, App Insights.
    const names = new Set(content.evidence.map((e) => e.eventName));
    expect([...names]).toEqual(
      expect.arrayContaining(["Office.Word.FileIO.Save", "Office.Excel.Workbook.Open", "Office.Outlook.Mail.Compose"]),
    );
    expect(readFileSync(join(dir, "verdict-zero-exhaust.txt"), "utf8")).toMatch(/zero-exhaust/);
  });

  it("writes the HTML report and stores the verdict with the session", () => {
    const html = readFileSync(join(dir, "report.html"), "utf8");
    expect(html).toMatch(/^<!doctype html>/i);
    expect(html).toContain("zero-exhaust");
    expect(html).toContain("Office.Word.FileIO.Save");
    // Every upload decoded by its family's decoder, the opaque one kept raw.
    const events = runCli(["events", "--db", join(dir, "demo.db"), "--json", "--limit", "100"]);
    expect(events.status, events.stderr).toBe(0);
    const rows = events.stdout
      .trim()
      .split("\n")
      .map((l) => (JSON.parse(l) as { event: { name: string; format: string } }).event);
    expect(new Set(rows.map((e) => e.format))).toEqual(
      new Set(["appinsights", "aria-collector", "onecollector-bond", "onecollector-json"]),
    );
    // The upload no decoder reads is one `opaque` event over its raw bytes.
    expect(rows.filter((e) => e.name === "opaque")).toHaveLength(1);
  });

  it("writes the same corpus as files with a curl line each (demo --write)", () => {
    const out = join(dir, "corpus");
    const r = run(["demo", "--write", out]);
    expect(r.status, r.stderr).toBe(0);
    const corpus = demoCorpus();
    expect(readdirSync(out).sort()).toEqual([...corpus.map((u) => u.file), "curl.sh"].sort());
    for (const u of corpus) expect(readFileSync(join(out, u.file)).equals(u.body)).toBe(true);
    const script = readFileSync(join(out, "curl.sh"), "utf8");
    for (const u of corpus)
      expect(script).toContain(`@$DIR/${u.file}" -o /dev/null -w '%{http_code} ${u.file}\\n' https://${u.host}${u.path}`);
  });
});
