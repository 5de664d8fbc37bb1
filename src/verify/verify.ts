/**
 * Runs a profile's rules over one session and builds the VerdictReport (src/verdict.ts):
 * per rule pass / fail / warn with counts and capped evidence.
 */
import type { EndpointCatalog } from "../catalog/endpoints.js";
import type { Db } from "../store/database.js";
import { sessionCoverage, sessionHosts, sessionStates, trafficToHosts } from "../store/completeness.js";
import type { SessionRef } from "../store/sessions.js";
import { listCanaries } from "../store/canaries.js";
import { classifiedWith } from "../store/exchanges.js";
import { TOOL_VERSION } from "../version.js";
import { RULE_KINDS } from "./kinds/index.js";
import type { VerifyContext } from "./kinds/kind.js";
import type { Profile } from "./profile.js";
import type { RuleStatus, RuleVerdict, VerdictCoverage, VerdictReport } from "../verdict.js";

export const DEFAULT_EVIDENCE_LIMIT = 20;

export interface VerifyOptions {
  catalog: EndpointCatalog;
  /** Evidence items listed per rule (the rest are counted in evidenceOmitted). */
  evidenceLimit?: number;
  now?: number;
  /** Why exchanges are undecoded (from the decoding the command did first), for the verdict's reason. */
  undecodedReasons?: string[];
}

/** What the session holds, decoded and not, and how much of it went to catalogue hosts. */
export function verdictCoverage(db: Db, sessionId: number, catalog: EndpointCatalog): VerdictCoverage {
  const c = sessionCoverage(db, sessionId);
  const catalogueHosts = sessionHosts(db, sessionId).filter((h) => catalog.match(h) !== undefined);
  const catalogueTraffic = trafficToHosts(db, sessionId, catalogueHosts);
  return {
    exchanges: c.exchanges,
    decodedExchanges: c.decoded,
    undecoded: c.exchanges - c.decoded,
    events: c.events,
    bareConnections: c.bareConnections,
    catalogueTraffic,
    incomplete: sessionStates(db, [sessionId])[0]?.incomplete,
  };
}

/** Why a session with this coverage cannot speak for a setting (empty when it can). */
export function inconclusiveReasons(c: VerdictCoverage, undecodedReasons: string[] = []): string[] {
  const reasons: string[] = [];
  if (c.exchanges === 0 && c.bareConnections === 0) reasons.push("no traffic reached the proxy: is the client configured?");
  else if (c.catalogueTraffic === 0)
    reasons.push("no traffic reached a catalogue host: is the client configured, and is it the right session?");
  if (c.undecoded > 0) {
    const why = undecodedReasons.length ? ` (${undecodedReasons.join("; ")})` : "";
    reasons.push(`${c.undecoded} of ${c.exchanges} exchanges are undecoded${why}: run \`exhaust reprocess\`, then verify again`);
  }
  if (c.incomplete) reasons.push(`the session is incomplete: ${c.incomplete}`);
  return reasons;
}

/** Runs in one read transaction: the rules and the coverage see the same snapshot of the session. */
export function verifySession(db: Db, profile: Profile, session: SessionRef, options: VerifyOptions): VerdictReport {
  return db.transaction(() => verifySnapshot(db, profile, session, options))();
}

function verifySnapshot(db: Db, profile: Profile, session: SessionRef, options: VerifyOptions): VerdictReport {
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
  const coverage = verdictCoverage(db, session.id, options.catalog);
  const inconclusive = inconclusiveReasons(coverage, options.undecodedReasons);
  return {
    profile: { name: profile.name, description: profile.description, sha256: profile.sha256 },
    session: { id: session.id, name: session.name },
    status: counts.fail ? "fail" : inconclusive.length ? "inconclusive" : counts.warn ? "warn" : "pass",
    ...(inconclusive.length ? { inconclusive } : {}),
    coverage,
    counts,
    rules,
    createdAt: options.now ?? Date.now(),
    toolVersion: TOOL_VERSION,
    rulesFingerprint: classifiedWith(db, session.id).join(",") || "none",
  };
}
