/**
 * Rule packs, profiles and the endpoint catalogue share one source schema and one YAML loader
 * (src/sources.ts): every shipped file's source passes it, and each loader refuses a bad source
 * with its own error code.
 */
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parse as parseYaml } from "yaml";
import { describe, expect, it } from "vitest";
import { EndpointCatalog } from "../src/catalog/endpoints.js";
import { isExhaustError } from "../src/errors.js";
import { CLASSIFIERS_DIR } from "../src/paths.js";
import { SourceSchema } from "../src/sources.js";
import { escapeRegExp, globPattern, globToRegExp } from "../src/glob.js";

const yamlFiles = (dir: string) =>
  readdirSync(join(CLASSIFIERS_DIR, dir))
    .filter((f) => f.endsWith(".yaml"))
    .map((f) => join(CLASSIFIERS_DIR, dir, f));

describe("one source schema for rule packs, profiles and endpoints", () => {
  it("every shipped rule pack, profile and the endpoint catalogue names its source: document, optional URL, the day it was read", () => {
    const files = [
      ...yamlFiles("fields"),
      ...yamlFiles("detectors"),
      ...yamlFiles("events"),
      ...yamlFiles("profiles"),
      join(CLASSIFIERS_DIR, "endpoints.yaml"),
    ];
    expect(files.length).toBeGreaterThan(15);
    for (const f of files) {
      const raw = parseYaml(readFileSync(f, "utf8")) as { source?: unknown };
      const parsed = SourceSchema.safeParse(raw.source);
      expect(parsed.success, `${f}: ${parsed.error?.issues[0]?.message}`).toBe(true);
    }
  });

  it("the endpoint catalogue refuses a source without the date it was read, like packs and profiles do", () => {
    const dir = mkdtempSync(join(tmpdir(), "exhaust-sources-"));
    const file = join(dir, "endpoints.yaml");
    const endpoints =
      'endpoints:\n  - id: x\n    hosts: ["x.example.test"]\n    product: X\n    purpose: diagnostic-upload\n    source: a test\n';
    writeFileSync(file, `source:\n  document: a test\n  read: last week\n${endpoints}`);
    let err: unknown;
    try {
      EndpointCatalog.load(file);
    } catch (e) {
      err = e;
    }
    expect(isExhaustError(err) && err.code).toBe("EXH_CATALOG_INVALID");
    expect(String((err as Error).message)).toMatch(/read must be the date/);
    writeFileSync(file, `source:\n  document: a test\n  url: https://example.test/doc\n  read: 2026-12-01\n${endpoints}`);
    expect(EndpointCatalog.load(file).match("x.example.test")?.id).toBe("x");
    writeFileSync(file, `source:\n  document: a test\n  read: [unclosed\n${endpoints}`);
    expect(() => EndpointCatalog.load(file)).toThrow(expect.objectContaining({ code: "EXH_CATALOG_INVALID" }));
  });
});

describe("globs, written once (src/glob.ts)", () => {
  it("a glob's `*` is any run (or what the caller says), everything else literal", () => {
    expect(globToRegExp("Auth*", "i").test("authMsaDeviceTicket")).toBe(true);
    expect(globToRegExp("a.b*").test("aXb")).toBe(false);
    expect(globToRegExp("(x)[y]-{z}+?*").test("(x)[y]-{z}+?tail")).toBe(true);
    expect(new RegExp(`^${globPattern("*.example.test", "[^.]*")}$`).test("a.b.example.test")).toBe(false);
    expect(new RegExp(escapeRegExp("1+1=2?")).test("1+1=2?")).toBe(true);
  });
});
