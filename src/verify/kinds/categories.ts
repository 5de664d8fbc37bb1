/**
 * category-forbidden: no field of the given DPIA categories (usually `content`) anywhere in the
 * session. Content fields are found through the partial index on field_values.
 */
import { z } from "zod";
import { CATEGORIES } from "../../classify/schema.js";
import { iterateFieldsInCategories } from "../../store/fields.js";
import { excerptAround } from "../canary.js";
import { emptyOutcome, nameFilter, type RuleBase, type RuleKind } from "./kind.js";

export interface CategoryRule extends RuleBase {
  categories: Array<(typeof CATEGORIES)[number]>;
  names?: string[];
}

export const categoryForbidden: RuleKind<CategoryRule> = {
  kind: "category-forbidden",
  params: {
    categories: z.array(z.enum(CATEGORIES)).min(1),
    /** Only events whose name matches one of these globs. */
    names: z.array(z.string().min(1)).optional(),
  },
  check(ctx, rule) {
    const out = emptyOutcome(ctx);
    const inNames = nameFilter(rule.names);
    for (const f of iterateFieldsInCategories(ctx.db, ctx.sessionId, rule.categories)) {
      if (inNames && !inNames(f.name)) continue;
      out.checked++;
      out.failures.add(() => ({
        exchangeId: f.exchangeId,
        eventId: f.eventId,
        eventName: f.name,
        fieldPath: f.path,
        excerpt: excerptAround(f.value ?? "", 0, 0, 80),
        bodySha256: f.bodySha256,
        note: `field classified ${f.category} by ${f.rule ?? "no rule"}`,
      }));
    }
    return out;
  },
};
