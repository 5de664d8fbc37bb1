import { describe, expect, it } from "vitest";
import { ariaDecoder } from "../src/decode/bond/aria.js";
import { oneCollectorBondDecoder } from "../src/decode/bond/onecollector.js";
import type { DecodedField, DecodeLimits, DecodeResult } from "../src/decode/types.js";
import {
  BondType,
  BondWriter,
  encodeAriaRequest,
  makeAriaBatch,
  makeCsBatch,
  ticksFromIso,
  unknownFieldsOfEveryType,
  type AriaRecordSpec,
  type AriaTenantSpec,
} from "./helpers/bond-writer.js";
import { decodeError, field, fromHex, postContext, toHex } from "./helpers/decode.js";
import { FUZZ_RUNS, FUZZ_TIMEOUT_MS, fuzzDecoder, fuzzSniff } from "./helpers/fuzz.js";

const ctx = (limits?: Partial<DecodeLimits>) => postContext("/Collector/3.0/", "application/bond-compact-binary", limits);

const decode = (body: Uint8Array, limits?: Partial<DecodeLimits>): DecodeResult => ariaDecoder.decode(body, ctx(limits));

// wire-formats.md §4.1 shape, typed out by hand: `6D 09 0B <#tenants>`, `<token> 0A 01 <DataPackage>`, `00`.
const MINIMAL_HEX = [
  "6d 09 0b 01", // f3 TokenToDataPackagesMap: map<string, list>, 1 tenant
  "03 746f6b", //   token "tok"
  "0a 01", //   list<struct DataPackage>, 1
  "49 12 6163745f64656661756c745f736f75726365", //     f2 Source "act_default_source"
  "a9 24 33663235303465302d346638392d343164332d396130632d303330356538326333333031", //     f5 DataPackageId
  "d1 06 b0 b4 ca c3 fd 61", //     f6 Timestamp int64 (Unix ms 1683295391000)
  "cb 08 0a 01", //     f8 Records: list<struct>, 1
  "29 02 6531", //       Record f1 Id "e1"
  "71 ca ac ca c3 fd 61", //       f3 Timestamp (Unix ms 1683295390501)
  "a9 06 637573746f6d", //       f5 Type "custom"
  "c9 06 02 4576", //       f6 EventType "Ev"
  "cd 0d 09 09 01 01 6b 01 76", //       f13 Extension map<string,string> {"k": "v"}
  "00", //       end Record
  "00", //     end DataPackage
  "00", // end ClientToCollectorRequest
].join(" ");

const MINIMAL: AriaTenantSpec = {
  token: "tok",
  source: "act_default_source",
  dataPackageId: "3f2504e0-4f89-41d3-9a0c-0305e82c3301",
  timestamp: 1_683_295_391_000,
  records: [{ id: "e1", timestamp: 1_683_295_390_501, type: "custom", eventType: "Ev", extension: { k: "v" } }],
};

const TOKEN_A = "0123456789abcdef0123456789abcdef-01234567-89ab-cdef-0123-456789abcdef-0001";
const TOKEN_B = "fedcba9876543210fedcba9876543210-76543210-ba98-fedc-3210-fedcba987654-0002";
const GUID = "6f9619ff-8b86-d011-b42d-00c04fc964ff";
const T1 = ticksFromIso("2023-05-05T14:03:10.5017229Z");

const RICH: AriaRecordSpec = {
  id: "8d3b5a21-0c4e-4f1a-9b7d-112233445566",
  timestamp: 1_683_295_390_501,
  type: "custom",
  eventType: "Office.Word.FileOpen",
  extension: { "App.Name": "Word", "Data.Doc.Ext": "docx", "EventInfo.Source": "AWT-Web-JS" },
  recordType: 1,
  extensionInt64: { "Legacy.Count": 3 },
  extensionDouble: { "Legacy.Ratio": 0.25 },
  pii: { "UserInfo.Id": { kind: 10, raw: "someone@example.com" }, "Client.Ip": { kind: 3, scrubType: 2, raw: "192.0.2.1" } },
  bools: { "Activity.Success": true, IsFirst: false },
  dates: { "Doc.Created": T1 },
  typedInt64: { "EventInfo.Sequence": 7, Big: 2n ** 60n, Negative: -5 },
  typedDouble: { Duration: 12.5 },
  guids: { "Session.Id": GUID },
  customerContent: { "Doc.Title": { raw: "Quarterly report" } },
};

function twoTenants(): Uint8Array {
  return encodeAriaRequest([
    {
      token: TOKEN_A,
      source: "act_default_source",
      dataPackageId: "11111111-2222-4333-8444-555555555555",
      timestamp: 1_683_295_391_000,
      records: [RICH, { id: "a2", timestamp: 1_683_295_390_600, eventType: "Office.Second", typedDouble: { x: -1 } }],
    },
    {
      token: TOKEN_B,
      packages: [
        {
          type: "Client",
          source: "src-b1",
          version: "AWT-Web-JS-1.8.0",
          records: [{ id: "b1", eventType: "B.One", bools: { flag: true } }],
        },
        { source: "src-b2", records: [{ id: "b2", eventType: "B.Two", typedInt64: { n: 1 }, extension: { s: "t" } }] },
      ],
    },
  ]);
}

describe("aria-collector: bytes", () => {
  it("the writer produces exactly the hand-typed §4.1 request", () => {
    expect(toHex(encodeAriaRequest([MINIMAL]))).toBe(toHex(fromHex(MINIMAL_HEX)));
  });

  it("decodes the hand-typed request exactly", () => {
    const body = fromHex(MINIMAL_HEX);
    const recordStart = body.indexOf(0x29, 70);
    expect(decode(body)).toEqual({
      events: [
        {
          index: 0,
          name: "Ev",
          time: "2023-05-05T14:03:10.501Z",
          iKey: "tok",
          byteRange: [recordStart, body.length - 2],
          fields: [
            { path: "iKey", part: "envelope", value: "tok", type: "string" },
            { path: "Id", part: "envelope", value: "e1", type: "string" },
            { path: "time", part: "envelope", value: "2023-05-05T14:03:10.501Z", type: "datetime" },
            { path: "Type", part: "envelope", value: "custom", type: "string" },
            { path: "name", part: "envelope", value: "Ev", type: "string" },
            { path: "k", part: "C", value: "v", type: "string" },
            { path: "package.source", part: "envelope", value: "act_default_source", type: "string" },
            { path: "package.id", part: "envelope", value: "3f2504e0-4f89-41d3-9a0c-0305e82c3301", type: "string" },
            { path: "package.timestamp", part: "envelope", value: "2023-05-05T14:03:11.000Z", type: "datetime" },
          ],
        },
      ],
      findings: [],
    });
  });

  it("sniffs 6D 09 0B and is not confused with CS records", () => {
    expect(ariaDecoder.sniff!(fromHex(MINIMAL_HEX))).toBeGreaterThan(0.9);
    expect(ariaDecoder.sniff!(encodeAriaRequest([MINIMAL], { retryCount: 3 }))).toBeGreaterThan(0.9);
    expect(ariaDecoder.sniff!(makeCsBatch(1, 3))).toBe(0);
    expect(oneCollectorBondDecoder.sniff!(fromHex(MINIMAL_HEX))).toBe(0);
    expect(ariaDecoder.sniff!(new Uint8Array([0x6d]))).toBe(0);
    expect(ariaDecoder.sniff!(encodeAriaRequest([], { dataPackages: [{ records: [] }] }))).toBe(0.3);
  });
});

describe("aria-collector: records", () => {
  it("two tenants with mixed typed maps: every record decoded", () => {
    const r = decode(twoTenants());
    expect(r.findings).toEqual([]);
    expect(r.events.map((e) => [e.index, e.name, e.iKey, e.time])).toEqual([
      [0, "Office.Word.FileOpen", TOKEN_A, "2023-05-05T14:03:10.501Z"],
      [1, "Office.Second", TOKEN_A, "2023-05-05T14:03:10.600Z"],
      [2, "B.One", TOKEN_B, undefined],
      [3, "B.Two", TOKEN_B, undefined],
    ]);
    expect(r.events[0].fields).toEqual([
      { path: "iKey", part: "envelope", value: TOKEN_A, type: "string" },
      { path: "Id", part: "envelope", value: "8d3b5a21-0c4e-4f1a-9b7d-112233445566", type: "string" },
      { path: "time", part: "envelope", value: "2023-05-05T14:03:10.501Z", type: "datetime" },
      { path: "Type", part: "envelope", value: "custom", type: "string" },
      { path: "name", part: "envelope", value: "Office.Word.FileOpen", type: "string" },
      { path: "App.Name", part: "C", value: "Word", type: "string" },
      { path: "Data.Doc.Ext", part: "C", value: "docx", type: "string" },
      { path: "EventInfo.Source", part: "C", value: "AWT-Web-JS", type: "string" },
      { path: "RecordType", part: "envelope", value: 1, type: "int32" },
      { path: "Legacy.Count", part: "C", value: 3, type: "int64" },
      { path: "Legacy.Ratio", part: "C", value: 0.25, type: "double" },
      { path: "UserInfo.Id", part: "C", value: "someone@example.com", type: "string", annotations: { piiKind: 10, scrubType: 1 } },
      { path: "Client.Ip", part: "C", value: "192.0.2.1", type: "string", annotations: { piiKind: 3, scrubType: 2 } },
      { path: "Activity.Success", part: "C", value: true, type: "bool" },
      { path: "IsFirst", part: "C", value: false, type: "bool" },
      { path: "Doc.Created", part: "C", value: "2023-05-05T14:03:10.5017229Z", type: "datetime" },
      { path: "EventInfo.Sequence", part: "C", value: 7, type: "int64" },
      { path: "Big", part: "C", value: (2n ** 60n).toString(), type: "int64" },
      { path: "Negative", part: "C", value: -5, type: "int64" },
      { path: "Duration", part: "C", value: 12.5, type: "double" },
      { path: "Session.Id", part: "C", value: GUID, type: "guid" },
      { path: "Doc.Title", part: "C", value: "Quarterly report", type: "string", annotations: { customerContent: true } },
      { path: "package.source", part: "envelope", value: "act_default_source", type: "string" },
      { path: "package.id", part: "envelope", value: "11111111-2222-4333-8444-555555555555", type: "string" },
      { path: "package.timestamp", part: "envelope", value: "2023-05-05T14:03:11.000Z", type: "datetime" },
    ]);
    expect(field(r.events[1].fields, "x")).toEqual({ path: "x", part: "C", value: -1, type: "double" });
    expect(field(r.events[2].fields, "flag").value).toBe(true);
    expect(field(r.events[2].fields, "package.type").value).toBe("Client");
    expect(field(r.events[2].fields, "package.version").value).toBe("AWT-Web-JS-1.8.0");
    expect(field(r.events[2].fields, "package.source").value).toBe("src-b1");
    expect(field(r.events[3].fields, "package.source").value).toBe("src-b2");
    expect(r.events[3].fields.filter((f) => f.part === "C").map((f) => [f.path, f.value, f.type])).toEqual([
      ["s", "t", "string"],
      ["n", 1, "int64"],
    ]);
    for (const ev of r.events) {
      const [s, e] = ev.byteRange!;
      expect(s).toBeLessThan(e);
    }
  });

  it("decodes field 1 DataPackages, package facts, receipts, legacy fields and the retry count", () => {
    const body = encodeAriaRequest([{ token: "t", records: [{ eventType: "In.Map" }] }], {
      retryCount: 2,
      dataPackages: [
        {
          type: "Client",
          version: "1.0",
          ids: { DeviceId: "d-1" },
          schemaVersion: 3,
          tenantIdentifier: "tenant-from-package",
          records: [
            {
              eventType: "In.List",
              context: ["c1", "c2"],
              configurationIds: { cfg: "on" },
              resultCode: -3,
              targetUsers: ["u1"],
            },
          ],
          receipts: [{ eventType: "A.Receipt" }],
        },
      ],
    });
    const r = decode(body);
    expect(r.findings).toEqual([]);
    expect(r.events.map((e) => [e.name, e.iKey])).toEqual([
      ["In.List", "tenant-from-package"],
      ["A.Receipt", "tenant-from-package"],
      ["In.Map", "t"],
    ]);
    const f = r.events[0].fields.map((x) => [x.path, x.value, x.type]);
    expect(f).toEqual([
      ["Context", ["c1", "c2"], "array"],
      ["ConfigurationIds.cfg", "on", "string"],
      ["name", "In.List", "string"],
      ["ResultCode", -3, "int32"],
      ["TargetUsers", ["u1"], "array"],
      ["package.type", "Client", "string"],
      ["package.version", "1.0", "string"],
      ["package.ids.DeviceId", "d-1", "string"],
      ["package.schemaVersion", 3, "int32"],
      ["package.tenantId", "tenant-from-package", "string"],
      ["request.retryCount", 2, "int32"],
    ]);
    expect(field(r.events[1].fields, "package.receipt").value).toBe(true);
    expect(field(r.events[2].fields, "request.retryCount").value).toBe(2);
  });

  it("handles the AWT JS record count patched in place and over-long counts", () => {
    const records: AriaRecordSpec[] = [RICH, { id: "x", eventType: "Second" }];
    const clean = decode(encodeAriaRequest([{ token: TOKEN_A, records }]));
    const strip = (r: DecodeResult) => r.events.map((e) => ({ ...e, byteRange: undefined }));
    for (const staleFrom of [200, 300, 20_000, 3_000_000]) {
      const body = encodeAriaRequest([{ token: TOKEN_A, records, staleFrom }]);
      const r = decode(body);
      expect(strip(r), `staleFrom ${staleFrom}`).toEqual(strip(clean));
      expect(r.findings.map((f) => [f.code, f.severity])).toEqual([["aria.count-patched", "info"]]);
    }
    const overLong = decode(encodeAriaRequest([{ token: TOKEN_A, records, recordCountBytes: 5 }]));
    expect(strip(overLong)).toEqual(strip(clean));
    expect(overLong.findings).toEqual([]);
  });

  it("skips unknown fields of every wire type at every level and reports each", () => {
    const withUnknown = encodeAriaRequest(
      [
        {
          ...MINIMAL,
          unknown: unknownFieldsOfEveryType(12),
          records: [{ ...MINIMAL.records![0], unknown: [...unknownFieldsOfEveryType(40), ...unknownFieldsOfEveryType(400)] }],
        },
      ],
      { unknown: unknownFieldsOfEveryType(100) },
    );
    const r = decode(withUnknown);
    const clean = decode(fromHex(MINIMAL_HEX));
    expect(r.events.map((e) => e.fields)).toEqual(clean.events.map((e) => e.fields));
    const codes = r.findings.map((f) => f.code);
    expect(codes.every((c) => c === "bond.unknown-field")).toBe(true);
    expect(codes).toHaveLength(17 * 4);
    expect(r.findings.filter((f) => f.message.startsWith("ClientToCollectorRequest:"))).toHaveLength(17);
    expect(r.findings.filter((f) => f.message.startsWith("DataPackage:"))).toHaveLength(17);
    const inRecord = r.findings.filter((f) => f.message.startsWith("Record:"));
    expect(inRecord).toHaveLength(34);
    expect(inRecord.every((f) => f.eventIndex === 0 && f.severity === "warning" && typeof f.offset === "number")).toBe(true);
  });

  it("skips typed maps of the wrong shape with a finding and keeps the rest", () => {
    const w = new BondWriter();
    w.field(BondType.MAP, 3).map(BondType.STRING, BondType.LIST, 1).string("t").list(BondType.STRUCT, 1);
    w.field(BondType.LIST, 8).list(BondType.STRUCT, 1);
    w.field(BondType.STRING, 6, 2).string("E");
    w.field(BondType.MAP, 33, 2).map(BondType.STRING, BondType.STRING, 1).string("k").string("not an int");
    w.field(BondType.MAP, 13, 2).map(BondType.STRING, BondType.STRING, 1).string("k2").string("v2");
    w.stop().stop().stop();
    const r = decode(w.finish());
    expect(r.events[0].fields.map((f) => f.path)).toEqual(["iKey", "name", "k2"]);
    expect(r.findings.map((f) => f.code)).toEqual(["bond.type-mismatch"]);
  });
});

describe("aria-collector: malformed bodies and limits", () => {
  it("a body cut in the middle of the 3rd record gives DecodeError with the first 2 events", () => {
    const body = makeAriaBatch(5, 12);
    const whole = decode(body);
    const [s3, e3] = whole.events[2].byteRange!;
    const cut = body.subarray(0, Math.floor((s3 + e3) / 2));
    const e = decodeError(() => decode(cut));
    expect(["bond.truncated", "bond.count"]).toContain(e.code);
    expect(e.offset).toBeGreaterThanOrEqual(s3);
    expect(e.offset).toBeLessThanOrEqual(cut.length);
    expect(e.partial.events).toHaveLength(2);
    // Package facts are appended when the package ends, so the partial events lack them.
    const noPackage = (fields: DecodedField[]) => fields.filter((f) => !f.path.startsWith("package."));
    expect(e.partial.events.map((x) => x.fields)).toEqual(whole.events.slice(0, 2).map((x) => noPackage(x.fields)));
  });

  it("every prefix of a valid body decodes or throws a DecodeError", () => {
    const body = encodeAriaRequest([MINIMAL, { ...MINIMAL, token: "tok2" }]);
    for (let n = 0; n < body.length; n++) {
      const e = decodeError(() => decode(body.subarray(0, n)));
      expect(e.offset).toBeLessThanOrEqual(n);
    }
    expect(decode(body).events).toHaveLength(2);
  });

  it("reports trailing bytes, depth and limits", () => {
    const body = fromHex(MINIMAL_HEX);
    const trailing = decode(new Uint8Array([...body, 0xaa, 0xbb]));
    expect(trailing.events).toHaveLength(1);
    expect(trailing.findings).toMatchObject([{ code: "bond.trailing-bytes", offset: body.length, length: 2 }]);
    expect(decodeError(() => decode(body, { maxDepth: 4 })).code).toBe("bond.depth");
    const many = makeAriaBatch(3, 2);
    const capped = decode(many, { maxEvents: 2 });
    expect(capped.events).toHaveLength(2);
    expect(capped.findings).toMatchObject([{ code: "bond.too-many-events", severity: "warning" }]);
    const few = decode(many, { maxFieldsPerEvent: 4 });
    expect(few.events.every((x) => x.fields.length === 4)).toBe(true);
    expect(few.findings.filter((f) => f.code === "bond.too-many-fields")).toHaveLength(3);
  });
});

// ---- robustness -----------------------------------------------------------------------------------

describe("aria-collector: robustness (fast-check)", () => {
  const seeds = [
    makeAriaBatch(3, 20),
    twoTenants(),
    fromHex(MINIMAL_HEX),
    encodeAriaRequest([{ ...MINIMAL, staleFrom: 300 }], {
      retryCount: 1,
      dataPackages: [{ ids: { a: "b" }, records: [{ eventType: "L", context: ["x"], configurationIds: { c: "d" } }] }],
    }),
  ];

  it(
    `${FUZZ_RUNS} mutated bodies: returns or throws DecodeError, never anything else`,
    () => {
      const { decodeErrors } = fuzzDecoder(ariaDecoder, ctx(), seeds);
      expect(decodeErrors).toBeGreaterThan(0);
    },
    FUZZ_TIMEOUT_MS,
  );

  it("sniff never throws on arbitrary bytes", () => fuzzSniff(ariaDecoder));
});
