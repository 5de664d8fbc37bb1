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
  DecodeError,
  type DecodeContext,
  type DecodeLimits,
  type DecodeResult,
  type Decoder,
  type FieldAnnotations,
  type FieldPart,
  type FieldType,
  type FieldValue,
} from "../types.js";
import {
  BT,
  BondReader,
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
import { BASE_DATA_PREFIX, CS_EXTENSIONS, EXT_DATA_PREFIX, EXT_TYPE, RECORD_STRINGS, VK, type ExtSchema } from "./cs-schema.js";
import { BondDecodeState } from "./state.js";
import { PII_KIND_NAMES } from "../pii-kinds.js";

class CsDecoder extends BondDecodeState {
  run(): DecodeResult {
    const r = this.r;
    const maxEvents = this.limits.maxEvents;
    while (r.pos < r.end) {
      const start = r.pos;
      if (this.events.length >= maxEvents) {
        // Like the JSON decoders: keep what was decoded, say the rest was not.
        this.eventIndex = -1;
        this.warn(
          "bond.too-many-events",
          `more than ${maxEvents} records; the rest (${r.end - start} bytes) is not decoded`,
          start,
          r.end - start,
        );
        break;
      }
      try {
        this.readRecord(start);
      } catch (e) {
        if (e instanceof DecodeError)
          throw new DecodeError(e.code, `record ${this.events.length} at ${start}: ${e.message}`, e.offset, this.result());
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
    for (let type = r.readField(); type !== BT.STOP; type = r.readField()) {
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
    for (let type = r.readField(); type !== BT.STOP; type = r.readField()) {
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
    for (let type = r.readField(); type !== BT.STOP; type = r.readField()) {
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

  /** The Value struct being read: one per decoder, refilled for every value (values do not nest). */
  private readonly slots = new ValueSlots();

  /** Value struct (depth 5) → one field: its slots read off the wire, then the value its kind says. */
  private readValue(path: string, part: FieldPart): void {
    const v = this.readValueSlots(path);
    const value = this.valueOfKind(v, path);
    this.add(path, part, value, v.type, valueAnnotations(v.kind, v.piiKind, v.cc));
  }

  /** Reads the fields of a Value struct into the slots; unknown ids are skipped and reported. */
  private readValueSlots(path: string): ValueSlots {
    const r = this.r;
    r.checkDepth(5);
    const v = this.slots;
    v.reset();
    for (let type = r.readField(); type !== BT.STOP; type = r.readField()) {
      const at = r.fieldAt;
      switch (r.id) {
        // The common case is read inline; the description of the place is only built for a finding.
        case 1:
          if (r.readIntegerRaw(type)) v.kind = r.lo | 0;
          else this.mismatch(`${path}: Value.type`, "an integer", type, at, 6);
          break;
        case 2: {
          // vector<Attributes>; Attributes: 1 pii vector<PII{1 Kind}>, 2 customerContent vector<CustomerContent{1 Kind}>
          const n = this.structList(type, `${path}: Value.attributes`, at, 6);
          for (let i = 0; i < n; i++) {
            const kinds = this.readAttributes(path);
            if (v.piiKind === 0 && kinds.pii !== 0) v.piiKind = kinds.pii;
            if (kinds.cc) v.cc = true;
          }
          break;
        }
        case 3:
          if (type === BT.STRING) v.str = r.readString();
          else v.str = this.str(type, `${path}: Value.stringValue`, at, 6) ?? v.str;
          break;
        case 4:
          if (r.readIntegerRaw(type)) {
            v.hasLong = true;
            v.lhi = r.hi;
            v.llo = r.lo;
          } else this.mismatch(`${path}: Value.longValue`, "an integer", type, at, 6);
          break;
        case 5:
          if (type === BT.DOUBLE) v.dbl = r.readDouble();
          else v.dbl = this.dbl(type, `${path}: Value.doubleValue`, at, 6) ?? v.dbl;
          break;
        case 6: {
          const list = this.byteLists(type, `${path}: Value.guidValue`, at);
          if (list !== undefined && list.length > 0) v.guid = list[0];
          break;
        }
        case 10:
          v.strArr = this.stringLists(type, `${path}: Value.stringArray`, at, 6) ?? v.strArr;
          break;
        case 11:
          v.longArr = this.longLists(type, `${path}: Value.longArray`, at);
          break;
        case 12:
          v.dblArr = this.doubleLists(type, `${path}: Value.doubleArray`, at);
          break;
        case 13:
          v.guidArr = this.guidLists(type, `${path}: Value.guidArray`, at);
          break;
        default:
          this.unknownField(`${path}: Value`, type, r.id, at, 6);
      }
    }
    return v;
  }

  /**
   * The field value the slots hold, by ValueKind; sets `v.type`. When the kind's slot is missing
   * but a string is present (PII values are sent converted to string), the string.
   */
  private valueOfKind(v: ValueSlots, path: string): FieldValue {
    switch (v.kind) {
      case VK.String:
        return v.as("string", v.str ?? "");
      case VK.Int64:
      case VK.Int32:
      case VK.UInt64:
      case VK.UInt32:
      case VK.Bool:
      case VK.DateTime:
        return !v.hasLong && v.str !== undefined ? v.as("string", v.str) : longOfKind(v);
      case VK.Double:
        if (v.dbl === undefined && v.str !== undefined) return v.as("string", v.str);
        return v.as("double", v.dbl ?? (v.hasLong ? int64Value(v.lhi, v.llo) : 0));
      case VK.Guid:
        return this.guidValue(v, path);
      case VK.ArrayInt64:
      case VK.ArrayInt32:
      case VK.ArrayUInt64:
      case VK.ArrayUInt32:
      case VK.ArrayDouble:
      case VK.ArrayString:
      case VK.ArrayBool:
      case VK.ArrayDateTime:
      case VK.ArrayGuid:
        return v.as("array", arrayOfKind(v));
      default:
        this.warn("bond.unknown-value-kind", `${path}: unknown ValueKind ${v.kind}`, this.r.pos);
        if (v.str !== undefined) return v.as("string", v.str);
        if (v.hasLong) return v.as("int64", int64Value(v.lhi, v.llo));
        if (v.dbl !== undefined) return v.as("double", v.dbl);
        return v.as("null", null);
    }
  }

  /** VK.Guid: 16 bytes as a GUID; another length as hex with a `bond.bad-guid` warning; else the string. */
  private guidValue(v: ValueSlots, path: string): FieldValue {
    const guid = v.guid;
    if (guid !== undefined) {
      if (guid.length === 16) return v.as("guid", windowsGuid(guid));
      this.warn("bond.bad-guid", `${path}: GUID of ${guid.length} bytes (expected 16)`, this.r.pos);
      return v.as("bytes", hexOf(guid));
    }
    return v.str !== undefined ? v.as("string", v.str) : v.as("null", null);
  }

  /** Attributes struct (depth 7): first non-zero PII kind and whether customer content is marked. */
  private readAttributes(path: string): { pii: number; cc: boolean } {
    const r = this.r;
    r.checkDepth(7);
    let pii = 0;
    let cc = false;
    for (let type = r.readField(); type !== BT.STOP; type = r.readField()) {
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
        for (let ft = r.readField(); ft !== BT.STOP; ft = r.readField()) {
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
    return this.flatLists<Uint8Array>(type, where, at, "uint8", isByteType, (count, _, out) =>
      out.push(this.r.readBytes(count, "byte list")),
    );
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

/**
 * A Value's annotations, shared (frozen) between fields with the same wire type, PII kind and
 * customer-content bit: a few distinct ones per upload instead of an object per field. Only the
 * kinds the schema defines are shared, so values off the wire cannot grow the table (at most
 * 18 x 16 x 2 entries); any other gets an object of its own.
 */
const ANNOTATIONS = new Map<number, FieldAnnotations>();
const ANNOTATION_KIND_MAX = VK.ArrayGuid;
const ANNOTATION_PII_MAX = Math.max(...Object.keys(PII_KIND_NAMES).map(Number));

function valueAnnotations(kind: number, piiKind: number, cc: boolean): FieldAnnotations {
  const shared = kind >= 0 && kind <= ANNOTATION_KIND_MAX && piiKind >= 0 && piiKind <= ANNOTATION_PII_MAX;
  const key = shared ? (kind * (ANNOTATION_PII_MAX + 1) + piiKind) * 2 + (cc ? 1 : 0) : -1;
  if (shared) {
    const known = ANNOTATIONS.get(key);
    if (known !== undefined) return known;
  }
  const ann: FieldAnnotations = { wireType: kind };
  if (piiKind !== 0) ann.piiKind = piiKind;
  if (cc) ann.customerContent = true;
  if (shared) ANNOTATIONS.set(key, Object.freeze(ann));
  return ann;
}

/** The slots of one Value struct (§3.5) as read off the wire, and the type of the value built from them. */
class ValueSlots {
  kind: number = VK.String;
  str: string | undefined;
  hasLong = false;
  lhi = 0;
  llo = 0;
  dbl: number | undefined;
  guid: Uint8Array | undefined;
  piiKind = 0;
  cc = false;
  strArr: string[] | undefined;
  longArr: number[] | undefined;
  dblArr: number[] | undefined;
  guidArr: Uint8Array[] | undefined;
  /** The field type of the value built (valueOfKind). */
  type: FieldType = "string";

  reset(): void {
    this.kind = VK.String;
    this.str = undefined;
    this.hasLong = false;
    this.lhi = 0;
    this.llo = 0;
    this.dbl = undefined;
    this.guid = undefined;
    this.piiKind = 0;
    this.cc = false;
    this.strArr = undefined;
    this.longArr = undefined;
    this.dblArr = undefined;
    this.guidArr = undefined;
    this.type = "string";
  }

  /** Records the type and returns the value. */
  as(type: FieldType, value: FieldValue): FieldValue {
    this.type = type;
    return value;
  }
}

/** The integer-slot kinds (Int64/32, UInt64/32, Bool, DateTime) from `longValue` (0 when absent). */
function longOfKind(v: ValueSlots): FieldValue {
  const { lhi, llo, hasLong } = v;
  switch (v.kind) {
    case VK.Int64:
    case VK.Int32:
      return v.as(v.kind === VK.Int64 ? "int64" : "int32", hasLong ? int64Value(lhi, llo) : 0);
    case VK.UInt64:
    case VK.UInt32:
      return v.as(
        v.kind === VK.UInt64 ? "uint64" : "uint32",
        !hasLong ? 0 : v.kind === VK.UInt64 || lhi === 0 ? uint64Value(lhi, llo) : lhi === -1 ? llo >>> 0 : int64Value(lhi, llo),
      );
    case VK.Bool:
      return v.as("bool", hasLong && (lhi | llo) !== 0);
    default: {
      // VK.DateTime: ticks as ISO 8601, or the raw int64 when out of range.
      const iso = ticksToIso(lhi, llo);
      return iso !== undefined ? v.as("datetime", iso) : v.as("int64", int64Value(lhi, llo));
    }
  }
}

/** The array kinds, from their list slots (an absent list is an empty array). */
function arrayOfKind(v: ValueSlots): FieldValue[] {
  const longArr = v.longArr;
  switch (v.kind) {
    case VK.ArrayInt64:
    case VK.ArrayInt32:
      return ints(longArr, false);
    case VK.ArrayUInt64:
    case VK.ArrayUInt32:
      return ints(longArr, true);
    case VK.ArrayDouble:
      return v.dblArr ?? [];
    case VK.ArrayString:
      return v.strArr ?? [];
    case VK.ArrayBool: {
      const out: boolean[] = [];
      if (longArr) for (let i = 0; i < longArr.length; i += 2) out.push((longArr[i] | longArr[i + 1]) !== 0);
      return out;
    }
    case VK.ArrayDateTime: {
      const out: FieldValue[] = [];
      if (longArr) {
        for (let i = 0; i < longArr.length; i += 2)
          out.push(ticksToIso(longArr[i], longArr[i + 1]) ?? int64Value(longArr[i], longArr[i + 1]));
      }
      return out;
    }
    default: {
      // VK.ArrayGuid
      const out: string[] = [];
      if (v.guidArr) for (const g of v.guidArr) out.push(g.length === 16 ? windowsGuid(g) : hexOf(g));
      return out;
    }
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
    const r = new BondReader(body, limits.maxDepth);
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
