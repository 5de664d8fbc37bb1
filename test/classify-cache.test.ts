/**
 * The classifier keeps results per path (the rule, the detector flags, and the outcome of a
 * declaration or detector hit for each distinct set of inputs). A result must never depend on what
 * was classified before: the same events classified in opposite orders, warm and from scratch, by
 * separate rule-pack instances, give identical results.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { CACHE_GENERATION_ENTRIES } from "../src/classify/detectors.js";
import { buildRulePacks, classifyEvent } from "../src/classify/engine.js";
import type { ClassifyContext } from "../src/classify/types.js";
import { decodeUpload } from "../src/decode/registry.js";
import type { DecodedEvent } from "../src/decode/types.js";
import { CLASSIFIERS_DIR } from "../src/paths.js";
import { encodeCsRecords, makeCsRecord } from "./helpers/bond-writer.js";
import { makeField } from "./helpers/decode.js";
import { REAL_WORLD_SAMPLES } from "./helpers/real-world.js";

interface Case {
  event: DecodedEvent;
  context?: ClassifyContext;
}

function decoded(path: string, contentType: string, body: Buffer): Case[] {
  const up = decodeUpload({ method: "POST", path, headers: [["Content-Type", contentType]], body });
  expect(up.events.length).toBeGreaterThan(0);
  return up.events.map((event) => ({ event, context: { facts: up.facts } }));
}

/** Values that hit different detectors (content, personal, identifiers, nothing). */
const values = [
  "C:\\Users\\jdoe\\Documents\\Merger plan.docx",
  "https://www.bing.com/search?q=salary+negotiation",
  "jdoe@contoso.com",
  "10.1.2.3",
  "1b4e28ba-2fa1-11d2-883f-0b0000000001",
  "0551da834d91078fb8f41d5abc217566329d490ea91422c5d61c50a1bf8e2d09",
  "please send me the quarterly numbers before the board meeting",
  "Word",
  "16.0.17029.20108",
];

function cases(): Case[] {
  const out: Case[] = [];
  // Bond events as the pipeline bench makes them: the same paths with values that vary.
  out.push(
    ...decoded(
      "/OneCollector/1.0/",
      "application/bond-compact-binary",
      Buffer.from(encodeCsRecords(Array.from({ length: 30 }, (_, i) => makeCsRecord(i, 17)))),
    ),
  );
  // One path, values that hit different detectors (content, personal, identifiers, nothing), in
  // events of different groups (each has its own default category), with and without declarations.
  const names = ["Office.Performance.Boot", "Microsoft.WebBrowser.HistoryJournal.HJ_BeforeNavigateExtended", "Unknown.Vendor.Event"];
  for (const name of names)
    for (const [i, v] of values.entries())
      out.push({
        event: {
          index: 0,
          name,
          fields: [
            makeField("Data.value", v),
            makeField("Data.value", v, { piiKind: 1 + (i % 3) }),
            makeField("Data.value", v, { customerContent: true }),
            makeField("ext.user.localId", v, undefined, "A"),
            makeField("Data.copy", v),
          ],
        },
      });
  if (existsSync(REAL_WORLD_SAMPLES)) {
    const read = (rel: string) =>
      readFileSync(join(REAL_WORLD_SAMPLES, rel))
        .toString("utf8")
        .replace(/^\uFEFF/, "");
    for (const f of ["keka-remotedependency.json", "courselabs.json", "hfp-karate-lba.json", "hfp-karate-full.json"])
      out.push(...decoded("/v2/track", "application/json", Buffer.from(read(`ai-web-pastes/${f}`))));
    const dotnet = read("dotnet-cli/telemetry-lines.txt")
      .split("\n")
      .filter((l) => l.includes("{"))
      .map((l) => l.slice(l.indexOf("{")))
      .join("\n");
    out.push(...decoded("/v2/track", "application/json", Buffer.from(dotnet)));
    const onecollector = read("otel-onecollector/LogRecordCommonSchemaJsonSerializerTests.expected.jsonl");
    out.push(...decoded("/OneCollector/1.0/", "application/x-json-stream", Buffer.from(onecollector)));
  }
  return out;
}

describe("classification caches", () => {
  const all = cases();

  it("give every event the same result in any order, warm or cold", () => {
    const forward = buildRulePacks(CLASSIFIERS_DIR);
    const backward = buildRulePacks(CLASSIFIERS_DIR);
    const first = all.map((c) => classifyEvent(c.event, forward, c.context));
    const reversed = [...all]
      .reverse()
      .map((c) => classifyEvent(c.event, backward, c.context))
      .reverse();
    const again = all.map((c) => classifyEvent(c.event, forward, c.context));
    expect(reversed).toEqual(first);
    expect(again).toEqual(first);
    // The slow path (a declaration or a detector hit) ran, with findings, for many fields.
    const slow = first.flatMap((e) => e.fields).filter((f) => f.reasons.length > 1);
    expect(slow.length).toBeGreaterThan(100);
    expect(first.some((e) => e.findings.some((f) => f.code.startsWith("content.in-")))).toBe(true);
  });

  it("give the same result as rule packs that have seen nothing else", () => {
    const warm = buildRulePacks(CLASSIFIERS_DIR);
    for (const c of all) classifyEvent(c.event, warm, c.context);
    // A fresh instance per event is slow to build: every 40th event, and the hand-made ones.
    const picked = all.filter((c, i) => i % 40 === 0 || c.event.fields[0]?.path === "Data.value");
    for (const c of picked)
      expect(classifyEvent(c.event, warm, c.context)).toEqual(classifyEvent(c.event, buildRulePacks(CLASSIFIERS_DIR), c.context));
  });

  it("give a value the same detection from either generation of the value cache, and after it was dropped", () => {
    const warm = buildRulePacks(CLASSIFIERS_DIR).detectors;
    // The generations are private; the test reads them to know which stage each check reaches.
    const generations = warm as unknown as { cache: Map<string, unknown>; previous: Map<string, unknown> };
    const fresh = buildRulePacks(CLASSIFIERS_DIR).detectors;
    const expected = new Map(values.map((v) => [v, fresh.detect(v).hits.map((d) => d.id)]));
    expect([...expected.values()].filter((h) => h.length > 0).length).toBeGreaterThan(4);
    const hits = (v: string) => warm.detect(v).hits.map((d) => d.id);
    let n = 0;
    const fill = (count: number) => {
      for (const end = n + count; n < end; n++) warm.detect(`generated ${n} jdoe${n}@contoso.com`);
    };
    for (const v of values) expect(hits(v), `${v}, new`).toEqual(expected.get(v));
    fill(CACHE_GENERATION_ENTRIES);
    for (const v of values) {
      expect(generations.previous.has(v) && !generations.cache.has(v), `${v} in the generation before`).toBe(true);
      expect(hits(v), `${v}, from the generation before`).toEqual(expected.get(v));
    }
    fill(2 * CACHE_GENERATION_ENTRIES);
    for (const v of values) {
      expect(generations.previous.has(v) || generations.cache.has(v), `${v} dropped`).toBe(false);
      expect(hits(v), `${v}, after being dropped`).toEqual(expected.get(v));
    }
    expect(generations.cache.size).toBeLessThanOrEqual(CACHE_GENERATION_ENTRIES);
    expect(generations.previous.size).toBeLessThanOrEqual(CACHE_GENERATION_ENTRIES);
    expect(hits("generated 7 jdoe7@contoso.com")).toContain("detector.email");
  });

  it("hands out results that cannot be changed through one event and seen in another", () => {
    const packs = buildRulePacks(CLASSIFIERS_DIR);
    // The envelope's ver "4.0" also fires the number-string detector: a result of the slow path.
    const c = all.find((x) => x.event.name === "Office.Performance.Boot")!;
    const f = classifyEvent(c.event, packs, c.context).fields[0];
    expect(f.reasons.length).toBeGreaterThan(1);
    expect(() => f.reasons.push("x")).toThrow();
    expect(() => Object.assign(f, { category: "functional" })).toThrow();
  });
});
