/**
 * The decode state every Bond decoder builds on (the 1DS Common Schema decoder and Aria): findings
 * with the per-body cap, the per-event field budget, and typed reads that check the wire type first
 * (a mismatch is skipped and reported, never fatal).
 */
import type {
  DecodeLimits,
  DecodeResult,
  DecodedEvent,
  DecodedField,
  FieldAnnotations,
  FieldPart,
  FieldType,
  FieldValue,
  Finding,
} from "../types.js";
import type { DECODE_FINDINGS, DecodeFindingCode, DecodeFindingCodeOf } from "../findings.js";
import { partCPath } from "../paths.js";
import { BT, BondReader, bondTypeName, isByteType, isListType, isStringType } from "./reader.js";

/** Recursion guard independent of the configured limit, so a huge maxDepth cannot blow the stack. */
const HARD_MAX_DEPTH = 512;
/** Findings kept per body; a body of a million tiny unknown fields must not become a million findings. */
export const MAX_FINDINGS = 1000;

/**
 * Shared machinery for Bond-based decoders: findings, the per-event field budget and typed
 * helpers that check the wire type before reading (a mismatch is skipped and reported).
 */
export class BondDecodeState {
  readonly r: BondReader;
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
    this.r = new BondReader(body, Math.max(1, Math.min(limits.maxDepth, HARD_MAX_DEPTH)));
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
        this.warn(
          `${this.codePrefix}.too-many-fields`,
          `more than ${this.limits.maxFieldsPerEvent} fields in one event; the rest are dropped`,
          this.r.pos,
        );
      }
      return;
    }
    this.fields.push(annotations === undefined ? { path, part, value, type } : { path, part, value, type, annotations });
  }

  warn(code: DecodeFindingCodeOf<"warning">, message: string, offset: number, length?: number): void {
    this.note("warning", code, message, offset, length);
  }

  /** Adds a finding (with the current event index, if any), up to MAX_FINDINGS per body. */
  note<C extends DecodeFindingCode>(
    severity: (typeof DECODE_FINDINGS)[C]["severity"],
    code: C,
    message: string,
    offset: number,
    length?: number,
  ): void {
    const n = this.findings.length;
    if (n >= MAX_FINDINGS) {
      if (n === MAX_FINDINGS) {
        this.findings.push({
          code: `${this.codePrefix}.too-many-findings`,
          severity: "warning",
          message: `more than ${MAX_FINDINGS} findings; the rest are dropped`,
          offset,
        });
      }
      return;
    }
    const f = { code, severity, message, offset } as Finding;
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
