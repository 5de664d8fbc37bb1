/**
 * Verdicts: what `exhaust verify` produces, stores with the session, and what the bundle, the HTML
 * report and the web UI show. `exhaust verify --format json` prints a VerdictReport as it is.
 */
export type RuleStatus = "pass" | "fail" | "warn";

/** One piece of evidence behind a failure or warning: enough to find the bytes again. */
export interface Evidence {
  exchangeId?: string;
  connectionId?: string;
  host?: string;
  eventId?: number;
  eventName?: string;
  fieldPath?: string;
  /** A short excerpt of the value (or header, URL, body) that matched. */
  excerpt?: string;
  /** SHA-256 of the request body the evidence came from. */
  bodySha256?: string;
  /** Where a canary was found and in which form (plain, base64, sha256, ...). */
  location?: string;
  form?: string;
  note?: string;
}

export interface RuleVerdict {
  /** The profile rule's id. */
  id: string;
  /** The rule kind (endpoint-forbidden, event-group-forbidden, category-forbidden, canary-forbidden, ...). */
  kind: string;
  description: string;
  /** The setting the rule checks, e.g. "Office diagnostic data level: Neither". */
  setting?: string;
  source: string;
  status: RuleStatus;
  /** How many items violated (fail) or need review (warn); 0 on pass. */
  count: number;
  evidence: Evidence[];
  /** Evidence items left out of `evidence` (it is capped); 0 when all are listed. */
  evidenceOmitted: number;
  /** The rule's one-line why. */
  why?: string;
  /** The profile the rule is written in (an included profile's name for included rules). */
  profile?: string;
  /** How many items the rule looked at (events, fields, connections, requests). */
  checked?: number;
  /** On a failure: how many further items only need review (what would otherwise be a warning). */
  reviewCount?: number;
  /** Anything the reader should know about how the rule ran (e.g. no canaries to search for). */
  note?: string;
}

export interface VerdictReport {
  profile: { name: string; description: string; sha256: string };
  session: { id: number; name: string };
  /** fail if any rule failed, else warn if any warned, else pass. */
  status: RuleStatus;
  counts: Record<RuleStatus, number>;
  rules: RuleVerdict[];
  createdAt: number;
  toolVersion: string;
  /** Fingerprint of the classification rule packs the events were classified with. */
  rulesFingerprint: string;
}
