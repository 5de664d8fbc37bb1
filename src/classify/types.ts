/**
 * What the classifier produces: for every decoded field the DPIA category (content, functional,
 * diagnostic), whether and how it is personal data, the winning rule id and every other reason; for
 * every event its Microsoft group and its DPIA category as a whole. Plain data, no I/O.
 *
 * Results are shared between fields and events where they are identical (the engine interns them)
 * and are frozen: read them, copy them before changing anything.
 */
import type { UploadFacts } from "../decode/upload-facts.js";
import type { CATEGORIES, GROUPS, PERSONAL_KINDS } from "./schema.js";

/** The DPIA's three categories (docs/categories.md). */
export type Category = (typeof CATEGORIES)[number];

/** What kind of personal data a value is, strongest first; `none` = not personal data by itself. */
/**
 * What a personal value is: an identifier of a person (direct), of a device on the network, a
 * record of what the person visited (page URLs, referrers), or an id that links events to one
 * person or device (pseudonymous).
 */
export type PersonalKind = (typeof PERSONAL_KINDS)[number];

/** Microsoft's group for an event: its privacy documentation, a hand-written rule, or nothing known. */
export type MicrosoftGroup = (typeof GROUPS)[number];

/**
 * A remark about a field (or, with fieldPath `name`, the event): a stable dotted code such as
 * `declared.untagged-pii`, `declared.untagged-content`, `content.in-diagnostic`, `event.unknown`.
 */
export interface ClassificationFinding {
  code: string;
  message: string;
  fieldPath: string;
  /** The rule or detector that led to the finding. */
  rule?: string;
}

/** One field's classification, aligned by index with DecodedEvent.fields. */
export interface ClassifiedField {
  category: Category;
  personal: PersonalKind;
  /** The rule that decided: `declared.*`, `field.*`, `context.*`, `detector.*` or `event.default.*`. */
  rule: string;
  /** Every rule and detector that fired for this field, the winning one first. */
  reasons: string[];
  /** 0..1: the winning rule's confidence. */
  confidence: number;
  /**
   * The value carries a credential (a secret detector fired, e.g. an API key in a URL's query): its
   * id is among `reasons`, which is what the store keeps; exports redact such values.
   */
  secret?: true;
  findings?: ClassificationFinding[];
}

export interface ClassifiedEvent {
  group: MicrosoftGroup;
  /** The rule that gave the group: `event.office.<name>`, `event.glob.*`, `event.endpoint.*` or `event.default.unknown`. */
  groupRule: string;
  /** content when any field is content, else the group's default category. */
  eventCategory: Category;
  /** Microsoft's category for the event (Licensing, Product and service usage, ...), when known. */
  catalogCategory?: string;
  /** Microsoft's data subtype (Application feature success, ...), when known. */
  subtype?: string;
  /** Whether the event is still in Microsoft's documentation (catalogue events only). */
  docStatus?: string;
  fields: ClassifiedField[];
  /** Event-level findings and every field's findings. */
  findings: ClassificationFinding[];
}

/** What the classifier may know about the upload an event came in. */
export interface ClassifyContext {
  facts?: UploadFacts;
  /** classifiers/endpoints.yaml `purpose` of the host (diagnostic-upload, configuration, connected-experience, ...). */
  endpointPurpose?: string;
}

/** One request header, query parameter or connection fact of an upload, classified by fields/headers.yaml. */
export interface ClassifiedRequestItem {
  /** Header or parameter name as sent; `client-ip` for the connection's address. */
  name: string;
  where: "header" | "query" | "connection";
  category: Category;
  personal: PersonalKind;
  /** A credential: never store or log the value. */
  secret: boolean;
  rule: string;
  reasons: string[];
  confidence: number;
}
