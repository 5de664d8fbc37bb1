import { describe, expect, it } from "vitest";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { PACKAGE_ROOT } from "../src/paths.js";

describe("decode finding codes", () => {
  it("every literal code used in src/decode is documented in docs/decode-findings.md", () => {
    const doc = readFileSync(join(PACKAGE_ROOT, "docs", "decode-findings.md"), "utf8");
    const documented = new Set([...doc.matchAll(/`([a-z]+\.[a-z0-9.-]+)`/g)].map((m) => m[1]));
    const dir = join(PACKAGE_ROOT, "src", "decode");
    const used = new Set<string>();
    for (const f of readdirSync(dir).filter((n) => n.endsWith(".ts"))) {
      const src = readFileSync(join(dir, f), "utf8");
      for (const m of src.matchAll(/["`]((?:bond|aria|json|encoding|appinsights|form|multipart|decode)\.[a-z0-9-]+(?:\.[a-z0-9-]+)*)["`]/g)) used.add(m[1]);
    }
    // Codes built at run time from a prefix are documented per prefix.
    for (const suffix of ["too-many-fields", "too-many-findings", "unknown-field", "too-deep"]) used.delete(`${suffix}`);
    const registryFallbacks = ["encoding.failed", "decode.failed"];
    const missing = [...used].filter((c) => !documented.has(c) && !(registryFallbacks.includes(c) && documented.has(`${c}.internal`)));
    expect(used.size).toBeGreaterThan(20);
    expect(missing).toEqual([]);
  });
});
