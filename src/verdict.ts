/**
 * Verdicts: what `exhaust verify` produces, stores with the session, and what the bundle, the HTML
 * report and the web UI show. `exhaust verify --format json` prints a VerdictReport as it is.
 */
export type RuleStatus = "pass" | "fail" | "warn";

/**
 * The verdict as a whole: a rule status, or `inconclusive` when the session cannot speak for the
 * setting (exchanges undecoded, an unfinished import, no traffic to a catalogue host) and no rule
 * failed. Exit codes of `exhaust verify`: pass/warn 0, fail 1, usage error 2, inconclusive 3.
 */
export type VerdictStatus = RuleStatus | "inconclusive";

/** What a verdict covered: the session's counts when it was checked. */
export interface VerdictCoverage {
  /** Exchanges stored in the session. */
  exchanges: number;
  /** Of those, decoded (the rest are `undecoded`). */
  decodedExchanges: number;
  undecoded: number;
  /** Events the decoded exchanges hold. */
  events: number;
  /** Connections without a decrypted exchange (pinned, tunnelled, denied, failed). */
  bareConnections: number;
  /** Exchanges and bare connections to hosts in the endpoint catalogue. */
  catalogueTraffic: number;
  /** Why the session is known to be incomplete (an import that did not finish). */
  incomplete?: string;
}

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
  /**
   * fail if any rule failed (what was seen is a violation, whatever was not seen); else
   * inconclusive when `inconclusive` lists a reason; else warn if any rule warned; else pass.
   */
  status: VerdictStatus;
  /** Why the session cannot speak for the setting; set (non-empty) even on a failure. */
  inconclusive?: string[];
  /** What the verdict covered (absent in verdicts stored before coverage was recorded). */
  coverage?: VerdictCoverage;
  counts: Record<RuleStatus, number>;
  rules: RuleVerdict[];
  createdAt: number;
  toolVersion: string;
  /** Fingerprint of the classification rule packs the events were classified with. */
  rulesFingerprint: string;
}
