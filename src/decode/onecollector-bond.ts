/**
 * 1DS native uploads: Common Schema Records in Bond Compact Binary v1, concatenated back to back
 * with no outer framing (wire-formats.md §3.4), as sent by the 1DS C++ SDK to `/OneCollector/1.0/`.
 *
 * A schema-aware reader for the Record (§3.5): envelope fields, every Part A extension (20–45)
 * under its §2.3 JSON name, tags, Part B (`baseData`) and Part C (`data`) property maps of Value
 * structs with every ValueKind and the PII / customer-content attributes. Unknown ids at any level
 * are skipped by wire type and reported, never fatal; a malformed record throws a DecodeError that
 * carries the events decoded before it.
 */
import {
  BT,
  ByteReader,
  bondTypeName,
  hexOf,
  int64Value,
  isByteType,
  isFloatingType,
  isIntegerType,
  isListType,
  isStringType,
  ticksToIso,
  uint64Value,
  windowsGuid,
} from "./reader.js";
import type { DecodeFindingCode } from "./findings.js";
import { partCPath } from "./paths.js";
import { DecodeError } from "./types.js";
import type { DecodeContext, DecodedEvent, DecodedField, DecodeLimits, DecodeResult, Decoder, FieldAnnotations, FieldPart, FieldType, FieldValue, Finding } from "./types.js";

/** Recursion guard independent of the configured limit, so a huge maxDepth cannot blow the stack. */
const HARD_MAX_DEPTH = 512;
/** Findings kept per body; a body of a million tiny unknown fields must not become a million findings. */
export const MAX_FINDINGS = 1000;

// ---- Part A schema (§3.5 ordinals, §2.3 JSON names) ---------------------------------------------

type ExtKind = "string" | "int32" | "uint32" | "int64" | "uint64" | "double" | "bool" | "strmap" | "strlists";

interface ExtField {
  path: string;
  kind: ExtKind;
}

interface ExtSchema {
  /** Bond field name of the Record, for messages (`extApp`). */
  bond: string;
  prefix: string;
  fields: Map<number, ExtField>;
}

function ext(bond: string, json: string, spec: Array<[id: number, name: string, kind?: ExtKind]>): ExtSchema {
  const prefix = `ext.${json}.`;
  return { bond, prefix, fields: new Map(spec.map(([id, name, kind]) => [id, { path: prefix + name, kind: kind ?? "string" }])) };
}

/** Record ordinal → extension schema. */
export const CS_EXTENSIONS: ReadonlyMap<number, ExtSchema> = new Map<number, ExtSchema>([
  [20, ext("extIngest", "ingest", [[1, "time", "int64"], [2, "clientIp"], [3, "auth", "int64"], [4, "quality", "int64"], [5, "uploadTime", "int64"], [6, "userAgent"], [7, "client"]])],
  [21, ext("extProtocol", "protocol", [[1, "metadataCrc", "int32"], [2, "ticketKeys", "strlists"], [3, "devMake"], [4, "devModel"], [5, "msp", "uint64"]])],
  [22, ext("extUser", "user", [[1, "id"], [2, "localId"], [3, "authId"], [4, "locale"]])],
  [
    23,
    ext("extDevice", "device", [
      [1, "id"],
      [2, "localId"],
      [3, "authId"],
      [4, "authSecId"],
      [5, "deviceClass"],
      [6, "orgId"],
      [7, "orgAuthId"],
      [8, "make"],
      [9, "model"],
      [10, "authIdEnt"],
    ]),
  ],
  [24, ext("extOs", "os", [[1, "locale"], [2, "expId"], [3, "bootId", "int32"], [4, "name"], [5, "ver"]])],
  [
    25,
    ext("extApp", "app", [[1, "expId"], [2, "userId"], [3, "env"], [4, "asId", "int32"], [5, "id"], [6, "ver"], [7, "locale"], [8, "name"], [9, "sesId"]]),
  ],
  [
    26,
    ext("extUtc", "utc", [
      [1, "stId"],
      [2, "aId"],
      [3, "raId"],
      [4, "op"],
      [5, "cat", "int64"],
      [6, "flags", "int64"],
      [7, "sqmId"],
      [9, "mon"],
      [10, "cpId", "int32"],
      [11, "bSeq"],
      [12, "epoch"],
      [13, "seq", "int64"],
      [14, "popSample", "double"],
      [15, "eventFlags", "int64"],
      [16, "wsId", "int64"],
      [17, "wcmp", "int64"],
      [18, "wPId", "int64"],
    ]),
  ],
  [
    27,
    ext("extXbl", "xbl", [
      [5, "claims", "strmap"],
      [10, "nbf"],
      [20, "exp"],
      [30, "sbx"],
      [40, "dty"],
      [50, "did"],
      [60, "xid"],
      [70, "uts", "uint64"],
      [80, "pid"],
      [90, "dvr"],
      [100, "tid", "uint32"],
      [110, "tvr"],
      [120, "sty"],
      [130, "sid"],
      [140, "eid", "int64"],
      [150, "ip"],
    ]),
  ],
  [
    28,
    ext("extJavascript", "javascript", [
      [10, "libVer"],
      [15, "osName"],
      [20, "browser"],
      [21, "browserVersion"],
      [25, "platform"],
      [30, "make"],
      [35, "model"],
      [40, "screenSize"],
      [45, "msfpc"],
      [50, "mc1Id"],
      [60, "mc1Lu", "uint64"],
      [70, "isMc1New", "bool"],
      [80, "ms0"],
      [90, "anid"],
      [100, "a"],
      [110, "msResearch"],
      [120, "csrvc"],
      [130, "rtCell"],
      [140, "rtEndAction"],
      [150, "rtPermId"],
      [160, "r"],
      [170, "wtFpc"],
      [180, "omniId"],
      [190, "gsfxSession"],
      [200, "domain"],
      [210, "userConsent", "bool"],
      [220, "browserLang"],
      [230, "serviceName"],
      [999, "dnt"],
    ]),
  ],
  [29, ext("extReceipts", "receipts", [[1, "originalTime", "int64"], [2, "uploadTime", "int64"], [3, "originalName"], [4, "flags", "uint64"]])],
  [31, ext("extNet", "net", [[1, "provider"], [2, "cost"], [3, "type"]])],
  [32, ext("extSdk", "sdk", [[1, "ver"], [2, "epoch"], [3, "seq", "int64"], [4, "installId"], [5, "libVer"]])],
  [33, ext("extLoc", "loc", [[1, "id"], [2, "country"], [3, "tz"]])],
  [
    34,
    ext("extCloud", "cloud", [[1, "fullEnvName"], [2, "location"], [3, "environment"], [4, "deploymentUnit"], [5, "name"], [6, "roleInstance"], [7, "role"]]),
  ],
  [35, ext("extService", "service", [[1, "name"], [2, "role"], [3, "roleVersion"]])],
  [36, ext("extCs", "cs", [[1, "sig"]])],
  [37, ext("extM365a", "m365a", [[1, "enrolledTenantId"], [2, "msp", "uint64"]])],
  [42, ext("extMscv", "mscv", [[1, "cV"]])],
  [43, ext("extIntWeb", "intweb", [[1, "mc1Id"], [2, "msfpc"], [3, "anid"], [4, "serviceName"], [5, "mscom", "strmap"]])],
  [44, ext("extIntService", "intservice", [[1, "fullEnvName"], [2, "location"], [3, "environment"], [4, "deploymentUnit"], [5, "name"]])],
  [
    45,
    ext("extWeb", "web", [[10, "browser"], [20, "browserVer"], [30, "screenRes"], [40, "domain"], [50, "userConsent", "bool"], [60, "browserLang"], [70, "isManual", "bool"]]),
  ],
]);

const EXT_TYPE: Record<ExtKind, FieldType> = {
  string: "string",
  int32: "int32",
  uint32: "uint32",
  int64: "int64",
  uint64: "uint64",
  double: "double",
  bool: "bool",
  strmap: "string",
  strlists: "array",
};

/** The Record's string fields (§3.5) by ordinal: name in messages, field path. */
const RECORD_STRINGS: Record<number, { where: string; path: string }> = {
  1: { where: "Record.ver", path: "ver" },
  2: { where: "Record.name", path: "name" },
  5: { where: "Record.iKey", path: "iKey" },
  7: { where: "Record.cV", path: "cV" },
  60: { where: "Record.baseType", path: "data.baseType" },
};

/** Record field 41 (`ext`, vector<Data>): generic extension data, no §2.3 name; shown as `ext.data.<key>`. */
const EXT_DATA_PREFIX = "ext.data.";
const BASE_DATA_PREFIX = "data.baseData.";

// ---- ValueKind (§3.5) ---------------------------------------------------------------------------

const enum VK {
  Int64 = 0,
  UInt64 = 1,
  Int32 = 2,
  UInt32 = 3,
  Double = 4,
  String = 5,
  Bool = 6,
  DateTime = 7,
  Guid = 8,
  ArrayInt64 = 9,
  ArrayUInt64 = 10,
  ArrayInt32 = 11,
  ArrayUInt32 = 12,
  ArrayDouble = 13,
  ArrayString = 14,
  ArrayBool = 15,
  ArrayDateTime = 16,
  ArrayGuid = 17,
}

// ---- the decoder --------------------------------------------------------------------------------

/**
 * Shared machinery for Bond-based decoders: findings, the per-event field budget and typed
 * helpers that check the wire type before reading (a mismatch is skipped and reported).
 */
export class BondDecodeState {
  readonly r: ByteReader;
  readonly findings: Finding[] = [];
  readonly events: DecodedEvent[] = [];
  readonly limits: DecodeLimits;
  /** Fields of the event being decoded. */
  fields: DecodedField[] = [];
  /** Index of the event being decoded; -1 between events (findings then carry no eventIndex). */
  eventIndex = -1;
  private overflowed = false;

  constructor(
    body: Uint8Array,
    limits: DecodeLimits,
    /** Prefix of finding codes that are about the schema, not the bytes (`bond`). */
    readonly codePrefix: "bond" = "bond",
  ) {
    this.limits = limits;
    this.r = new ByteReader(body, Math.max(1, Math.min(limits.maxDepth, HARD_MAX_DEPTH)));
  }

  beginEvent(): void {
    this.fields = [];
    this.overflowed = false;
    this.eventIndex = this.events.length;
  }

  /** Ends the event whose record began at `start`, with a `missing-name` warning when it has no name. */
  endEvent(start: number, name: string | undefined, time: string | undefined, iKey: string | undefined, missingName: string): void {
    const end = this.r.pos;
    if (name === undefined) this.warn(`${this.codePrefix}.missing-name`, missingName, start, end - start);
    const event: DecodedEvent = { index: this.events.length, name: name ?? "", byteRange: [start, end], fields: this.fields };
    if (time !== undefined) event.time = time;
    if (iKey !== undefined) event.iKey = iKey;
    this.events.push(event);
  }

  add(path: string, part: FieldPart, value: FieldValue, type: FieldType, annotations?: FieldAnnotations): void {
    if (part === "C") path = partCPath(path);
    if (this.fields.length >= this.limits.maxFieldsPerEvent) {
      if (!this.overflowed) {
        this.overflowed = true;
        this.warn(`${this.codePrefix}.too-many-fields`, `more than ${this.limits.maxFieldsPerEvent} fields in one event; the rest are dropped`, this.r.pos);
      }
      return;
    }
    this.fields.push(annotations === undefined ? { path, part, value, type } : { path, part, value, type, annotations });
  }

  warn(code: DecodeFindingCode, message: string, offset: number, length?: number): void {
    this.note("warning", code, message, offset, length);
  }

  /** Adds a finding (with the current event index, if any), up to MAX_FINDINGS per body. */
  note(severity: Finding["severity"], code: DecodeFindingCode, message: string, offset: number, length?: number): void {
    const n = this.findings.length;
    if (n >= MAX_FINDINGS) {
      if (n === MAX_FINDINGS) {
        this.findings.push({ code: `${this.codePrefix}.too-many-findings`, severity: "warning", message: `more than ${MAX_FINDINGS} findings; the rest are dropped`, offset });
      }
      return;
    }
    const f: Finding = { code, severity, message, offset };
    if (length !== undefined) f.length = length;
    if (this.eventIndex >= 0) f.eventIndex = this.eventIndex;
    this.findings.push(f);
  }

  /** Skips a field the schema does not know and reports it. */
  unknownField(where: string, type: number, id: number, headerAt: number, depth: number): void {
    this.r.skipValue(type, depth);
    this.warn(
      `${this.codePrefix}.unknown-field`,
      `${where}: unknown field ${id} (${bondTypeName(type)}) skipped`,
      headerAt,
      this.r.pos - headerAt,
    );
  }

  /** Skips a known field that arrived with an unexpected wire type and reports it. */
  mismatch(where: string, expected: string, type: number, headerAt: number, depth: number): void {
    this.r.skipValue(type, depth);
    this.warn(
      `${this.codePrefix}.type-mismatch`,
      `${where}: expected ${expected}, got ${bondTypeName(type)}; skipped`,
      headerAt,
      this.r.pos - headerAt,
    );
  }

  /** A string-typed field (string or wstring), else undefined after skipping. */
  str(type: number, where: string, headerAt: number, depth: number): string | undefined {
    if (type === BT.STRING) return this.r.readString();
    if (type === BT.WSTRING) return this.r.readWString();
    this.mismatch(where, "string", type, headerAt, depth);
    return undefined;
  }

  /** A string field added to the event at `path`: returns it, or undefined after skipping a non-string. */
  strField(type: number, where: string, path: string, part: FieldPart, headerAt: number, depth: number): string | undefined {
    const v = this.str(type, where, headerAt, depth);
    if (v !== undefined) this.add(path, part, v, "string");
    return v;
  }

  /** An integer field into r.lo/r.hi; false (after skipping) when the wire type is not an integer. */
  int(type: number, where: string, headerAt: number, depth: number): boolean {
    if (this.r.readIntegerRaw(type)) return true;
    this.mismatch(where, "an integer", type, headerAt, depth);
    return false;
  }

  dbl(type: number, where: string, headerAt: number, depth: number): number | undefined {
    if (type === BT.DOUBLE) return this.r.readDouble();
    if (type === BT.FLOAT) return this.r.readFloat();
    this.mismatch(where, "double", type, headerAt, depth);
    return undefined;
  }

  /** list/set field header check; returns the count, or -1 after skipping a non-list. */
  list(type: number, where: string, headerAt: number, depth: number): number {
    if (!isListType(type)) {
      this.mismatch(where, "list", type, headerAt, depth);
      return -1;
    }
    this.r.checkDepth(depth);
    return this.r.readListHeader();
  }

  /** A list<struct> field: the count, or -1 after skipping a non-list or items that are not structs. */
  structList(type: number, where: string, headerAt: number, depth: number): number {
    const count = this.list(type, where, headerAt, depth);
    if (count < 0 || this.r.elemType === BT.STRUCT) return count;
    this.skipItems(where, "struct", this.r.elemType, count, headerAt, depth + 1);
    return -1;
  }

  /** A list<list<…>> field: the count, or -1 after skipping a non-list or items that are not lists (`expected`). */
  listOfLists(type: number, where: string, expected: string, headerAt: number, depth: number): number {
    const count = this.list(type, where, headerAt, depth);
    if (count < 0 || isListType(this.r.elemType)) return count;
    this.skipItems(where, expected, this.r.elemType, count, headerAt, depth + 1);
    return -1;
  }

  /**
   * A list header at the cursor (an item of an outer list or map, no field header) at `depth`:
   * returns its count when `accepts(elemType)`, else -1 after skipping its items and reporting
   * them at `at`.
   */
  nestedList(where: string, expected: string, accepts: (elemType: number) => boolean, depth: number, at = this.r.pos): number {
    const r = this.r;
    r.checkDepth(depth);
    const count = r.readListHeader();
    if (accepts(r.elemType)) return count;
    this.skipItems(where, expected, r.elemType, count, at, depth + 1);
    return -1;
  }

  /** Skips `count` remaining list items of the last element type and reports the mismatch. */
  skipItems(where: string, expected: string, elemType: number, count: number, at: number, depth: number): void {
    for (let i = 0; i < count; i++) this.r.skipValue(elemType, depth);
    this.warn(
      `${this.codePrefix}.type-mismatch`,
      `${where}: expected items of ${expected}, got ${bondTypeName(elemType)}; skipped`,
      at,
      this.r.pos - at,
    );
  }

  /** A list<uint8|int8> (GUID bytes); undefined after skipping other element types. */
  byteList(where: string, depth: number): Uint8Array | undefined {
    const n = this.nestedList(where, "uint8", isByteType, depth);
    return n < 0 ? undefined : this.r.readBytes(n, "byte list");
  }

  /**
   * Map field header check: returns the pair count (key / value types in r.elemType /
   * r.valueType), or -1 after skipping a non-map, reported as expecting `expected`.
   */
  map(type: number, where: string, expected: string, headerAt: number, depth: number): number {
    if (type !== BT.MAP) {
      this.mismatch(where, expected, type, headerAt, depth);
      return -1;
    }
    this.r.checkDepth(depth);
    return this.r.readMapHeader();
  }

  /** Skips the `count` pairs of the map header just read; `depth` is the nesting depth of a key. */
  skipMapPairs(count: number, depth: number): void {
    const r = this.r;
    const kt = r.elemType;
    const vt = r.valueType;
    for (let i = 0; i < count; i++) {
      r.skipValue(kt, depth);
      r.skipValue(vt, depth);
    }
  }

  /**
   * Skips the `count` pairs of the map header just read and reports its key / value types: against
   * `expected` when given, else as unexpected.
   */
  skipMap(where: string, expected: string | undefined, count: number, at: number, depth: number): void {
    const r = this.r;
    const got = `map<${bondTypeName(r.elemType)},${bondTypeName(r.valueType)}>`;
    this.skipMapPairs(count, depth);
    this.warn(
      `${this.codePrefix}.type-mismatch`,
      expected === undefined ? `${where}: unexpected ${got}; skipped` : `${where}: expected ${expected}, got ${got}; skipped`,
      at,
      r.pos - at,
    );
  }

  /**
   * map<string,string> field → one string field per entry at `prefix + key`; a non-map or a map of
   * other types is skipped and reported.
   */
  stringMap(type: number, where: string, prefix: string, part: FieldPart, headerAt: number, depth: number): void {
    const r = this.r;
    const count = this.map(type, where, "map<string,string>", headerAt, depth);
    if (count < 0) return;
    const kt = r.elemType;
    const vt = r.valueType;
    if (!isStringType(kt) || !isStringType(vt)) {
      this.skipMap(where, "map<string,string>", count, headerAt, depth + 1);
      return;
    }
    for (let i = 0; i < count; i++) {
      const key = r.readAnyString(kt);
      const value = r.readAnyString(vt);
      this.add(prefix + key, part, value, "string");
    }
  }

  /** list<list<string>> field → the inner lists flattened into one array; undefined after skipping a non-list. */
  stringLists(type: number, where: string, headerAt: number, depth: number): string[] | undefined {
    if (!isListType(type)) {
      this.mismatch(where, "list<list<string>>", type, headerAt, depth);
      return undefined;
    }
    const r = this.r;
    const out: string[] = [];
    const outer = this.nestedList(where, "list<string>", isListType, depth);
    for (let i = 0; i < outer; i++) {
      const n = this.nestedList(where, "string", isStringType, depth + 1);
      const et = r.elemType;
      for (let j = 0; j < n; j++) out.push(r.readAnyString(et));
    }
    return out;
  }

  /** What was decoded so far: the result, or the partial result of a DecodeError. */
  result(): DecodeResult {
    return { events: this.events, findings: this.findings };
  }
}

class CsDecoder extends BondDecodeState {
  run(): DecodeResult {
    const r = this.r;
    const maxEvents = this.limits.maxEvents;
    while (r.pos < r.end) {
      const start = r.pos;
      if (this.events.length >= maxEvents) {
        // Like the JSON decoders: keep what was decoded, say the rest was not.
        this.eventIndex = -1;
        this.warn("bond.too-many-events", `more than ${maxEvents} records; the rest (${r.end - start} bytes) is not decoded`, start, r.end - start);
        break;
      }
      try {
        this.readRecord(start);
      } catch (e) {
        if (e instanceof DecodeError) throw new DecodeError(e.code, `record ${this.events.length} at ${start}: ${e.message}`, e.offset, this.result());
        throw e;
      }
    }
    return this.result();
  }

  private readRecord(start: number): void {
    const r = this.r;
    this.beginEvent();
    let name: string | undefined;
    let time: string | undefined;
    let iKey: string | undefined;
    let fieldCount = 0;
    r.checkDepth(1);
    for (;;) {
      const type = r.readField();
      if (type === BT.STOP) break;
      const at = r.fieldAt;
      const id = r.id;
      fieldCount++;
      switch (id) {
        // The string fields share one str() call: this function is large and hot, and with a
        // strField() call per field it decoded about 1.5% slower.
        case 1:
        case 2:
        case 5:
        case 7:
        case 60: {
          const f = RECORD_STRINGS[id];
          const v = this.str(type, f.where, at, 2);
          if (v === undefined) break;
          this.add(f.path, "envelope", v, "string");
          if (id === 2) name = v;
          else if (id === 5) iKey = v;
          break;
        }
        case 3: {
          if (this.int(type, "Record.time", at, 2)) {
            const iso = ticksToIso(r.hi, r.lo);
            if (iso !== undefined) {
              time = iso;
              this.add("time", "envelope", iso, "datetime");
            } else {
              this.add("time", "envelope", int64Value(r.hi, r.lo), "int64");
            }
          }
          break;
        }
        case 4: {
          const v = this.dbl(type, "Record.popSample", at, 2);
          if (v !== undefined) this.add("popSample", "envelope", v, "double");
          break;
        }
        case 6: {
          if (this.int(type, "Record.flags", at, 2)) this.add("flags", "envelope", int64Value(r.hi, r.lo), "int64");
          break;
        }
        case 41:
          this.readDataList(type, "Record.ext", EXT_DATA_PREFIX, "A", at);
          break;
        case 51:
          this.stringMap(type, "Record.tags", "tags.", "envelope", at, 2);
          break;
        case 61:
          this.readDataList(type, "Record.baseData", BASE_DATA_PREFIX, "B", at);
          break;
        case 70:
          this.readDataList(type, "Record.data", "", "C", at);
          break;
        default: {
          const schema = CS_EXTENSIONS.get(id);
          if (schema) this.readExtension(schema, type, at);
          else this.unknownField("Record", type, id, at, 2);
        }
      }
    }
    const end = r.pos;
    if (fieldCount === 0) {
      this.eventIndex = -1;
      this.warn("bond.empty-record", "empty Record struct (a lone 0x00) skipped", start, end - start);
      return;
    }
    this.endEvent(start, name, time, iKey, "Record has no name (field 2)");
  }

  /** vector<Ext> (depth 2): element 0 is decoded, further elements are skipped with a finding. */
  private readExtension(schema: ExtSchema, type: number, at: number): void {
    const r = this.r;
    const where = `Record.${schema.bond}`;
    const count = this.structList(type, where, at, 2);
    if (count < 0) return;
    for (let i = 0; i < count; i++) {
      if (i === 0) this.readExtStruct(schema, where);
      else r.skipStruct(3);
    }
    if (count > 1) {
      this.warn("bond.extension-count", `${where}: ${count} elements, only the first is decoded`, at, r.pos - at);
    }
  }

  /** One extension struct (depth 3); its field values are at depth 4. */
  private readExtStruct(schema: ExtSchema, where: string): void {
    const r = this.r;
    r.checkDepth(3);
    for (;;) {
      const type = r.readField();
      if (type === BT.STOP) break;
      const at = r.fieldAt;
      const f = schema.fields.get(r.id);
      if (f === undefined) {
        this.unknownField(where, type, r.id, at, 4);
        continue;
      }
      switch (f.kind) {
        case "string": {
          // Not strField: Part A strings are the busiest string path, and the extra call level cost
          // about 1% of Bond throughput.
          const v = this.str(type, f.path, at, 4);
          if (v !== undefined) this.add(f.path, "A", v, "string");
          break;
        }
        case "int32":
        case "int64":
          if (this.int(type, f.path, at, 4)) this.add(f.path, "A", int64Value(r.hi, r.lo), EXT_TYPE[f.kind]);
          break;
        case "uint32":
        case "uint64":
          if (this.int(type, f.path, at, 4)) this.add(f.path, "A", uint64Value(r.hi, r.lo), EXT_TYPE[f.kind]);
          break;
        case "bool":
          if (this.int(type, f.path, at, 4)) this.add(f.path, "A", (r.lo | r.hi) !== 0, "bool");
          break;
        case "double": {
          const v = this.dbl(type, f.path, at, 4);
          if (v !== undefined) this.add(f.path, "A", v, "double");
          break;
        }
        case "strmap":
          this.stringMap(type, f.path, `${f.path}.`, "A", at, 4);
          break;
        case "strlists": {
          const v = this.stringLists(type, f.path, at, 4);
          if (v !== undefined) this.add(f.path, "A", v, "array");
          break;
        }
      }
    }
  }

  /** vector<Data> (depth 2) → properties. More than one element: all are decoded, with a finding. */
  private readDataList(type: number, where: string, prefix: string, part: FieldPart, at: number): void {
    const r = this.r;
    const count = this.structList(type, where, at, 2);
    if (count < 0) return;
    for (let i = 0; i < count; i++) this.readData(where, prefix, part);
    if (count > 1) this.warn("bond.data-count", `${where}: ${count} Data elements (expected 1), all decoded`, at, r.pos - at);
  }

  /** Data struct (depth 3): 1 properties map<string, Value> (depth 4), Values at depth 5. */
  private readData(where: string, prefix: string, part: FieldPart): void {
    const r = this.r;
    r.checkDepth(3);
    for (;;) {
      const type = r.readField();
      if (type === BT.STOP) break;
      const at = r.fieldAt;
      if (r.id !== 1) {
        this.unknownField(`${where}.Data`, type, r.id, at, 4);
        continue;
      }
      const count = this.map(type, `${where}.properties`, "map<string,Value>", at, 4);
      if (count < 0) continue;
      const kt = r.elemType;
      if (!isStringType(kt) || r.valueType !== BT.STRUCT) {
        this.skipMap(`${where}.properties`, "map<string,Value>", count, at, 5);
        continue;
      }
      if (kt === BT.STRING && prefix === "") {
        for (let i = 0; i < count; i++) this.readValue(r.readString(), part);
      } else {
        for (let i = 0; i < count; i++) this.readValue(prefix + r.readAnyString(kt), part);
      }
    }
  }

  /** Value struct (depth 5) → one field. */
  private readValue(path: string, part: FieldPart): void {
    const r = this.r;
    r.checkDepth(5);
    let kind: number = VK.String;
    let str: string | undefined;
    let hasLong = false;
    let lhi = 0;
    let llo = 0;
    let dbl: number | undefined;
    let guid: Uint8Array | undefined;
    let piiKind = 0;
    let cc = false;
    let strArr: string[] | undefined;
    let longArr: number[] | undefined;
    let dblArr: number[] | undefined;
    let guidArr: Uint8Array[] | undefined;
    for (;;) {
      const type = r.readField();
      if (type === BT.STOP) break;
      const at = r.fieldAt;
      switch (r.id) {
        case 1:
          if (this.int(type, `${path}: Value.type`, at, 6)) kind = r.lo | 0;
          break;
        case 2: {
          // vector<Attributes>; Attributes: 1 pii vector<PII{1 Kind}>, 2 customerContent vector<CustomerContent{1 Kind}>
          const n = this.structList(type, `${path}: Value.attributes`, at, 6);
          for (let i = 0; i < n; i++) {
            const kinds = this.readAttributes(path);
            if (piiKind === 0 && kinds.pii !== 0) piiKind = kinds.pii;
            if (kinds.cc) cc = true;
          }
          break;
        }
        case 3: {
          const v = this.str(type, `${path}: Value.stringValue`, at, 6);
          if (v !== undefined) str = v;
          break;
        }
        case 4:
          if (this.int(type, `${path}: Value.longValue`, at, 6)) {
            hasLong = true;
            lhi = r.hi;
            llo = r.lo;
          }
          break;
        case 5: {
          const v = this.dbl(type, `${path}: Value.doubleValue`, at, 6);
          if (v !== undefined) dbl = v;
          break;
        }
        case 6: {
          const list = this.byteLists(type, `${path}: Value.guidValue`, at);
          if (list !== undefined && list.length > 0) guid = list[0];
          break;
        }
        case 10: {
          const v = this.stringLists(type, `${path}: Value.stringArray`, at, 6);
          if (v !== undefined) strArr = v;
          break;
        }
        case 11:
          longArr = this.longLists(type, `${path}: Value.longArray`, at);
          break;
        case 12:
          dblArr = this.doubleLists(type, `${path}: Value.doubleArray`, at);
          break;
        case 13:
          guidArr = this.guidLists(type, `${path}: Value.guidArray`, at);
          break;
        default:
          this.unknownField(`${path}: Value`, type, r.id, at, 6);
      }
    }
    // Build the field from the kind; the kind's slot missing but a string present (PII values are
    // sent converted to string) → the string.
    let value: FieldValue;
    let ftype: FieldType;
    switch (kind) {
      case VK.String:
        value = str ?? "";
        ftype = "string";
        break;
      case VK.Int64:
      case VK.Int32:
        if (!hasLong && str !== undefined) {
          value = str;
          ftype = "string";
        } else {
          value = hasLong ? int64Value(lhi, llo) : 0;
          ftype = kind === VK.Int64 ? "int64" : "int32";
        }
        break;
      case VK.UInt64:
      case VK.UInt32:
        if (!hasLong && str !== undefined) {
          value = str;
          ftype = "string";
        } else {
          value = !hasLong ? 0 : kind === VK.UInt64 || lhi === 0 ? uint64Value(lhi, llo) : lhi === -1 ? llo >>> 0 : int64Value(lhi, llo);
          ftype = kind === VK.UInt64 ? "uint64" : "uint32";
        }
        break;
      case VK.Double:
        if (dbl === undefined && str !== undefined) {
          value = str;
          ftype = "string";
        } else {
          value = dbl ?? (hasLong ? int64Value(lhi, llo) : 0);
          ftype = "double";
        }
        break;
      case VK.Bool:
        if (!hasLong && str !== undefined) {
          value = str;
          ftype = "string";
        } else {
          value = hasLong && (lhi | llo) !== 0;
          ftype = "bool";
        }
        break;
      case VK.DateTime:
        if (!hasLong && str !== undefined) {
          value = str;
          ftype = "string";
        } else {
          const iso = ticksToIso(lhi, llo);
          if (iso !== undefined) {
            value = iso;
            ftype = "datetime";
          } else {
            value = int64Value(lhi, llo);
            ftype = "int64";
          }
        }
        break;
      case VK.Guid:
        if (guid !== undefined) {
          if (guid.length === 16) {
            value = windowsGuid(guid);
            ftype = "guid";
          } else {
            value = hexOf(guid);
            ftype = "bytes";
            this.warn("bond.bad-guid", `${path}: GUID of ${guid.length} bytes (expected 16)`, r.pos);
          }
        } else if (str !== undefined) {
          value = str;
          ftype = "string";
        } else {
          value = null;
          ftype = "null";
        }
        break;
      case VK.ArrayInt64:
      case VK.ArrayInt32:
        value = ints(longArr, false);
        ftype = "array";
        break;
      case VK.ArrayUInt64:
      case VK.ArrayUInt32:
        value = ints(longArr, true);
        ftype = "array";
        break;
      case VK.ArrayDouble:
        value = dblArr ?? [];
        ftype = "array";
        break;
      case VK.ArrayString:
        value = strArr ?? [];
        ftype = "array";
        break;
      case VK.ArrayBool: {
        const out: boolean[] = [];
        if (longArr) for (let i = 0; i < longArr.length; i += 2) out.push((longArr[i] | longArr[i + 1]) !== 0);
        value = out;
        ftype = "array";
        break;
      }
      case VK.ArrayDateTime: {
        const out: FieldValue[] = [];
        if (longArr) {
          for (let i = 0; i < longArr.length; i += 2) out.push(ticksToIso(longArr[i], longArr[i + 1]) ?? int64Value(longArr[i], longArr[i + 1]));
        }
        value = out;
        ftype = "array";
        break;
      }
      case VK.ArrayGuid: {
        const out: string[] = [];
        if (guidArr) for (const g of guidArr) out.push(g.length === 16 ? windowsGuid(g) : hexOf(g));
        value = out;
        ftype = "array";
        break;
      }
      default: {
        this.warn("bond.unknown-value-kind", `${path}: unknown ValueKind ${kind}`, r.pos);
        if (str !== undefined) {
          value = str;
          ftype = "string";
        } else if (hasLong) {
          value = int64Value(lhi, llo);
          ftype = "int64";
        } else if (dbl !== undefined) {
          value = dbl;
          ftype = "double";
        } else {
          value = null;
          ftype = "null";
        }
      }
    }
    const ann: FieldAnnotations = { wireType: kind };
    if (piiKind !== 0) ann.piiKind = piiKind;
    if (cc) ann.customerContent = true;
    this.add(path, part, value, ftype, ann);
  }

  /** Attributes struct (depth 7): first non-zero PII kind and whether customer content is marked. */
  private readAttributes(path: string): { pii: number; cc: boolean } {
    const r = this.r;
    r.checkDepth(7);
    let pii = 0;
    let cc = false;
    for (;;) {
      const type = r.readField();
      if (type === BT.STOP) break;
      const at = r.fieldAt;
      const id = r.id;
      if (id !== 1 && id !== 2) {
        this.unknownField(`${path}: Attributes`, type, id, at, 8);
        continue;
      }
      const where = `${path}: Attributes.${id === 1 ? "pii" : "customerContent"}`;
      const n = this.structList(type, where, at, 8);
      for (let i = 0; i < n; i++) {
        // PII / CustomerContent struct (depth 9): 1 Kind int32.
        r.checkDepth(9);
        let kind = 0;
        for (;;) {
          const ft = r.readField();
          if (ft === BT.STOP) break;
          const fat = r.fieldAt;
          if (r.id === 1) {
            if (this.int(ft, `${where}.Kind`, fat, 10)) kind = r.lo | 0;
          } else {
            this.unknownField(where, ft, r.id, fat, 10);
          }
        }
        if (id === 1) {
          if (pii === 0) pii = kind;
        } else {
          cc = true;
        }
      }
    }
    return { pii, cc };
  }

  /**
   * vector<vector<T>> at depth 6, flattened: each inner list whose element type `accepts` takes is
   * read by `readItems`; other inner lists are skipped and reported as expecting `inner` items.
   */
  private flatLists<T>(
    type: number,
    where: string,
    at: number,
    inner: string,
    accepts: (elemType: number) => boolean,
    readItems: (count: number, elemType: number, out: T[]) => void,
  ): T[] | undefined {
    const n = this.listOfLists(type, where, `list<${inner}>`, at, 6);
    if (n < 0) return undefined;
    const out: T[] = [];
    for (let i = 0; i < n; i++) {
      const m = this.nestedList(where, inner, accepts, 7);
      if (m >= 0) readItems(m, this.r.elemType, out);
    }
    return out;
  }

  /** vector<vector<uint8>> (guidValue). */
  private byteLists(type: number, where: string, at: number): Uint8Array[] | undefined {
    return this.flatLists<Uint8Array>(type, where, at, "uint8", isByteType, (count, _, out) => out.push(this.r.readBytes(count, "byte list")));
  }

  /** vector<vector<vector<uint8>>> (guidArray), flattened to one list of GUIDs. */
  private guidLists(type: number, where: string, at: number): Uint8Array[] | undefined {
    return this.flatLists<Uint8Array>(type, where, at, "list<uint8>", isListType, (count, _, out) => {
      for (let j = 0; j < count; j++) {
        const b = this.byteList(where, 8);
        if (b !== undefined) out.push(b);
      }
    });
  }

  /** vector<vector<int64>> → flat [hi, lo, hi, lo, …]. */
  private longLists(type: number, where: string, at: number): number[] | undefined {
    const r = this.r;
    return this.flatLists<number>(type, where, at, "int64", isIntegerType, (count, elemType, out) => {
      for (let j = 0; j < count; j++) {
        r.readIntegerRaw(elemType);
        out.push(r.hi, r.lo);
      }
    });
  }

  /** vector<vector<double>>, flattened. */
  private doubleLists(type: number, where: string, at: number): number[] | undefined {
    const r = this.r;
    return this.flatLists<number>(type, where, at, "double", isFloatingType, (count, elemType, out) => {
      for (let j = 0; j < count; j++) out.push(elemType === BT.DOUBLE ? r.readDouble() : r.readFloat());
    });
  }
}

function ints(pairs: number[] | undefined, unsigned: boolean): FieldValue[] {
  const out: FieldValue[] = [];
  if (!pairs) return out;
  for (let i = 0; i < pairs.length; i += 2) out.push(unsigned ? uint64Value(pairs[i], pairs[i + 1]) : int64Value(pairs[i], pairs[i + 1]));
  return out;
}

/**
 * `29 03 "3." | "4."` (ver field, length 3, major version, dot: §0.2, §3.6) → 0.95. Any other
 * first field header of a known Record field (a writer that orders fields differently, a record
 * without `ver`) → 0.3, so a path match still picks this decoder; anything else → 0.
 */
function sniffCs(body: Uint8Array): number {
  if (body.length < 2) return 0;
  const b0 = body[0];
  if (b0 === 0x29 && body.length >= 4 && body[1] === 0x03 && (body[2] === 0x33 || body[2] === 0x34) && body[3] === 0x2e) return 0.95;
  switch (b0) {
    case 0x29: // 1 ver
    case 0x49: // 2 name
    case 0x71: // 3 time
    case 0x88: // 4 popSample
    case 0xa9: // 5 iKey
      return 0.3;
    case 0xd1: // 6 flags
      return body[1] === 6 ? 0.3 : 0;
    case 0xc9: // 7 cV, 60 baseType
      return body[1] === 7 || body[1] === 60 ? 0.3 : 0;
    case 0xcb: // extensions, baseData, data
      return CS_EXTENSIONS.has(body[1]) || body[1] === 41 || body[1] === 61 || body[1] === 70 ? 0.3 : 0;
    case 0xcd: // 51 tags
      return body[1] === 51 ? 0.3 : 0;
    default:
      return 0;
  }
}

export const oneCollectorBondDecoder: Decoder = {
  id: "onecollector-bond",
  // 2: Part C keys never share an envelope path (src/decode/paths.ts).
  version: 2,
  contentTypes: ["application/bond-compact-binary"],
  paths: [/\/OneCollector\//i],
  sniff: sniffCs,
  decode(body: Uint8Array, ctx: DecodeContext): DecodeResult {
    return new CsDecoder(body, ctx.limits).run();
  },
  countRecords(body: Uint8Array, limits: DecodeLimits): number {
    // Records are whole structs one after another: skip each by wire type.
    const r = new ByteReader(body, limits.maxDepth);
    let n = 0;
    try {
      while (r.pos < r.end && n < limits.maxEvents) {
        r.skipStruct(0);
        n++;
      }
    } catch (e) {
      if (!(e instanceof DecodeError)) throw e;
    }
    return n;
  },
};
