/**
 * A small Bond Compact Binary v1 WRITER (wire-formats.md §3.3) and fixture builders for the
 * 1DS Common Schema Record (§3.5) and the Aria ClientToCollectorRequest (§4.2). Independent of
 * the decoders on purpose (own schema tables), so a decoder bug is not mirrored here. The wire
 * type ids are the decoder's own `BT`: the hand-typed byte tests (the §3.6 worked example and the
 * type-id test in decode-bond, the §4.1 request in decode-aria) hold them to the spec.
 *
 * Writers follow the 1DS C++ SDK conventions: fields in ascending ordinal order, defaults omitted
 * (Value.type for strings, zero longValue, empty strings), one element per `vector<Ext>`.
 */
import { BT } from "../decode/bond/reader.js";

/** BondDataType ids (§3.2). */
export const BondType = BT;

/** ValueKind (§3.5). */
export const ValueKind = {
  Int64: 0,
  UInt64: 1,
  Int32: 2,
  UInt32: 3,
  Double: 4,
  String: 5,
  Bool: 6,
  DateTime: 7,
  Guid: 8,
  ArrayInt64: 9,
  ArrayUInt64: 10,
  ArrayInt32: 11,
  ArrayUInt32: 12,
  ArrayDouble: 13,
  ArrayString: 14,
  ArrayBool: 15,
  ArrayDateTime: 16,
  ArrayGuid: 17,
} as const;

/** Unix epoch in .NET ticks (§3.5 Record.time). */
export const UNIX_EPOCH_TICKS = 621_355_968_000_000_000n;

export function ticksFromMs(ms: number): bigint {
  return BigInt(Math.round(ms)) * 10_000n + UNIX_EPOCH_TICKS;
}

export function ticksFromIso(iso: string): bigint {
  // Keep up to 7 fractional digits exactly.
  const m = /^(.*?)(?:\.(\d{1,7}))?Z$/.exec(iso);
  if (!m) throw new Error(`bad ISO time ${iso}`);
  const whole = Date.parse(`${m[1]}Z`);
  const frac = BigInt((m[2] ?? "").padEnd(7, "0"));
  return BigInt(whole) * 10_000n + UNIX_EPOCH_TICKS + frac;
}

/** Canonical GUID text → 16 bytes in Windows order (Data1 LE32, Data2 LE16, Data3 LE16, Data4 as-is). */
export function guidToWindowsBytes(guid: string): number[] {
  const hex = guid.replace(/[{}-]/g, "");
  if (!/^[0-9a-fA-F]{32}$/.test(hex)) throw new Error(`bad GUID ${guid}`);
  const b = (i: number) => parseInt(hex.slice(i * 2, i * 2 + 2), 16);
  return [b(3), b(2), b(1), b(0), b(5), b(4), b(7), b(6), b(8), b(9), b(10), b(11), b(12), b(13), b(14), b(15)];
}

const enc = new TextEncoder();

export class BondWriter {
  private buf = new Uint8Array(256);
  private len = 0;

  get length(): number {
    return this.len;
  }

  private ensure(n: number): void {
    if (this.len + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.len + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.len));
    this.buf = next;
  }

  u8(b: number): this {
    this.ensure(1);
    this.buf[this.len++] = b & 0xff;
    return this;
  }

  bytes(b: ArrayLike<number>): this {
    this.ensure(b.length);
    this.buf.set(b, this.len);
    this.len += b.length;
    return this;
  }

  /** Unsigned LEB128; `minBytes` pads with zero continuation groups (an over-long encoding). */
  varint(v: number | bigint, minBytes = 1): this {
    let n = BigInt.asUintN(64, BigInt(v));
    let written = 0;
    for (;;) {
      const group = Number(n & 0x7fn);
      n >>= 7n;
      written++;
      if (n === 0n && written >= minBytes) {
        this.u8(group);
        return this;
      }
      this.u8(group | 0x80);
    }
  }

  /** ZigZag then varint, for int16/int32/int64. */
  zigzag(v: number | bigint): this {
    const n = BigInt.asIntN(64, BigInt(v));
    return this.varint(BigInt.asUintN(64, (n << 1n) ^ (n >> 63n)));
  }

  float(x: number): this {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, x, true);
    return this.bytes(b);
  }

  double(x: number): this {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setFloat64(0, x, true);
    return this.bytes(b);
  }

  string(s: string): this {
    const b = enc.encode(s);
    this.varint(b.length);
    return this.bytes(b);
  }

  wstring(s: string): this {
    this.varint(s.length);
    for (let i = 0; i < s.length; i++) {
      const c = s.charCodeAt(i);
      this.u8(c & 0xff).u8(c >>> 8);
    }
    return this;
  }

  /** Field header: 1 byte for ids 0–5, `type|0xC0` + id for ≤ 255, `type|0xE0` + LE16 id above; `form` forces a longer form. */
  field(type: number, id: number, form?: 1 | 2 | 3): this {
    const f = form ?? (id <= 5 ? 1 : id <= 0xff ? 2 : 3);
    if (f === 1) {
      if (id > 5) throw new Error(`id ${id} does not fit the 1-byte form`);
      return this.u8(type | (id << 5));
    }
    if (f === 2) {
      if (id > 0xff) throw new Error(`id ${id} does not fit the 2-byte form`);
      return this.u8(type | 0xc0).u8(id);
    }
    return this.u8(type | 0xe0)
      .u8(id & 0xff)
      .u8(id >>> 8);
  }

  stop(): this {
    return this.u8(BondType.STOP);
  }

  stopBase(): this {
    return this.u8(BondType.STOP_BASE);
  }

  /** v1 list/set header: element type byte, varint count (`countBytes` for an over-long count). */
  list(elemType: number, count: number, countBytes = 1): this {
    return this.u8(elemType).varint(count, countBytes);
  }

  map(keyType: number, valueType: number, count: number): this {
    return this.u8(keyType).u8(valueType).varint(count);
  }

  finish(): Uint8Array {
    return this.buf.slice(0, this.len);
  }
}

// ---- unknown fields of every wire type ----------------------------------------------------------

/** A field the decoders do not know: header (type, id) + pre-encoded value bytes. */
export interface UnknownField {
  id: number;
  type: number;
  payload: Uint8Array;
  /** Force a header form (1, 2 or 3 bytes). */
  form?: 1 | 2 | 3;
}

function payload(f: (w: BondWriter) => void): Uint8Array {
  const w = new BondWriter();
  f(w);
  return w.finish();
}

/** One value of each of the 17 value wire types (bool … wstring), nested containers included. */
export const UNKNOWN_PAYLOADS: ReadonlyArray<{ type: number; payload: Uint8Array }> = [
  { type: BondType.BOOL, payload: payload((w) => w.u8(1)) },
  { type: BondType.UINT8, payload: payload((w) => w.u8(0xff)) },
  { type: BondType.UINT16, payload: payload((w) => w.varint(65_535)) },
  { type: BondType.UINT32, payload: payload((w) => w.varint(4_000_000_000)) },
  { type: BondType.UINT64, payload: payload((w) => w.varint(0xffff_ffff_ffff_ffffn)) },
  { type: BondType.FLOAT, payload: payload((w) => w.float(1.5)) },
  { type: BondType.DOUBLE, payload: payload((w) => w.double(-2.25)) },
  { type: BondType.STRING, payload: payload((w) => w.string("unknown ✓")) },
  {
    type: BondType.STRUCT,
    payload: payload((w) => {
      // base part, BT_STOP_BASE, derived part with a nested struct, list and map
      w.field(BondType.STRING, 1).string("base");
      w.stopBase();
      w.field(BondType.INT64, 2).zigzag(-123456789012345n);
      w.field(BondType.STRUCT, 3).field(BondType.WSTRING, 1).wstring("x").stop();
      w.field(BondType.LIST, 4).list(BondType.LIST, 2).list(BondType.DOUBLE, 1).double(1).list(BondType.DOUBLE, 0);
      w.field(BondType.MAP, 300).map(BondType.INT32, BondType.STRUCT, 1).zigzag(-1).stop();
      w.stop();
    }),
  },
  { type: BondType.LIST, payload: payload((w) => w.list(BondType.STRING, 2).string("a").string("bc")) },
  {
    type: BondType.SET,
    payload: payload((w) =>
      w
        .list(BondType.INT32, 3)
        .zigzag(1)
        .zigzag(-1)
        .zigzag(1 << 30),
    ),
  },
  {
    type: BondType.MAP,
    payload: payload((w) =>
      w
        .map(BondType.STRING, BondType.LIST, 2)
        .string("k1")
        .list(BondType.UINT8, 3)
        .bytes([1, 2, 3])
        .string("k2")
        .list(BondType.FLOAT, 1)
        .float(0.5),
    ),
  },
  { type: BondType.INT8, payload: payload((w) => w.u8(0x80)) },
  { type: BondType.INT16, payload: payload((w) => w.zigzag(-32768)) },
  { type: BondType.INT32, payload: payload((w) => w.zigzag(-2_147_483_648)) },
  { type: BondType.INT64, payload: payload((w) => w.zigzag(-(2n ** 63n))) },
  { type: BondType.WSTRING, payload: payload((w) => w.wstring("wide é")) },
];

/** One unknown field per wire type, ids `ids(i)` (default firstId + i). */
export function unknownFieldsOfEveryType(firstId: number, ids?: (i: number) => number): UnknownField[] {
  return UNKNOWN_PAYLOADS.map((p, i) => ({ id: ids ? ids(i) : firstId + i, type: p.type, payload: p.payload }));
}

function writeUnknown(w: BondWriter, fields: UnknownField[] | undefined): void {
  for (const f of fields ?? []) w.field(f.type, f.id, f.form).bytes(f.payload);
}

// ---- CS Record (1DS) ----------------------------------------------------------------------------

/** One Value struct as it goes on the wire. Build with the `V` helpers. */
export interface CsValue {
  /** ValueKind; omitted on the wire when undefined or String (5), like the C++ SDK. */
  kind?: number;
  /** Write the kind even when it is String. */
  writeKind?: boolean;
  str?: string;
  long?: number | bigint;
  double?: number;
  /** GUID text, written as 16 Windows-order bytes. */
  guid?: string;
  /** Raw guidValue bytes (overrides `guid`). */
  guidBytes?: number[];
  strings?: string[];
  longs?: Array<number | bigint>;
  doubles?: number[];
  guids?: string[];
  /** PIIKind → attributes [{pii:[{Kind}]}]. */
  pii?: number;
  /** CustomerContentKind → attributes [{customerContent:[{Kind}]}]. */
  cc?: number;
  /** Unknown fields, written first inside the Value struct. */
  unknown?: UnknownField[];
}

const toTicks = (t: bigint | number | Date): bigint => (typeof t === "bigint" ? t : ticksFromMs(typeof t === "number" ? t : t.getTime()));

/** Value builders following the C++ SDK's choices (§3.5: zero / empty payloads omitted). */
export const V = {
  str: (s: string, extra: Partial<CsValue> = {}): CsValue => ({ ...(s === "" ? {} : { str: s }), ...extra }),
  i64: (n: number | bigint): CsValue => ({ kind: ValueKind.Int64, ...(BigInt(n) === 0n ? {} : { long: n }) }),
  u64: (n: number | bigint): CsValue => ({ kind: ValueKind.UInt64, ...(BigInt(n) === 0n ? {} : { long: BigInt.asIntN(64, BigInt(n)) }) }),
  i32: (n: number): CsValue => ({ kind: ValueKind.Int32, ...(n === 0 ? {} : { long: n }) }),
  u32: (n: number): CsValue => ({ kind: ValueKind.UInt32, ...(n === 0 ? {} : { long: n }) }),
  dbl: (x: number): CsValue => ({ kind: ValueKind.Double, ...(x === 0 ? {} : { double: x }) }),
  bool: (b: boolean): CsValue => ({ kind: ValueKind.Bool, ...(b ? { long: 1 } : {}) }),
  /** DateTime: bigint = .NET ticks, number = Unix ms, or a Date. */
  dt: (t: bigint | number | Date): CsValue => ({ kind: ValueKind.DateTime, long: toTicks(t) }),
  guid: (g: string): CsValue => ({ kind: ValueKind.Guid, guid: g }),
  /** A PII-tagged value: sent as a string with attributes (kind omitted = String). */
  pii: (s: string, piiKind: number): CsValue => ({ str: s, pii: piiKind }),
  cc: (s: string, ccKind = 1): CsValue => ({ str: s, cc: ccKind }),
  arr: {
    i64: (xs: Array<number | bigint>): CsValue => ({ kind: ValueKind.ArrayInt64, longs: xs }),
    u64: (xs: Array<number | bigint>): CsValue => ({ kind: ValueKind.ArrayUInt64, longs: xs.map((x) => BigInt.asIntN(64, BigInt(x))) }),
    i32: (xs: number[]): CsValue => ({ kind: ValueKind.ArrayInt32, longs: xs }),
    u32: (xs: number[]): CsValue => ({ kind: ValueKind.ArrayUInt32, longs: xs }),
    dbl: (xs: number[]): CsValue => ({ kind: ValueKind.ArrayDouble, doubles: xs }),
    str: (xs: string[]): CsValue => ({ kind: ValueKind.ArrayString, strings: xs }),
    bool: (xs: boolean[]): CsValue => ({ kind: ValueKind.ArrayBool, longs: xs.map((b) => (b ? 1 : 0)) }),
    dt: (xs: Array<bigint | number | Date>): CsValue => ({ kind: ValueKind.ArrayDateTime, longs: xs.map(toTicks) }),
    guid: (xs: string[]): CsValue => ({ kind: ValueKind.ArrayGuid, guids: xs }),
  },
};

type ExtKind = "s" | "i32" | "i64" | "u32" | "u64" | "d" | "b" | "smap" | "slist2";

/** Part A extensions by §2.3 JSON name: Record ordinal and field name → [id, kind] (§3.5). */
const EXTENSIONS: Record<string, { ordinal: number; fields: Record<string, [number, ExtKind]> }> = {
  ingest: {
    ordinal: 20,
    fields: {
      time: [1, "i64"],
      clientIp: [2, "s"],
      auth: [3, "i64"],
      quality: [4, "i64"],
      uploadTime: [5, "i64"],
      userAgent: [6, "s"],
      client: [7, "s"],
    },
  },
  protocol: {
    ordinal: 21,
    fields: { metadataCrc: [1, "i32"], ticketKeys: [2, "slist2"], devMake: [3, "s"], devModel: [4, "s"], msp: [5, "u64"] },
  },
  user: { ordinal: 22, fields: { id: [1, "s"], localId: [2, "s"], authId: [3, "s"], locale: [4, "s"] } },
  device: {
    ordinal: 23,
    fields: {
      id: [1, "s"],
      localId: [2, "s"],
      authId: [3, "s"],
      authSecId: [4, "s"],
      deviceClass: [5, "s"],
      orgId: [6, "s"],
      orgAuthId: [7, "s"],
      make: [8, "s"],
      model: [9, "s"],
      authIdEnt: [10, "s"],
    },
  },
  os: { ordinal: 24, fields: { locale: [1, "s"], expId: [2, "s"], bootId: [3, "i32"], name: [4, "s"], ver: [5, "s"] } },
  app: {
    ordinal: 25,
    fields: {
      expId: [1, "s"],
      userId: [2, "s"],
      env: [3, "s"],
      asId: [4, "i32"],
      id: [5, "s"],
      ver: [6, "s"],
      locale: [7, "s"],
      name: [8, "s"],
      sesId: [9, "s"],
    },
  },
  utc: {
    ordinal: 26,
    fields: {
      stId: [1, "s"],
      aId: [2, "s"],
      raId: [3, "s"],
      op: [4, "s"],
      cat: [5, "i64"],
      flags: [6, "i64"],
      sqmId: [7, "s"],
      mon: [9, "s"],
      cpId: [10, "i32"],
      bSeq: [11, "s"],
      epoch: [12, "s"],
      seq: [13, "i64"],
      popSample: [14, "d"],
      eventFlags: [15, "i64"],
      wsId: [16, "i64"],
      wcmp: [17, "i64"],
      wPId: [18, "i64"],
    },
  },
  xbl: {
    ordinal: 27,
    fields: {
      claims: [5, "smap"],
      nbf: [10, "s"],
      exp: [20, "s"],
      sbx: [30, "s"],
      dty: [40, "s"],
      did: [50, "s"],
      xid: [60, "s"],
      uts: [70, "u64"],
      pid: [80, "s"],
      dvr: [90, "s"],
      tid: [100, "u32"],
      tvr: [110, "s"],
      sty: [120, "s"],
      sid: [130, "s"],
      eid: [140, "i64"],
      ip: [150, "s"],
    },
  },
  javascript: {
    ordinal: 28,
    fields: {
      libVer: [10, "s"],
      osName: [15, "s"],
      browser: [20, "s"],
      browserVersion: [21, "s"],
      platform: [25, "s"],
      make: [30, "s"],
      model: [35, "s"],
      screenSize: [40, "s"],
      msfpc: [45, "s"],
      mc1Id: [50, "s"],
      mc1Lu: [60, "u64"],
      isMc1New: [70, "b"],
      ms0: [80, "s"],
      anid: [90, "s"],
      a: [100, "s"],
      msResearch: [110, "s"],
      csrvc: [120, "s"],
      rtCell: [130, "s"],
      rtEndAction: [140, "s"],
      rtPermId: [150, "s"],
      r: [160, "s"],
      wtFpc: [170, "s"],
      omniId: [180, "s"],
      gsfxSession: [190, "s"],
      domain: [200, "s"],
      userConsent: [210, "b"],
      browserLang: [220, "s"],
      serviceName: [230, "s"],
      dnt: [999, "s"],
    },
  },
  receipts: { ordinal: 29, fields: { originalTime: [1, "i64"], uploadTime: [2, "i64"], originalName: [3, "s"], flags: [4, "u64"] } },
  net: { ordinal: 31, fields: { provider: [1, "s"], cost: [2, "s"], type: [3, "s"] } },
  sdk: { ordinal: 32, fields: { ver: [1, "s"], epoch: [2, "s"], seq: [3, "i64"], installId: [4, "s"], libVer: [5, "s"] } },
  loc: { ordinal: 33, fields: { id: [1, "s"], country: [2, "s"], tz: [3, "s"] } },
  cloud: {
    ordinal: 34,
    fields: {
      fullEnvName: [1, "s"],
      location: [2, "s"],
      environment: [3, "s"],
      deploymentUnit: [4, "s"],
      name: [5, "s"],
      roleInstance: [6, "s"],
      role: [7, "s"],
    },
  },
  service: { ordinal: 35, fields: { name: [1, "s"], role: [2, "s"], roleVersion: [3, "s"] } },
  cs: { ordinal: 36, fields: { sig: [1, "s"] } },
  m365a: { ordinal: 37, fields: { enrolledTenantId: [1, "s"], msp: [2, "u64"] } },
  mscv: { ordinal: 42, fields: { cV: [1, "s"] } },
  intweb: { ordinal: 43, fields: { mc1Id: [1, "s"], msfpc: [2, "s"], anid: [3, "s"], serviceName: [4, "s"], mscom: [5, "smap"] } },
  intservice: {
    ordinal: 44,
    fields: { fullEnvName: [1, "s"], location: [2, "s"], environment: [3, "s"], deploymentUnit: [4, "s"], name: [5, "s"] },
  },
  web: {
    ordinal: 45,
    fields: {
      browser: [10, "s"],
      browserVer: [20, "s"],
      screenRes: [30, "s"],
      domain: [40, "s"],
      userConsent: [50, "b"],
      browserLang: [60, "s"],
      isManual: [70, "b"],
    },
  },
};

/** JSON names of every Part A extension the writer knows, in ordinal order. */
export const EXTENSION_NAMES = Object.keys(EXTENSIONS).sort((a, b) => EXTENSIONS[a].ordinal - EXTENSIONS[b].ordinal);

export function extensionFields(name: string): Record<string, [number, string]> {
  return EXTENSIONS[name].fields;
}

export type ExtFieldValue = string | number | bigint | boolean | Record<string, string> | string[][];
export type ExtSpec = Record<string, ExtFieldValue>;

export interface CsRecordSpec {
  ver?: string;
  name?: string;
  /** bigint = .NET ticks; number = Unix ms; Date. */
  time?: bigint | number | Date;
  popSample?: number;
  iKey?: string;
  flags?: number | bigint;
  cV?: string;
  /** Part A by §2.3 JSON name (`app`, `loc` with `tz`, `sdk` with `ver` …). An empty object writes an empty struct. */
  ext?: Record<string, ExtSpec>;
  /** Number of elements to write in an extension vector (default 1; the extra ones are copies). */
  extCopies?: Record<string, number>;
  /** Unknown fields written first inside an extension struct. */
  extUnknown?: Record<string, UnknownField[]>;
  tags?: Record<string, string>;
  baseType?: string;
  baseData?: Record<string, CsValue>;
  data?: Record<string, CsValue>;
  /** Record field 41 (`ext`, vector<Data>). */
  extData?: Record<string, CsValue>;
  /** Unknown fields written first inside the Data struct of `data`. */
  dataUnknown?: UnknownField[];
  /** Unknown fields written right after `name` inside the Record. */
  unknown?: UnknownField[];
}

function writeExtField(w: BondWriter, id: number, kind: ExtKind, v: ExtFieldValue): void {
  switch (kind) {
    case "s":
      w.field(BondType.STRING, id).string(String(v));
      return;
    case "i32":
      w.field(BondType.INT32, id).zigzag(v as number);
      return;
    case "i64":
      w.field(BondType.INT64, id).zigzag(v as number | bigint);
      return;
    case "u32":
      w.field(BondType.UINT32, id).varint(v as number);
      return;
    case "u64":
      w.field(BondType.UINT64, id).varint(v as number | bigint);
      return;
    case "d":
      w.field(BondType.DOUBLE, id).double(v as number);
      return;
    case "b":
      w.field(BondType.BOOL, id).u8(v ? 1 : 0);
      return;
    case "smap": {
      const m = v as Record<string, string>;
      const keys = Object.keys(m);
      w.field(BondType.MAP, id).map(BondType.STRING, BondType.STRING, keys.length);
      for (const k of keys) w.string(k).string(m[k]);
      return;
    }
    case "slist2": {
      const lists = v as string[][];
      w.field(BondType.LIST, id).list(BondType.LIST, lists.length);
      for (const l of lists) {
        w.list(BondType.STRING, l.length);
        for (const s of l) w.string(s);
      }
      return;
    }
  }
}

function writeExtStruct(w: BondWriter, name: string, spec: ExtSpec, unknown: UnknownField[] | undefined): void {
  const schema = EXTENSIONS[name];
  writeUnknown(w, unknown);
  const entries = Object.entries(spec)
    .map(([k, v]) => {
      const f = schema.fields[k];
      if (!f) throw new Error(`ext.${name} has no field ${k}`);
      return [f[0], f[1], v] as const;
    })
    .sort((a, b) => a[0] - b[0]);
  for (const [id, kind, v] of entries) writeExtField(w, id, kind, v);
  w.stop();
}

function writeByteList(w: BondWriter, bytes: number[]): void {
  w.list(BondType.UINT8, bytes.length).bytes(bytes);
}

export function writeValue(w: BondWriter, v: CsValue): void {
  writeUnknown(w, v.unknown);
  if (v.kind !== undefined && (v.kind !== ValueKind.String || v.writeKind)) w.field(BondType.INT32, 1).zigzag(v.kind);
  if (v.pii !== undefined || v.cc !== undefined) {
    w.field(BondType.LIST, 2).list(BondType.STRUCT, 1);
    if (v.pii !== undefined) {
      w.field(BondType.LIST, 1).list(BondType.STRUCT, 1);
      if (v.pii !== 0) w.field(BondType.INT32, 1).zigzag(v.pii);
      w.stop();
    }
    if (v.cc !== undefined) {
      w.field(BondType.LIST, 2).list(BondType.STRUCT, 1);
      if (v.cc !== 0) w.field(BondType.INT32, 1).zigzag(v.cc);
      w.stop();
    }
    w.stop();
  }
  if (v.str !== undefined) w.field(BondType.STRING, 3).string(v.str);
  if (v.long !== undefined) w.field(BondType.INT64, 4).zigzag(v.long);
  if (v.double !== undefined) w.field(BondType.DOUBLE, 5).double(v.double);
  if (v.guidBytes !== undefined || v.guid !== undefined) {
    w.field(BondType.LIST, 6).list(BondType.LIST, 1);
    writeByteList(w, v.guidBytes ?? guidToWindowsBytes(v.guid as string));
  }
  if (v.strings !== undefined) {
    w.field(BondType.LIST, 10).list(BondType.LIST, 1).list(BondType.STRING, v.strings.length);
    for (const s of v.strings) w.string(s);
  }
  if (v.longs !== undefined) {
    w.field(BondType.LIST, 11).list(BondType.LIST, 1).list(BondType.INT64, v.longs.length);
    for (const n of v.longs) w.zigzag(n);
  }
  if (v.doubles !== undefined) {
    w.field(BondType.LIST, 12).list(BondType.LIST, 1).list(BondType.DOUBLE, v.doubles.length);
    for (const x of v.doubles) w.double(x);
  }
  if (v.guids !== undefined) {
    w.field(BondType.LIST, 13).list(BondType.LIST, 1).list(BondType.LIST, v.guids.length);
    for (const g of v.guids) writeByteList(w, guidToWindowsBytes(g));
  }
  w.stop();
}

/** `vector<Data>` with one element: `0A 01`, Data{1: map<string,Value>}, `00`. */
function writeDataList(w: BondWriter, id: number, props: Record<string, CsValue>, unknown?: UnknownField[]): void {
  w.field(BondType.LIST, id).list(BondType.STRUCT, 1);
  writeUnknown(w, unknown);
  const keys = Object.keys(props);
  if (keys.length) {
    w.field(BondType.MAP, 1).map(BondType.STRING, BondType.STRUCT, keys.length);
    for (const k of keys) {
      w.string(k);
      writeValue(w, props[k]);
    }
  }
  w.stop();
}

/** Appends one CS Record struct to `w`. */
export function writeCsRecord(w: BondWriter, r: CsRecordSpec): void {
  if (r.ver !== undefined) w.field(BondType.STRING, 1).string(r.ver);
  if (r.name !== undefined) w.field(BondType.STRING, 2).string(r.name);
  writeUnknown(w, r.unknown);
  if (r.time !== undefined) w.field(BondType.INT64, 3).zigzag(toTicks(r.time));
  if (r.popSample !== undefined) w.field(BondType.DOUBLE, 4).double(r.popSample);
  if (r.iKey !== undefined) w.field(BondType.STRING, 5).string(r.iKey);
  if (r.flags !== undefined) w.field(BondType.INT64, 6).zigzag(r.flags);
  if (r.cV !== undefined) w.field(BondType.STRING, 7).string(r.cV);
  const exts = Object.keys(r.ext ?? {}).sort((a, b) => EXTENSIONS[a].ordinal - EXTENSIONS[b].ordinal);
  let extDataWritten = false;
  const writeExtData = () => {
    if (r.extData && !extDataWritten) writeDataList(w, 41, r.extData);
    extDataWritten = true;
  };
  for (const name of exts) {
    const schema = EXTENSIONS[name];
    if (!schema) throw new Error(`unknown extension ${name}`);
    if (schema.ordinal > 41) writeExtData();
    const copies = r.extCopies?.[name] ?? 1;
    w.field(BondType.LIST, schema.ordinal).list(BondType.STRUCT, copies);
    for (let i = 0; i < copies; i++) writeExtStruct(w, name, r.ext![name], r.extUnknown?.[name]);
  }
  writeExtData();
  if (r.tags) {
    const keys = Object.keys(r.tags);
    w.field(BondType.MAP, 51).map(BondType.STRING, BondType.STRING, keys.length);
    for (const k of keys) w.string(k).string(r.tags[k]);
  }
  if (r.baseType !== undefined) w.field(BondType.STRING, 60).string(r.baseType);
  if (r.baseData) writeDataList(w, 61, r.baseData);
  if (r.data || r.dataUnknown) writeDataList(w, 70, r.data ?? {}, r.dataUnknown);
  w.stop();
}

/** Records concatenated back to back (§3.4). */
export function encodeCsRecords(records: CsRecordSpec[]): Uint8Array {
  const w = new BondWriter();
  for (const r of records) writeCsRecord(w, r);
  return w.finish();
}

export function encodeCsRecord(record: CsRecordSpec): Uint8Array {
  return encodeCsRecords([record]);
}

// ---- Aria ClientToCollectorRequest ----------------------------------------------------------------

export interface AriaRecordSpec {
  id?: string;
  /** Unix ms. */
  timestamp?: number;
  type?: string;
  eventType?: string;
  recordType?: number;
  context?: string[];
  configurationIds?: Record<string, string>;
  resultCode?: number;
  targetUsers?: string[];
  /** 13 Extension map<string,string>. */
  extension?: Record<string, string>;
  /** 25 (2017 server schema) map<string,int64>. */
  extensionInt64?: Record<string, number | bigint>;
  /** 26 (2017 server schema) map<string,double>. */
  extensionDouble?: Record<string, number>;
  /** 33 TypedExtensionInt64. */
  typedInt64?: Record<string, number | bigint>;
  /** 34 TypedExtensionDouble. */
  typedDouble?: Record<string, number>;
  /** 31 TypedExtensionBoolean. */
  bools?: Record<string, boolean>;
  /** 32 TypedExtensionDateTime: bigint = .NET ticks, number = Unix ms, Date. */
  dates?: Record<string, bigint | number | Date>;
  /** 35 TypedExtensionGuid (16 bytes, Windows order). */
  guids?: Record<string, string>;
  /** 30 PIIExtensions. */
  pii?: Record<string, { kind: number; scrubType?: number; raw: string }>;
  /** 36 CustomerContentExtensions. */
  customerContent?: Record<string, { kind?: number; raw: string }>;
  unknown?: UnknownField[];
}

export interface AriaPackageSpec {
  type?: string;
  source?: string;
  version?: string;
  ids?: Record<string, string>;
  dataPackageId?: string;
  /** Unix ms. */
  timestamp?: number;
  schemaVersion?: number;
  records?: AriaRecordSpec[];
  receipts?: AriaRecordSpec[];
  tenantIdentifier?: string;
  unknown?: UnknownField[];
  /** Bytes used for the Records count varint (over-long when > minimal). */
  recordCountBytes?: number;
  /**
   * Simulates AWT JS `_addNewDataPackageSize`: the count is written as if it had been `staleFrom`
   * and then overwritten in place by the real (shorter) count, leaving the old varint's tail.
   */
  staleFrom?: number;
}

export interface AriaTenantSpec extends AriaPackageSpec {
  token: string;
  /** Several DataPackages for this token; otherwise the tenant spec itself is the one package. */
  packages?: AriaPackageSpec[];
}

export interface AriaRequestOptions {
  /** ClientToCollectorRequest field 1. */
  dataPackages?: AriaPackageSpec[];
  retryCount?: number;
  unknown?: UnknownField[];
}

function writeStringMap(w: BondWriter, id: number, m: Record<string, string>): void {
  const keys = Object.keys(m);
  w.field(BondType.MAP, id).map(BondType.STRING, BondType.STRING, keys.length);
  for (const k of keys) w.string(k).string(m[k]);
}

function writeAriaRecord(w: BondWriter, r: AriaRecordSpec): void {
  writeUnknown(w, r.unknown);
  if (r.id !== undefined) w.field(BondType.STRING, 1).string(r.id);
  if (r.context) {
    w.field(BondType.LIST, 2).list(BondType.STRING, r.context.length);
    for (const s of r.context) w.string(s);
  }
  if (r.timestamp !== undefined) w.field(BondType.INT64, 3).zigzag(r.timestamp);
  if (r.configurationIds) writeStringMap(w, 4, r.configurationIds);
  if (r.type !== undefined) w.field(BondType.STRING, 5).string(r.type);
  if (r.eventType !== undefined) w.field(BondType.STRING, 6).string(r.eventType);
  if (r.resultCode !== undefined) w.field(BondType.INT32, 7).zigzag(r.resultCode);
  if (r.targetUsers) {
    w.field(BondType.LIST, 12).list(BondType.STRING, r.targetUsers.length);
    for (const s of r.targetUsers) w.string(s);
  }
  if (r.extension) writeStringMap(w, 13, r.extension);
  if (r.recordType !== undefined) w.field(BondType.INT32, 24).zigzag(r.recordType);
  const int64Map = (id: number, m: Record<string, number | bigint>) => {
    const keys = Object.keys(m);
    w.field(BondType.MAP, id).map(BondType.STRING, BondType.INT64, keys.length);
    for (const k of keys) w.string(k).zigzag(m[k]);
  };
  const doubleMap = (id: number, m: Record<string, number>) => {
    const keys = Object.keys(m);
    w.field(BondType.MAP, id).map(BondType.STRING, BondType.DOUBLE, keys.length);
    for (const k of keys) w.string(k).double(m[k]);
  };
  if (r.extensionInt64) int64Map(25, r.extensionInt64);
  if (r.extensionDouble) doubleMap(26, r.extensionDouble);
  if (r.pii) {
    const keys = Object.keys(r.pii);
    w.field(BondType.MAP, 30).map(BondType.STRING, BondType.STRUCT, keys.length);
    for (const k of keys) {
      const p = r.pii[k];
      w.string(k);
      w.field(BondType.INT32, 1).zigzag(p.scrubType ?? 1);
      w.field(BondType.INT32, 2).zigzag(p.kind);
      w.field(BondType.STRING, 3).string(p.raw);
      w.stop();
    }
  }
  if (r.bools) {
    const keys = Object.keys(r.bools);
    w.field(BondType.MAP, 31).map(BondType.STRING, BondType.BOOL, keys.length);
    for (const k of keys) w.string(k).u8(r.bools[k] ? 1 : 0);
  }
  if (r.dates) {
    const keys = Object.keys(r.dates);
    w.field(BondType.MAP, 32).map(BondType.STRING, BondType.INT64, keys.length);
    for (const k of keys) w.string(k).zigzag(toTicks(r.dates[k]));
  }
  if (r.typedInt64) int64Map(33, r.typedInt64);
  if (r.typedDouble) doubleMap(34, r.typedDouble);
  if (r.guids) {
    const keys = Object.keys(r.guids);
    w.field(BondType.MAP, 35).map(BondType.STRING, BondType.LIST, keys.length);
    for (const k of keys) {
      w.string(k);
      writeByteList(w, guidToWindowsBytes(r.guids[k]));
    }
  }
  if (r.customerContent) {
    const keys = Object.keys(r.customerContent);
    w.field(BondType.MAP, 36).map(BondType.STRING, BondType.STRUCT, keys.length);
    for (const k of keys) {
      const c = r.customerContent[k];
      w.string(k);
      w.field(BondType.INT32, 1).zigzag(c.kind ?? 1);
      w.field(BondType.STRING, 2).string(c.raw);
      w.stop();
    }
  }
  w.stop();
}

function writeRecordList(w: BondWriter, id: number, records: AriaRecordSpec[], p: AriaPackageSpec): void {
  w.field(BondType.LIST, id);
  if (id === 8 && p.staleFrom !== undefined) {
    // Old count written first, then the new count copied over its first bytes (AWT JS).
    const old = new BondWriter().varint(p.staleFrom).finish();
    const now = new BondWriter().varint(records.length).finish();
    if (now.length > old.length) throw new Error("staleFrom must need a longer varint than the real count");
    const patched = Uint8Array.from(old);
    patched.set(now, 0);
    w.u8(BondType.STRUCT).bytes(patched);
  } else {
    w.list(BondType.STRUCT, records.length, id === 8 ? (p.recordCountBytes ?? 1) : 1);
  }
  for (const r of records) writeAriaRecord(w, r);
}

function writeAriaPackage(w: BondWriter, p: AriaPackageSpec): void {
  writeUnknown(w, p.unknown);
  if (p.type !== undefined) w.field(BondType.STRING, 1).string(p.type);
  if (p.source !== undefined) w.field(BondType.STRING, 2).string(p.source);
  if (p.version !== undefined) w.field(BondType.STRING, 3).string(p.version);
  if (p.ids) writeStringMap(w, 4, p.ids);
  if (p.dataPackageId !== undefined) w.field(BondType.STRING, 5).string(p.dataPackageId);
  if (p.timestamp !== undefined) w.field(BondType.INT64, 6).zigzag(p.timestamp);
  if (p.schemaVersion !== undefined) w.field(BondType.INT32, 7).zigzag(p.schemaVersion);
  if (p.records) writeRecordList(w, 8, p.records, p);
  if (p.receipts) writeRecordList(w, 9, p.receipts, p);
  if (p.tenantIdentifier !== undefined) w.field(BondType.STRING, 11).string(p.tenantIdentifier);
  w.stop();
}

/**
 * One ClientToCollectorRequest: field 1 (if `opts.dataPackages`), 2 (retry count), then field 3
 * `6D 09 0B <#tenants>`, each `<token> 0A <#packages> <DataPackage…>`, and the closing `00`.
 */
export function encodeAriaRequest(tenants: AriaTenantSpec[], opts: AriaRequestOptions = {}): Uint8Array {
  const w = new BondWriter();
  writeUnknown(w, opts.unknown);
  if (opts.dataPackages) {
    w.field(BondType.LIST, 1).list(BondType.STRUCT, opts.dataPackages.length);
    for (const p of opts.dataPackages) writeAriaPackage(w, p);
  }
  if (opts.retryCount !== undefined) w.field(BondType.INT32, 2).zigzag(opts.retryCount);
  if (tenants.length) {
    w.field(BondType.MAP, 3).map(BondType.STRING, BondType.LIST, tenants.length);
    for (const t of tenants) {
      w.string(t.token);
      const packages = t.packages ?? [t];
      w.list(BondType.STRUCT, packages.length);
      for (const p of packages) writeAriaPackage(w, p);
    }
  }
  w.stop();
  return w.finish();
}

// ---- realistic batches (tests, benchmark) -------------------------------------------------------

const EVENT_NAMES = [
  "Office.Word.FileOpen.UserInitiatedOpen",
  "Office.Performance.Boot",
  "Office.Excel.PerfData.ApplicationBoot",
  "Office.Experimentation.EcsFetch",
  "Office.Identity.SilentWamTokenRequestMsa",
  "Office.Graphics.CreateDeviceD3D11",
  "Office.Outlook.Desktop.AddIns.AddInLoaded",
  "Office.System.SystemHealthErrorsWithTag",
  "Office.Docs.OutSpace.ShowBackstage",
  "Office.ClickToRun.UpdateStatus",
];

type PropMaker = (e: number, i: number) => CsValue;

/** Office data-contract-like properties (required-diagnostic-data.md names, §7.2), mixed kinds. */
const PROPS: Array<[string, PropMaker]> = [
  ["Event.Name", (e) => V.str(EVENT_NAMES[e % EVENT_NAMES.length])],
  ["Event.Source", () => V.str("Win32")],
  ["Event.Sequence", (e) => V.i64(e + 1)],
  ["Event.Contract", () => V.str("Office.System.Activity")],
  ["Event.Id", (e) => V.str(`5d1f9c3a-4b2e-4f0a-9c8d-${(0x100000000000 + e).toString(16).slice(1)}.${e}`)],
  ["Event.Time", (e) => V.dt(1_683_295_390_501 + e * 37)],
  ["Session.Id", (e) => V.guid(`1b4e28ba-2fa1-11d2-883f-${(0xb0000000000 + e).toString(16).padStart(12, "0")}`)],
  ["Session.ImpressionId", () => V.str("B1C7C4A3-2E31-4C1F-9A7E-5D1F2A3B4C5D")],
  ["Session.SamplingClientIdValue", (e) => V.dbl(0.123456 + e / 1e6)],
  ["App.Name", () => V.str("Word")],
  ["App.Platform", () => V.str("Win32")],
  ["App.Version", () => V.str("16.0.17029.20108")],
  ["App.Branch", () => V.str("Current")],
  ["App.InstallType", () => V.str("ClickToRun")],
  ["Client.Id", () => V.str("{C5E7D8A1-0B2C-4D3E-8F9A-1B2C3D4E5F60}")],
  ["Activity.Success", (e) => V.bool(e % 7 !== 0)],
  ["Activity.Duration", (e) => V.i64(1000 + ((e * 7919) % 50_000))],
  ["Activity.Count", () => V.i64(1)],
  ["Activity.AggMode", () => V.i64(0)],
  ["Activity.CV", (e) => V.str(`Qm9ndXNDVmV4YW1wbGU.${e}.1`)],
  ["Activity.Result.Code", (e) => V.i32(e % 5 === 0 ? -2147024894 : 0)],
  ["Activity.Result.Type", () => V.str("HRESULT")],
  ["Data.Doc.Ext", () => V.str("docx")],
  ["Data.Doc.AccessMode", () => V.i64(2)],
  ["Data.Doc.FileFormat", () => V.str("Ooxml")],
  ["Data.Doc.Location", () => V.str("OneDrive")],
  ["Data.Doc.SizeInBytes", (e) => V.i64(24_576 + e * 1024)],
  ["Data.Doc.NumberCoAuthors", () => V.i64(0)],
  ["Data.Doc.IsIncrementalOpen", () => V.bool(false)],
  ["Data.Doc.FqdnHash", () => V.str("c9f0f895fb98ab9159f51fd0297e236d")],
  ["Device.OsBuild", () => V.str("22631.3447")],
  ["Device.OsVersion", () => V.str("10.0")],
  ["Device.NumProcPhysCores", () => V.i64(8)],
  ["Device.RamMB", () => V.i64(16_384)],
  ["Device.Manufacturer", () => V.str("Contoso Ltd.")],
  ["Device.Model", () => V.str("Surface Laptop 5")],
  ["Release.Audience", () => V.str("Production")],
  ["Release.Channel", () => V.str("CC")],
  ["User.PrimaryIdentitySpace", () => V.str("ADAL")],
  ["User.TenantId", (e) => V.pii(`8b1e${(e % 100).toString().padStart(4, "0")}-2a4d-4f6a-9b3c-0d1e2f3a4b5c`, 10)],
  ["Data.BootToStart", (e) => V.i64(812 + e)],
  ["Data.FreeMemoryPercentage", (e) => V.dbl(41.5 + (e % 10))],
];

function prop(i: number): [string, PropMaker] {
  const [name, make] = PROPS[i % PROPS.length];
  return i < PROPS.length ? [name, make] : [`${name}.${Math.floor(i / PROPS.length)}`, make];
}

/** A realistic Office Win32 CS 4.0 record with `nFields` Part C properties. */
export function makeCsRecord(e: number, nFields: number): CsRecordSpec {
  const data: Record<string, CsValue> = {};
  for (let i = 0; i < nFields; i++) {
    const [name, make] = prop(i);
    data[name] = make(e, i);
  }
  return {
    ver: "4.0",
    name: EVENT_NAMES[e % EVENT_NAMES.length],
    time: ticksFromMs(1_683_295_390_501 + e * 37) + 7229n,
    iKey: "o:0123456789abcdef0123456789abcdef",
    flags: 0x80101,
    ext: {
      protocol: { devMake: "Contoso Ltd.", devModel: "Surface Laptop 5" },
      user: { localId: "w:AAAAAAAA-BBBB-4CCC-8DDD-EEEEEEEEEEEE" },
      device: { localId: "s:11111111-2222-4333-8444-555555555555", deviceClass: "Windows.Desktop" },
      os: { name: "Windows Desktop", ver: "10.0.22631.3447.amd64fre.ni_release.220506-1250" },
      app: {
        id: "W:0000f519feec486de87ed73cb92d3cac80240000000!0000da39a3ee5e6b4b0d3255bfef95601890afd80709!WINWORD.EXE",
        ver: "16.0.17029.20108",
        name: "Word",
      },
      net: { cost: "Unmetered", type: "Ethernet" },
      sdk: {
        ver: "EVT-Windows-C++-No-3.5.131.1",
        epoch: "7a8f6c1e-3b2d-4e5f-9a0b-1c2d3e4f5a6b",
        seq: e + 1,
        installId: "9f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a",
      },
      loc: { tz: "-07:00" },
    },
    baseType: "custom.office_system_activity",
    data,
  };
}

/** `nEvents` realistic records × `nFields` Part C properties, concatenated (§3.4). */
export function makeCsBatch(nEvents: number, nFields: number): Uint8Array {
  const w = new BondWriter();
  for (let e = 0; e < nEvents; e++) writeCsRecord(w, makeCsRecord(e, nFields));
  return w.finish();
}

/** An Aria request with `nEvents` records × `nFields` extension properties (mixed maps) for one tenant. */
export function makeAriaBatch(
  nEvents: number,
  nFields: number,
  token = "0123456789abcdef0123456789abcdef-01234567-89ab-cdef-0123-456789abcdef-0123",
): Uint8Array {
  const records: AriaRecordSpec[] = [];
  for (let e = 0; e < nEvents; e++) {
    const rec: AriaRecordSpec = {
      id: `5d1f9c3a-4b2e-4f0a-9c8d-${(0x100000000000 + e).toString(16).slice(1)}`,
      timestamp: 1_683_295_390_501 + e * 37,
      type: "custom",
      eventType: EVENT_NAMES[e % EVENT_NAMES.length],
      extension: {},
      typedInt64: {},
      typedDouble: {},
      bools: {},
    };
    for (let i = 0; i < nFields; i++) {
      const [name, make] = prop(i);
      const v = make(e, i);
      if (v.kind === ValueKind.Int64 || v.kind === ValueKind.Int32) rec.typedInt64![name] = v.long ?? 0;
      else if (v.kind === ValueKind.Double) rec.typedDouble![name] = v.double ?? 0;
      else if (v.kind === ValueKind.Bool) rec.bools![name] = v.long !== undefined;
      else rec.extension![name] = v.str ?? v.guid ?? String(v.long ?? "");
    }
    records.push(rec);
  }
  return encodeAriaRequest([
    { token, source: "act_default_source", dataPackageId: "3f2504e0-4f89-41d3-9a0c-0305e82c3301", timestamp: 1_683_295_391_000, records },
  ]);
}

// ---- mutations for robustness tests and the benchmark ---------------------------------------------

export type Mutation =
  | { kind: "flip"; at: number; bit: number }
  | { kind: "set"; at: number; byte: number }
  | { kind: "insert"; at: number; bytes: Uint8Array }
  | { kind: "delete"; at: number; len: number }
  | { kind: "truncate"; at: number }
  /** The whole body replaced by `bytes` (any bytes at all, not a variation of the seed). */
  | { kind: "replace"; bytes: Uint8Array };

/** Applies mutations in order (positions taken modulo the current length); never mutates `base`. */
export function mutate(base: Uint8Array, muts: Mutation[]): Uint8Array {
  let b = base;
  for (const m of muts) {
    if (m.kind === "replace") {
      b = m.bytes;
      continue;
    }
    const at = b.length ? m.at % (b.length + (m.kind === "insert" ? 1 : 0)) : 0;
    switch (m.kind) {
      case "flip":
        if (!b.length) break;
        b = Uint8Array.from(b);
        b[at] ^= 1 << m.bit;
        break;
      case "set":
        if (!b.length) break;
        b = Uint8Array.from(b);
        b[at] = m.byte;
        break;
      case "insert":
        b = concat(b.subarray(0, at), m.bytes, b.subarray(at));
        break;
      case "delete":
        b = concat(b.subarray(0, at), b.subarray(at + m.len));
        break;
      case "truncate":
        b = b.subarray(0, at);
        break;
    }
  }
  return b;
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
