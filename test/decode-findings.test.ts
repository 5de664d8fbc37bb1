import { describe, expect, it } from "vitest";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { PACKAGE_ROOT } from "../src/paths.js";
import { DECODE_FINDINGS, isDecodeFindingCode } from "../src/decode/findings.js";
import type { Finding } from "../src/decode/types.js";

/** The table of docs/decode-findings.md: code → severity (a row may name several codes). */
function documented(): Map<string, string> {
  const doc = readFileSync(join(PACKAGE_ROOT, "docs", "decode-findings.md"), "utf8");
  const out = new Map<string, string>();
  for (const line of doc.split("\n")) {
    const cells = line.split("|").map((c) => c.trim());
    if (cells.length < 4 || !cells[1].startsWith("`")) continue;
    for (const m of cells[1].matchAll(/`([a-z]+\.[a-z0-9.-]+)`/g)) out.set(m[1], cells[2]);
  }
  return out;
}

describe("decode finding codes", () => {
  it("every registered code (src/decode/findings.ts) is documented in docs/decode-findings.md with its severity", () => {
    const doc = documented();
    const registered = Object.entries(DECODE_FINDINGS);
    expect(registered.length).toBeGreaterThan(20);
    const wrong = registered
      .filter(([code, spec]) => doc.get(code) !== spec.severity)
      .map(([code, spec]) => `${code}: ${spec.severity} registered, ${doc.get(code) ?? "not"} documented`);
    expect(wrong).toEqual([]);
  });

  it("every documented code is registered (the docs name no code the decoders cannot produce)", () => {
    const unregistered = [...documented().keys()].filter((c) => !isDecodeFindingCode(c));
    expect(documented().size).toBeGreaterThan(20);
    expect(unregistered).toEqual([]);
  });

  it("every code has a summary and belongs to a decode family", () => {
    for (const [code, spec] of Object.entries(DECODE_FINDINGS)) {
      expect(code).toMatch(/^(bond|aria|json|encoding|appinsights|form|multipart|decode)\.[a-z0-9-]+(\.[a-z0-9-]+)*$/);
      expect(spec.summary.length).toBeGreaterThan(5);
    }
    expect(isDecodeFindingCode("bond.no-such-code")).toBe(false);
  });

  it("a finding carries the severity registered for its code (the typecheck, npx tsc -p tsconfig.json, fails otherwise)", () => {
    // @ts-expect-error json.empty is registered as info, so a finding cannot call it an error
    const wrong: Finding = { code: "json.empty", severity: "error", message: "x" };
    // @ts-expect-error an unregistered code does not compile
    const unknown: Finding = { code: "json.no-such-code", severity: "error", message: "x" };
    const right: Finding = { code: "json.empty", severity: "info", message: "x" };
    expect(DECODE_FINDINGS[right.code].severity).toBe(right.severity);
    void [wrong, unknown]; // they exist for the two @ts-expect-error lines above
  });
});
