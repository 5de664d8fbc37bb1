/** The rule kinds a profile may use, by name: one file per kind. */
import { canaryForbidden } from "./canaries.js";
import { categoryForbidden } from "./categories.js";
import { endpointAllowedOnly, endpointForbidden } from "./endpoints.js";
import { maxEventsPerName } from "./event-counts.js";
import { eventGroupAllowedOnly, eventGroupForbidden } from "./event-groups.js";
import type { RuleBase, RuleKind } from "./kind.js";

const KINDS = [
  endpointForbidden,
  endpointAllowedOnly,
  eventGroupForbidden,
  eventGroupAllowedOnly,
  categoryForbidden,
  canaryForbidden,
  maxEventsPerName,
] as unknown as RuleKind<RuleBase>[];

export const RULE_KINDS: ReadonlyMap<string, RuleKind<RuleBase>> = new Map(KINDS.map((k) => [k.kind, k]));
