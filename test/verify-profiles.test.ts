import { afterAll, describe, expect, it } from "vitest";
import { rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parse as parseYaml } from "yaml";
import { readFileSync } from "node:fs";
import { EndpointCatalog } from "../src/catalog/endpoints.js";
import { RULE_KINDS } from "../src/verify/kinds/index.js";
import { loadProfile, PROFILES_DIR, shippedProfiles } from "../src/verify/profile.js";
import { runCli } from "./helpers/cli.js";
import { tempDir } from "./helpers/proxy.js";

const catalog = EndpointCatalog.load();
const SHIPPED = ["connected-experiences-off", "no-content", "office-neither", "office-required", "windows-security", "zero-exhaust"];

describe("shipped verification profiles", () => {
  it("are the six the design names", () => {
    expect(shippedProfiles()).toEqual(SHIPPED);
  });

  it.each(SHIPPED)("%s loads, and every rule has an id, a kind, a description, a why, a setting and a source", (name) => {
    const p = loadProfile(name, catalog);
    expect(p.name).toBe(name);
    expect(p.rules.length).toBeGreaterThan(0);
    expect(p.sha256).toMatch(/^[0-9a-f]{64}$/);
    for (const r of p.rules) {
      expect(r.id).toMatch(/^[a-z0-9][a-z0-9.-]*$/);
      expect(RULE_KINDS.has(r.kind)).toBe(true);
      for (const key of ["description", "why", "setting", "source"] as const)
        expect(String(r[key] ?? "").length, `${r.id}.${key}`).toBeGreaterThan(0);
    }
    const raw = parseYaml(readFileSync(join(PROFILES_DIR, `${name}.yaml`), "utf8")) as { source: { document: string; read: string } };
    expect(raw.source.document.length).toBeGreaterThan(0);
  });

  it("zero-exhaust is the four recommended profiles together, rule for rule", () => {
    const parts = ["office-neither", "connected-experiences-off", "windows-security", "no-content"].flatMap((n) =>
      loadProfile(n, catalog).rules.map((r) => r.id),
    );
    expect(loadProfile("zero-exhaust", catalog).rules.map((r) => r.id)).toEqual(parts);
  });
});

describe("a bad profile file", () => {
  const dir = tempDir("exhaust-profiles-");
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const header = `name: mine\ndescription: a lab profile\nsource: { document: lab notes, read: 2026-11-24 }\n`;
  const okRule = `  - { id: mine.a, kind: max-events-per-name, max: 3, description: d, why: w, source: s }\n`;
  const cases: Array<[string, string, RegExp]> = [
    ["bad YAML", `name: [mine\n`, /YAML/],
    [
      "unknown kind",
      `${header}rules:\n  - { id: mine.x, kind: event-teleport, description: d, why: w, source: s }\n`,
      /rule mine\.x: unknown kind "event-teleport"/,
    ],
    [
      "missing source",
      `${header}rules:\n  - { id: mine.x, kind: max-events-per-name, max: 3, description: d, why: w }\n`,
      /rule mine\.x: source/,
    ],
    [
      "missing why",
      `${header}rules:\n  - { id: mine.x, kind: category-forbidden, categories: [content], description: d, source: s }\n`,
      /rule mine\.x: why/,
    ],
    [
      "unknown endpoint id",
      `${header}rules:\n  - { id: mine.x, kind: endpoint-forbidden, endpoints: [nowhere], description: d, why: w, source: s }\n`,
      /no entry nowhere/,
    ],
    [
      "endpoint rule without selector",
      `${header}rules:\n  - { id: mine.x, kind: endpoint-forbidden, description: d, why: w, source: s }\n`,
      /at least one of hosts/,
    ],
    [
      "unknown parameter",
      `${header}rules:\n  - { id: mine.x, kind: max-events-per-name, max: 3, maximum: 4, description: d, why: w, source: s }\n`,
      /rule mine\.x: .*maximum/,
    ],
    ["duplicate id", `${header}rules:\n${okRule}${okRule}`, /rule mine\.a: duplicate id/],
    ["include of a missing profile", `${header}include: [nothing-here]\nrules:\n${okRule}`, /include nothing-here/],
    ["no rules", header, /no rules/],
  ];
  it.each(cases)("%s: exit 2 with one line naming the file and the problem", (_, text, problem) => {
    const file = join(dir, `${_.replace(/\W+/g, "-")}.yaml`);
    writeFileSync(file, text);
    const r = runCli(["verify", "--profile", file, "--db", join(dir, "x.db")]);
    expect(r.status).toBe(2);
    const lines = r.stderr.trim().split("\n");
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain(file);
    expect(lines[0]).toMatch(problem);
    expect(lines[0]).toContain("[EXH_PROFILE_INVALID]");
  });

  it("an include cycle is refused", () => {
    writeFileSync(join(dir, "a.yaml"), `${header.replace("mine", "a")}include: [./b.yaml]\nrules:\n${okRule}`);
    writeFileSync(join(dir, "b.yaml"), `${header.replace("mine", "b")}include: [./a.yaml]\n`);
    expect(() => loadProfile(join(dir, "a.yaml"), catalog)).toThrow(/include cycle: a\.yaml → b\.yaml → a\.yaml/);
  });

  it("a user profile can include a shipped one and add its own rules", () => {
    writeFileSync(join(dir, "lab.yaml"), `${header.replace("mine", "lab")}include: [office-neither]\nrules:\n${okRule}`);
    const p = loadProfile(join(dir, "lab.yaml"), catalog);
    expect(p.rules.map((r) => r.id)).toEqual(["office-neither.no-diagnostic-events", "mine.a"]);
    expect(p.rules[1].profile).toBe("lab");
  });
});
