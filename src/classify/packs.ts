/**
 * Loads the rule packs in classifiers/ once: fields/*.yaml, detectors/*.yaml, events/*.yaml and the
 * generated events/office-events.tsv. Every file is validated with zod; any problem is an
 * ExhaustError naming the file and the rule id. Rule ids are unique across all packs.
 */
import { readdirSync, readFileSync, existsSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import type { z } from "zod";
import { readYamlFile } from "../sources.js";
import { exhaustError, type ExhaustError } from "../errors.js";
import { globToRegExp } from "../glob.js";
import { CLASSIFIERS_DIR } from "../paths.js";
import { compileDetector, DetectorSet, type Detector } from "./detectors.js";
import {
  CATALOG_COLUMNS,
  CatalogRowSchema,
  DetectorPackSchema,
  EventPackSchema,
  FieldPackSchema,
  GROUPS,
  type CatalogRow,
  type FieldMatch,
  type PackSource,
} from "./schema.js";
import type { Category, ClassifiedField, MicrosoftGroup, PersonalKind } from "./types.js";

// ---------------------------------------------------------------------------------------------
// Errors

export function rulesError(file: string, rule: string | undefined, reason: string, cause?: unknown): ExhaustError {
  const where = rule ? `rule ${rule}: ${reason}` : reason;
  return exhaustError("EXH_RULES_INVALID", { file, rule: rule ?? "-", reason: where }, cause);
}

// ---------------------------------------------------------------------------------------------
// Compiled rules

export type RuleKind = "field" | "header" | "declared" | "context" | "detector" | "event" | "default";

/** What every rule can say about itself. */
export interface RuleInfo {
  id: string;
  kind: RuleKind;
  why: string;
  source: string;
  /** Path relative to the directory above the packs: `classifiers/fields/part-a.yaml`. */
  file: string;
}

export interface FieldRule extends RuleInfo {
  index: number;
  match: FieldMatch;
  category?: Category;
  personal: PersonalKind;
  confidence: number;
  /** false: content detectors do not fire on the rule's path (FieldRuleSchema). */
  contentDetectors?: false;
  /** The shared, frozen result for a field this rule decides alone. */
  plain?: ClassifiedField;
}

export interface EventDefault extends RuleInfo {
  group: MicrosoftGroup;
  category: Category;
  confidence: number;
  plain: ClassifiedField;
}

export interface EventRule extends RuleInfo {
  group: Exclude<MicrosoftGroup, "unknown">;
  catalogCategory?: string;
  subtype?: string;
  docStatus?: string;
  /** Other catalogue entries of the same name (group|category|subtype|source). */
  also?: string;
  /** The event name (catalogue, exact rules) or the glob / endpoint purpose it matches. */
  name?: string;
  glob?: string;
  endpointPurpose?: string;
}

interface CompiledGlob<T> {
  prefix: string;
  re: RegExp;
  rule: T;
}

function compileGlob<T>(glob: string, rule: T, lower = false): CompiledGlob<T> {
  const g = lower ? glob.toLowerCase() : glob;
  return { prefix: g.slice(0, g.indexOf("*")), re: globToRegExp(g), rule };
}

/** Longest literal prefix first, then file order. */
function bySpecificity<T>(a: CompiledGlob<T>, b: CompiledGlob<T>): number {
  return b.prefix.length - a.prefix.length;
}

function freezeResult(r: ClassifiedField): ClassifiedField {
  Object.freeze(r.reasons);
  return Object.freeze(r);
}

// ---------------------------------------------------------------------------------------------
// RulePacks

export class RulePacks {
  /** Every rule by id. */
  readonly rules = new Map<string, RuleInfo>();
  readonly files: string[] = [];

  // fields
  readonly fieldRules: FieldRule[] = [];
  readonly exactPaths = new Map<string, FieldRule>();
  /** Globs whose literal prefix holds a dot, by their first path segment; the rest in `looseGlobs`. */
  readonly globsBySegment = new Map<string, Array<CompiledGlob<FieldRule>>>();
  readonly looseGlobs: Array<CompiledGlob<FieldRule>> = [];
  readonly exactHeaders = new Map<string, FieldRule>();
  readonly headerGlobs: Array<CompiledGlob<FieldRule>> = [];
  readonly connectionRules = new Map<string, FieldRule>();
  customerContentRule?: FieldRule;
  readonly piiKindRules: Array<FieldRule | undefined> = [];
  tenantRule?: FieldRule;

  // detectors
  readonly detectorList: Detector[] = [];
  detectors!: DetectorSet;

  // events
  readonly catalog = new Map<string, EventRule>();
  readonly catalogLower = new Map<string, EventRule>();
  readonly exactEventRules = new Map<string, EventRule>();
  readonly eventGlobs: Array<CompiledGlob<EventRule>> = [];
  readonly endpointRules = new Map<string, EventRule>();
  readonly defaults = new Map<MicrosoftGroup, EventDefault>();

  constructor(readonly dir: string) {}

  /** One line: id, why, source and file. */
  explain(id: string): string | undefined {
    const r = this.rules.get(id);
    return r && `${r.id}: ${r.why} [source: ${r.source}] (${r.file})`;
  }

  /** @internal */
  register(info: RuleInfo): void {
    const other = this.rules.get(info.id);
    if (other) {
      const where = other.file === info.file ? "earlier in the same file" : `also in ${other.file}`;
      throw rulesError(info.file, info.id, `duplicate rule id (${where})`);
    }
    this.rules.set(info.id, info);
  }
}

// ---------------------------------------------------------------------------------------------
// Loading

const cache = new Map<string, RulePacks>();

/** Loads and compiles every pack under `dir` (default classifiers/), once per directory. */
export function loadRulePacks(dir: string = CLASSIFIERS_DIR): RulePacks {
  const key = resolve(dir);
  let packs = cache.get(key);
  if (!packs) {
    packs = buildRulePacks(key);
    cache.set(key, packs);
  }
  return packs;
}

/** Loads without the cache (tests of broken packs). */
export function buildRulePacks(dir: string): RulePacks {
  const packs = new RulePacks(dir);
  const list = (sub: string, exts: string[]) => {
    const d = join(dir, sub);
    if (!existsSync(d)) return [];
    return readdirSync(d)
      .filter((f) => exts.some((e) => f.endsWith(e)))
      .sort()
      .map((f) => join(d, f));
  };
  const fieldFiles = list("fields", [".yaml", ".yml"]);
  const detectorFiles = list("detectors", [".yaml", ".yml"]);
  const eventYaml = list("events", [".yaml", ".yml"]);
  const eventTsv = list("events", [".tsv"]);
  if (fieldFiles.length + detectorFiles.length + eventYaml.length + eventTsv.length === 0) {
    throw rulesError(dir, undefined, "no rule packs (fields/, detectors/, events/) in this directory");
  }
  for (const f of fieldFiles) loadFieldPack(packs, f);
  for (const f of detectorFiles) loadDetectorPack(packs, f);
  for (const f of eventTsv) loadCatalog(packs, f);
  for (const f of eventYaml) loadEventPack(packs, f);
  finish(packs);
  return packs;
}

/** A file as errors and explanations name it: relative to the directory above the packs (`classifiers/fields/part-a.yaml`). */
function rel(packs: RulePacks, file: string): string {
  return relative(dirname(packs.dir), file) || file;
}

function readYaml(packs: RulePacks, file: string): unknown {
  packs.files.push(rel(packs, file));
  return readYamlFile(file, (e) => rulesError(rel(packs, file), undefined, e.message, e));
}

/** Zod result → data, or an error naming the rule (found from the issue's path into the raw data). */
function check<T>(packs: RulePacks, file: string, schema: z.ZodType<T>, raw: unknown): T {
  const parsed = schema.safeParse(raw);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  let rule: string | undefined;
  let node: unknown = raw;
  for (const key of issue.path) {
    if (node === null || typeof node !== "object") break;
    node = (node as Record<string | number, unknown>)[key as string | number];
    if (node !== null && typeof node === "object" && typeof (node as { id?: unknown }).id === "string") {
      rule = (node as { id: string }).id;
    }
  }
  const at = issue.path.length ? `${issue.path.join(".")}: ` : "";
  throw rulesError(rel(packs, file), rule, `${at}${issue.message}`);
}

function sourceText(s: PackSource): string {
  return `${s.document}${s.url ? ` <${s.url}>` : ""}, read ${s.read}`;
}

const FIELD_KIND: Record<string, RuleKind> = { field: "field", header: "header", declared: "declared", context: "context" };

/** Field match types: the key of `match` → where the compiled rule is indexed. */
const FIELD_MATCH_TYPES: { [K in keyof UnionKeys<FieldMatch>]: (packs: RulePacks, rule: FieldRule, file: string) => void } = {
  path(packs, rule, file) {
    const path = (rule.match as { path: string }).path;
    const other = packs.exactPaths.get(path);
    if (other) throw rulesError(file, rule.id, `path ${path} is already claimed by ${other.id}`);
    packs.exactPaths.set(path, rule);
  },
  glob(packs, rule, file) {
    const glob = (rule.match as { glob: string }).glob;
    const all = [...packs.looseGlobs, ...[...packs.globsBySegment.values()].flat()];
    const other = all.find((g) => g.rule.match && (g.rule.match as { glob?: string }).glob === glob);
    if (other) throw rulesError(file, rule.id, `glob ${glob} is already claimed by ${other.rule.id}`);
    const compiled = compileGlob(glob, rule);
    const dot = compiled.prefix.indexOf(".");
    if (dot < 0) packs.looseGlobs.push(compiled);
    else {
      const seg = compiled.prefix.slice(0, dot);
      const list = packs.globsBySegment.get(seg) ?? [];
      list.push(compiled);
      packs.globsBySegment.set(seg, list);
    }
  },
  header(packs, rule, file) {
    const name = (rule.match as { header: string }).header.toLowerCase();
    const other = packs.exactHeaders.get(name);
    if (other) throw rulesError(file, rule.id, `header ${name} is already claimed by ${other.id}`);
    packs.exactHeaders.set(name, rule);
  },
  headerGlob(packs, rule) {
    packs.headerGlobs.push(compileGlob((rule.match as { headerGlob: string }).headerGlob, rule, true));
  },
  connection(packs, rule, file) {
    const what = (rule.match as { connection: string }).connection;
    if (packs.connectionRules.has(what)) throw rulesError(file, rule.id, `connection fact ${what} already has a rule`);
    packs.connectionRules.set(what, rule);
  },
  customerContent(packs, rule, file) {
    if (packs.customerContentRule) throw rulesError(file, rule.id, `customerContent already has rule ${packs.customerContentRule.id}`);
    packs.customerContentRule = rule;
  },
  piiKind(packs, rule, file) {
    const kind = (rule.match as { piiKind: number }).piiKind;
    const other = packs.piiKindRules[kind];
    if (other) throw rulesError(file, rule.id, `piiKind ${kind} already has rule ${other.id}`);
    packs.piiKindRules[kind] = rule;
  },
  uploadFact(packs, rule, file) {
    if (packs.tenantRule) throw rulesError(file, rule.id, `uploadFact tenant already has rule ${packs.tenantRule.id}`);
    packs.tenantRule = rule;
  },
};

type UnionKeys<T> = { [K in T extends unknown ? keyof T : never]: true };

/** What every rule carries, in this order: its id, kind, why, source (its own, else its pack's) and file. */
function ruleBase<K extends string>(def: { id: string; why: string; source?: string }, kind: K, file: string, packSource: string) {
  return { id: def.id, kind, why: def.why, source: def.source ?? packSource, file };
}

function loadFieldPack(packs: RulePacks, path: string): void {
  const file = rel(packs, path);
  const pack = check(packs, path, FieldPackSchema, readYaml(packs, path));
  const packSource = sourceText(pack.source);
  for (const def of pack.rules) {
    const kind = FIELD_KIND[def.id.slice(0, def.id.indexOf("."))];
    const matchType = Object.keys(def.match)[0] as keyof typeof FIELD_MATCH_TYPES;
    const isHeader = matchType === "header" || matchType === "headerGlob" || matchType === "connection";
    if ((kind === "header") !== isHeader) {
      throw rulesError(file, def.id, "header., and only header., rules match headers or connection facts");
    }
    if ((kind === "declared") !== (matchType === "customerContent" || matchType === "piiKind")) {
      throw rulesError(file, def.id, "declared., and only declared., rules match customerContent or piiKind");
    }
    if ((kind === "context") !== (matchType === "uploadFact")) {
      throw rulesError(file, def.id, "context., and only context., rules match uploadFact");
    }
    const rule: FieldRule = {
      ...ruleBase(def, kind, file, packSource),
      index: packs.fieldRules.length,
      match: def.match,
      category: def.category,
      personal: def.personal,
      confidence: def.confidence ?? (kind === "declared" ? 1 : 0.9),
      contentDetectors: def.contentDetectors,
    };
    packs.register(rule);
    FIELD_MATCH_TYPES[matchType](packs, rule, file);
    if (rule.category !== undefined) {
      rule.plain = freezeResult({
        category: rule.category,
        personal: rule.personal,
        rule: rule.id,
        reasons: [rule.id],
        confidence: rule.confidence,
      });
    }
    packs.fieldRules.push(rule);
  }
}

function loadDetectorPack(packs: RulePacks, path: string): void {
  const file = rel(packs, path);
  const pack = check(packs, path, DetectorPackSchema, readYaml(packs, path));
  const packSource = sourceText(pack.source);
  for (const def of pack.detectors) {
    let d: Detector;
    try {
      d = compileDetector(def, packs.detectorList.length, file, packSource);
    } catch (e) {
      throw rulesError(file, def.id, (e as Error).message, e);
    }
    if (def.personalIfPath !== undefined && def.class !== "identifier") {
      throw rulesError(file, def.id, "personalIfPath is for identifier detectors only");
    }
    packs.register({ id: d.id, kind: "detector", why: d.why, source: d.source, file });
    packs.detectorList.push(d);
  }
}

function loadEventPack(packs: RulePacks, path: string): void {
  const file = rel(packs, path);
  const pack = check(packs, path, EventPackSchema, readYaml(packs, path));
  const packSource = sourceText(pack.source);
  for (const def of pack.defaults ?? []) {
    const other = packs.defaults.get(def.group);
    if (other) throw rulesError(file, def.id, `group ${def.group} already has default ${other.id}`);
    const d: EventDefault = {
      ...ruleBase(def, "default", file, packSource),
      group: def.group,
      category: def.category,
      confidence: def.confidence,
      plain: freezeResult({ category: def.category, personal: "none", rule: def.id, reasons: [def.id], confidence: def.confidence }),
    };
    packs.register(d);
    packs.defaults.set(def.group, d);
  }
  for (const def of pack.rules ?? []) {
    const rule: EventRule = {
      ...ruleBase(def, "event", file, packSource),
      group: def.group,
      catalogCategory: def.category,
      subtype: def.subtype,
    };
    packs.register(rule);
    if ("name" in def.match) {
      const name = def.match.name;
      if (name.includes("*")) {
        // A glob grants a group to names Microsoft's catalogue does not list: only when the rule's
        // source documents the namespace as a whole (say how in documentsNamespace).
        if (!def.documentsNamespace) {
          throw rulesError(
            file,
            def.id,
            `glob ${name} would give group ${def.group} to names no catalogue lists; add documentsNamespace (how the source documents every name under it) or list the names`,
          );
        }
        rule.glob = name;
        packs.eventGlobs.push(compileGlob(name, rule));
      } else {
        if (packs.catalog.has(name))
          throw rulesError(file, def.id, `event ${name} is already in the catalogue as ${packs.catalog.get(name)!.id}`);
        if (packs.exactEventRules.has(name))
          throw rulesError(file, def.id, `event ${name} already has rule ${packs.exactEventRules.get(name)!.id}`);
        rule.name = name;
        packs.exactEventRules.set(name, rule);
      }
    } else {
      const purpose = def.match.endpointPurpose;
      if (packs.endpointRules.has(purpose)) throw rulesError(file, def.id, `endpoint purpose ${purpose} already has a rule`);
      rule.endpointPurpose = purpose;
      packs.endpointRules.set(purpose, rule);
    }
  }
}

/** The generated catalogue: `# source.<key>: value` comments, a header row, one rule per line. */
function loadCatalog(packs: RulePacks, path: string): void {
  const file = rel(packs, path);
  packs.files.push(file);
  const lines = readFileSync(path, "utf8").split(/\r?\n/);
  const source: Record<string, string> = {};
  let header: string[] | undefined;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    if (line === "") continue;
    const where = `${file}:${i + 1}`;
    if (line.startsWith("#")) {
      const m = /^#\s*source\.(document|url|read):\s*(.+)$/.exec(line);
      if (m) source[m[1]] = m[2].trim();
      continue;
    }
    if (!header) {
      header = line.split("\t");
      const missing = CATALOG_COLUMNS.filter((c) => !header!.includes(c));
      if (missing.length) throw rulesError(where, undefined, `missing columns ${missing.join(", ")}`);
      if (!source.document || !source.read)
        throw rulesError(file, undefined, "the catalogue needs `# source.document:` and `# source.read:` lines before its header");
      continue;
    }
    const cells = line.split("\t");
    const raw = Object.fromEntries(header.map((h, j) => [h, cells[j] ?? ""]));
    const parsed = CatalogRowSchema.safeParse(raw);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw rulesError(where, typeof raw.id === "string" && raw.id ? raw.id : undefined, `${issue.path.join(".")}: ${issue.message}`);
    }
    const row: CatalogRow = parsed.data;
    const rule: EventRule = {
      ...ruleBase(row, "event", file, row.source),
      group: row.group,
      catalogCategory: row.category || undefined,
      subtype: row.subtype || undefined,
      docStatus: row.doc_status || undefined,
      also: row.also || undefined,
      name: row.event,
    };
    packs.register(rule);
    if (packs.catalog.has(row.event)) throw rulesError(where, row.id, `event ${row.event} is listed twice`);
    packs.catalog.set(row.event, rule);
    const lower = row.event.toLowerCase();
    if (!packs.catalogLower.has(lower)) packs.catalogLower.set(lower, rule);
  }
  if (!header) throw rulesError(file, undefined, "no header row");
}

function finish(packs: RulePacks): void {
  for (const list of packs.globsBySegment.values()) list.sort(bySpecificity);
  packs.looseGlobs.sort(bySpecificity);
  packs.headerGlobs.sort(bySpecificity);
  packs.eventGlobs.sort(bySpecificity);
  const missing = GROUPS.filter((g) => !packs.defaults.has(g));
  if (missing.length) {
    throw rulesError(packs.dir, undefined, `events/*.yaml must give a default for every group; missing ${missing.join(", ")}`);
  }
  packs.detectors = new DetectorSet(packs.detectorList);
}
