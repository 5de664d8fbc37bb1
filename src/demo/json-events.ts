/**
 * Builders for 1DS JSON-lines uploads (wire-formats.md §2): render an event description as one
 * JSON line with the `ext.metadata.f` tags the JS SDK would write, and realistic Office-like batches.
 */

/** EventPropertyType names and codes (§2.5). */
export const TYPE_CODES = {
  string: 1,
  int32: 2,
  uint32: 3,
  int64: 4,
  uint64: 5,
  double: 6,
  bool: 7,
  guid: 8,
  datetime: 9,
} as const;
export type JsonTypeName = keyof typeof TYPE_CODES;

export type Scalar = string | number | boolean | bigint | null;

/** A value with a declared type, PII kind (§2.6) and/or customer-content flag. */
export class Typed {
  constructor(
    readonly value: Scalar | Scalar[],
    readonly type?: JsonTypeName,
    readonly pii?: number,
    readonly cc?: boolean,
  ) {}
}

export const typed = (value: Scalar | Scalar[], type?: JsonTypeName, opts: { pii?: number; cc?: boolean } = {}): Typed =>
  new Typed(value, type, opts.pii, opts.cc);

/** A property value: plain JSON (bigint renders as an exact integer literal), Typed, or a nested object. */
export type PropertyValue = Scalar | Scalar[] | Typed | { [key: string]: PropertyValue };

export interface JsonEventSpec {
  name: string;
  time?: string;
  ver?: string;
  iKey?: string;
  /** Part A as plain JSON: `{ app: { name: "Word" } }`. `metadata` is built from the typed values. */
  ext?: Record<string, Record<string, unknown>>;
  baseType?: string;
  /** Part B. */
  baseData?: Record<string, PropertyValue>;
  /** Part C; keys are written verbatim (`"Data.Doc.Ext"`). */
  data?: Record<string, PropertyValue>;
  /** `nested` (JS SDK: `{"t": n}`, nested `f`, `{"a": {"t": n}}`) or `windows` (DDV: bare numbers). */
  metadataForm?: "nested" | "windows";
  /** Like the JS SDK, tag untyped JS numbers as Double (`t: 6`). Off by default. */
  tagNumbers?: boolean;
  /** Windows `ext.metadata.privTags`. */
  privTags?: number;
}

/** `t = typeCode | piiKind << 5 | customerContent << 13`. */
export function typeTag(type?: JsonTypeName, pii = 0, cc = false): number {
  return (type ? TYPE_CODES[type] : 0) | ((pii & 0xff) << 5) | (cc ? 1 << 13 : 0);
}

type Json = Scalar | Json[] | { [key: string]: Json };

const isPlainObject = (v: unknown): v is Record<string, PropertyValue> =>
  v !== null && typeof v === "object" && !Array.isArray(v) && !(v instanceof Typed);

/** Splits typed values into plain JSON and the matching metadata `f` tree (undefined when nothing is tagged). */
function valuesAndTags(
  props: Record<string, PropertyValue>,
  form: "nested" | "windows",
  tagNumbers: boolean,
): { values: Record<string, Json>; tags?: Record<string, Json> } {
  const values: Record<string, Json> = {};
  const tags: Record<string, Json> = {};
  let any = false;
  for (const [k, v] of Object.entries(props)) {
    if (v instanceof Typed) {
      values[k] = v.value;
      const t = typeTag(v.type, v.pii, v.cc);
      tags[k] = form === "windows" ? t : Array.isArray(v.value) ? { a: { t } } : { t };
      any = true;
    } else if (isPlainObject(v)) {
      const inner = valuesAndTags(v, form, tagNumbers);
      values[k] = inner.values;
      if (inner.tags) {
        tags[k] = { f: inner.tags };
        any = true;
      }
    } else {
      values[k] = v;
      if (tagNumbers && typeof v === "number") {
        tags[k] = form === "windows" ? 6 : { t: 6 };
        any = true;
      }
    }
  }
  return any ? { values, tags } : { values };
}

/** JSON text where bigint values become exact integer literals. */
export function stringifyExact(v: unknown): string {
  if (typeof v === "bigint") return v.toString();
  if (v === null || typeof v !== "object") return JSON.stringify(v) ?? "null";
  if (Array.isArray(v)) return `[${v.map(stringifyExact).join(",")}]`;
  const parts: string[] = [];
  for (const [k, x] of Object.entries(v)) if (x !== undefined) parts.push(`${JSON.stringify(k)}:${stringifyExact(x)}`);
  return `{${parts.join(",")}}`;
}

/** One event as one JSON line (no newline), with `ext.metadata.f` tags for the typed values. */
export function renderJsonEvent(spec: JsonEventSpec): string {
  const form = spec.metadataForm ?? "nested";
  const tagNumbers = spec.tagNumbers ?? false;
  const partC = valuesAndTags(spec.data ?? {}, form, tagNumbers);
  const partB = spec.baseData ? valuesAndTags(spec.baseData, form, tagNumbers) : undefined;
  const f: Record<string, Json> = { ...(partC.tags ?? {}) };
  if (partB?.tags) f.baseData = { f: partB.tags };
  const ext: Record<string, unknown> = { ...(spec.ext ?? {}) };
  const metadata: Record<string, unknown> = {};
  if (Object.keys(f).length) metadata.f = f;
  if (spec.privTags !== undefined) metadata.privTags = spec.privTags;
  if (Object.keys(metadata).length) ext.metadata = metadata;
  const data: Record<string, unknown> = {};
  if (spec.baseType !== undefined) data.baseType = spec.baseType;
  if (partB) data.baseData = partB.values;
  Object.assign(data, partC.values);
  const event: Record<string, unknown> = { name: spec.name };
  if (spec.time !== undefined) event.time = spec.time;
  event.ver = spec.ver ?? "4.0";
  if (spec.iKey !== undefined) event.iKey = spec.iKey;
  if (Object.keys(ext).length) event.ext = ext;
  if (Object.keys(data).length) event.data = data;
  return stringifyExact(event);
}

/** Lines joined by `sep` (the SDK uses a single `\n` and no trailing newline). */
export function jsonLines(lines: string[], sep = "\n"): Buffer {
  return Buffer.from(lines.join(sep), "utf8");
}

// ---------------------------------------------------------------------------------------------
// Realistic Office-like events (names and fields from wire-formats.md §7.2; identifiers synthetic)

/** A small deterministic PRNG (mulberry32), so a batch or a failing case can be made again from its seed. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function guid(rnd: () => number): string {
  const hex = (n: number) =>
    Array.from({ length: n }, () =>
      Math.floor(rnd() * 16)
        .toString(16)
        .toUpperCase(),
    ).join("");
  return `${hex(8)}-${hex(4)}-4${hex(3)}-8${hex(3)}-${hex(12)}`;
}

const EVENT_NAMES = [
  "Office.Word.FileOpen.UserInitiatedOpen",
  "Office.Performance.Boot",
  "Office.Experimentation.EcsFetch",
  "Office.Identity.SilentWamTokenRequestMsa",
  "Office.ClickToRun.UpdateStatus",
  "Office.SessionIdProvider.OfficeProcessSessionStart",
  "Office.Docs.OutSpace.ShowBackstage",
  "Office.NaturalLanguage.EditorBx.RemoteSettingSync",
];

export const TENANT_ID = "0a89d516ae714e01ae89c96d185e9ae3";

/** Part C property generators, cycled to reach the requested count. */
const PART_C: Array<(i: number, rnd: () => number, name: string, time: string) => [string, PropertyValue]> = [
  (_, __, name) => ["Event.Name", name],
  () => ["Event.Source", "OTelJS"],
  (_, __, ___, time) => ["Event.Time", typed(time, "datetime")],
  (i) => ["Event.Sequence", typed(i + 1, "int64")],
  (_, rnd) => ["Event.Id", `${guid(rnd)}.1`],
  () => ["Event.Contract", "Office.System.Activity"],
  (_, rnd) => ["Session.Id", typed(guid(rnd), "guid")],
  () => ["App.Platform", "Win32"],
  () => ["App.Name", "Word"],
  () => ["App.Version", "16.0.17029.20028"],
  () => ["Release.Audience", "Production"],
  () => ["Release.Channel", "CC"],
  (_, rnd) => ["Activity.CV", `Qm9ndXNDVmV4YW1wbGU.${1 + Math.floor(rnd() * 9)}`],
  (_, rnd) => ["Activity.Duration", typed(Math.floor(rnd() * 5000), "int64")],
  () => ["Activity.Count", typed(1, "int64")],
  () => ["Activity.AggMode", typed(0, "int64")],
  (_, rnd) => ["Activity.Success", rnd() > 0.1],
  () => ["zC.Activity", "Office.System.Activity"],
  () => ["Data.Doc.Ext", "docx"],
  () => ["Data.Doc.FileFormat", typed(6, "int32")],
  () => ["Data.Doc.Fqdn", typed("contoso.sharepoint.com", "string", { pii: 12 })],
  (_, rnd) => [
    "Data.Doc.Url",
    typed(`https://contoso.sharepoint.com/sites/x/Doc${Math.floor(rnd() * 1000)}.docx`, "string", { pii: 11, cc: true }),
  ],
  (_, rnd) => ["User.PrimaryIdentityHash", typed(guid(rnd).replace(/-/g, "").toLowerCase(), "string", { pii: 10 })],
  () => ["User.TenantId", typed("7a1d2b3c-0000-4000-8000-111122223333", "guid")],
  () => ["Device.RamMB", typed(16384, "int32")],
  () => ["Device.NumProcPhysCores", typed(8, "uint32")],
  (_, rnd) => ["Data.FreeMemoryPercentage", typed(Math.round(rnd() * 10000) / 100, "double")],
  () => ["Consent.DiagnosticConsentLevel", typed(1, "int32")],
  () => ["Data.Doc.Location", "SharePoint"],
  (_, rnd) => ["Data.Doc.NumberCoAuthors", typed(Math.floor(rnd() * 4), "int32")],
  () => ["Application.Architecture", "x64"],
  () => ["Data.ConfigurationId", "P-R-83860-16-100,P-R-1106290-4-4"],
  () => ["Data.LanguagePacks", typed(["en-US", "fr-FR"], "string")],
  () => ["Device.OsBuild", "19045.4291"],
  () => ["Data.Doc.IsIncrementalOpen", false],
];

/** 64-bit values a JS producer cannot write but a native one can (§7.1: UInt64 FILETIME-ish values). */
const BIG_INT_FIELDS: Array<[string, PropertyValue]> = [
  ["Data.Doc.SizeInBytes", typed(18446744073709551557n, "uint64")],
  ["Session.SamplingClientIdValue", 9007199254740993n],
];

export interface BatchOptions {
  /** Put two integers beyond 2^53 into each event (first Part C fields). Off by default: JS SDKs cannot send them. */
  bigInts?: boolean;
  seed?: number;
}

/** One Office-like event with `nFields` Part C properties. */
export function makeOfficeEvent(i: number, nFields: number, rnd: () => number = prng(i), opts: BatchOptions = {}): JsonEventSpec {
  const name = EVENT_NAMES[i % EVENT_NAMES.length];
  const time = new Date(Date.UTC(2026, 10, 24, 8, 0, 0) + i * 137).toISOString();
  const data: Record<string, PropertyValue> = {};
  const big = opts.bigInts ? BIG_INT_FIELDS.slice(0, nFields) : [];
  for (const [k, v] of big) data[k] = v;
  for (let k = 0; k < nFields - big.length; k++) {
    if (k < PART_C.length) {
      const [key, value] = PART_C[k](i, rnd, name, time);
      data[key] = value;
    } else {
      const n = k - PART_C.length;
      data[`Data.Custom.Field${n}`] = n % 3 === 0 ? typed(n * 1000 + i, "int64") : n % 3 === 1 ? `value-${n}-${i}` : n % 2 === 0;
    }
  }
  return {
    name,
    time,
    ver: "4.0",
    iKey: `o:${TENANT_ID}`,
    ext: {
      sdk: { ver: "1DS-Web-JS-3.2.6", seq: i + 1, epoch: "1398741652", installId: "8c0a4d5e-0000-4000-8000-1234567890ab" },
      app: { name: "Word", ver: "16.0.17029.20028", locale: "en-US", sesId: guid(rnd) },
      device: { localId: `s:${guid(rnd)}`, deviceClass: "Windows.Desktop" },
      os: { name: "Windows", ver: "10.0.19045" },
      user: { localId: `w:${guid(rnd)}` },
      loc: { tz: "-07:00" },
      mscv: { cV: `Ab3+xYz0QkOq1LmN.${i}` },
    },
    baseType: "custom.office_system_activity",
    baseData: { properties: { version: "PostChannel=3.2.6" } },
    data,
  };
}

/** A 1DS JSON-lines body of `nEvents` Office-like events with `nFields` Part C properties each. */
export function makeJsonLinesBatch(nEvents: number, nFields: number, opts: BatchOptions = {}): Buffer {
  const rnd = prng(opts.seed ?? 1);
  const lines: string[] = [];
  for (let i = 0; i < nEvents; i++) lines.push(renderJsonEvent(makeOfficeEvent(i, nFields, rnd, opts)));
  return jsonLines(lines);
}
