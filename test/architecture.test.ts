/**
 * The folders of src/ form a directed acyclic graph (docs/architecture.md): a folder may import
 * from folders below it, never from one that (directly or through others) imports it back. Every
 * import counts, type-only ones and `import("…")` type queries included, because a type import is
 * still a dependency a reader has to follow. Files directly in src/ (types.ts, errors.ts, log.ts …)
 * are one node, "(root)".
 */
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve, sep } from "node:path";
import ts from "typescript";
import { describe, expect, it } from "vitest";

const SRC = resolve(import.meta.dirname, "..", "src");

interface Edge {
  from: string;
  to: string;
  /** file : specifier, one example per import. */
  via: string[];
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    if (e.isDirectory()) return sourceFiles(p);
    return e.name.endsWith(".ts") ? [p] : [];
  });
}

function folderOf(file: string): string {
  const parts = relative(SRC, file).split(sep);
  return parts.length > 1 ? parts[0] : "(root)";
}

/** Folder → folder edges of src/, with the imports that make each one. */
export function folderGraph(): Map<string, Edge> {
  const edges = new Map<string, Edge>();
  for (const file of sourceFiles(SRC)) {
    const info = ts.preProcessFile(readFileSync(file, "utf8"), true, true);
    for (const imp of info.importedFiles) {
      if (!imp.fileName.startsWith(".")) continue;
      const target = resolve(dirname(file), imp.fileName);
      if (!target.startsWith(SRC + sep)) continue;
      const from = folderOf(file);
      const to = folderOf(target);
      if (from === to) continue;
      const key = `${from}->${to}`;
      const edge = edges.get(key) ?? { from, to, via: [] };
      edge.via.push(`${relative(SRC, file)} : ${imp.fileName}`);
      edges.set(key, edge);
    }
  }
  return edges;
}

/** Strongly connected components with more than one node (Tarjan): each is a set of folders in a cycle. */
export function cycles(nodes: Iterable<string>, edges: Iterable<{ from: string; to: string }>): string[][] {
  const out = new Map<string, string[]>();
  const all = new Set(nodes);
  for (const e of edges) {
    all.add(e.from).add(e.to);
    out.set(e.from, [...(out.get(e.from) ?? []), e.to]);
  }
  let index = 0;
  const idx = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  const visit = (v: string) => {
    idx.set(v, index);
    low.set(v, index++);
    stack.push(v);
    onStack.add(v);
    for (const w of out.get(v) ?? []) {
      if (!idx.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, idx.get(w)!));
    }
    if (low.get(v) === idx.get(v)) {
      const scc: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        scc.push(w);
      } while (w !== v);
      if (scc.length > 1) found.push(scc.sort());
    }
  };
  for (const v of [...all].sort()) if (!idx.has(v)) visit(v);
  return found;
}

describe("architecture: folder imports", () => {
  it("the cycle finder finds a cycle when there is one (and none when there is not)", () => {
    expect(
      cycles(
        [],
        [
          { from: "a", to: "b" },
          { from: "b", to: "c" },
        ],
      ),
    ).toEqual([]);
    expect(
      cycles(
        ["d"],
        [
          { from: "a", to: "b" },
          { from: "b", to: "c" },
          { from: "c", to: "a" },
          { from: "c", to: "d" },
        ],
      ),
    ).toEqual([["a", "b", "c"]]);
  });

  it("reads type-only imports and import() type queries as dependencies", () => {
    const graph = folderGraph();
    // src/import/worker.ts names a type of src/evidence/ only through import("…").
    expect(graph.get("import->evidence")?.via.some((v) => v.startsWith(`import${sep}worker.ts`))).toBe(true);
    expect(graph.size).toBeGreaterThan(20);
  });

  it("no import cycle between the folders of src/", () => {
    const graph = folderGraph();
    const found = cycles([], graph.values());
    const described = found.map((scc) => {
      const inside = [...graph.values()].filter((e) => scc.includes(e.from) && scc.includes(e.to));
      return `cycle {${scc.join(", ")}}:\n${inside.map((e) => `  ${e.from} -> ${e.to}: ${e.via.join("; ")}`).join("\n")}`;
    });
    expect(described.join("\n"), "folders that import each other (docs/architecture.md)").toBe("");
  });
});

/**
 * Adding a decoder, an addon with an option, a verification kind or an export format is one new
 * file plus one registry line (docs/architecture.md, "Where to add things"). Each case imports
 * every module of its folder and finds the exported values of the registry's kind: one that the
 * registry does not list (a new file without its line) fails, naming the file and the export.
 */
describe("architecture: registries", () => {
  type Shape = (v: unknown) => boolean;
  const has = (v: unknown, strings: string[], functions: string[]) =>
    typeof v === "object" &&
    v !== null &&
    strings.every((k) => typeof (v as Record<string, unknown>)[k] === "string") &&
    functions.every((k) => typeof (v as Record<string, unknown>)[k] === "function");

  /** Every exported value of the folder's modules (subfolders included) that has the shape, as "file: export". */
  async function exportedOfShape(folder: string, shape: Shape): Promise<Map<unknown, string>> {
    const found = new Map<unknown, string>();
    for (const file of sourceFiles(join(SRC, folder))) {
      const mod = (await import(file)) as Record<string, unknown>;
      for (const [name, value] of Object.entries(mod)) {
        if (shape(value)) found.set(value, `${relative(SRC, file)}: ${name}`);
      }
    }
    return found;
  }

  async function unlisted(folder: string, shape: Shape, registry: readonly unknown[], exempt: unknown[] = []): Promise<string[]> {
    const found = await exportedOfShape(folder, shape);
    expect(found.size, `the test finds the ${folder} registry's kind of export`).toBeGreaterThan(0);
    for (const listed of registry) expect(found.has(listed), `a registry entry of ${folder} is exported by a file there`).toBe(true);
    return [...found].filter(([v]) => !registry.includes(v) && !exempt.includes(v)).map(([, where]) => where);
  }

  it("every decoder in src/decode is in DECODERS (opaque is the fallback)", async () => {
    const { DECODERS } = await import("../src/decode/registry.js");
    const { opaqueDecoder } = await import("../src/decode/generic.js");
    const shape: Shape = (v) => has(v, ["id"], ["decode"]) && typeof (v as { version?: unknown }).version === "number";
    expect(await unlisted("decode", shape, DECODERS, [opaqueDecoder])).toEqual([]);
  });

  it("every addon module in src/proxy/addons is in ADDON_MODULES", async () => {
    const { ADDON_MODULES } = await import("../src/proxy/addons/registry.js");
    expect(await unlisted(join("proxy", "addons"), (v) => has(v, ["name"], ["create"]), ADDON_MODULES)).toEqual([]);
  });

  it("every verification rule kind in src/verify/kinds is in RULE_KINDS", async () => {
    const { RULE_KINDS } = await import("../src/verify/kinds/index.js");
    expect(await unlisted(join("verify", "kinds"), (v) => has(v, ["kind"], ["check"]), [...RULE_KINDS.values()])).toEqual([]);
  });

  it("every export format in src/export is in EXPORT_FORMATS", async () => {
    const { EXPORT_FORMATS } = await import("../src/export/formats.js");
    expect(await unlisted("export", (v) => has(v, ["name"], ["out", "write"]), EXPORT_FORMATS)).toEqual([]);
  });
});
