/**
 * The project's documentation stands alone: nothing users read (classifiers/, docs/, README.md)
 * sends them to a folder beside the repository, and every citation of the project's own reference
 * pages in a rule source names a section or signal that exists there.
 */
import { describe, expect, it } from "vitest";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { PACKAGE_ROOT } from "../src/paths.js";

const FORBIDDEN = ["shared/docs", "shared/data", "../shared"];

function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? filesUnder(path) : [path];
  });
}

const userFiles = [
  ...filesUnder(join(PACKAGE_ROOT, "classifiers")),
  ...filesUnder(join(PACKAGE_ROOT, "docs")),
  join(PACKAGE_ROOT, "README.md"),
];
const classifierLines = filesUnder(join(PACKAGE_ROOT, "classifiers")).flatMap((path) =>
  readFileSync(path, "utf8")
    .split(/\r?\n/)
    .map((text, i) => ({ where: `${relative(PACKAGE_ROOT, path)}:${i + 1}`, text })),
);

const WIRE = "docs/wire-formats.md";
const CATEGORIES = "docs/categories.md";
const wireHeadings = readFileSync(join(PACKAGE_ROOT, WIRE), "utf8")
  .split(/\r?\n/)
  .filter((l) => /^#{2,4} /.test(l));
const categoriesText = readFileSync(join(PACKAGE_ROOT, CATEGORIES), "utf8");
const categoriesHeadings = categoriesText
  .split(/\r?\n/)
  .filter((l) => /^#{2,4} /.test(l))
  .map((l) => l.replace(/^#+ /, ""));

/** The numbered signals of docs/categories.md: the ordered list under its "Signals" heading. */
function signals(text: string): Set<number> {
  const section = text.split(/^## /m).find((s) => s.startsWith("Signals")) ?? "";
  return new Set([...section.matchAll(/^(\d+)\. \*\*/gm)].map((m) => Number(m[1])));
}

/** The part of a line that cites `doc`: from each mention up to the next mention of another document. */
function citing(text: string, doc: string): string[] {
  const parts: string[] = [];
  let at = text.indexOf(doc);
  while (at >= 0) {
    const rest = text.slice(at + doc.length);
    const next = rest.search(/docs\/[\w-]+\.md|\bRFC \d|[\w-]+\.md\b/);
    parts.push(next >= 0 ? rest.slice(0, next) : rest);
    at = text.indexOf(doc, at + doc.length);
  }
  return parts;
}

/** Sections a citation of docs/wire-formats.md names (§N, §N.M, "section N") that have no heading there. */
function missingWireSections(text: string, headings: string[]): string[] {
  const missing: string[] = [];
  for (const part of citing(text, WIRE)) {
    const refs = [...part.matchAll(/§\s?(\d+(?:\.\d+)?)|\bsection (\d+)\b/g)].map((m) => m[1] ?? m[2]);
    for (const ref of refs) {
      const heading = ref.includes(".") ? new RegExp(`^#{3,4} ${ref.replace(".", "\\.")}\\s`) : new RegExp(`^## ${ref}\\.\\s`);
      if (!headings.some((h) => heading.test(h))) missing.push(`§${ref}`);
    }
  }
  return missing;
}

/** Signals and quoted section names a citation of docs/categories.md names that the page lacks. */
function missingCategoryRefs(text: string, known: Set<number>, headings: string[]): string[] {
  const missing: string[] = [];
  for (const part of citing(text, CATEGORIES)) {
    for (const m of part.matchAll(/\bsignals? (\d+)/g)) if (!known.has(Number(m[1]))) missing.push(`signal ${m[1]}`);
    for (const m of part.matchAll(/'([A-Z][^:]*?)'(?=[:;,)\s]|$)/g)) {
      if (!headings.some((h) => h.startsWith(m[1]))) missing.push(`'${m[1]}'`);
    }
  }
  return missing;
}

describe("the docs stand alone", () => {
  it("no file under classifiers/ or docs/, nor README.md, points at shared/docs, shared/data or ../shared", () => {
    expect(userFiles.length).toBeGreaterThan(20);
    const hits = userFiles.flatMap((path) =>
      readFileSync(path, "utf8")
        .split(/\r?\n/)
        .flatMap((line, i) => FORBIDDEN.filter((f) => line.includes(f)).map((f) => `${relative(PACKAGE_ROOT, path)}:${i + 1}: ${f}`)),
    );
    expect(hits).toEqual([]);
  });

  it("every docs/wire-formats.md citation in classifiers/ names a section that exists there", () => {
    const cites = classifierLines.filter((l) => l.text.includes(WIRE));
    expect(cites.length).toBeGreaterThan(20);
    const missing = cites.flatMap((l) => missingWireSections(l.text, wireHeadings).map((m) => `${l.where}: ${m}`));
    expect(missing).toEqual([]);
    // Every top-level section 0–8 keeps its number, so "§N.M" means the same everywhere.
    for (let n = 0; n <= 8; n++)
      expect(
        wireHeadings.some((h) => h.startsWith(`## ${n}. `)),
        `## ${n}.`,
      ).toBe(true);
  });

  it("every docs/categories.md citation in classifiers/ names a signal or section that exists there", () => {
    const known = signals(categoriesText);
    expect([...known].sort()).toEqual([1, 2, 3, 4]);
    const cites = classifierLines.filter((l) => l.text.includes(CATEGORIES));
    expect(cites.length).toBeGreaterThan(10);
    expect(cites.some((l) => /signal \d/.test(l.text))).toBe(true);
    const missing = cites.flatMap((l) => missingCategoryRefs(l.text, known, categoriesHeadings).map((m) => `${l.where}: ${m}`));
    expect(missing).toEqual([]);
  });

  it("the checks catch a citation of a section, signal or table that does not exist", () => {
    expect(missingWireSections(`source: "${WIRE} §2.3 and §9.4; section 1"`, wireHeadings)).toEqual(["§9.4"]);
    expect(missingWireSections(`source: "${WIRE}, section 12"`, wireHeadings)).toEqual(["§12"]);
    expect(missingCategoryRefs(`source: "${CATEGORIES}, signal 7"`, signals(categoriesText), categoriesHeadings)).toEqual(["signal 7"]);
    expect(
      missingCategoryRefs(`source: "${CATEGORIES}, table 'Microsoft's own tables': x"`, signals(categoriesText), categoriesHeadings),
    ).toEqual(["'Microsoft's own tables'"]);
  });

  it("the category reference is linked from the classification docs", () => {
    for (const doc of ["docs/classification-rules.md", "docs/guide.md"]) {
      expect(readFileSync(join(PACKAGE_ROOT, doc), "utf8"), doc).toContain("](categories.md)");
    }
  });
});
