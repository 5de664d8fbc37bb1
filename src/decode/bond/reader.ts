/**
 * One bounded cursor over a Bond Compact Binary v1 body (wire-formats.md §3.1–§3.3), in the shape
 * of msgpack-javascript's Decoder and protobuf.js's Reader: `pos` on a Uint8Array + DataView, tiny
 * read helpers, every count checked against the bytes left before anything is allocated, generic
 * skip-by-wire-type under a depth cap, and every malformed input reported as a DecodeError with a
 * stable dotted code and the byte offset.
 *
 * 64-bit integers use a two-path design without BigInt on the hot path: `readVarint64Raw` /
 * `readZigZag64Raw` leave the value in `lo`/`hi` (two 32-bit halves), and `int64Value`,
 * `uint64Value` and `ticksToIso` turn halves into a JS number when exact, a decimal string beyond
 * 2^53, or an ISO timestamp. The only BigInt use is the rare > 2^53 decimal rendering.
 */
import type { DecodeFindingCodeOf } from "../findings.js";
import { DecodeError } from "../types.js";

/** BondDataType (wire-formats.md §3.2). */
export const BT = {
  STOP: 0,
  STOP_BASE: 1,
  BOOL: 2,
  UINT8: 3,
  UINT16: 4,
  UINT32: 5,
  UINT64: 6,
  FLOAT: 7,
  DOUBLE: 8,
  STRING: 9,
  STRUCT: 10,
  LIST: 11,
  SET: 12,
  MAP: 13,
  INT8: 14,
  INT16: 15,
  INT32: 16,
  INT64: 17,
  WSTRING: 18,
} as const;

const TYPE_NAMES = [
  "stop",
  "stop_base",
  "bool",
  "uint8",
  "uint16",
  "uint32",
  "uint64",
  "float",
  "double",
  "string",
  "struct",
  "list",
  "set",
  "map",
  "int8",
  "int16",
  "int32",
  "int64",
  "wstring",
];

export function bondTypeName(type: number): string {
  return TYPE_NAMES[type] ?? `type(${type})`;
}

/** A type that may stand for a value (field, element, key): 2..18. */
export function isValueType(type: number): boolean {
  return type >= BT.BOOL && type <= BT.WSTRING;
}

/** Either string wire type: string (UTF-8) or wstring (UTF-16LE). */
export function isStringType(type: number): boolean {
  return type === BT.STRING || type === BT.WSTRING;
}

/** Either list wire type: list or set (same encoding). */
export function isListType(type: number): boolean {
  return type === BT.LIST || type === BT.SET;
}

/** For the list helpers that take an element-type test (BondDecodeState.nestedList). */
export function isStructType(type: number): boolean {
  return type === BT.STRUCT;
}

/** Single-byte integers, the element types of a GUID byte list. */
export function isByteType(type: number): boolean {
  return type === BT.UINT8 || type === BT.INT8;
}

/** double or float, both read as a JS number. */
export function isFloatingType(type: number): boolean {
  return type === BT.DOUBLE || type === BT.FLOAT;
}

/** Wire types encoded as (possibly ZigZag) varints or single bytes that hold an integer. */
export function isIntegerType(type: number): boolean {
  return (
    type === BT.BOOL ||
    type === BT.UINT8 ||
    type === BT.UINT16 ||
    type === BT.UINT32 ||
    type === BT.UINT64 ||
    type === BT.INT8 ||
    type === BT.INT16 ||
    type === BT.INT32 ||
    type === BT.INT64
  );
}

/** Unix epoch in .NET ticks, 621355968000000000, as ms-since-year-1 (ticks / 10^4). */
const EPOCH_MS_FROM_YEAR_1 = 62_135_596_800_000;
/** 2^32 = 429496 · 10^4 + 7296, used to divide a 64-bit value split in halves by 10^4 exactly. */
const TWO32_DIV_1E4 = 429_496;
const TWO32_MOD_1E4 = 7_296;
const TWO32 = 4_294_967_296;
/** Largest |ms| a Date accepts. */
const MAX_DATE_MS = 8.64e15;

const utf8 = new TextDecoder("utf-8", { fatal: false });
const utf16 = new TextDecoder("utf-16le", { fatal: false });

const HEX: string[] = [];
for (let i = 0; i < 256; i++) HEX.push(i.toString(16).padStart(2, "0"));

/** Strings up to this many bytes are looked up in the cache. */
const CACHE_MAX_LEN = 48;
const CACHE_SIZE = 4096; // power of two
const cacheBytes: Array<Uint8Array | undefined> = new Array<Uint8Array | undefined>(CACHE_SIZE).fill(undefined);
const cacheStrings: string[] = new Array<string>(CACHE_SIZE).fill("");

function cachedString(buf: Uint8Array, pos: number, len: number): string {
  let h = 0x811c9dc5 ^ len;
  const end = pos + len;
  for (let i = pos; i < end; i++) h = Math.imul(h ^ buf[i], 0x01000193);
  const slot = (h ^ (h >>> 15)) & (CACHE_SIZE - 1);
  const known = cacheBytes[slot];
  if (known !== undefined && known.length === len) {
    let i = 0;
    while (i < len && known[i] === buf[pos + i]) i++;
    if (i === len) return cacheStrings[slot];
  }
  const s = utf8.decode(buf.subarray(pos, end));
  cacheBytes[slot] = buf.slice(pos, end);
  cacheStrings[slot] = s;
  return s;
}

export class BondReader {
  readonly buf: Uint8Array;
  readonly view: DataView;
  /** Next byte to read. */
  pos: number;
  /** One past the last readable byte. */
  readonly end: number;
  readonly maxDepth: number;

  /** Field id and header offset of the last `readFieldHeader`. */
  id = 0;
  fieldAt = 0;
  /** Element type of the last `readListHeader`; key type of the last `readMapHeader`. */
  elemType = 0;
  /** Value type of the last `readMapHeader`. */
  valueType = 0;
  /** Low / high 32 bits of the last 64-bit read (`hi` is signed after a ZigZag read). */
  lo = 0;
  hi = 0;

  constructor(buf: Uint8Array, maxDepth = 64, start = 0, end = buf.length) {
    this.buf = buf;
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    this.pos = start;
    this.end = end;
    this.maxDepth = maxDepth;
  }

  get remaining(): number {
    return this.end - this.pos;
  }

  atEnd(): boolean {
    return this.pos >= this.end;
  }

  // ---- errors ---------------------------------------------------------------------------------

  /** `want` bytes needed at `at`, fewer available. */
  truncated(want: number, what: string, at = this.pos): DecodeError {
    return new DecodeError("bond.truncated", `${what}: need ${want} byte(s) at offset ${at}, ${Math.max(0, this.end - at)} left`, at);
  }

  fail(code: DecodeFindingCodeOf<"error">, message: string, at = this.pos): DecodeError {
    return new DecodeError(code, message, at);
  }

  checkDepth(depth: number): void {
    if (depth > this.maxDepth) throw new DecodeError("bond.depth", `nesting deeper than ${this.maxDepth}`, this.pos);
  }

  // ---- scalars --------------------------------------------------------------------------------

  readU8(): number {
    if (this.pos >= this.end) throw this.truncated(1, "byte");
    return this.buf[this.pos++];
  }

  peekU8(): number {
    if (this.pos >= this.end) throw this.truncated(1, "byte");
    return this.buf[this.pos];
  }

  skip(n: number, what = "value"): void {
    if (n > this.end - this.pos) throw this.truncated(n, what);
    this.pos += n;
  }

  readBool(): boolean {
    return this.readU8() !== 0;
  }

  readInt8(): number {
    return (this.readU8() << 24) >> 24;
  }

  /**
   * Unsigned varint kept to 32 bits (uint16/uint32/lengths/counts). Over-long encodings (extra
   * `0x80` groups, as written by writers that patch a count in place) decode normally; bits beyond
   * 32 are dropped like Bond's C++ reader does; more than 10 bytes is `bond.bad-varint`.
   */
  readVarUint32(): number {
    const pos = this.pos;
    if (pos < this.end) {
      const b = this.buf[pos];
      if (b < 0x80) {
        this.pos = pos + 1;
        return b;
      }
    }
    return this.readVarUint32Slow();
  }

  private readVarUint32Slow(): number {
    const buf = this.buf;
    const end = this.end;
    const start = this.pos;
    let pos = start;
    let result = 0;
    for (let i = 0; i < 10; i++) {
      if (pos >= end) throw this.truncated(1, "varint", pos);
      const b = buf[pos++];
      if (i < 5) result |= (b & 0x7f) << (7 * i);
      if (b < 0x80) {
        this.pos = pos;
        return result >>> 0;
      }
    }
    throw this.fail("bond.bad-varint", "varint longer than 10 bytes", start);
  }

  /** ZigZag int16/int32 (and enums). */
  readZigZag32(): number {
    const n = this.readVarUint32();
    return (n >>> 1) ^ -(n & 1);
  }

  readZigZag16(): number {
    return (this.readZigZag32() << 16) >> 16;
  }

  /** Unsigned varint up to 64 bits into `lo`/`hi` (both unsigned). */
  readVarint64Raw(): void {
    const buf = this.buf;
    const end = this.end;
    const start = this.pos;
    let pos = start;
    let lo = 0;
    // Small integers held in registers from the start: the hot path of every Bond read.
    // eslint-disable-next-line no-useless-assignment
    let hi = 0;
    // eslint-disable-next-line no-useless-assignment
    let b = 0;
    // Bytes 0-3: bits 0-27.
    for (let shift = 0; shift < 28; shift += 7) {
      if (pos >= end) throw this.truncated(1, "varint", pos);
      b = buf[pos++];
      lo |= (b & 0x7f) << shift;
      if (b < 0x80) {
        this.pos = pos;
        this.lo = lo >>> 0;
        this.hi = 0;
        return;
      }
    }
    // Byte 4: bits 28-34.
    if (pos >= end) throw this.truncated(1, "varint", pos);
    b = buf[pos++];
    lo |= (b & 0x0f) << 28;
    hi = (b & 0x7f) >>> 4;
    if (b >= 0x80) {
      // Bytes 5-9: bits 35-63 (byte 9 contributes bit 63 only; extra bits are dropped).
      for (let shift = 3; ; shift += 7) {
        if (shift > 31) throw this.fail("bond.bad-varint", "varint longer than 10 bytes", start);
        if (pos >= end) throw this.truncated(1, "varint", pos);
        b = buf[pos++];
        hi |= (b & 0x7f) << shift;
        if (b < 0x80) break;
      }
    }
    this.pos = pos;
    this.lo = lo >>> 0;
    this.hi = hi >>> 0;
  }

  /** ZigZag int64 into `lo` (unsigned) / `hi` (signed int32): two's complement halves. */
  readZigZag64Raw(): void {
    this.readVarint64Raw();
    const lo = this.lo;
    const hi = this.hi;
    let nlo = ((lo >>> 1) | (hi << 31)) >>> 0;
    let nhi = hi >>> 1;
    if (lo & 1) {
      nlo = ~nlo >>> 0;
      nhi = ~nhi;
    }
    this.lo = nlo;
    this.hi = nhi | 0;
  }

  /**
   * Reads any integer wire type into `lo`/`hi` as a signed 64-bit two's complement value (`hi`
   * signed), except uint64, which is left unsigned (`hi` ≥ 0 up to 2^32-1). Returns false, without
   * reading, for non-integer types.
   */
  readIntegerRaw(type: number): boolean {
    switch (type) {
      case BT.INT64:
        this.readZigZag64Raw();
        return true;
      case BT.UINT64:
        this.readVarint64Raw();
        return true;
      case BT.INT32:
      case BT.INT16:
        this.setInt32(this.readZigZag32());
        return true;
      case BT.UINT32:
      case BT.UINT16:
        this.lo = this.readVarUint32();
        this.hi = 0;
        return true;
      case BT.BOOL:
      case BT.UINT8:
        this.lo = this.readU8();
        this.hi = 0;
        return true;
      case BT.INT8:
        this.setInt32(this.readInt8());
        return true;
      default:
        return false;
    }
  }

  private setInt32(v: number): void {
    this.lo = v >>> 0;
    this.hi = v < 0 ? -1 : 0;
  }

  /** int64 as a number when exact, as a bigint beyond 2^53. */
  readZigZag64(): number | bigint {
    this.readZigZag64Raw();
    const v = this.hi * TWO32 + this.lo;
    return Number.isSafeInteger(v) ? v : BigInt.asIntN(64, (BigInt(this.hi >>> 0) << 32n) | BigInt(this.lo));
  }

  /** uint64 as a number when exact, as a bigint beyond 2^53. */
  readVarUint64(): number | bigint {
    this.readVarint64Raw();
    const v = this.hi * TWO32 + this.lo;
    return Number.isSafeInteger(v) ? v : (BigInt(this.hi) << 32n) | BigInt(this.lo);
  }

  readFloat(): number {
    if (this.end - this.pos < 4) throw this.truncated(4, "float");
    const v = this.view.getFloat32(this.pos, true);
    this.pos += 4;
    return v;
  }

  readDouble(): number {
    if (this.end - this.pos < 8) throw this.truncated(8, "double");
    const v = this.view.getFloat64(this.pos, true);
    this.pos += 8;
    return v;
  }

  /**
   * UTF-8 string: varint byte count (≤ remaining), bytes. Malformed UTF-8 becomes U+FFFD. Short
   * strings go through a small hash-indexed cache: property keys and most short values repeat
   * from event to event, and comparing ≤ 48 bytes is cheaper than a TextDecoder call.
   */
  readString(): string {
    const len = this.readVarUint32();
    const pos = this.pos;
    if (len > this.end - pos) throw this.truncated(len, "string");
    this.pos = pos + len;
    if (len === 0) return "";
    if (len > CACHE_MAX_LEN) return utf8.decode(this.buf.subarray(pos, pos + len));
    return cachedString(this.buf, pos, len);
  }

  /** UTF-16LE string: varint count of code units, 2·count bytes. */
  readWString(): string {
    const units = this.readVarUint32();
    const pos = this.pos;
    const len = units * 2;
    if (len > this.end - pos) throw this.truncated(len, "wstring");
    this.pos = pos + len;
    if (len === 0) return "";
    return utf16.decode(this.buf.subarray(pos, pos + len));
  }

  /** Either string wire type. */
  readAnyString(type: number): string {
    return type === BT.WSTRING ? this.readWString() : this.readString();
  }

  /** `n` raw bytes as a view (no copy). */
  readBytes(n: number, what = "bytes"): Uint8Array {
    const pos = this.pos;
    if (n > this.end - pos) throw this.truncated(n, what);
    this.pos = pos + n;
    return this.buf.subarray(pos, pos + n);
  }

  // ---- headers --------------------------------------------------------------------------------

  /**
   * Field header (§3.3): returns the wire type (0 = BT_STOP, 1 = BT_STOP_BASE) and leaves the id
   * in `id`. Forms: `type | id<<5` (id 0-5), `type | 0xC0` + id byte, `type | 0xE0` + LE16 id.
   */
  readFieldHeader(): number {
    const start = this.pos;
    this.fieldAt = start;
    if (start >= this.end) throw this.truncated(1, "field header");
    const b = this.buf[start];
    const type = b & 0x1f;
    const form = b >>> 5;
    if (form < 6) {
      this.id = form;
      this.pos = start + 1;
    } else if (form === 6) {
      if (this.end - start < 2) throw this.truncated(2, "field header", start);
      this.id = this.buf[start + 1];
      this.pos = start + 2;
    } else {
      if (this.end - start < 3) throw this.truncated(3, "field header", start);
      this.id = this.buf[start + 1] | (this.buf[start + 2] << 8);
      this.pos = start + 3;
    }
    if (type > BT.WSTRING) throw this.fail("bond.bad-type", `field ${this.id}: invalid wire type ${type}`, start);
    return type;
  }

  /**
   * The next field of a struct, passing over BT_STOP_BASE (the end of a base part): returns its wire
   * type, BT_STOP at the end of the struct; the id is left in `id`, the header's offset in `fieldAt`.
   * Struct loops call it once per iteration (not in both parts of a `for` header): every inlined
   * copy counts against V8's inlining budget of the (large) caller, and a second copy measurably
   * slowed the Bond decoder.
   */
  readField(): number {
    for (;;) {
      const type = this.readFieldHeader();
      if (type !== BT.STOP_BASE) return type;
    }
  }

  /**
   * List/set header, v1 (§3.3): element type byte with the top 3 bits zero (non-zero = a v2 packed
   * count, rejected like CCT's reader does), then a varint count that must not exceed the bytes
   * left (every element takes at least one byte). Returns the count; element type in `elemType`.
   */
  readListHeader(): number {
    const start = this.pos;
    if (start >= this.end) throw this.truncated(1, "list header");
    const t = this.buf[start];
    if (t & 0xe0) throw this.fail("bond.bad-list-header", `list header byte 0x${HEX[t]} has bits 5-7 set (Bond v2 packing?)`, start);
    if (!isValueType(t)) throw this.fail("bond.bad-type", `list element type ${t} is not a value type`, start);
    this.pos = start + 1;
    const countAt = this.pos;
    const count = this.readVarUint32();
    if (count > this.end - this.pos) {
      throw this.fail("bond.count", `list of ${count} ${bondTypeName(t)} items but only ${this.end - this.pos} bytes left`, countAt);
    }
    this.elemType = t;
    return count;
  }

  /** Map header: key type, value type, varint pair count (2 bytes per pair at least). Types in `elemType`/`valueType`. */
  readMapHeader(): number {
    const start = this.pos;
    if (this.end - start < 2) throw this.truncated(2, "map header", start);
    const k = this.buf[start];
    const v = this.buf[start + 1];
    if (!isValueType(k)) throw this.fail("bond.bad-type", `map key type ${k} is not a value type`, start);
    if (!isValueType(v)) throw this.fail("bond.bad-type", `map value type ${v} is not a value type`, start + 1);
    this.pos = start + 2;
    const countAt = this.pos;
    const count = this.readVarUint32();
    if (count * 2 > this.end - this.pos) {
      throw this.fail("bond.count", `map of ${count} pairs but only ${this.end - this.pos} bytes left`, countAt);
    }
    this.elemType = k;
    this.valueType = v;
    return count;
  }

  // ---- skipping -------------------------------------------------------------------------------

  /** Skips one value of wire type `type`; `depth` is the nesting depth of the value. */
  skipValue(type: number, depth: number): void {
    switch (type) {
      case BT.BOOL:
      case BT.UINT8:
      case BT.INT8:
        this.skip(1, bondTypeName(type));
        return;
      case BT.UINT16:
      case BT.UINT32:
      case BT.UINT64:
      case BT.INT16:
      case BT.INT32:
      case BT.INT64:
        this.skipVarint();
        return;
      case BT.FLOAT:
        this.skip(4, "float");
        return;
      case BT.DOUBLE:
        this.skip(8, "double");
        return;
      case BT.STRING: {
        const n = this.readVarUint32();
        this.skip(n, "string");
        return;
      }
      case BT.WSTRING: {
        const n = this.readVarUint32();
        this.skip(n * 2, "wstring");
        return;
      }
      case BT.STRUCT:
        this.skipStruct(depth);
        return;
      case BT.LIST:
      case BT.SET: {
        this.checkDepth(depth);
        const count = this.readListHeader();
        const et = this.elemType;
        const fixed = fixedSize(et);
        if (fixed) {
          this.skip(count * fixed, "list items");
          return;
        }
        for (let i = 0; i < count; i++) this.skipValue(et, depth + 1);
        return;
      }
      case BT.MAP: {
        this.checkDepth(depth);
        const count = this.readMapHeader();
        const kt = this.elemType;
        const vt = this.valueType;
        for (let i = 0; i < count; i++) {
          this.skipValue(kt, depth + 1);
          this.skipValue(vt, depth + 1);
        }
        return;
      }
      default:
        throw this.fail("bond.bad-type", `cannot skip a value of wire type ${type}`);
    }
  }

  /** Skips the rest of a struct: fields until BT_STOP (BT_STOP_BASE ends a base part and goes on). */
  skipStruct(depth: number): void {
    this.checkDepth(depth);
    for (;;) {
      const type = this.readField();
      if (type === BT.STOP) return;
      this.skipValue(type, depth + 1);
    }
  }

  skipVarint(): void {
    const buf = this.buf;
    const end = this.end;
    const start = this.pos;
    let pos = start;
    for (let i = 0; i < 10; i++) {
      if (pos >= end) throw this.truncated(1, "varint", pos);
      if (buf[pos++] < 0x80) {
        this.pos = pos;
        return;
      }
    }
    throw this.fail("bond.bad-varint", "varint longer than 10 bytes", start);
  }
}

function fixedSize(type: number): number {
  switch (type) {
    case BT.BOOL:
    case BT.UINT8:
    case BT.INT8:
      return 1;
    case BT.FLOAT:
      return 4;
    case BT.DOUBLE:
      return 8;
    default:
      return 0;
  }
}

// ---- 64-bit helpers (halves → JSON values) ------------------------------------------------------

/** Signed 64-bit (hi signed int32, lo uint32) → number when exact, else a decimal string. */
export function int64Value(hi: number, lo: number): number | string {
  const v = hi * TWO32 + lo;
  if (Number.isSafeInteger(v)) return v;
  return BigInt.asIntN(64, (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0)).toString();
}

/** Unsigned 64-bit (both halves taken as uint32) → number when exact, else a decimal string. */
export function uint64Value(hi: number, lo: number): number | string {
  const v = (hi >>> 0) * TWO32 + (lo >>> 0);
  if (Number.isSafeInteger(v)) return v;
  return ((BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0)).toString();
}

/**
 * .NET ticks (100 ns since 0001-01-01 UTC, signed 64-bit halves) → ISO 8601 with 7 fractional
 * digits (`2023-05-05T14:03:10.5017229Z`), computed exactly without BigInt. Undefined only if the
 * instant is outside what Date can print.
 */
export function ticksToIso(hi: number, lo: number): string | undefined {
  // value = hi·2^32 + lo = hi·(429496·10^4 + 7296) + lo → split into ms (÷10^4) and 100-ns rest.
  const t = hi * TWO32_MOD_1E4 + (lo >>> 0); // |t| < 1.6e13: exact
  const tq = Math.floor(t / 10_000);
  const rest = t - tq * 10_000; // 0..9999, floor semantics for negative values
  const msFromYear1 = hi * TWO32_DIV_1E4 + tq; // |.| < 9.3e14: exact
  return msToIso(msFromYear1 - EPOCH_MS_FROM_YEAR_1, rest);
}

/** Unix ms → ISO 8601 with 3 fractional digits; undefined when out of Date's range. */
export function unixMsToIso(ms: number): string | undefined {
  if (!Number.isFinite(ms) || Math.abs(ms) > MAX_DATE_MS) return undefined;
  return new Date(ms).toISOString();
}

const PAD2: string[] = [];
for (let i = 0; i < 100; i++) PAD2.push(i < 10 ? `0${i}` : `${i}`);
const MS_PER_DAY = 86_400_000;

/**
 * ms since the Unix epoch + 100-ns units within the millisecond → `YYYY-MM-DDTHH:MM:SS.fffffffZ`.
 * Civil date from day number (H. Hinnant's days_from_civil inverse), no Date object; years outside
 * 0000–9999 use Date's expanded `±YYYYYY` form.
 */
function msToIso(ms: number, sub100ns: number): string | undefined {
  if (!Number.isFinite(ms) || Math.abs(ms) > MAX_DATE_MS) return undefined;
  const days = Math.floor(ms / MS_PER_DAY);
  let rem = ms - days * MS_PER_DAY;
  const z = days + 719_468;
  const era = Math.floor(z / 146_097);
  const doe = z - era * 146_097;
  const yoe = Math.floor((doe - Math.floor(doe / 1460) + Math.floor(doe / 36_524) - Math.floor(doe / 146_096)) / 365);
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  const d = doy - Math.floor((153 * mp + 2) / 5) + 1;
  const m = mp < 10 ? mp + 3 : mp - 9;
  const y = yoe + era * 400 + (m <= 2 ? 1 : 0);
  if (y < 0 || y > 9999) {
    const iso = new Date(ms).toISOString();
    return `${iso.slice(0, -1)}${pad4(sub100ns)}Z`;
  }
  const hh = Math.floor(rem / 3_600_000);
  rem -= hh * 3_600_000;
  const mm = Math.floor(rem / 60_000);
  rem -= mm * 60_000;
  const ss = Math.floor(rem / 1000);
  const fff = rem - ss * 1000;
  const year = y >= 1000 ? `${y}` : y >= 100 ? `0${y}` : y >= 10 ? `00${y}` : `000${y}`;
  const milli = fff >= 100 ? `${fff}` : fff >= 10 ? `0${fff}` : `00${fff}`;
  return `${year}-${PAD2[m]}-${PAD2[d]}T${PAD2[hh]}:${PAD2[mm]}:${PAD2[ss]}.${milli}${pad4(sub100ns)}Z`;
}

function pad4(n: number): string {
  return n >= 1000 ? `${n}` : n >= 100 ? `0${n}` : n >= 10 ? `00${n}` : `000${n}`;
}

/** The bytes of a Windows GUID in the order its text shows them; -1 is a dash. */
const GUID_BYTE_ORDER = [3, 2, 1, 0, -1, 5, 4, -1, 7, 6, -1, 8, 9, -1, 10, 11, 12, 13, 14, 15];

/**
 * 16 bytes in Windows GUID order (Data1 LE32, Data2 LE16, Data3 LE16, Data4 as-is) → canonical
 * lowercase 8-4-4-4-12. `at` indexes into `b`.
 */
export function windowsGuid(b: Uint8Array, at = 0): string {
  let s = "";
  for (const i of GUID_BYTE_ORDER) s += i < 0 ? "-" : HEX[b[at + i]];
  return s;
}

export function hexOf(b: Uint8Array): string {
  let s = "";
  for (let i = 0; i < b.length; i++) s += HEX[b[i]];
  return s;
}
