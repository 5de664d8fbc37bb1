/** max-events-per-name: no event name sent more than `max` times (0 forbids the names outright). */
import { z } from "zod";
import { eventNameCounts } from "../../store/events.js";
import { emptyOutcome, nameFilter, type RuleBase, type RuleKind } from "./kind.js";

export interface EventCountRule extends RuleBase {
  max: number;
  names?: string[];
}

export const maxEventsPerName: RuleKind<EventCountRule> = {
  kind: "max-events-per-name",
  params: {
    max: z.number().int().min(0),
    /** Only event names matching one of these globs. */
    names: z.array(z.string().min(1)).optional(),
  },
  check(ctx, rule) {
    const out = emptyOutcome(ctx);
    const inNames = nameFilter(rule.names);
    for (const n of eventNameCounts(ctx.db, ctx.sessionId)) {
      if (inNames && !inNames(n.name)) continue;
      out.checked += n.count;
      if (n.count > rule.max) {
        out.failures.add({
          eventId: n.firstId,
          eventName: n.name,
          note: `${n.count} events, at most ${rule.max} allowed (first one shown)`,
        });
      }
    }
    return out;
  },
};
