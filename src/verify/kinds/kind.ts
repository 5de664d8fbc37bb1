/**
 * What every profile rule kind provides: its parameters (checked with zod when the profile is
 * loaded) and a check that streams the session's rows and returns counted, capped evidence.
 * One file per kind; src/verify/kinds/index.ts is the registry.
 */
import { z } from "zod";
import type { EndpointCatalog } from "../../catalog/endpoints.js";
import { globToRegExp } from "../../glob.js";
import type { Db } from "../../store/database.js";
import type { Evidence } from "../../verdict.js";

/** Fields every rule has, whatever its kind. */
export const RULE_BASE = {
  id: z.string().regex(/^[a-z0-9][a-z0-9.-]*$/, "rule ids are lower-case words joined by dots and dashes"),
  description: z.string().min(1, "a rule needs a description"),
  why: z.string().min(1, "a rule needs a one-line `why`"),
  /** The setting the rule checks; inherits the profile's when left out. */
  setting: z.string().min(1).optional(),
  source: z.string().min(1, "a rule needs a source (document or URL)"),
};

export interface RuleBase {
  id: string;
  kind: string;
  description: string;
  why: string;
  setting?: string;
  source: string;
}

export interface VerifyContext {
  db: Db;
  sessionId: number;
  catalog: EndpointCatalog;
  /** Canary tokens recorded with `exhaust canary new`. */
  canaries: readonly string[];
  evidenceLimit: number;
}

/** Counts every item, keeps the first `limit` as evidence. */
export class EvidenceList {
  readonly items: Evidence[] = [];
  count = 0;
  constructor(private readonly limit: number) {}

  add(evidence: Evidence | (() => Evidence)): void {
    this.count++;
    if (this.items.length < this.limit) this.items.push(typeof evidence === "function" ? evidence() : evidence);
  }

  /** Adds `n` items of which only the first `listed` are described. */
  addCounted(n: number, listed: Evidence[]): void {
    this.count += n;
    for (const e of listed) if (this.items.length < this.limit) this.items.push(e);
  }
}

export interface RuleOutcome {
  failures: EvidenceList;
  /** Items a person must review: a warning when nothing failed. */
  warnings: EvidenceList;
  /** How many items the rule looked at (events, connections, fields, requests). */
  checked: number;
  note?: string;
}

export interface RuleKind<R extends RuleBase = RuleBase> {
  kind: string;
  /** The kind's own parameters, merged with RULE_BASE into the rule's schema. */
  params: z.ZodRawShape;
  /** Cross-field checks after the schema (e.g. "at least one selector"); returns a problem or undefined. */
  refine?(rule: R, catalog: EndpointCatalog): string | undefined;
  check(ctx: VerifyContext, rule: R): RuleOutcome;
}

export function emptyOutcome(ctx: VerifyContext): RuleOutcome {
  return { failures: new EvidenceList(ctx.evidenceLimit), warnings: new EvidenceList(ctx.evidenceLimit), checked: 0 };
}

/** Compiled name globs (`*` = any run of characters, dots included); undefined = every name. */
export function nameFilter(globs: readonly string[] | undefined): ((name: string) => boolean) | undefined {
  if (!globs?.length) return undefined;
  const res = globs.map((g) => globToRegExp(g));
  return (name) => res.some((re) => re.test(name));
}
