/**
 * The shape of the rule packs in classifiers/{fields,detectors,events}/, checked once at load with
 * zod. Serializable definitions only; src/classify/packs.ts compiles them.
 */
import { z } from "zod";
import { SourceSchema, type Source } from "../sources.js";

/** The one list of each: the types (src/classify/types.ts), the rule packs, profiles and CLI options derive from these. */
export const CATEGORIES = ["content", "functional", "diagnostic"] as const;
export const PERSONAL_KINDS = ["direct-identifier", "network-identifier", "browsing-history", "pseudonymous-id", "none"] as const;
export const GROUPS = ["required", "optional", "essential", "connected-experience", "unknown"] as const;

const Category = z.enum(CATEGORIES);
const Personal = z.enum(PERSONAL_KINDS);
const Confidence = z.number().min(0).max(1);
const Why = z.string().min(1, "a rule needs a one-line `why`");
const RuleSource = z.string().min(1, "a rule's `source` may be left out (it inherits the pack's) but not empty");

/** Every pack opens with where its rules come from. */
export const PackSourceSchema = SourceSchema;
export type PackSource = Source;

// ---------------------------------------------------------------------------------------------
// fields/*.yaml

/** Match types of field rules: one key names the type (the lookup table is FIELD_MATCH_TYPES in packs.ts). */
export const FieldMatchSchema = z.union(
  [
    z.strictObject({ path: z.string().min(1) }),
    z.strictObject({ glob: z.string().min(1).includes("*", { message: "a glob needs a `*`; use path for an exact name" }) }),
    z.strictObject({ header: z.string().min(1) }),
    z.strictObject({ headerGlob: z.string().min(1) }),
    z.strictObject({ connection: z.enum(["client-ip"]) }),
    z.strictObject({ customerContent: z.literal(true) }),
    z.strictObject({ piiKind: z.number().int().min(1).max(255) }),
    z.strictObject({ uploadFact: z.enum(["tenant"]) }),
  ],
  { error: "match needs exactly one of path, glob, header, headerGlob, connection, customerContent, piiKind, uploadFact" },
);
export type FieldMatch = z.infer<typeof FieldMatchSchema>;

export const FieldRuleSchema = z
  .strictObject({
    id: z
      .string()
      .regex(/^(field|header|declared|context)\.[A-Za-z0-9_.:-]+$/, "field-pack ids start with field., header., declared. or context."),
    match: FieldMatchSchema,
    category: Category.optional(),
    personal: Personal.default("none"),
    confidence: Confidence.optional(),
    /** false: no value detector makes this field content (the envelope's own fields name the event, they are not what a user wrote). */
    contentDetectors: z.literal(false).optional(),
    /** Credential names are not a field rule's to say: they live in classifiers/secrets.yaml (src/secrets.ts). */
    secret: z.never({ message: "credential names live in classifiers/secrets.yaml, the one list (src/secrets.ts)" }).optional(),
    why: Why,
    source: RuleSource.optional(),
  })
  .superRefine((r, ctx) => {
    if (r.category === undefined && !("piiKind" in r.match)) {
      ctx.addIssue({ code: "custom", message: "category is required (only piiKind rules may leave it out)", path: ["category"] });
    }
  });
export type FieldRuleDef = z.infer<typeof FieldRuleSchema>;

export const FieldPackSchema = z.strictObject({
  source: PackSourceSchema,
  rules: z.array(FieldRuleSchema).min(1),
});

// ---------------------------------------------------------------------------------------------
// detectors/*.yaml

export const DETECTOR_CLASSES = ["content", "personal", "identifier", "info", "secret"] as const;

const Int = z.number().int().min(0);

export const DetectorMatchSchema = z.discriminatedUnion("type", [
  z.strictObject({
    type: z.literal("regex"),
    pattern: z.string().min(1),
    flags: z
      .string()
      .regex(/^[imsu]*$/, "flags may be i, m, s, u")
      .optional(),
    /** A match that also matches `exclude` does not count (another match in the value still may). */
    exclude: z.string().min(1).optional(),
    excludeFlags: z
      .string()
      .regex(/^[imsu]*$/)
      .optional(),
    /** Digits in the matched text must be within these bounds. */
    digits: z.strictObject({ min: Int, max: Int }).optional(),
  }),
  z.strictObject({ type: z.literal("ipv6") }),
  /** A URL or query string with a parameter named in classifiers/secrets.yaml (`in: query`) carrying a value of at least that file's minValueLength characters. */
  z.strictObject({ type: z.literal("url-secret-query") }),
  /** Hex (`0x…`) or base64 that decodes to printable text: the detectors run on that text too. */
  z.strictObject({ type: z.literal("wrapped-text"), minChars: Int.min(3) }),
  z.strictObject({
    type: z.literal("free-text"),
    minWords: Int.min(2),
    minLetterRatio: Confidence,
    minLowercaseWordRatio: Confidence,
    maxAvgWordLength: z.number().positive(),
  }),
]);
export type DetectorMatchDef = z.infer<typeof DetectorMatchSchema>;

export const PrefilterSchema = z.strictObject({
  all: z.string().min(1).optional(),
  any: z.string().min(1).optional(),
  none: z.string().min(1).optional(),
  minLength: Int.optional(),
  maxLength: Int.optional(),
  minDigits: Int.optional(),
  minSpaces: Int.optional(),
});

export const ExampleSchema = z.union([z.string(), z.strictObject({ value: z.string(), path: z.string().min(1) })]);
export type ExampleDef = z.infer<typeof ExampleSchema>;

export const DetectorSchema = z.strictObject({
  id: z.string().regex(/^detector\.[a-z0-9][a-z0-9.-]*$/, "detector ids are detector.<lower-case-name>"),
  class: z.enum(DETECTOR_CLASSES),
  personal: Personal.default("none"),
  /** identifier detectors: the personal kind applies only when the field path matches (case-insensitive). */
  personalIfPath: z.string().min(1).optional(),
  /** Field paths (case-insensitive regex) where the detector must not fire. */
  skipPaths: z.string().min(1).optional(),
  /** Field paths (case-insensitive regex) where alone the detector may fire: a field's role (`message`, `query`). */
  onlyPaths: z.string().min(1).optional(),
  confidence: Confidence,
  prefilter: PrefilterSchema.default({}),
  match: DetectorMatchSchema,
  why: Why,
  source: RuleSource.optional(),
  examples: z.strictObject({
    positive: z.array(ExampleSchema).min(1, "every detector needs positive examples"),
    negative: z.array(ExampleSchema).min(1, "every detector needs negative examples"),
  }),
});
export type DetectorDef = z.infer<typeof DetectorSchema>;

export const DetectorPackSchema = z.strictObject({
  source: PackSourceSchema,
  detectors: z.array(DetectorSchema).min(1),
});

// ---------------------------------------------------------------------------------------------
// events/*.yaml and events/*.tsv

const EventId = z.string().regex(/^event\.[A-Za-z0-9_.:-]+$/, "event ids start with event.");

export const EventDefaultSchema = z.strictObject({
  id: EventId,
  group: z.enum(GROUPS),
  category: Category,
  confidence: Confidence,
  why: Why,
  source: RuleSource.optional(),
});
export type EventDefaultDef = z.infer<typeof EventDefaultSchema>;

export const EventRuleSchema = z.strictObject({
  id: EventId,
  match: z.union([z.strictObject({ name: z.string().min(1) }), z.strictObject({ endpointPurpose: z.string().min(1) })], {
    error: "match needs exactly one of name (exact or glob) or endpointPurpose",
  }),
  group: z.enum(GROUPS).exclude(["unknown"]),
  category: z.string().min(1).optional(),
  subtype: z.string().min(1).optional(),
  why: Why,
  source: RuleSource.optional(),
  /**
   * For a glob: how the rule's source documents the whole namespace (every name under the glob,
   * listed or not, is in this group). A glob without it is refused: Microsoft's catalogue lists
   * events one by one, and a name it does not list stays `unknown` for review.
   */
  documentsNamespace: z.string().min(20).optional(),
});
export type EventRuleDef = z.infer<typeof EventRuleSchema>;

export const EventPackSchema = z.strictObject({
  source: PackSourceSchema,
  defaults: z.array(EventDefaultSchema).optional(),
  rules: z.array(EventRuleSchema).optional(),
});

/** One row of a generated catalogue: classifiers/events/office-events.tsv, windows-events.tsv. */
export const CatalogRowSchema = z.strictObject({
  id: z.string().regex(/^event\.(office|windows)\.\S+$/, "catalogue ids are event.office.<name> or event.windows.<name> (no spaces)"),
  event: z.string().min(1),
  group: z.enum(["essential", "required", "optional"]),
  category: z.string(),
  subtype: z.string(),
  doc_status: z.string(),
  also: z.string(),
  source: z.string().regex(/^https:\/\//, "every catalogue row needs its source URL"),
  why: Why,
});
export type CatalogRow = z.infer<typeof CatalogRowSchema>;
export const CATALOG_COLUMNS = ["id", "event", "group", "category", "subtype", "doc_status", "also", "source", "why"] as const;
