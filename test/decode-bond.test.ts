import { describe, expect, it } from "vitest";
import { oneCollectorBondDecoder } from "../src/decode/bond/onecollector.js";
import { BT, BondReader, ticksToIso } from "../src/decode/bond/reader.js";
import type { DecodeLimits, DecodeResult } from "../src/decode/types.js";
import {
  BondType,
  BondWriter,
  EXTENSION_NAMES,
  UNKNOWN_PAYLOADS,
  V,
  ValueKind,
  encodeCsRecord,
  encodeCsRecords,
  extensionFields,
  makeCsBatch,
  ticksFromIso,
  unknownFieldsOfEveryType,
  type CsRecordSpec,
  type ExtSpec,
} from "./helpers/bond-writer.js";
import { decodeError, field, fromHex, postContext, toHex } from "./helpers/decode.js";
import { FUZZ_RUNS, FUZZ_TIMEOUT_MS, fuzzDecoder, fuzzSniff } from "./helpers/fuzz.js";

const ctx = (limits?: Partial<DecodeLimits>) => postContext("/OneCollector/1.0/", "application/bond-compact-binary", limits);

const decode = (body: Uint8Array, limits?: Partial<DecodeLimits>): DecodeResult => oneCollectorBondDecoder.decode(body, ctx(limits));

// wire-formats.md §3.6, typed out from the document (strings as their UTF-8 hex).
const WORKED_EXAMPLE_HEX = [
  "29 03 342e30", // f1 ver "4.0"
  "49 14 4f66666963652e576f72642e46696c654f70656e", // f2 name "Office.Word.FileOpen" (len 0x14)
  "71 9a c6 e7 db ae dc a6 db 11", // f3 time, int64 zigzag varint of 638188921905017229 ticks
  "a9 22 6f3a3031323334353637383961626364656630313233343536373839616263646566", // f5 iKey (len 34)
  "cb 19 0a 01", // f25 extApp: list, elem BT_STRUCT, count 1
  "c9 06 10 31362e302e31373032392e3230313038", //   App.ver (id 6, 2-byte header) "16.0.17029.20108"
  "c9 08 04 576f7264", //   App.name "Word"
  "00", //   end App
  "cb 46 0a 01", // f70 data: list<struct>, count 1
  "2d 09 0a 02", //   Data.f1 map<string,struct>, 2 pairs
  "10 41637469766974792e53756363657373", //     key "Activity.Success"
  "30 0c", //       Value.type int32 zigzag(6) = ValueBool
  "91 02", //       Value.longValue int64 zigzag(1)
  "00", //       end Value
  "0c 446174612e446f632e457874", //     key "Data.Doc.Ext"
  "69 04 646f6378", //       Value.stringValue "docx" (type omitted = string)
  "00", //       end Value
  "00", //   end Data
  "00", // end Record
].join(" ");

const WORKED_EXAMPLE: CsRecordSpec = {
  ver: "4.0",
  name: "Office.Word.FileOpen",
  time: 638188921905017229n,
  iKey: "o:0123456789abcdef0123456789abcdef",
  ext: { app: { ver: "16.0.17029.20108", name: "Word" } },
  data: { "Activity.Success": V.bool(true), "Data.Doc.Ext": V.str("docx") },
};

describe("BondReader", () => {
  it("wire type ids are the §3.2 BondDataType numbers", () => {
    // Typed out from the table, one field header `type | 1 << 5` per type: the writer takes its
    // ids from BT too, so only bytes written by hand catch a wrong constant.
    const r = new BondReader(fromHex("20 21 22 23 24 25 26 27 28 29 2a 2b 2c 2d 2e 2f 30 31 32"));
    const types: number[] = [];
    while (!r.atEnd()) types.push(r.readFieldHeader());
    expect(types).toEqual([
      BT.STOP,
      BT.STOP_BASE,
      BT.BOOL,
      BT.UINT8,
      BT.UINT16,
      BT.UINT32,
      BT.UINT64,
      BT.FLOAT,
      BT.DOUBLE,
      BT.STRING,
      BT.STRUCT,
      BT.LIST,
      BT.SET,
      BT.MAP,
      BT.INT8,
      BT.INT16,
      BT.INT32,
      BT.INT64,
      BT.WSTRING,
    ]);
  });

  it("reads the three field header forms", () => {
    const w = new BondWriter()
      .field(BondType.STRING, 5)
      .field(BondType.INT64, 6)
      .field(BondType.LIST, 255)
      .field(BondType.MAP, 256)
      .field(BondType.BOOL, 65535);
    w.field(BondType.STRING, 2, 2).field(BondType.STRING, 3, 3);
    const r = new BondReader(w.finish());
    const got: Array<[number, number]> = [];
    while (!r.atEnd()) {
      const t = r.readFieldHeader();
      got.push([t, r.id]);
    }
    expect(got).toEqual([
      [BondType.STRING, 5],
      [BondType.INT64, 6],
      [BondType.LIST, 255],
      [BondType.MAP, 256],
      [BondType.BOOL, 65535],
      [BondType.STRING, 2],
      [BondType.STRING, 3],
    ]);
    expect(toHex(new BondWriter().field(BondType.STRING, 999).finish())).toBe("e9e703"); // §3.5 Javascript.dnt
    expect(toHex(new BondWriter().field(BondType.INT64, 140).finish())).toBe("d18c"); // §3.5 Xbl.eid
  });

  it("decodes varints, zigzag and 64-bit values exactly", () => {
    const values = [
      0n,
      1n,
      -1n,
      63n,
      -64n,
      2n ** 31n - 1n,
      -(2n ** 31n),
      2n ** 53n - 1n,
      2n ** 53n + 1n,
      -(2n ** 53n) - 3n,
      2n ** 63n - 1n,
      -(2n ** 63n),
    ];
    const w = new BondWriter();
    for (const v of values) w.zigzag(v);
    w.varint(2n ** 64n - 1n).varint(300, 5);
    const r = new BondReader(w.finish());
    for (const v of values) {
      const got = r.readZigZag64();
      expect(BigInt(got)).toBe(v);
      expect(typeof got).toBe(v >= -(2n ** 53n) + 1n && v <= 2n ** 53n - 1n ? "number" : "bigint");
    }
    expect(r.readVarUint64()).toBe(2n ** 64n - 1n);
    expect(r.readVarUint32()).toBe(300); // over-long (5 bytes) decodes normally
    expect(r.atEnd()).toBe(true);

    const z = new BondReader(new BondWriter().zigzag(-2147483648).zigzag(2147483647).zigzag(-32768).finish());
    expect(z.readZigZag32()).toBe(-2147483648);
    expect(z.readZigZag32()).toBe(2147483647);
    expect(z.readZigZag16()).toBe(-32768);
  });

  it("rejects an 11-byte varint and reports truncation with the offset", () => {
    const tooLong = new Uint8Array([0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01]);
    const e = decodeError(() => new BondReader(tooLong).readVarint64Raw());
    expect(e.code).toBe("bond.bad-varint");
    const t = decodeError(() => new BondReader(new Uint8Array([0x05, 0x61])).skipValue(BondType.STRING, 1));
    expect(t).toMatchObject({ code: "bond.truncated", offset: 1 });
  });

  it("reads floats, doubles, strings and wstrings", () => {
    const w = new BondWriter().float(1.5).double(-2.25).string("héllo ✓").wstring("wide é").string("");
    const r = new BondReader(w.finish());
    expect(r.readFloat()).toBe(1.5);
    expect(r.readDouble()).toBe(-2.25);
    expect(r.readString()).toBe("héllo ✓");
    expect(r.readWString()).toBe("wide é");
    expect(r.readString()).toBe("");
    expect(r.atEnd()).toBe(true);
    // malformed UTF-8 does not throw
    expect(new BondReader(new Uint8Array([2, 0xc3, 0x28])).readString()).toBe("\ufffd(");
  });

  it("validates list and map headers", () => {
    const v2 = decodeError(() => new BondReader(new Uint8Array([0x49, 0x61])).readListHeader()); // v2 packed count
    expect(v2.code).toBe("bond.bad-list-header");
    expect(v2.offset).toBe(0);
    expect(decodeError(() => new BondReader(new Uint8Array([0x13, 0x00])).readListHeader()).code).toBe("bond.bad-type");
    const count = decodeError(() => new BondReader(new Uint8Array([0x09, 0x05, 0x00, 0x00])).readListHeader());
    expect(count.code).toBe("bond.count");
    expect(count.offset).toBe(1);
    expect(decodeError(() => new BondReader(new Uint8Array([0x09, 0x09, 0x03, 0, 0, 0, 0])).readMapHeader()).code).toBe("bond.count");
    expect(decodeError(() => new BondReader(new Uint8Array([0x00, 0x09, 0x00])).readMapHeader()).code).toBe("bond.bad-type");
  });

  it("skips every wire type and honours the depth cap", () => {
    const w = new BondWriter();
    for (const p of UNKNOWN_PAYLOADS) w.bytes(p.payload);
    const body = w.finish();
    const r = new BondReader(body);
    for (const p of UNKNOWN_PAYLOADS) {
      const before = r.pos;
      r.skipValue(p.type, 1);
      expect(r.pos - before).toBe(p.payload.length);
    }
    expect(r.atEnd()).toBe(true);
    // list<list<list<…>>> nested 10 deep against a cap of 5
    const deep = new BondWriter();
    for (let i = 0; i < 10; i++) deep.list(BondType.LIST, 1);
    deep.list(BondType.UINT8, 0);
    const e = decodeError(() => new BondReader(deep.finish(), 5).skipValue(BondType.LIST, 1));
    expect(e.code).toBe("bond.depth");
  });

  it("converts .NET ticks to ISO 8601 with 7 fractional digits", () => {
    const iso = (t: bigint) => {
      const u = BigInt.asUintN(64, t);
      return ticksToIso(Number(BigInt.asIntN(32, u >> 32n)), Number(u & 0xffffffffn));
    };
    expect(iso(638188921905017229n)).toBe("2023-05-05T14:03:10.5017229Z");
    expect(iso(621355968000000000n)).toBe("1970-01-01T00:00:00.0000000Z");
    expect(iso(621355967999999999n)).toBe("1969-12-31T23:59:59.9999999Z");
    expect(iso(0n)).toBe("0001-01-01T00:00:00.0000000Z");
    expect(iso(3155378975999999999n)).toBe("9999-12-31T23:59:59.9999999Z");
    expect(iso(ticksFromIso("2024-02-29T12:34:56.0000001Z"))).toBe("2024-02-29T12:34:56.0000001Z");
  });
});

describe("onecollector-bond: §3.6 worked example", () => {
  const bytes = fromHex(WORKED_EXAMPLE_HEX);

  it("the writer produces exactly the documented bytes", () => {
    expect(toHex(encodeCsRecord(WORKED_EXAMPLE))).toBe(toHex(bytes));
  });

  it("decodes to exactly the expected event", () => {
    const r = decode(bytes);
    expect(r).toEqual({
      events: [
        {
          index: 0,
          name: "Office.Word.FileOpen",
          time: "2023-05-05T14:03:10.5017229Z",
          iKey: "o:0123456789abcdef0123456789abcdef",
          byteRange: [0, bytes.length],
          fields: [
            { path: "ver", part: "envelope", value: "4.0", type: "string" },
            { path: "name", part: "envelope", value: "Office.Word.FileOpen", type: "string" },
            { path: "time", part: "envelope", value: "2023-05-05T14:03:10.5017229Z", type: "datetime" },
            { path: "iKey", part: "envelope", value: "o:0123456789abcdef0123456789abcdef", type: "string" },
            { path: "ext.app.ver", part: "A", value: "16.0.17029.20108", type: "string" },
            { path: "ext.app.name", part: "A", value: "Word", type: "string" },
            { path: "Activity.Success", part: "C", value: true, type: "bool", annotations: { wireType: ValueKind.Bool } },
            { path: "Data.Doc.Ext", part: "C", value: "docx", type: "string", annotations: { wireType: ValueKind.String } },
          ],
        },
      ],
      findings: [],
    });
  });

  it("decodes two records back to back with their byte ranges", () => {
    const two = new Uint8Array([...bytes, ...bytes]);
    const r = decode(two);
    expect(r.events.map((e) => [e.index, e.byteRange])).toEqual([
      [0, [0, bytes.length]],
      [1, [bytes.length, 2 * bytes.length]],
    ]);
    expect(r.events[1].fields).toEqual(r.events[0].fields);
  });

  it("sniffs CS records and nothing else", () => {
    expect(oneCollectorBondDecoder.sniff!(bytes)).toBeGreaterThan(0.9);
    expect(oneCollectorBondDecoder.sniff!(new Uint8Array([0x6d, 0x09, 0x0b]))).toBe(0);
    expect(oneCollectorBondDecoder.sniff!(new TextEncoder().encode('{"name":"x"}'))).toBe(0);
    expect(oneCollectorBondDecoder.sniff!(new Uint8Array())).toBe(0);
    // other plausible first fields: low but non-zero, so a path match still picks this decoder
    expect(oneCollectorBondDecoder.sniff!(encodeCsRecord({ name: "N", time: 1 }))).toBe(0.3);
    expect(oneCollectorBondDecoder.sniff!(encodeCsRecord({ ext: { app: { name: "W" } } }))).toBe(0.3);
  });
});

// Values for every field of every extension, by the writer's kind.
function sampleExtValue(ext: string, name: string, kind: string, i: number): ExtSpec[string] {
  switch (kind) {
    case "s":
      return `${ext}.${name}:${i}✓`;
    case "i32":
      return -1000 - i;
    case "i64":
      return -(2n ** 40n) - BigInt(i);
    case "u32":
      return 4_000_000_000 + i;
    case "u64":
      return 2n ** 63n + BigInt(i);
    case "d":
      return 12.5 + i;
    case "b":
      return true;
    case "smap":
      return { "k.one": `v${i}`, k2: "" };
    case "slist2":
      return [["tk1", "tk2"], ["tk3"]];
    default:
      throw new Error(kind);
  }
}

function expectedExtValue(kind: string, v: ExtSpec[string]): { value: unknown; type: string } {
  switch (kind) {
    case "s":
      return { value: v, type: "string" };
    case "i32":
      return { value: v, type: "int32" };
    case "u32":
      return { value: v, type: "uint32" };
    case "i64":
      return { value: Number(v), type: "int64" };
    case "u64":
      return { value: (v as bigint).toString(), type: "uint64" };
    case "d":
      return { value: v, type: "double" };
    case "b":
      return { value: true, type: "bool" };
    case "slist2":
      return { value: (v as string[][]).flat(), type: "array" };
    default:
      throw new Error(kind);
  }
}

describe("onecollector-bond: schema coverage", () => {
  it("decodes every field of every Part A extension under its §2.3 JSON name", () => {
    const ext: Record<string, ExtSpec> = {};
    for (const name of EXTENSION_NAMES) {
      ext[name] = {};
      Object.entries(extensionFields(name)).forEach(([f, [, kind]], i) => (ext[name][f] = sampleExtValue(name, f, kind, i)));
    }
    const r = decode(encodeCsRecord({ ver: "4.0", name: "All.Extensions", time: 638188921905017229n, ext }));
    expect(r.findings).toEqual([]);
    const fields = r.events[0].fields;
    let checked = 0;
    for (const name of EXTENSION_NAMES) {
      for (const [f, [, kind]] of Object.entries(extensionFields(name))) {
        const v = ext[name][f];
        if (kind === "smap") {
          const m = v as Record<string, string>;
          for (const k of Object.keys(m)) {
            expect(field(fields, `ext.${name}.${f}.${k}`)).toEqual({
              path: `ext.${name}.${f}.${k}`,
              part: "A",
              value: m[k],
              type: "string",
            });
            checked++;
          }
          continue;
        }
        const exp = expectedExtValue(kind, v);
        expect(field(fields, `ext.${name}.${f}`)).toEqual({ path: `ext.${name}.${f}`, part: "A", ...exp });
        checked++;
      }
    }
    expect(checked).toBe(fields.length - 3); // ver, name, time
    // Names that differ between Bond and JSON, spelled out independently of the writer's table.
    const paths = new Set(fields.map((f) => f.path));
    for (const p of [
      "ext.device.localId",
      "ext.loc.tz",
      "ext.sdk.ver",
      "ext.sdk.libVer",
      "ext.javascript.dnt",
      "ext.javascript.userConsent",
      "ext.m365a.enrolledTenantId",
      "ext.m365a.msp",
      "ext.intweb.mscom.k.one",
      "ext.intservice.deploymentUnit",
      "ext.mscv.cV",
      "ext.protocol.ticketKeys",
      "ext.xbl.claims.k2",
      "ext.xbl.eid",
      "ext.web.isManual",
      "ext.utc.wPId",
      "ext.ingest.clientIp",
      "ext.receipts.originalName",
      "ext.cloud.roleInstance",
      "ext.service.roleVersion",
      "ext.cs.sig",
      "ext.net.provider",
      "ext.os.bootId",
      "ext.user.locale",
      "ext.app.sesId",
    ]) {
      expect(paths.has(p), p).toBe(true);
    }
  });

  it("decodes the envelope, tags, Part B, Part C and the generic ext data", () => {
    const body = encodeCsRecord({
      ver: "3.0",
      name: "Microsoft.WebBrowser.Personalization.SAN.BeforeNavigateExtended",
      time: ticksFromIso("2023-05-05T14:03:09.2410000Z"),
      popSample: 12.5,
      iKey: "o:fedcba9876543210fedcba9876543210",
      flags: 0x80101,
      cV: "Ab3+xYz0QkOq1LmN.0",
      tags: { "Tag.One": "1", two: "zwei" },
      baseType: "custom",
      baseData: { properties: V.str("version=PostChannel=3.2.6"), "nested.key": V.i64(5) },
      data: { pop_sample: V.dbl(100), utc_flags: V.i64(-7), "AppInfo.ETag": V.str("") },
      extData: { "x.y": V.str("z") },
    });
    const [ev] = decode(body).events;
    expect(ev.name).toBe("Microsoft.WebBrowser.Personalization.SAN.BeforeNavigateExtended");
    expect(ev.time).toBe("2023-05-05T14:03:09.2410000Z");
    expect(ev.iKey).toBe("o:fedcba9876543210fedcba9876543210");
    expect(ev.fields.map((f) => [f.path, f.part, f.value, f.type])).toEqual([
      ["ver", "envelope", "3.0", "string"],
      ["name", "envelope", "Microsoft.WebBrowser.Personalization.SAN.BeforeNavigateExtended", "string"],
      ["time", "envelope", "2023-05-05T14:03:09.2410000Z", "datetime"],
      ["popSample", "envelope", 12.5, "double"],
      ["iKey", "envelope", "o:fedcba9876543210fedcba9876543210", "string"],
      ["flags", "envelope", 0x80101, "int64"],
      ["cV", "envelope", "Ab3+xYz0QkOq1LmN.0", "string"],
      ["ext.data.x.y", "A", "z", "string"],
      ["tags.Tag.One", "envelope", "1", "string"],
      ["tags.two", "envelope", "zwei", "string"],
      ["data.baseType", "envelope", "custom", "string"],
      ["data.baseData.properties", "B", "version=PostChannel=3.2.6", "string"],
      ["data.baseData.nested.key", "B", 5, "int64"],
      ["pop_sample", "C", 100, "double"],
      ["utc_flags", "C", -7, "int64"],
      ["AppInfo.ETag", "C", "", "string"],
    ]);
  });

  it("decodes every ValueKind (0–17) with its type and wireType", () => {
    const t1 = ticksFromIso("2023-05-05T14:03:10.5017229Z");
    const t2 = ticksFromIso("1999-12-31T23:59:59.9999999Z");
    const g1 = "6f9619ff-8b86-d011-b42d-00c04fc964ff";
    const g2 = "00112233-4455-6677-8899-aabbccddeeff";
    const cases: Array<[string, ReturnType<typeof V.str>, unknown, string, number]> = [
      ["k.int64", V.i64(-42), -42, "int64", 0],
      ["k.int64.big", V.i64(2n ** 60n + 1n), (2n ** 60n + 1n).toString(), "int64", 0],
      ["k.int64.min", V.i64(-(2n ** 63n)), (-(2n ** 63n)).toString(), "int64", 0],
      ["k.int64.zero", V.i64(0), 0, "int64", 0],
      ["k.uint64", V.u64(7), 7, "uint64", 1],
      ["k.uint64.max", V.u64(2n ** 64n - 1n), (2n ** 64n - 1n).toString(), "uint64", 1],
      ["k.int32", V.i32(-2147483648), -2147483648, "int32", 2],
      ["k.uint32", V.u32(4294967295), 4294967295, "uint32", 3],
      ["k.double", V.dbl(-0.125), -0.125, "double", 4],
      ["k.string", V.str("héllo ✓"), "héllo ✓", "string", 5],
      ["k.string.explicit", { kind: ValueKind.String, writeKind: true, str: "s" }, "s", "string", 5],
      ["k.bool.true", V.bool(true), true, "bool", 6],
      ["k.bool.false", V.bool(false), false, "bool", 6],
      ["k.datetime", V.dt(t1), "2023-05-05T14:03:10.5017229Z", "datetime", 7],
      ["k.guid", V.guid(g1), g1, "guid", 8],
      ["k.a.int64", V.arr.i64([1, -1, 2n ** 62n]), [1, -1, (2n ** 62n).toString()], "array", 9],
      ["k.a.uint64", V.arr.u64([0, 2n ** 64n - 1n]), [0, (2n ** 64n - 1n).toString()], "array", 10],
      ["k.a.int32", V.arr.i32([-5, 5]), [-5, 5], "array", 11],
      ["k.a.uint32", V.arr.u32([4294967295, 1]), [4294967295, 1], "array", 12],
      ["k.a.double", V.arr.dbl([0.5, -1e300]), [0.5, -1e300], "array", 13],
      ["k.a.string", V.arr.str(["a", "b.c", ""]), ["a", "b.c", ""], "array", 14],
      ["k.a.bool", V.arr.bool([true, false, true]), [true, false, true], "array", 15],
      ["k.a.datetime", V.arr.dt([t1, t2]), ["2023-05-05T14:03:10.5017229Z", "1999-12-31T23:59:59.9999999Z"], "array", 16],
      ["k.a.guid", V.arr.guid([g1, g2]), [g1, g2], "array", 17],
    ];
    const data = Object.fromEntries(cases.map(([k, v]) => [k, v]));
    const r = decode(encodeCsRecord({ ver: "4.0", name: "Kinds", data }));
    expect(r.findings).toEqual([]);
    const fields = r.events[0].fields.filter((f) => f.part === "C");
    expect(fields).toEqual(cases.map(([path, , value, type, wireType]) => ({ path, part: "C", value, type, annotations: { wireType } })));
    expect(() => JSON.stringify(r)).not.toThrow();
  });

  it("gives a Part C property named like an envelope field its own path under data.", () => {
    const body = encodeCsRecord({ name: "MyNewEvent", data: { name: V.str("MyEvent"), "ext.app.id": V.str("x"), plain: V.str("y") } });
    const f = decode(body).events[0].fields;
    expect(new Set(f.map((x) => x.path)).size).toBe(f.length);
    expect(field(f, "name")).toMatchObject({ part: "envelope", value: "MyNewEvent" });
    expect(field(f, "data.name")).toMatchObject({ part: "C", value: "MyEvent" });
    expect(field(f, "data.ext.app.id")).toMatchObject({ part: "C", value: "x" });
    expect(field(f, "plain")).toMatchObject({ part: "C", value: "y" });
  });

  it("renders GUIDs from Windows byte order (Data1 LE32, Data2 LE16, Data3 LE16, Data4 as-is)", () => {
    // 00112233-4455-6677-8899-aabbccddeeff is stored as 33 22 11 00 55 44 77 66 88 99 aa bb cc dd ee ff.
    const raw = [0x33, 0x22, 0x11, 0x00, 0x55, 0x44, 0x77, 0x66, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff];
    const body = encodeCsRecord({
      name: "G",
      data: { g: { kind: ValueKind.Guid, guidBytes: raw }, h: V.guid("6F9619FF-8B86-D011-B42D-00C04FC964FF") },
    });
    const hex = toHex(body);
    expect(hex).toContain("ff19966f868b11d0b42d00c04fc964ff"); // writer agrees with the layout
    const f = decode(body).events[0].fields;
    expect(field(f, "g").value).toBe("00112233-4455-6677-8899-aabbccddeeff");
    expect(field(f, "h")).toEqual({
      path: "h",
      part: "C",
      value: "6f9619ff-8b86-d011-b42d-00c04fc964ff",
      type: "guid",
      annotations: { wireType: 8 },
    });
    // a GUID that is not 16 bytes is kept as hex, flagged
    const short = decode(encodeCsRecord({ name: "G", data: { g: { kind: ValueKind.Guid, guidBytes: [1, 2, 3] } } }));
    expect(field(short.events[0].fields, "g")).toMatchObject({ value: "010203", type: "bytes" });
    expect(short.findings.map((x) => x.code)).toEqual(["bond.bad-guid"]);
  });

  it("keeps PII and customer-content attributes as annotations", () => {
    const body = encodeCsRecord({
      name: "Pii",
      baseData: { mail: V.pii("someone@example.com", 9) },
      data: {
        "User.Sip": V.pii("sip:someone@example.com", 8),
        "Doc.Title": V.cc("Quarterly report"),
        both: { str: "x", pii: 2, cc: 1 },
        typedPii: { kind: ValueKind.Int64, str: "12345", pii: 10 },
        notSet: { str: "y", pii: 0 },
      },
    });
    const f = decode(body).events[0].fields;
    expect(field(f, "data.baseData.mail")).toEqual({
      path: "data.baseData.mail",
      part: "B",
      value: "someone@example.com",
      type: "string",
      annotations: { wireType: 5, piiKind: 9 },
    });
    expect(field(f, "User.Sip").annotations).toEqual({ wireType: 5, piiKind: 8 });
    expect(field(f, "Doc.Title").annotations).toEqual({ wireType: 5, customerContent: true });
    expect(field(f, "both").annotations).toEqual({ wireType: 5, piiKind: 2, customerContent: true });
    // The SDK sends PII-tagged values as strings: a non-string kind with only stringValue stays a string.
    expect(field(f, "typedPii")).toEqual({
      path: "typedPii",
      part: "C",
      value: "12345",
      type: "string",
      annotations: { wireType: 0, piiKind: 10 },
    });
    expect(field(f, "notSet").annotations).toEqual({ wireType: 5 });
  });

  it("records of two tenants in one body keep their own iKey", () => {
    const body = encodeCsRecords([
      { ...WORKED_EXAMPLE, iKey: "o:11111111111111111111111111111111" },
      { ...WORKED_EXAMPLE, name: "Other.Event", iKey: "o:22222222222222222222222222222222" },
      { ...WORKED_EXAMPLE, iKey: "o:11111111111111111111111111111111" },
    ]);
    const r = decode(body);
    expect(r.events.map((e) => [e.index, e.name, e.iKey])).toEqual([
      [0, "Office.Word.FileOpen", "o:11111111111111111111111111111111"],
      [1, "Other.Event", "o:22222222222222222222222222222222"],
      [2, "Office.Word.FileOpen", "o:11111111111111111111111111111111"],
    ]);
  });
});

describe("onecollector-bond: unknown and unexpected data", () => {
  it("skips unknown fields of every wire type at every level and reports each", () => {
    const rec: CsRecordSpec = {
      ...WORKED_EXAMPLE,
      unknown: [
        ...unknownFieldsOfEveryType(100), // 2-byte headers
        ...unknownFieldsOfEveryType(1000), // 3-byte headers
        { id: 0, type: BondType.STRING, payload: new BondWriter().string("id0").finish() }, // 1-byte header, id 0
      ],
      extUnknown: { app: unknownFieldsOfEveryType(10) },
      dataUnknown: unknownFieldsOfEveryType(2, (i) => (i % 2 ? 2 + (i % 4) : 300 + i)),
      data: {
        "Activity.Success": { ...V.bool(true), unknown: unknownFieldsOfEveryType(20) },
        "Data.Doc.Ext": V.str("docx"),
      },
    };
    const body = encodeCsRecords([rec, WORKED_EXAMPLE]);
    const r = decode(body);
    expect(r.events).toHaveLength(2);
    const clean = decode(fromHex(WORKED_EXAMPLE_HEX)).events[0].fields;
    expect(r.events[0].fields).toEqual(clean);
    expect(r.events[1].fields).toEqual(clean);
    const unknown = r.findings.filter((f) => f.code === "bond.unknown-field");
    expect(unknown).toHaveLength(17 * 5 + 1);
    expect(r.findings).toHaveLength(unknown.length);
    for (const f of unknown) {
      expect(f.severity).toBe("warning");
      expect(f.eventIndex).toBe(0);
      expect(f.offset).toBeGreaterThanOrEqual(0);
      expect(f.offset! + f.length!).toBeLessThanOrEqual(r.events[0].byteRange![1]);
    }
    expect(unknown.filter((f) => f.message.startsWith("Record: ")).length).toBe(35);
    expect(unknown.filter((f) => f.message.startsWith("Record.extApp: ")).length).toBe(17);
    expect(unknown.filter((f) => f.message.startsWith("Record.data.Data: ")).length).toBe(17);
    expect(unknown.filter((f) => f.message.startsWith("Activity.Success: Value: ")).length).toBe(17);
  });

  it("takes element 0 of an extension vector with more than one element, with a finding", () => {
    const r = decode(encodeCsRecord({ name: "X", ext: { os: { name: "Windows" } }, extCopies: { os: 3 } }));
    expect(r.events[0].fields.filter((f) => f.path === "ext.os.name")).toHaveLength(1);
    expect(r.findings).toMatchObject([{ code: "bond.extension-count", severity: "warning", eventIndex: 0 }]);
  });

  it("skips a known field with an unexpected wire type and continues", () => {
    const w = new BondWriter();
    w.field(BondType.STRING, 1).string("4.0");
    w.field(BondType.INT32, 2).zigzag(5); // name as int32
    w.field(BondType.STRING, 3).string("not ticks"); // time as string
    w.field(BondType.STRING, 5).string("o:k");
    w.stop();
    const r = decode(w.finish());
    expect(r.events[0].iKey).toBe("o:k");
    expect(r.findings.map((f) => f.code)).toEqual(["bond.type-mismatch", "bond.type-mismatch", "bond.missing-name"]);
  });

  it("accepts BT_STOP_BASE inside structs and over-long varint counts", () => {
    const w = new BondWriter();
    w.field(BondType.STRING, 1).string("4.0").stopBase();
    w.field(BondType.STRING, 2).string("N");
    w.field(BondType.LIST, 25).list(BondType.STRUCT, 1, 4).field(BondType.STRING, 8).string("Word").stop();
    w.stop();
    const r = decode(w.finish());
    expect(r.findings).toEqual([]);
    expect(r.events[0].fields.map((f) => f.path)).toEqual(["ver", "name", "ext.app.name"]);
  });

  it("a lone 0x00 between records is reported, not an event", () => {
    const one = fromHex(WORKED_EXAMPLE_HEX);
    const r = decode(new Uint8Array([...one, 0, ...one]));
    expect(r.events.map((e) => e.index)).toEqual([0, 1]);
    expect(r.findings).toMatchObject([{ code: "bond.empty-record", offset: one.length }]);
  });
});

describe("onecollector-bond: malformed bodies and limits", () => {
  it("a body cut in the middle of the 3rd record gives DecodeError with the first 2 events", () => {
    const full = makeCsBatch(5, 12);
    const whole = decode(full);
    const [s3, e3] = whole.events[2].byteRange!;
    const cut = full.subarray(0, Math.floor((s3 + e3) / 2));
    const e = decodeError(() => decode(cut));
    expect(e.code).toBe("bond.truncated");
    expect(e.offset).toBeGreaterThanOrEqual(s3);
    expect(e.offset).toBeLessThanOrEqual(cut.length);
    expect(e.partial.events).toHaveLength(2);
    expect(e.partial.events).toEqual(whole.events.slice(0, 2));
    expect(e.message).toContain("record 2");
  });

  it("every prefix of a valid body decodes or throws a DecodeError with the complete records", () => {
    const body = encodeCsRecords([WORKED_EXAMPLE, WORKED_EXAMPLE]);
    const size = fromHex(WORKED_EXAMPLE_HEX).length;
    for (let n = 0; n <= body.length; n++) {
      const prefix = body.subarray(0, n);
      if (n === 0 || n === size || n === 2 * size) {
        expect(decode(prefix).events).toHaveLength(n / size);
        continue;
      }
      const e = decodeError(() => decode(prefix));
      // A cut list shows up as a count larger than the bytes left.
      expect(["bond.truncated", "bond.count"]).toContain(e.code);
      expect(e.offset).toBeLessThanOrEqual(n);
      expect(e.partial.events).toHaveLength(n > size ? 1 : 0);
    }
  });

  it("reports bad list headers, bad types, counts and depth with offsets", () => {
    const v2 = fromHex("29 03 342e30 cb 19 4a 00"); // extApp list header with v2 packed count
    expect(decodeError(() => decode(v2))).toMatchObject({ code: "bond.bad-list-header", offset: 7 });
    expect(decodeError(() => decode(fromHex("29 03 342e30 35 00")))).toMatchObject({ code: "bond.bad-type", offset: 5 }); // wire type 21
    expect(decodeError(() => decode(fromHex("29 03 342e30 cb 19 0a 7f 00")))).toMatchObject({ code: "bond.count", offset: 8 });
    expect(decodeError(() => decode(fromHex("49 7f 41 00")))).toMatchObject({ code: "bond.truncated", offset: 2 }); // string longer than the body
    const e = decodeError(() => decode(fromHex(WORKED_EXAMPLE_HEX), { maxDepth: 4 }));
    expect(e.code).toBe("bond.depth");
  });

  it("caps events and fields per event", () => {
    const three = encodeCsRecords([WORKED_EXAMPLE, WORKED_EXAMPLE, WORKED_EXAMPLE]);
    const capped = decode(three, { maxEvents: 2 });
    expect(capped.events).toHaveLength(2);
    const size = fromHex(WORKED_EXAMPLE_HEX).length;
    expect(capped.findings).toEqual([
      {
        code: "bond.too-many-events",
        severity: "warning",
        message: expect.stringContaining("more than 2 records"),
        offset: 2 * size,
        length: size,
      },
    ]);
    const r = decode(three, { maxFieldsPerEvent: 5 });
    expect(r.events.map((x) => x.fields.length)).toEqual([5, 5, 5]);
    expect(r.findings.map((f) => [f.code, f.eventIndex])).toEqual([
      ["bond.too-many-fields", 0],
      ["bond.too-many-fields", 1],
      ["bond.too-many-fields", 2],
    ]);
  });

  it("caps the number of findings per body", () => {
    const w = new BondWriter().field(BondType.STRING, 2).string("Noisy");
    for (let i = 0; i < 5000; i++) w.field(BondType.BOOL, 100).u8(1);
    w.stop();
    const r = decode(w.finish());
    expect(r.events).toHaveLength(1);
    expect(r.findings).toHaveLength(1001);
    expect(r.findings[1000].code).toBe("bond.too-many-findings");
  });

  it("makeCsBatch(100, 40) decodes cleanly", () => {
    const r = decode(makeCsBatch(100, 40));
    expect(r.findings).toEqual([]);
    expect(r.events).toHaveLength(100);
    expect(r.events[0].fields.filter((f) => f.part === "C")).toHaveLength(40);
    expect(field(r.events[0].fields, "Session.Id").type).toBe("guid");
    expect(field(r.events[0].fields, "User.TenantId").annotations?.piiKind).toBe(10);
  });
});

// ---- robustness: mutated / truncated writer output ------------------------------------------------

describe("onecollector-bond: robustness (fast-check)", () => {
  const seeds = [
    makeCsBatch(3, 20),
    fromHex(WORKED_EXAMPLE_HEX),
    encodeCsRecord({
      ...WORKED_EXAMPLE,
      tags: { a: "b" },
      baseData: { m: V.pii("x@example.com", 9) },
      data: {
        a: V.arr.guid(["00112233-4455-6677-8899-aabbccddeeff"]),
        b: V.arr.dt([638188921905017229n]),
        c: V.arr.str(["x"]),
        d: V.dbl(1.5),
        e: V.cc("t"),
      },
      unknown: unknownFieldsOfEveryType(200),
    }),
  ];

  it(
    `${FUZZ_RUNS} mutated bodies: returns or throws DecodeError, never anything else`,
    () => {
      const { decodeErrors } = fuzzDecoder(oneCollectorBondDecoder, ctx(), seeds);
      expect(decodeErrors).toBeGreaterThan(0);
    },
    FUZZ_TIMEOUT_MS,
  );

  it("sniff never throws on arbitrary bytes", () => fuzzSniff(oneCollectorBondDecoder));
});

describe("Value struct fields of an unexpected wire type", () => {
  it("are skipped and reported by field, and the rest of the Value still counts", () => {
    const body = fromHex(
      [
        "29 03 342e30", // f1 ver "4.0"
        "49 01 45", // f2 name "E"
        "cb 46 0a 01", // f70 data: list<struct>, count 1
        "2d 09 0a 01", //   Data.f1 map<string,struct>, 1 pair
        "01 6b", //     key "k"
        "29 01 78", //       Value.type as a string "x"
        "70 0a", //       Value.stringValue as an int32
        "89 01 79", //       Value.longValue as a string "y"
        "a9 01 7a", //       Value.doubleValue as a string "z"
        "69 02 6f6b", //       Value.stringValue "ok"
        "00", //       end Value
        "00", //   end Data
        "00", // end Record
      ].join(" "),
    );
    const out = decode(body);
    expect(field(out.events[0].fields, "k")).toMatchObject({ value: "ok", type: "string" });
    expect(out.findings.filter((f) => f.code === "bond.type-mismatch").map((f) => f.message)).toEqual([
      "k: Value.type: expected an integer, got string; skipped",
      "k: Value.stringValue: expected string, got int32; skipped",
      "k: Value.longValue: expected an integer, got string; skipped",
      "k: Value.doubleValue: expected double, got string; skipped",
    ]);
  });
});
