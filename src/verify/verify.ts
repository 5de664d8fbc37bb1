/**
 * Runs a profile's rules over one session and builds the VerdictReport (src/verify/types.ts):
 * per rule pass / fail / warn with counts and capped evidence.
 */
import type { EndpointCatalog } from "../catalog/endpoints.js";
import type { Db } from "../store/database.js";
import { classifiedWith, listCanaries, type SessionRef } from "../store/verify-queries.js";
import { TOOL_VERSION } from "../version.js";
import { RULE_KINDS } from "./kinds/index.js";
import type { VerifyContext } from "./kinds/kind.js";
import type { Profile } from "./profile.js";
import type { RuleStatus, RuleVerdict, VerdictReport } from "./types.js";

export const DEFAULT_EVIDENCE_LIMIT = 20;

export interface VerifyOptions {
  catalog: EndpointCatalog;
  /** Evidence items listed per rule (the rest are counted in evidenceOmitted). */
  evidenceLimit?: number;
  now?: number;
}

export function verifySession(db: Db, profile: Profile, session: SessionRef, options: VerifyOptions): VerdictReport {
  const ctx: VerifyContext = {
    db,
    sessionId: session.id,
    catalog: options.catalog,
    canaries: listCanaries(db).map((c) => c.token),
    evidenceLimit: options.evidenceLimit ?? profile.evidenceLimit ?? DEFAULT_EVIDENCE_LIMIT,
  };
  const rules = profile.rules.map((rule): RuleVerdict => {
    const kind = RULE_KINDS.get(rule.kind)!;
    const out = kind.check(ctx, rule);
    const status: RuleStatus = out.failures.count > 0 ? "fail" : out.warnings.count > 0 ? "warn" : "pass";
    const evidence = status === "fail" ? [...out.failures.items, ...out.warnings.items].slice(0, ctx.evidenceLimit) : out.warnings.items;
    const total = status === "fail" ? out.failures.count + out.warnings.count : out.warnings.count;
    return {
      id: rule.id,
      kind: rule.kind,
      description: rule.description,
      setting: rule.setting,
      source: rule.source,
      status,
      count: status === "fail" ? out.failures.count : out.warnings.count,
      evidence,
      evidenceOmitted: total - evidence.length,
      why: rule.why,
      profile: rule.profile,
      checked: out.checked,
      reviewCount: status === "fail" ? out.warnings.count : undefined,
      note: out.note,
    };
  });
  const counts: Record<RuleStatus, number> = { pass: 0, fail: 0, warn: 0 };
  for (const r of rules) counts[r.status]++;
  return {
    profile: { name: profile.name, description: profile.description, sha256: profile.sha256 },
    session: { id: session.id, name: session.name },
    status: counts.fail ? "fail" : counts.warn ? "warn" : "pass",
    counts,
    rules,
    createdAt: options.now ?? Date.now(),
    toolVersion: TOOL_VERSION,
    rulesFingerprint: classifiedWith(db, session.id).join(",") || "none",
  };
}
