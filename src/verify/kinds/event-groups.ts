/**
 * event-group-forbidden / event-group-allowed-only: which of Microsoft's groups (required,
 * optional, essential services, connected experiences) may be sent. The group comes from the
 * classifier (events.ms_group, from the Office event catalogue and classifiers/events/rules.yaml).
 * An event in no catalogue has group `unknown`: the rule's `unknown` setting says whether that is
 * a pass, a warning to review (the default for Office events: it may be a required event Microsoft
 * has not documented) or a failure.
 */
import { z } from "zod";
import { GROUPS } from "../../classify/schema.js";
import { iterateSessionEvents, type EventEvidenceRow } from "../../store/events.js";
import type { Evidence } from "../../verdict.js";
import { emptyOutcome, nameFilter, type RuleBase, type RuleKind, type VerifyContext } from "./kind.js";

const KNOWN_GROUPS = GROUPS.filter((g) => g !== "unknown");
type KnownGroup = (typeof KNOWN_GROUPS)[number];

const params = {
  groups: z.array(z.enum(KNOWN_GROUPS as [KnownGroup, ...KnownGroup[]])).min(1),
  /**
   * `office`: only Office events (catalogued Office events, Office event globs, names starting
   * `Office.`/`office_`); `all`: every event.
   */
  scope: z.enum(["office", "all"]).default("all"),
  /** Only events whose name matches one of these globs. */
  names: z.array(z.string().min(1)).optional(),
  unknown: z.enum(["pass", "warn", "fail"]).default("warn"),
};

export interface EventGroupRule extends RuleBase {
  groups: KnownGroup[];
  scope: "office" | "all";
  names?: string[];
  unknown: "pass" | "warn" | "fail";
}

const OFFICE_NAME = /^office[._]/i;

/** An Office event: classified by the Office catalogue or an Office glob, or named like one. */
export function isOfficeEvent(e: Pick<EventEvidenceRow, "name" | "groupRule">): boolean {
  const r = e.groupRule ?? "";
  return r.startsWith("event.office.") || r.startsWith("event.glob.office-") || OFFICE_NAME.test(e.name);
}

function evidenceOf(e: EventEvidenceRow, note: string): Evidence {
  return { exchangeId: e.exchangeId, eventId: e.id, eventName: e.name, bodySha256: e.bodySha256, note };
}

function checkGroups(ctx: VerifyContext, rule: EventGroupRule, forbidden: ReadonlySet<string>) {
  const out = emptyOutcome(ctx);
  const inNames = nameFilter(rule.names);
  for (const e of iterateSessionEvents(ctx.db, ctx.sessionId)) {
    if (rule.scope === "office" && !isOfficeEvent(e)) continue;
    if (inNames && !inNames(e.name)) continue;
    out.checked++;
    const group = e.group ?? "unknown";
    if (group === "unknown") {
      if (rule.unknown === "pass") continue;
      const list = rule.unknown === "fail" ? out.failures : out.warnings;
      list.add(() => evidenceOf(e, "in no event catalogue (group unknown): review what it carries"));
    } else if (forbidden.has(group)) {
      out.failures.add(() => evidenceOf(e, `group ${group} (${e.groupRule ?? "no rule"})`));
    }
  }
  return out;
}

export const eventGroupForbidden: RuleKind<EventGroupRule> = {
  kind: "event-group-forbidden",
  params,
  check: (ctx, rule) => checkGroups(ctx, rule, new Set(rule.groups)),
};

export const eventGroupAllowedOnly: RuleKind<EventGroupRule> = {
  kind: "event-group-allowed-only",
  params,
  check: (ctx, rule) => checkGroups(ctx, rule, new Set(KNOWN_GROUPS.filter((g) => !rule.groups.includes(g)))),
};
