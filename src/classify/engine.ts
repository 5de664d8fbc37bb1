/**
 * The classifier: every field of every decoded event gets a DPIA category, a personal-data kind,
 * the winning rule id, all reasons and a confidence; every event its Microsoft group and its
 * category as a whole. Rules are data (classifiers/); this file only applies them.
 *
 * Precedence for a field (docs/classification-rules.md):
 *   1. the wire's declaration: customer-content bit → content; PII kind → personal kind
 *      (and content for MailSubject);
 *   2. an explicit field rule (exact path, else the most specific glob; `A_B` also tried as `A.B`),
 *      or a context rule (the value repeats the upload's tenant token);
 *   3. value detectors: content detectors (paths, file names, document/search URLs, mail subjects,
 *      sentences) make the field content whatever 1-2 said, with a finding; personal detectors raise
 *      the personal kind; identifier shapes (GUIDs, hashes) are pseudonymous ids in id fields;
 *   4. the event's default: its group's category (essential → functional, required → diagnostic, ...).
 *
 * Hot path: per-path and per-value caches, shared frozen results for fields a rule decides alone
 * and for each distinct outcome of a declaration or detector hit at a path, no regex for numbers,
 * booleans or strings shorter than 3 characters.
 */
import type { DecodedEvent, DecodedField } from "../decode/types.js";
import { isSecretHeaderName, isSecretParam } from "../secrets.js";
import type { RawHeaders } from "../types.js";
import { NO_DETECTION, type Detection, type Detector } from "./detectors.js";
import { loadRulePacks, type EventDefault, type EventRule, type FieldRule, type RulePacks } from "./packs.js";
import type {
  Category,
  ClassificationFinding,
  ClassifiedEvent,
  ClassifiedField,
  ClassifiedRequestItem,
  ClassifyContext,
  MicrosoftGroup,
  PersonalKind,
} from "./types.js";

export { loadRulePacks, buildRulePacks, RulePacks } from "./packs.js";
export type { RuleInfo } from "./packs.js";

const RANK: Record<PersonalKind, number> = {
  none: 0,
  "pseudonymous-id": 1,
  "browsing-history": 2,
  "network-identifier": 3,
  "direct-identifier": 4,
};

const PERSONAL_WORDS: Record<PersonalKind, string> = {
  "direct-identifier": "a direct identifier",
  "pseudonymous-id": "a pseudonymous identifier",
  "network-identifier": "a network identifier",
  "browsing-history": "browsing history",
  none: "no personal data",
};

// ---------------------------------------------------------------------------------------------
// Per-pack state: caches keyed by field path and event name.

interface PathInfo {
  rule: FieldRule | undefined;
  /** Per detector: 1 = skip here (skipPaths, or outside onlyPaths), 2 = personal applies here (personalIfPath). */
  flags: Uint8Array;
  /** combine's frozen results at this path, by their inputs (a few per path: detections are interned). */
  combined: Combined[] | undefined;
}

/** One result of combine at a path and the inputs it depends on besides the path. */
interface Combined {
  rule: FieldRule | undefined;
  cc: boolean;
  pii: number;
  det: Detection;
  dflt: EventDefault;
  result: ClassifiedField;
}

/** Results of combine kept per path; a path with more distinct inputs computes the rest each time. */
const COMBINED_PER_PATH_MAX = 8;

interface EventInfo {
  group: MicrosoftGroup;
  rule: EventRule | undefined;
  groupRule: string;
  dflt: EventDefault;
  unknown: boolean;
}

interface EngineState {
  paths: Map<string, PathInfo>;
  events: Map<string, EventInfo>;
  guid: Detection;
}

const PATH_CACHE_MAX = 100_000;
const EVENT_CACHE_MAX = 50_000;

const states = new WeakMap<RulePacks, EngineState>();

function stateOf(packs: RulePacks): EngineState {
  let s = states.get(packs);
  if (!s) {
    s = { paths: new Map(), events: new Map(), guid: packs.detectors.guidDetection() };
    states.set(packs, s);
  }
  return s;
}

function pathInfo(packs: RulePacks, st: EngineState, path: string): PathInfo {
  let pi = st.paths.get(path);
  if (pi !== undefined) return pi;
  let rule = fieldRuleFor(packs, path);
  if (rule === undefined && path.includes("_")) rule = fieldRuleFor(packs, path.replace(/_/g, "."));
  const ds = packs.detectorList;
  const flags = new Uint8Array(ds.length);
  for (let i = 0; i < ds.length; i++) {
    const d = ds[i];
    if (d.skipPaths?.test(path) || (d.onlyPaths !== undefined && !d.onlyPaths.test(path))) flags[i] |= 1;
    if (d.cls === "content" && rule?.contentDetectors === false) flags[i] |= 1;
    if (d.personalIfPath === undefined || d.personalIfPath.test(path)) flags[i] |= 2;
  }
  pi = { rule, flags, combined: undefined };
  if (st.paths.size >= PATH_CACHE_MAX) st.paths.clear();
  st.paths.set(path, pi);
  return pi;
}

/** Exact path, else the most specific glob (segment-indexed globs are always more specific than loose ones). */
export function fieldRuleFor(packs: RulePacks, path: string): FieldRule | undefined {
  const exact = packs.exactPaths.get(path);
  if (exact) return exact;
  const dot = path.indexOf(".");
  if (dot > 0) {
    const list = packs.globsBySegment.get(path.slice(0, dot));
    if (list) for (const g of list) if (path.startsWith(g.prefix) && g.re.test(path)) return g.rule;
  }
  for (const g of packs.looseGlobs) if (path.startsWith(g.prefix) && g.re.test(path)) return g.rule;
  return undefined;
}

function eventInfo(packs: RulePacks, st: EngineState, name: string, purpose: string | undefined): EventInfo {
  const key = purpose === undefined ? name : `${purpose}\u0000${name}`;
  let info = st.events.get(key);
  if (info !== undefined) return info;
  let rule = packs.catalog.get(name) ?? packs.catalogLower.get(name.toLowerCase()) ?? packs.exactEventRules.get(name);
  if (!rule) {
    for (const g of packs.eventGlobs) {
      if (name.startsWith(g.prefix) && g.re.test(name)) {
        rule = g.rule;
        break;
      }
    }
  }
  if (!rule && purpose !== undefined) rule = packs.endpointRules.get(purpose);
  const group: MicrosoftGroup = rule?.group ?? "unknown";
  const dflt = packs.defaults.get(group)!;
  info = { group, rule, groupRule: rule?.id ?? dflt.id, dflt, unknown: rule === undefined };
  if (st.events.size >= EVENT_CACHE_MAX) st.events.clear();
  st.events.set(key, info);
  return info;
}

// ---------------------------------------------------------------------------------------------
// Events and fields

/** Classifies one decoded event; `fields` is aligned by index with `event.fields`. */
export function classifyEvent(event: DecodedEvent, packs: RulePacks = loadRulePacks(), context?: ClassifyContext): ClassifiedEvent {
  const st = stateOf(packs);
  const info = eventInfo(packs, st, event.name, context?.endpointPurpose);
  const tenants = context?.facts ? tenantValues(context.facts.tenantTokens, context.facts.tenantIds) : undefined;
  const src = event.fields;
  const n = src.length;
  const fields = new Array<ClassifiedField>(n);
  const findings: ClassificationFinding[] = [];
  if (info.unknown) {
    findings.push({
      code: "event.unknown",
      message: `event ${event.name} is in no catalogue or rule: ${info.dflt.category} by default (${info.dflt.id}), flag for review`,
      fieldPath: "name",
      rule: info.dflt.id,
    });
  }
  let content = false;
  let personal = false;
  for (let i = 0; i < n; i++) {
    const cf = classifyField(src[i], info.dflt, packs, st, tenants);
    fields[i] = cf;
    if (cf.category === "content") content = true;
    if (cf.personal !== "none") personal = true;
    if (cf.findings !== undefined) for (const f of cf.findings) findings.push(f);
  }
  if (personal) spreadPersonalKinds(src, fields);
  const r = info.rule;
  const out: ClassifiedEvent = {
    group: info.group,
    groupRule: info.groupRule,
    eventCategory: content ? "content" : info.dflt.category,
    fields,
    findings,
  };
  if (r?.catalogCategory !== undefined) out.catalogCategory = r.catalogCategory;
  if (r?.subtype !== undefined) out.subtype = r.subtype;
  if (r?.docStatus !== undefined) out.docStatus = r.docStatus;
  return out;
}

/** Values shorter than this are not compared across fields ("True", "0", "Windows" repeat innocently). */
const SAME_VALUE_MIN_LENGTH = 8;

/**
 * The same value in two fields of one event is the same datum: it gets the strongest personal kind
 * any of its fields has (.NET's `Machine ID` is personal by rule, so its copy `Machine ID Old` is
 * too), with the reason `context.same-value`.
 */
function spreadPersonalKinds(src: readonly DecodedField[], fields: ClassifiedField[]): void {
  // An event has few personal values: plain arrays searched with === (length first) cost less than
  // hashing every long string value of the event into a Map. Many of them: a Map.
  const values: string[] = [];
  const kinds: PersonalKind[] = [];
  for (let i = 0; i < src.length; i++) {
    const v = src[i].value;
    const k = fields[i].personal;
    if (k === "none" || typeof v !== "string" || v.length < SAME_VALUE_MIN_LENGTH) continue;
    const at = values.indexOf(v);
    if (at === -1) {
      if (values.length === FEW_PERSONAL_VALUES) return spreadManyPersonalKinds(src, fields);
      values.push(v);
      kinds.push(k);
    } else if (RANK[k] > RANK[kinds[at]]) kinds[at] = k;
  }
  if (values.length === 0) return;
  for (let i = 0; i < src.length; i++) {
    const v = src[i].value;
    if (typeof v !== "string" || v.length < SAME_VALUE_MIN_LENGTH) continue;
    const at = values.indexOf(v);
    if (at !== -1) raiseTo(fields, i, kinds[at]);
  }
}

/** Distinct personal values of one event above which spreadPersonalKinds uses a Map. */
const FEW_PERSONAL_VALUES = 16;

function spreadManyPersonalKinds(src: readonly DecodedField[], fields: ClassifiedField[]): void {
  const strongest = new Map<string, PersonalKind>();
  for (let i = 0; i < src.length; i++) {
    const v = src[i].value;
    const k = fields[i].personal;
    if (k === "none" || typeof v !== "string" || v.length < SAME_VALUE_MIN_LENGTH) continue;
    const had = strongest.get(v);
    if (had === undefined || RANK[k] > RANK[had]) strongest.set(v, k);
  }
  for (let i = 0; i < src.length; i++) {
    const v = src[i].value;
    if (typeof v !== "string" || v.length < SAME_VALUE_MIN_LENGTH) continue;
    const k = strongest.get(v);
    if (k !== undefined) raiseTo(fields, i, k);
  }
}

/** Raises field i to personal kind k (when k is stronger), giving the reason. */
function raiseTo(fields: ClassifiedField[], i: number, k: PersonalKind): void {
  const f = fields[i];
  if (RANK[k] <= RANK[f.personal]) return;
  fields[i] = { ...f, personal: k, reasons: [...f.reasons, SAME_VALUE_REASON] };
}

/** The reason a field's personal kind was raised by another field with the same value. */
export const SAME_VALUE_REASON = "context.same-value";

/** The Microsoft group of an event name alone (no fields), with the rule that gave it. */
export function eventGroup(
  name: string,
  packs: RulePacks = loadRulePacks(),
  context?: Pick<ClassifyContext, "endpointPurpose">,
): { group: MicrosoftGroup; groupRule: string; category: Category } {
  const info = eventInfo(packs, stateOf(packs), name, context?.endpointPurpose);
  return { group: info.group, groupRule: info.groupRule, category: info.dflt.category };
}

const tenantSets = new WeakMap<string[], Set<string>>();

function tenantValues(tokens: string[], ids: string[]): Set<string> | undefined {
  if (tokens.length === 0 && ids.length === 0) return undefined;
  let s = tenantSets.get(tokens);
  if (!s) {
    s = new Set<string>();
    for (const t of tokens) s.add(t);
    for (const id of ids) {
      s.add(id);
      s.add(`o:${id}`);
    }
    tenantSets.set(tokens, s);
  }
  return s;
}

function classifyField(
  f: DecodedField,
  dflt: EventDefault,
  packs: RulePacks,
  st: EngineState,
  tenants: Set<string> | undefined,
): ClassifiedField {
  const pi = pathInfo(packs, st, f.path);
  let rule = pi.rule;
  const v = f.value;
  if (rule === undefined && tenants !== undefined && typeof v === "string" && packs.tenantRule && tenants.has(v)) {
    rule = packs.tenantRule;
  }
  let det: Detection = NO_DETECTION;
  if (typeof v === "string") {
    if (f.type === "string") det = packs.detectors.detect(v);
    else if (f.type === "guid") det = st.guid;
  } else if (Array.isArray(v)) det = packs.detectors.detectArray(v);
  const a = f.annotations;
  const cc = a !== undefined && a.customerContent === true;
  const pii = a !== undefined && a.piiKind !== undefined && a.piiKind > 0 ? a.piiKind : 0;
  if (!cc && pii === 0 && det === NO_DETECTION) return rule?.plain ?? dflt.plain;
  // The slow path's result depends only on these inputs and the path: computed once, then shared
  // (frozen, like the plain results).
  const known = pi.combined;
  if (known !== undefined)
    for (const k of known) if (k.det === det && k.rule === rule && k.dflt === dflt && k.cc === cc && k.pii === pii) return k.result;
  const result = freezeCombined(combine(f.path, rule, cc, pii, det, pi, dflt, packs));
  if (known === undefined) pi.combined = [{ rule, cc, pii, det, dflt, result }];
  else if (known.length < COMBINED_PER_PATH_MAX) known.push({ rule, cc, pii, det, dflt, result });
  return result;
}

function freezeCombined(r: ClassifiedField): ClassifiedField {
  Object.freeze(r.reasons);
  if (r.findings !== undefined) {
    for (const f of r.findings) Object.freeze(f);
    Object.freeze(r.findings);
  }
  return Object.freeze(r);
}

/** The slow path: a declaration or a detector hit. */
function combine(
  path: string,
  rule: FieldRule | undefined,
  cc: boolean,
  pii: number,
  det: Detection,
  pi: PathInfo,
  dflt: EventDefault,
  packs: RulePacks,
): ClassifiedField {
  const ccRule = cc ? packs.customerContentRule : undefined;
  // A PII kind without a rule of its own (beyond §2.6) counts as GenericData.
  const piiRule = pii > 0 ? (packs.piiKindRules[pii] ?? packs.piiKindRules[2]) : undefined;
  const reasons: string[] = [];
  let findings: ClassificationFinding[] | undefined;

  // 1-2: declaration, field rule, else the event default.
  let category: Category;
  let winner: { id: string; confidence: number } | undefined;
  if (ccRule) {
    category = ccRule.category ?? "content";
    winner = ccRule;
  } else if (piiRule?.category !== undefined) {
    category = piiRule.category;
    winner = piiRule;
  } else if (rule?.category !== undefined) {
    category = rule.category;
    winner = rule;
  } else category = dflt.category;
  const baseCategory = category;
  const declaredContent = ccRule !== undefined || piiRule?.category === "content" || rule?.category === "content";

  let personal: PersonalKind = "none";
  const raise = (k: PersonalKind) => {
    if (RANK[k] > RANK[personal]) personal = k;
  };
  if (ccRule) {
    reasons.push(ccRule.id);
    raise(ccRule.personal);
  }
  if (piiRule) {
    reasons.push(piiRule.id);
    raise(piiRule.personal);
  }
  if (rule) {
    reasons.push(rule.id);
    raise(rule.personal);
  }
  const rulePersonal: PersonalKind = piiRule ? piiRule.personal : (rule?.personal ?? "none");

  // 3: detectors.
  let contentHit: Detector | undefined;
  let personalHit: Detector | undefined;
  let idHit: Detector | undefined;
  let secretHit: Detector | undefined;
  for (const d of det.hits) {
    const flags = pi.flags[d.index];
    if (flags & 1) continue;
    reasons.push(d.id);
    switch (d.cls) {
      case "content":
        if (contentHit === undefined || d.confidence > contentHit.confidence) contentHit = d;
        raise(d.personal);
        break;
      case "personal":
        if (personalHit === undefined || RANK[d.personal] > RANK[personalHit.personal]) personalHit = d;
        raise(d.personal);
        break;
      case "identifier":
        idHit ??= d;
        // A field rule or declaration knows better what an id-shaped value is.
        if (rule === undefined && piiRule === undefined && (flags & 2) !== 0) raise(d.personal);
        break;
      case "secret":
        secretHit ??= d;
        break;
      case "info":
        break;
    }
  }

  if (contentHit !== undefined && category !== "content") {
    category = "content";
    winner = contentHit;
    (findings ??= []).push({
      code: `content.in-${baseCategory}`,
      message: `${path}: ${contentHit.id} found content in a field otherwise ${baseCategory}${rule ? ` (${rule.id})` : ` (${dflt.id})`}`,
      fieldPath: path,
      rule: contentHit.id,
    });
  }
  if (contentHit !== undefined && !declaredContent) {
    (findings ??= []).push({
      code: "declared.untagged-content",
      message: `${path}: ${contentHit.id} found content, but the wire does not tag the field customer content`,
      fieldPath: path,
      rule: contentHit.id,
    });
  }
  if (personalHit !== undefined && pii === 0 && RANK[personalHit.personal] > RANK[rulePersonal]) {
    (findings ??= []).push({
      code: "declared.untagged-pii",
      message: `${path}: ${personalHit.id} found ${PERSONAL_WORDS[personalHit.personal]}, but the wire declares no PII kind${
        rule ? ` and ${rule.id} expects ${PERSONAL_WORDS[rule.personal]}` : ""
      }`,
      fieldPath: path,
      rule: personalHit.id,
    });
  }

  // 4: nothing above decided the category: the event default, explained by the declared PII kind or
  // the strongest detector.
  if (winner === undefined) {
    reasons.push(dflt.id);
    winner = piiRule ?? personalHit ?? secretHit ?? idHit ?? dflt;
  }
  // The winner first, the rest in the order they were considered.
  const w = reasons.indexOf(winner.id);
  if (w > 0) {
    reasons.splice(w, 1);
    reasons.unshift(winner.id);
  } else if (w < 0) reasons.unshift(winner.id);

  const result: ClassifiedField = { category, personal, rule: winner.id, reasons, confidence: winner.confidence };
  if (secretHit !== undefined) result.secret = true;
  if (findings !== undefined) result.findings = findings;
  return result;
}

// ---------------------------------------------------------------------------------------------
// Request headers, query parameters and the client address

/**
 * Classifies the request side of an upload by fields/headers.yaml: every header, every query
 * parameter whose name is a known header (1DS beacons send APIKey, AuthMsaDeviceTicket, ... in the
 * query) and the client IP. Values are never returned.
 */
export function classifyRequest(
  request: { headers: RawHeaders; query?: URLSearchParams; clientAddress?: string },
  packs: RulePacks = loadRulePacks(),
): ClassifiedRequestItem[] {
  const out: ClassifiedRequestItem[] = [];
  for (const [name] of request.headers) {
    const rule = headerRule(packs, name);
    if (rule) out.push(requestItem(name, "header", rule));
  }
  if (request.query) {
    for (const name of new Set(request.query.keys())) {
      const rule = packs.exactHeaders.get(name.toLowerCase()) ?? headerGlobRule(packs, name, true);
      if (rule) out.push(requestItem(name, "query", rule));
    }
  }
  if (request.clientAddress !== undefined) {
    const rule = packs.connectionRules.get("client-ip");
    if (rule) out.push(requestItem("client-ip", "connection", rule));
  }
  return out;
}

function headerRule(packs: RulePacks, name: string): FieldRule | undefined {
  return packs.exactHeaders.get(name.toLowerCase()) ?? headerGlobRule(packs, name, false);
}

/** For query parameters the catch-all `*` header glob does not apply: ordinary parameters are not headers. */
function headerGlobRule(packs: RulePacks, name: string, specificOnly: boolean): FieldRule | undefined {
  const lower = name.toLowerCase();
  for (const g of packs.headerGlobs) {
    if (specificOnly && g.prefix === "") continue;
    if (lower.startsWith(g.prefix) && g.re.test(lower)) return g.rule;
  }
  return undefined;
}

function requestItem(name: string, where: ClassifiedRequestItem["where"], rule: FieldRule): ClassifiedRequestItem {
  return {
    name,
    where,
    category: rule.category ?? "functional",
    personal: rule.personal,
    // The one list of credential names (classifiers/secrets.yaml) says, as for logs and exports.
    secret: where === "header" ? isSecretHeaderName(name) : where === "query" ? isSecretParam(name) : false,
    rule: rule.id,
    reasons: [rule.id],
    confidence: rule.confidence,
  };
}

// ---------------------------------------------------------------------------------------------
// Values alone (the detector examples in the rule packs are tested through this)

/** Ids of the detectors that fire on `value` as a string field at `path` (skipPaths and onlyPaths applied). */
export function detectValue(value: string, path = "value", packs: RulePacks = loadRulePacks()): string[] {
  const pi = pathInfo(packs, stateOf(packs), path);
  return packs.detectors
    .detect(value)
    .hits.filter((d) => (pi.flags[d.index] & 1) === 0)
    .map((d) => d.id);
}
