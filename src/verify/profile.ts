/**
 * Verification profiles: reviewed YAML in classifiers/profiles/ (or any file a user writes), each
 * rule with an id, a kind, a description, a one-line why, the setting it checks and its source.
 * `include:` pulls in other profiles (zero-exhaust = the four recommended settings). Checked once
 * at load; a bad file is one line naming the file, the rule and the problem (EXH_PROFILE_INVALID).
 */
import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { z } from "zod";
import type { EndpointCatalog } from "../catalog/endpoints.js";
import { parseYamlText, SourceSchema } from "../sources.js";
import { exhaustError, type ExhaustError } from "../errors.js";
import { CLASSIFIERS_DIR } from "../paths.js";
import { RULE_KINDS } from "./kinds/index.js";
import { RULE_BASE, type RuleBase } from "./kinds/kind.js";

export const PROFILES_DIR = join(CLASSIFIERS_DIR, "profiles");

const ProfileFileSchema = z.strictObject({
  name: z.string().regex(/^[a-z0-9][a-z0-9-]*$/, "a profile name is lower-case words joined by dashes"),
  description: z.string().min(1),
  /** The setting the profile proves, e.g. "Office diagnostic data level: Neither". */
  setting: z.string().min(1).optional(),
  source: SourceSchema,
  include: z.array(z.string().min(1)).optional(),
  /** How many evidence items each rule lists at most (the rest are counted). */
  evidenceLimit: z.number().int().min(1).max(10_000).optional(),
  rules: z.array(z.unknown()).default([]),
});

export interface ProfileRule extends RuleBase {
  /** The profile (name) the rule is written in: differs from the verified one for included rules. */
  profile: string;
  [param: string]: unknown;
}

export interface Profile {
  name: string;
  description: string;
  setting?: string;
  file: string;
  rules: ProfileRule[];
  evidenceLimit?: number;
  /** SHA-256 over every file the profile was built from (itself and its includes). */
  sha256: string;
}

export function profileError(file: string, reason: string, cause?: unknown): ExhaustError {
  return exhaustError("EXH_PROFILE_INVALID", { file, reason }, cause);
}

/** Names of the shipped profiles. */
export function shippedProfiles(dir: string = PROFILES_DIR): string[] {
  return existsSync(dir)
    ? readdirSync(dir)
        .filter((f) => f.endsWith(".yaml"))
        .map((f) => f.slice(0, -5))
        .sort()
    : [];
}

const looksLikePath = (ref: string) => ref.includes("/") || ref.includes("\\") || /\.ya?ml$/i.test(ref);

/** A profile name (classifiers/profiles/NAME.yaml) or a file path; relative includes resolve beside `from`. */
export function resolveProfileRef(ref: string, from?: string): string {
  if (looksLikePath(ref)) {
    const file = from ? resolve(dirname(from), ref) : resolve(ref);
    if (!existsSync(file)) throw exhaustError("EXH_PROFILE_UNKNOWN", { profile: ref, known: shippedProfiles().join(", ") });
    return file;
  }
  const file = join(PROFILES_DIR, `${ref}.yaml`);
  if (!existsSync(file)) throw exhaustError("EXH_PROFILE_UNKNOWN", { profile: ref, known: shippedProfiles().join(", ") });
  return file;
}

export function loadProfile(ref: string, catalog: EndpointCatalog): Profile {
  const hash = createHash("sha256");
  const seenRules = new Map<string, string>();
  const rules: ProfileRule[] = [];
  const top = loadFile(resolveProfileRef(ref), catalog, hash, seenRules, rules, []);
  if (rules.length === 0) throw profileError(top.file, "the profile has no rules (and includes none)");
  return { ...top, rules, sha256: hash.digest("hex") };
}

function loadFile(
  file: string,
  catalog: EndpointCatalog,
  hash: ReturnType<typeof createHash>,
  seenRules: Map<string, string>,
  rules: ProfileRule[],
  stack: string[],
): Omit<Profile, "rules" | "sha256"> {
  if (stack.includes(file)) throw profileError(file, `include cycle: ${[...stack, file].map((f) => basename(f)).join(" → ")}`);
  const text = readFileSync(file, "utf8");
  hash.update(basename(file)).update("\0").update(text).update("\0");
  const raw = parseYamlText(text, (e) => profileError(file, `YAML: ${e.message.split("\n")[0]}`, e));
  const parsed = ProfileFileSchema.safeParse(raw);
  if (!parsed.success) throw profileError(file, issueText(parsed.error.issues[0]));
  const p = parsed.data;
  for (const inc of p.include ?? []) {
    let incFile: string;
    try {
      incFile = resolveProfileRef(inc, file);
    } catch {
      throw profileError(file, `include ${inc}: no such profile`);
    }
    loadFile(incFile, catalog, hash, seenRules, rules, [...stack, file]);
  }
  p.rules.forEach((rawRule, i) => {
    const rule = parseRule(file, rawRule, i, catalog);
    const earlier = seenRules.get(rule.id);
    if (earlier === file) throw profileError(file, `rule ${rule.id}: duplicate id`);
    if (earlier) throw profileError(file, `rule ${rule.id}: id already used in ${basename(earlier)}`);
    seenRules.set(rule.id, file);
    rules.push({ ...rule, setting: rule.setting ?? p.setting, profile: p.name });
  });
  return { name: p.name, description: p.description, setting: p.setting, file, evidenceLimit: p.evidenceLimit };
}

function parseRule(file: string, raw: unknown, index: number, catalog: EndpointCatalog): RuleBase {
  const obj = (raw ?? {}) as Record<string, unknown>;
  const label = typeof obj.id === "string" && obj.id ? `rule ${obj.id}` : `rules[${index}]`;
  const kind = typeof obj.kind === "string" ? RULE_KINDS.get(obj.kind) : undefined;
  if (!kind) {
    throw profileError(file, `${label}: unknown kind ${JSON.stringify(obj.kind ?? null)} (one of ${[...RULE_KINDS.keys()].join(", ")})`);
  }
  const schema = z.strictObject({ ...RULE_BASE, kind: z.literal(kind.kind), ...kind.params });
  const parsed = schema.safeParse(raw);
  if (!parsed.success) throw profileError(file, `${label}: ${issueText(parsed.error.issues[0])}`);
  const rule = parsed.data;
  const problem = kind.refine?.(rule, catalog);
  if (problem) throw profileError(file, `${label}: ${problem}`);
  return rule;
}

function issueText(issue: z.core.$ZodIssue): string {
  const path = issue.path.join(".");
  return path ? `${path}: ${issue.message}` : issue.message;
}
