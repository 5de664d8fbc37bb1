import { afterAll, describe, expect, it } from "vitest";
import { cpSync, mkdtempSync, rmSync, writeFileSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CLASSIFIERS_DIR } from "../src/paths.js";
import { isExhaustError } from "../src/errors.js";
import { buildRulePacks, loadRulePacks } from "../src/classify/engine.js";
import { rulePacksFingerprint } from "../src/classify/fingerprint.js";

const tmpRoots: string[] = [];
afterAll(() => {
  for (const d of tmpRoots) rmSync(d, { recursive: true, force: true });
});

/** A copy of the real classifiers/ with one file added or replaced. */
function packsWith(file: string, text: string): string {
  const root = mkdtempSync(join(tmpdir(), "exhaust-classify-"));
  tmpRoots.push(root);
  const dir = join(root, "classifiers");
  cpSync(CLASSIFIERS_DIR, dir, { recursive: true });
  writeFileSync(join(dir, file), text);
  return dir;
}

function loadError(dir: string): Error & { code?: string } {
  try {
    buildRulePacks(dir);
  } catch (e) {
    expect(isExhaustError(e)).toBe(true);
    return e as Error & { code?: string };
  }
  throw new Error("expected the packs to be refused");
}

const SOURCE = "source:\n  document: test\n  read: 2026-11-24\n";

describe("rule packs", () => {
  const packs = loadRulePacks();

  it("load once and are cached per directory", () => {
    expect(loadRulePacks()).toBe(packs);
    expect(packs.files).toEqual(
      expect.arrayContaining([
        "classifiers/fields/part-a.yaml",
        "classifiers/detectors/content.yaml",
        "classifiers/events/rules.yaml",
        "classifiers/events/office-events.tsv",
      ]),
    );
  });

  it("give every rule a why and a source (its own or its pack's), and explain it", () => {
    expect(packs.rules.size).toBeGreaterThan(1800);
    for (const r of packs.rules.values()) {
      expect(r.why.trim(), r.id).not.toBe("");
      expect(r.source.trim(), r.id).not.toBe("");
      expect(packs.explain(r.id)).toContain(r.source);
    }
  });

  it("refuse a duplicate rule id across packs, naming both files and the id", () => {
    const dir = packsWith(
      "fields/zz-dup.yaml",
      `${SOURCE}rules:\n  - id: field.part-a.device-localid\n    match: { path: Data.Other }\n    category: diagnostic\n    why: again\n`,
    );
    const e = loadError(dir);
    expect(e.message).toContain("classifiers/fields/zz-dup.yaml");
    expect(e.message).toContain("field.part-a.device-localid");
    expect(e.message).toContain("classifiers/fields/part-a.yaml");
    expect(e.message).toMatch(/duplicate rule id/);
  });

  it("refuse a duplicate id between a detector and the catalogue's namespace too (ids are global)", () => {
    const dir = packsWith(
      "events/zz-dup.yaml",
      `${SOURCE}rules:\n  - id: event.glob.windows-census\n    match: { name: "Office.Foo" }\n    group: required\n    why: again\n`,
    );
    expect(loadError(dir).message).toContain("event.glob.windows-census");
    expect(loadError(dir).message).toMatch(/duplicate rule id/);
  });

  it("refuse a glob that would give a group to names no catalogue lists unless its source documents the namespace", () => {
    const rule = `${SOURCE}rules:\n  - id: event.glob.zz-made-up\n    match: { name: "Office.Made.*" }\n    group: essential\n    why: all of them are essential, surely\n`;
    const e = loadError(packsWith("events/zz-glob.yaml", rule));
    expect(e.message).toContain("event.glob.zz-made-up");
    expect(e.message).toContain("documentsNamespace");
    const documented =
      rule + `    documentsNamespace: "the source has a section for the namespace and says every event in it is essential"\n`;
    expect(() => buildRulePacks(packsWith("events/zz-glob.yaml", documented))).not.toThrow();
  });

  it("refuse a pack without a source", () => {
    const dir = packsWith(
      "fields/zz-nosource.yaml",
      "rules:\n  - id: field.test.x\n    match: { path: X }\n    category: diagnostic\n    why: test\n",
    );
    const e = loadError(dir);
    expect(e.message).toContain("fields/zz-nosource.yaml");
    expect(e.message).toContain("source");
  });

  it("refuse a pack source without the date it was read", () => {
    const dir = packsWith(
      "fields/zz-noread.yaml",
      "source:\n  document: test\nrules:\n  - id: field.test.x\n    match: { path: X }\n    category: diagnostic\n    why: test\n",
    );
    expect(loadError(dir).message).toContain("read");
  });

  it("refuse an empty rule source, naming the rule", () => {
    const dir = packsWith(
      "fields/zz-empty.yaml",
      `${SOURCE}rules:\n  - id: field.test.empty-source\n    match: { path: X }\n    category: diagnostic\n    why: test\n    source: ""\n`,
    );
    expect(loadError(dir).message).toContain("field.test.empty-source");
  });

  it("refuse a rule without a why, naming file and rule", () => {
    const dir = packsWith(
      "fields/zz-nowhy.yaml",
      `${SOURCE}rules:\n  - id: field.test.nowhy\n    match: { path: X }\n    category: diagnostic\n`,
    );
    const e = loadError(dir);
    expect(e.message).toContain("fields/zz-nowhy.yaml");
    expect(e.message).toContain("field.test.nowhy");
  });

  it("refuse a detector with a bad regex or without examples, naming the detector", () => {
    const base = `${SOURCE}detectors:\n  - id: detector.test-bad\n    class: content\n    confidence: 0.5\n    why: test\n`;
    const badRegex = packsWith(
      "detectors/zz-bad.yaml",
      `${base}    match: { type: regex, pattern: "([" }\n    examples: { positive: [a], negative: [b] }\n`,
    );
    expect(loadError(badRegex).message).toContain("detector.test-bad");
    const noExamples = packsWith(
      "detectors/zz-bad.yaml",
      `${base}    match: { type: regex, pattern: "x" }\n    examples: { positive: [], negative: [b] }\n`,
    );
    expect(loadError(noExamples).message).toMatch(/detector\.test-bad.*positive examples/);
  });

  it("refuse a path claimed by two rules", () => {
    const dir = packsWith(
      "fields/zz-path.yaml",
      `${SOURCE}rules:\n  - id: field.test.localid\n    match: { path: ext.device.localId }\n    category: diagnostic\n    why: test\n`,
    );
    expect(loadError(dir).message).toMatch(/ext\.device\.localId is already claimed by field\.part-a\.device-localid/);
  });

  it("refuse a catalogue row without a source URL, naming line and rule", () => {
    const file = join(CLASSIFIERS_DIR, "events", "office-events.tsv");
    const lines = readFileSync(file, "utf8").split("\n");
    const i = lines.findIndex((l) => l.startsWith("event.office.Office.Word.FileOpen.UserInitiatedOpen\t"));
    const cells = lines[i].split("\t");
    cells[7] = "";
    lines[i] = cells.join("\t");
    const dir = packsWith("events/office-events.tsv", lines.join("\n"));
    const e = loadError(dir);
    expect(e.message).toContain(`classifiers/events/office-events.tsv:${i + 1}`);
    expect(e.message).toContain("event.office.Office.Word.FileOpen.UserInitiatedOpen");
  });

  it("refuse event packs that leave a group without a default", () => {
    const text = readFileSync(join(CLASSIFIERS_DIR, "events", "rules.yaml"), "utf8").replace(
      / {2}- id: event\.default\.optional[\s\S]*?(?= {2}- id: event\.default\.unknown)/,
      "",
    );
    expect(loadError(packsWith("events/rules.yaml", text)).message).toContain("missing optional");
  });
});

describe("rule-pack fingerprint", () => {
  const base = rulePacksFingerprint(CLASSIFIERS_DIR);

  it("changes when a rule file or the endpoint catalogue changes", () => {
    const fields = readFileSync(join(CLASSIFIERS_DIR, "fields", "office-common.yaml"), "utf8");
    expect(rulePacksFingerprint(packsWith("fields/office-common.yaml", `${fields}\n# edited\n`))).not.toBe(base);
    const endpoints = readFileSync(join(CLASSIFIERS_DIR, "endpoints.yaml"), "utf8");
    expect(rulePacksFingerprint(packsWith("endpoints.yaml", `${endpoints}\n# edited\n`))).not.toBe(base);
  });

  it("stays the same when only a verification profile changes", () => {
    expect(rulePacksFingerprint(packsWith("profiles/office-neither.yaml", "# a different profile\n"))).toBe(base);
    expect(rulePacksFingerprint(packsWith("profiles/my-lab.yaml", "name: my-lab\n"))).toBe(base);
  });
});
