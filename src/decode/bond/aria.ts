/**
 * Aria Collector 3.0 (legacy `*.pipe.aria.microsoft.com/Collector/3.0/`): ONE Bond CB v1
 * `ClientToCollectorRequest` (wire-formats.md §4). Tenants come from TokenToDataPackagesMap
 * (field 3, key = tenant token) and from the plain DataPackages list (field 1); every Record of
 * every DataPackage becomes an event: name = EventType, time = Timestamp (Unix ms), iKey = tenant
 * token; string, typed (int64/double/bool/datetime/guid), PII and customer-content extension maps
 * become Part C fields keyed verbatim. DataPackage facts are appended to each of its events as
 * `package.*` envelope fields.
 */
import { BondDecodeState } from "./state.js";
import {
  BT,
  bondTypeName,
  hexOf,
  int64Value,
  isFloatingType,
  isIntegerType,
  isListType,
  isStringType,
  isStructType,
  ticksToIso,
  uint64Value,
  unixMsToIso,
  windowsGuid,
} from "./reader.js";
import { DecodeError } from "../types.js";
import type {
  DecodeContext,
  DecodedEvent,
  DecodedField,
  DecodeResult,
  Decoder,
  FieldAnnotations,
  FieldType,
  FieldValue,
} from "../types.js";

/** Typed extension maps (Record 25/26 and 31–35): map<string, T>. */
const enum MapKind {
  Int64,
  Double,
  Bool,
  Ticks,
  Guid,
}

/** Legacy / server-schema Record fields rendered generically by wire type under their schema name. */
const LEGACY_RECORD_FIELDS: ReadonlyMap<number, string> = new Map([
  [2, "Context"],
  [4, "ConfigurationIds"],
  [7, "ResultCode"],
  [8, "ResultDetail"],
  [9, "ResultValue"],
  [10, "InitiatingUser"],
  [11, "InitiatingUserEndpoint"],
  [12, "TargetUsers"],
  [14, "SampleTimestamp"],
  [15, "SampleRate"],
  [16, "SamplingData"],
  [17, "InitiatingUiVersion"],
  [18, "PstnNumbers"],
  [19, "ContextIds"],
  [20, "InitiatingUserEndpointType"],
  [21, "InitiatingUserComposite"],
  [22, "TargetUsersComposite"],
  [23, "PstnNumbersComposite"],
  [27, "HasBeenScrubbed"],
  [28, "ConferenceComposite"],
  [29, "ExceptionInfo"],
]);

/** Unwinds the nested request when maxEvents is reached; turned into a warning by run(). */
class TooManyEvents extends Error {
  constructor(readonly offset: number) {
    super("too many events");
  }
}

function scalarType(type: number): FieldType {
  switch (type) {
    case BT.BOOL:
      return "bool";
    case BT.INT8:
    case BT.INT16:
    case BT.INT32:
      return "int32";
    case BT.UINT8:
    case BT.UINT16:
    case BT.UINT32:
      return "uint32";
    case BT.INT64:
      return "int64";
    case BT.UINT64:
      return "uint64";
    case BT.FLOAT:
    case BT.DOUBLE:
      return "double";
    default:
      return "string";
  }
}

function isScalar(type: number): boolean {
  return type !== BT.STRUCT && type !== BT.LIST && type !== BT.SET && type !== BT.MAP;
}

class AriaDecoder extends BondDecodeState {
  private retryCount: number | string | undefined;

  run(): DecodeResult {
    const r = this.r;
    try {
      this.readRequest();
    } catch (e) {
      if (e instanceof TooManyEvents) {
        // Like the JSON decoders: keep what was decoded, say the rest was not.
        this.eventIndex = -1;
        this.warn(
          "bond.too-many-events",
          `more than ${this.limits.maxEvents} records; the rest (${r.end - e.offset} bytes) is not decoded`,
          e.offset,
          r.end - e.offset,
        );
        return this.result();
      }
      if (e instanceof DecodeError) throw new DecodeError(e.code, e.message, e.offset, this.result());
      throw e;
    }
    if (r.pos < r.end) {
      this.eventIndex = -1;
      this.warn("bond.trailing-bytes", `${r.end - r.pos} byte(s) after the ClientToCollectorRequest struct`, r.pos, r.end - r.pos);
    }
    if (this.retryCount !== undefined) {
      for (const ev of this.events)
        this.append(ev, [{ path: "request.retryCount", part: "envelope", value: this.retryCount, type: "int32" }]);
    }
    return this.result();
  }

  private append(ev: DecodedEvent, fields: DecodedField[]): void {
    for (const f of fields) if (ev.fields.length < this.limits.maxFieldsPerEvent) ev.fields.push(f);
  }

  /** ClientToCollectorRequest (depth 1). */
  private readRequest(): void {
    const r = this.r;
    r.checkDepth(1);
    for (let type = r.readField(); type !== BT.STOP; type = r.readField()) {
      const at = r.fieldAt;
      switch (r.id) {
        case 1: {
          const n = this.structList(type, "ClientToCollectorRequest.DataPackages", at, 2);
          for (let i = 0; i < n; i++) this.readPackage(undefined, 3);
          break;
        }
        case 2:
          if (this.int(type, "ClientToCollectorRequest.RequestRetryCount", at, 2)) this.retryCount = int64Value(r.hi, r.lo);
          break;
        case 3:
          this.readTokenMap(type, at);
          break;
        default:
          this.unknownField("ClientToCollectorRequest", type, r.id, at, 2);
      }
    }
  }

  /** TokenToDataPackagesMap: map<string, list<DataPackage>> (depth 2). */
  private readTokenMap(type: number, at: number): void {
    const r = this.r;
    const where = "ClientToCollectorRequest.TokenToDataPackagesMap";
    const count = this.map(type, where, "map<string,list<DataPackage>>", at, 2);
    if (count < 0) return;
    const kt = r.elemType;
    if (!isStringType(kt) || !isListType(r.valueType)) {
      this.skipMap(where, "map<string,list<DataPackage>>", count, at, 3);
      return;
    }
    for (let i = 0; i < count; i++) {
      const token = r.readAnyString(kt);
      const n = this.nestedList(`${where}[${token}]`, "struct", isStructType, 3);
      for (let j = 0; j < n; j++) this.readPackage(token, 4);
    }
  }

  /** DataPackage struct at `depth`; its facts are appended to the events it produced. */
  private readPackage(token: string | undefined, depth: number): void {
    const r = this.r;
    r.checkDepth(depth);
    this.eventIndex = -1;
    const firstEvent = this.events.length;
    const facts: DecodedField[] = [];
    let tenantId: string | undefined;
    const fd = depth + 1;
    for (let type = r.readField(); type !== BT.STOP; type = r.readField()) {
      const at = r.fieldAt;
      const id = r.id;
      switch (id) {
        case 1:
        case 2:
        case 3:
        case 5:
        case 11: {
          const path =
            id === 1
              ? "package.type"
              : id === 2
                ? "package.source"
                : id === 3
                  ? "package.version"
                  : id === 5
                    ? "package.id"
                    : "package.tenantId";
          const v = this.str(type, path, at, fd);
          if (v !== undefined) {
            facts.push({ path, part: "envelope", value: v, type: "string" });
            if (id === 11) tenantId = v;
          }
          break;
        }
        case 4: {
          // Ids map<string,string>: collected through a scratch event so the field budget applies.
          const saved = this.fields;
          this.fields = facts;
          this.stringMap(type, "package.ids", "package.ids.", "envelope", at, fd);
          this.fields = saved;
          break;
        }
        case 6:
          if (this.int(type, "package.timestamp", at, fd)) {
            const ms = int64Value(r.hi, r.lo);
            const iso = typeof ms === "number" ? unixMsToIso(ms) : undefined;
            facts.push(
              iso !== undefined
                ? { path: "package.timestamp", part: "envelope", value: iso, type: "datetime" }
                : { path: "package.timestamp", part: "envelope", value: ms, type: "int64" },
            );
          }
          break;
        case 7:
          if (this.int(type, "package.schemaVersion", at, fd)) {
            facts.push({ path: "package.schemaVersion", part: "envelope", value: int64Value(r.hi, r.lo), type: "int32" });
          }
          break;
        case 8:
        case 9: {
          const where = id === 8 ? "DataPackage.Records" : "DataPackage.Receipts";
          const n = this.structList(type, where, at, fd);
          if (n < 0) break;
          this.skipStaleCountTail(n);
          for (let i = 0; i < n; i++) this.readRecord(token, id === 9, fd + 1);
          break;
        }
        default:
          this.unknownField("DataPackage", type, id, at, fd);
      }
    }
    for (let i = firstEvent; i < this.events.length; i++) {
      const ev = this.events[i];
      if (ev.iKey === undefined && tenantId !== undefined) ev.iKey = tenantId;
      this.append(ev, facts);
    }
  }

  /**
   * The AWT JS SDK patches the record count in place when it drops events, writing the new
   * (shorter) varint over the old one and leaving the old varint's tail bytes behind
   * (`AWTSerializer._addNewDataPackageSize`). Its records always start with field 1 (`0x29`), so a
   * run of continuation bytes ending in a non-zero byte < 0x80, followed by `0x29`, right after the
   * count is that tail: skip it and say so.
   */
  private skipStaleCountTail(count: number): void {
    const r = this.r;
    const q = r.pos;
    const buf = r.buf;
    if (count === 0 || q >= r.end || buf[q] === 0x29) return;
    for (let k = 1; k <= 4 && q + k < r.end; k++) {
      const b = buf[q + k - 1];
      if (b < 0x80) {
        if (b !== 0 && buf[q + k] === 0x29) {
          r.pos = q + k;
          this.note(
            "info",
            "aria.count-patched",
            `${k} stale byte(s) of an overwritten record count skipped (AWT JS in-place count patch)`,
            q,
            k,
          );
        }
        return;
      }
    }
  }

  /** Aria Record struct at `depth` → one event. */
  private readRecord(token: string | undefined, receipt: boolean, depth: number): void {
    const r = this.r;
    if (this.events.length >= this.limits.maxEvents) throw new TooManyEvents(r.pos);
    r.checkDepth(depth);
    const start = r.pos;
    this.beginEvent();
    let name: string | undefined;
    let time: string | undefined;
    if (token !== undefined) this.add("iKey", "envelope", token, "string");
    const fd = depth + 1;
    for (let type = r.readField(); type !== BT.STOP; type = r.readField()) {
      const at = r.fieldAt;
      const id = r.id;
      switch (id) {
        case 1:
          this.strField(type, "Record.Id", "Id", "envelope", at, fd);
          break;
        case 3:
          if (this.int(type, "Record.Timestamp", at, fd)) {
            const ms = int64Value(r.hi, r.lo);
            const iso = typeof ms === "number" ? unixMsToIso(ms) : undefined;
            if (iso !== undefined) {
              time = iso;
              this.add("time", "envelope", iso, "datetime");
            } else {
              this.add("time", "envelope", ms, "int64");
            }
          }
          break;
        case 5:
          this.strField(type, "Record.Type", "Type", "envelope", at, fd);
          break;
        case 6:
          name = this.strField(type, "Record.EventType", "name", "envelope", at, fd) ?? name;
          break;
        case 13:
          this.stringMap(type, "Record.Extension", "", "C", at, fd);
          break;
        case 24:
          if (this.int(type, "Record.RecordType", at, fd)) this.add("RecordType", "envelope", int64Value(r.hi, r.lo), "int32");
          break;
        case 25:
        case 33:
          this.typedMap(type, id === 25 ? "Record.ExtensionInt64" : "Record.TypedExtensionInt64", MapKind.Int64, at, fd);
          break;
        case 26:
        case 34:
          this.typedMap(type, id === 26 ? "Record.ExtensionDouble" : "Record.TypedExtensionDouble", MapKind.Double, at, fd);
          break;
        case 31:
          this.typedMap(type, "Record.TypedExtensionBoolean", MapKind.Bool, at, fd);
          break;
        case 32:
          this.typedMap(type, "Record.TypedExtensionDateTime", MapKind.Ticks, at, fd);
          break;
        case 35:
          this.typedMap(type, "Record.TypedExtensionGuid", MapKind.Guid, at, fd);
          break;
        case 30:
        case 36:
          this.structMap(type, id === 30, at, fd);
          break;
        default: {
          const legacy = LEGACY_RECORD_FIELDS.get(id);
          if (legacy !== undefined) this.generic(legacy, type, at, fd);
          else this.unknownField("Record", type, id, at, fd);
        }
      }
    }
    if (receipt) this.add("package.receipt", "envelope", true, "bool");
    this.endEvent(start, name, time, token, "Aria Record has no EventType (field 6)");
    this.eventIndex = -1;
  }

  /** map<string, T> of a typed extension → Part C fields. */
  private typedMap(type: number, where: string, kind: MapKind, at: number, depth: number): void {
    const r = this.r;
    const count = this.map(type, where, "map", at, depth);
    if (count < 0) return;
    const kt = r.elemType;
    const vt = r.valueType;
    const valueOk = kind === MapKind.Double ? isFloatingType(vt) : kind === MapKind.Guid ? isListType(vt) : isIntegerType(vt);
    if (!isStringType(kt) || !valueOk) {
      this.skipMap(where, undefined, count, at, depth + 1);
      return;
    }
    for (let i = 0; i < count; i++) {
      const key = r.readAnyString(kt);
      switch (kind) {
        case MapKind.Int64:
          r.readIntegerRaw(vt);
          this.add(key, "C", vt === BT.UINT64 ? uint64Value(r.hi, r.lo) : int64Value(r.hi, r.lo), "int64");
          break;
        case MapKind.Double:
          this.add(key, "C", vt === BT.DOUBLE ? r.readDouble() : r.readFloat(), "double");
          break;
        case MapKind.Bool:
          r.readIntegerRaw(vt);
          this.add(key, "C", (r.lo | r.hi) !== 0, "bool");
          break;
        case MapKind.Ticks: {
          r.readIntegerRaw(vt);
          const iso = ticksToIso(r.hi, r.lo);
          if (iso !== undefined) this.add(key, "C", iso, "datetime");
          else this.add(key, "C", int64Value(r.hi, r.lo), "int64");
          break;
        }
        case MapKind.Guid: {
          const b = this.byteList(`${where}[${key}]`, depth + 1);
          if (b === undefined) break;
          if (b.length === 16) this.add(key, "C", windowsGuid(b), "guid");
          else {
            this.add(key, "C", hexOf(b), "bytes");
            this.warn("bond.bad-guid", `${where}[${key}]: GUID of ${b.length} bytes (expected 16)`, r.pos - b.length, b.length);
          }
          break;
        }
      }
    }
  }

  /**
   * PIIExtensions (30, map<string, PII{1 ScrubType, 2 Kind, 3 RawContent}>) or
   * CustomerContentExtensions (36, map<string, CustomerContent{1 Kind, 2 RawContent}>).
   */
  private structMap(type: number, pii: boolean, at: number, depth: number): void {
    const r = this.r;
    const where = pii ? "Record.PIIExtensions" : "Record.CustomerContentExtensions";
    const count = this.map(type, where, "map<string,struct>", at, depth);
    if (count < 0) return;
    const kt = r.elemType;
    if (!isStringType(kt) || r.valueType !== BT.STRUCT) {
      this.skipMap(where, undefined, count, at, depth + 1);
      return;
    }
    const sd = depth + 1;
    for (let i = 0; i < count; i++) {
      const key = r.readAnyString(kt);
      r.checkDepth(sd);
      let scrubType = 0;
      let kind = 0;
      let raw: string | undefined;
      for (let ft = r.readField(); ft !== BT.STOP; ft = r.readField()) {
        const fat = r.fieldAt;
        const id = r.id;
        if (pii && id === 1) {
          if (this.int(ft, `${where}[${key}].ScrubType`, fat, sd + 1)) scrubType = r.lo | 0;
        } else if ((pii && id === 2) || (!pii && id === 1)) {
          if (this.int(ft, `${where}[${key}].Kind`, fat, sd + 1)) kind = r.lo | 0;
        } else if ((pii && id === 3) || (!pii && id === 2)) {
          const v = this.str(ft, `${where}[${key}].RawContent`, fat, sd + 1);
          if (v !== undefined) raw = v;
        } else {
          this.unknownField(`${where}[${key}]`, ft, id, fat, sd + 1);
        }
      }
      const ann: FieldAnnotations = {};
      if (pii) {
        if (kind !== 0) ann.piiKind = kind;
        if (scrubType !== 0) ann.scrubType = scrubType;
      } else {
        ann.customerContent = true;
      }
      this.add(key, "C", raw ?? "", "string", ann);
    }
  }

  /**
   * A legacy Record field rendered by wire type: scalars and strings as one field, lists of scalars
   * as an array, maps with scalar keys as `<name>.<key>` fields, structs skipped (info finding).
   */
  private generic(name: string, type: number, at: number, depth: number): void {
    const r = this.r;
    if (isScalar(type)) {
      this.add(name, "envelope", this.scalar(type), scalarType(type));
      return;
    }
    if (isListType(type)) {
      const out = this.scalarList(`Record.${name}`, depth, at);
      if (out !== undefined) this.add(name, "envelope", out, "array");
      return;
    }
    if (type === BT.MAP) {
      r.checkDepth(depth);
      const n = r.readMapHeader();
      const kt = r.elemType;
      const vt = r.valueType;
      if (!isScalar(kt)) {
        this.skipMapPairs(n, depth + 1);
        this.warn("bond.type-mismatch", `Record.${name}: map with ${bondTypeName(kt)} keys skipped`, at, r.pos - at);
        return;
      }
      for (let i = 0; i < n; i++) {
        const key = `${name}.${String(this.scalar(kt))}`;
        const vAt = r.pos;
        if (isScalar(vt)) this.add(key, "envelope", this.scalar(vt), scalarType(vt));
        else if (isListType(vt)) {
          const out = this.scalarList(`Record.${key}`, depth + 1, vAt);
          if (out !== undefined) this.add(key, "envelope", out, "array");
        } else {
          r.skipValue(vt, depth + 1);
          this.note("info", "bond.skipped-struct", `Record.${key}: ${bondTypeName(vt)} value not decoded`, vAt, r.pos - vAt);
        }
      }
      return;
    }
    r.skipValue(type, depth);
    this.note("info", "bond.skipped-struct", `Record.${name}: legacy struct field not decoded`, at, r.pos - at);
  }

  /** A list header at the cursor (reported at `at`) → its scalar items; undefined after skipping other items. */
  private scalarList(where: string, depth: number, at: number): FieldValue[] | undefined {
    const n = this.nestedList(where, "scalars", isScalar, depth, at);
    if (n < 0) return undefined;
    const et = this.r.elemType;
    const out: FieldValue[] = [];
    for (let i = 0; i < n; i++) out.push(this.scalar(et));
    return out;
  }

  private scalar(type: number): FieldValue {
    const r = this.r;
    switch (type) {
      case BT.STRING:
      case BT.WSTRING:
        return r.readAnyString(type);
      case BT.FLOAT:
        return r.readFloat();
      case BT.DOUBLE:
        return r.readDouble();
      case BT.BOOL:
        return r.readU8() !== 0;
      case BT.UINT64:
        r.readVarint64Raw();
        return uint64Value(r.hi, r.lo);
      default:
        r.readIntegerRaw(type);
        return int64Value(r.hi, r.lo);
    }
  }
}

/**
 * `6D 09 0B` (field 3 map<string, list>, §0.3), optionally after RequestRetryCount (`50 <varint>`)
 * → 0.95. A request opening with field 1 (`2B 0A`, list<DataPackage>) or field 2 alone → 0.3.
 */
function sniffAria(body: Uint8Array): number {
  let i = 0;
  if (body[0] === 0x50) {
    i = 1;
    while (i < body.length && i < 6 && body[i] >= 0x80) i++;
    i++;
  }
  if (body.length >= i + 3 && body[i] === 0x6d && body[i + 1] === 0x09 && body[i + 2] === 0x0b) return 0.95;
  if (body.length >= 3 && body[0] === 0x2b && body[1] === 0x0a) return 0.3;
  if (body.length >= 3 && body[0] === 0x50) return 0.3;
  return 0;
}

export const ariaDecoder: Decoder = {
  id: "aria-collector",
  // 2: Part C keys never share an envelope path (src/decode/paths.ts).
  version: 2,
  contentTypes: ["application/bond-compact-binary"],
  paths: [/\/Collector\/3\.0/i],
  sniff: sniffAria,
  decode(body: Uint8Array, ctx: DecodeContext): DecodeResult {
    return new AriaDecoder(body, ctx.limits).run();
  },
};
