import { describe, expect, it } from "vitest";
import { partCKey, partCPath } from "../src/decode/paths.js";
import fc from "fast-check";
import { createHash } from "node:crypto";
import { brotliCompressSync, constants as zc, createGzip, deflateRawSync, deflateSync, gzipSync } from "node:zlib";
import { appInsightsDecoder } from "../src/decode/json/appinsights.js";
import {
  decodeContentEncoding,
  DEFAULT_MAX_DECODED_BYTES,
  DEFAULT_MAX_RATIO,
  effectiveContentEncoding,
  effectiveContentType,
  isZlibHeader,
} from "../src/decode/content-encoding.js";
import { formDecoder, genericJsonDecoder, multipartDecoder, opaqueDecoder } from "../src/decode/generic.js";
import { oneCollectorJsonDecoder } from "../src/decode/json/onecollector.js";
import { parseJsonExact, BigIntLiteral, utf8ByteOffset } from "../src/decode/json/exact.js";
import {
  DEFAULT_DECODE_LIMITS,
  DecodeError,
  type DecodeContext,
  type DecodedEvent,
  type DecodedField,
  type Decoder,
} from "../src/decode/types.js";
import type { RawHeaders } from "../src/types.js";
import { decodeError } from "./helpers/decode.js";
import { FUZZ_RUNS, FUZZ_TIMEOUT_MS, fuzzDecode, fuzzDecoder, textMutations, type FuzzOptions } from "./helpers/fuzz.js";
import { jsonLines, makeJsonLinesBatch, renderJsonEvent, typed, typeTag } from "./helpers/json-events.js";

function ctxFor(over: Partial<DecodeContext> = {}): DecodeContext {
  return {
    method: "POST",
    path: "/OneCollector/1.0/",
    query: new URLSearchParams(),
    contentType: "application/x-json-stream",
    headers: [],
    limits: DEFAULT_DECODE_LIMITS,
    ...over,
  };
}

/** What the pipeline does before a decoder runs: effective type/encoding from headers + query, then decompression. */
function prepare(pathAndQuery: string, headers: RawHeaders, body: Uint8Array): { body: Uint8Array; ctx: DecodeContext; applied: string[] } {
  const q = pathAndQuery.indexOf("?");
  const query = new URLSearchParams(q === -1 ? "" : pathAndQuery.slice(q + 1));
  const decoded = decodeContentEncoding(body, effectiveContentEncoding(headers, query));
  const ctx = ctxFor({
    path: q === -1 ? pathAndQuery : pathAndQuery.slice(0, q),
    query,
    headers,
    contentType: effectiveContentType(headers, query),
  });
  return { body: decoded.body, ctx, applied: decoded.applied };
}

const field = (e: DecodedEvent, path: string): DecodedField | undefined => e.fields.find((f) => f.path === path);
const fieldOf = (e: DecodedEvent, path: string): DecodedField => {
  const f = field(e, path);
  if (!f) throw new Error(`no field ${path} in ${e.fields.map((x) => x.path).join(", ")}`);
  return f;
};

const WORD_EVENT = {
  name: "Office.Word.FileOpen.UserInitiatedOpen",
  time: "2026-11-24T08:00:00.123Z",
  iKey: "o:0123456789abcdef0123456789abcdef",
  ext: {
    app: { name: "Word", ver: "16.0.17029" },
    device: { localId: "s:6C4E3D2A-1111-4000-8000-000000000000", deviceClass: "Windows.Desktop" },
    mscv: { cV: "Ab3+xYz0QkOq1LmN.0" },
  },
  baseType: "custom.office_system_activity",
  baseData: { properties: { version: "PostChannel=3.2.6" } },
  data: { "Data.Doc.Ext": "docx", "Activity.Success": true, "Activity.Duration": typed(1234, "int64") },
};

describe("1DS JSON lines", () => {
  it("decodes envelope, Part A, B and C with verbatim dotted keys", () => {
    const body = jsonLines([renderJsonEvent(WORD_EVENT), renderJsonEvent({ ...WORD_EVENT, name: "Office.Word.FileClose" })]);
    const { events, findings } = oneCollectorJsonDecoder.decode(body, ctxFor());
    expect(findings).toEqual([]);
    expect(events.map((e) => e.name)).toEqual(["Office.Word.FileOpen.UserInitiatedOpen", "Office.Word.FileClose"]);
    const [e] = events;
    expect(e.index).toBe(0);
    expect(e.time).toBe("2026-11-24T08:00:00.123Z");
    expect(e.iKey).toBe("o:0123456789abcdef0123456789abcdef");
    expect(fieldOf(e, "ver")).toEqual({ path: "ver", part: "envelope", value: "4.0", type: "string" });
    expect(fieldOf(e, "data.baseType")).toMatchObject({ part: "envelope", value: "custom.office_system_activity" });
    expect(fieldOf(e, "ext.app.name")).toMatchObject({ part: "A", value: "Word", type: "string" });
    expect(fieldOf(e, "ext.device.localId").part).toBe("A");
    expect(fieldOf(e, "ext.mscv.cV").value).toBe("Ab3+xYz0QkOq1LmN.0");
    expect(fieldOf(e, "data.baseData.properties.version")).toMatchObject({ part: "B", value: "PostChannel=3.2.6" });
    expect(fieldOf(e, "Data.Doc.Ext")).toEqual({ path: "Data.Doc.Ext", part: "C", value: "docx", type: "string" });
    expect(fieldOf(e, "Activity.Success")).toEqual({ path: "Activity.Success", part: "C", value: true, type: "bool" });
    // ext.metadata is consumed as annotations, never a field.
    expect(e.fields.some((f) => f.path.startsWith("ext.metadata"))).toBe(false);
    expect(e.fields.some((f) => f.path === "Data" || f.path === "Data.Doc")).toBe(false);
    // Byte ranges point at the lines.
    const text = body.toString();
    expect(text.slice(...e.byteRange!)).toBe(renderJsonEvent(WORD_EVENT));
    expect(events[1].byteRange![0]).toBe(e.byteRange![1] + 1);
  });

  it("nests objects in data with dots but keeps the top-level key verbatim", () => {
    const line = JSON.stringify({
      name: "n",
      data: { "Data.Doc": { Ext: "docx", Size: { Bytes: 12 } }, list: [1, 2, 3], objs: [{ a: 1 }] },
    });
    const [e] = oneCollectorJsonDecoder.decode(Buffer.from(line), ctxFor()).events;
    expect(fieldOf(e, "Data.Doc.Ext")).toMatchObject({ part: "C", value: "docx" });
    expect(fieldOf(e, "Data.Doc.Size.Bytes")).toMatchObject({ part: "C", value: 12, type: "int64" });
    expect(fieldOf(e, "list")).toMatchObject({ value: [1, 2, 3], type: "array" });
    expect(fieldOf(e, "objs[0].a")).toMatchObject({ part: "C", value: 1, type: "int64" });
    expect(e.fields.some((f) => f.path === "objs")).toBe(false);
  });

  it("walks arrays of objects into indexed paths, nested arrays included", () => {
    const line = JSON.stringify({
      name: "n",
      data: {
        baseData: {
          exceptions: [
            {
              typeName: "E",
              parsedStack: [
                { level: 0, fileName: "a.cs" },
                { level: 1, fileName: "b.cs" },
              ],
            },
          ],
        },
        Metrics: [{ Name: "m0", Value: 1 }, 7, [{ deep: true }]],
      },
    });
    const [e] = oneCollectorJsonDecoder.decode(Buffer.from(line), ctxFor()).events;
    expect(fieldOf(e, "data.baseData.exceptions[0].typeName")).toMatchObject({ part: "B", value: "E" });
    expect(fieldOf(e, "data.baseData.exceptions[0].parsedStack[1].fileName")).toMatchObject({ part: "B", value: "b.cs" });
    expect(fieldOf(e, "Metrics[0].Name")).toMatchObject({ part: "C", value: "m0" });
    expect(fieldOf(e, "Metrics[1]")).toMatchObject({ value: 7, type: "int64" });
    expect(fieldOf(e, "Metrics[2][0].deep")).toMatchObject({ value: true, type: "bool" });
  });

  it("never gives a Part C property the path of an envelope field", () => {
    // The OneCollector exporter's own test line: an event named MyNewEvent whose data has a `name` too.
    const line = JSON.stringify({
      ver: "4.0",
      name: "MyNewEvent",
      time: "2023-01-01T00:00:00Z",
      iKey: "o:k",
      data: { name: "MyEvent", time: "t", "ext.app.name": "x" },
    });
    const [e] = oneCollectorJsonDecoder.decode(Buffer.from(line), ctxFor()).events;
    const paths = e.fields.map((f) => f.path);
    expect(new Set(paths).size).toBe(paths.length);
    expect(fieldOf(e, "name")).toMatchObject({ part: "envelope", value: "MyNewEvent" });
    expect(fieldOf(e, "data.name")).toMatchObject({ part: "C", value: "MyEvent" });
    expect(fieldOf(e, "data.time")).toMatchObject({ part: "C", value: "t" });
    expect(fieldOf(e, "data.ext.app.name")).toMatchObject({ part: "C", value: "x" });
    // The JSONL importer rebuilds events from paths: every Part C path maps back to its wire key.
    for (const f of e.fields.filter((x) => x.part === "C")) expect(partCPath(partCKey(f.path))).toBe(f.path);
    expect(["name", "time", "ext.app.name", "Data.Doc.Ext", "data"].map((k) => partCKey(partCPath(k)))).toEqual([
      "name",
      "time",
      "ext.app.name",
      "Data.Doc.Ext",
      "data",
    ]);
  });

  it("types from JSON values: string, bool, int64 for integers, double otherwise, null", () => {
    const line = JSON.stringify({ name: "n", data: { s: "x", b: false, i: -42, d: 1.5, z: null, big: 1e300 } });
    const [e] = oneCollectorJsonDecoder.decode(Buffer.from(line), ctxFor()).events;
    expect(["s", "b", "i", "d", "z", "big"].map((p) => fieldOf(e, p).type)).toEqual([
      "string",
      "bool",
      "int64",
      "double",
      "null",
      "double",
    ]);
  });

  it("tolerates CRLF, blank lines, spaces and a trailing newline", () => {
    const a = renderJsonEvent({ name: "A" });
    const b = renderJsonEvent({ name: "B" });
    const body = Buffer.from(`\r\n${a}\r\n\r\n   \n  ${b}  \r\n\n`);
    const { events, findings } = oneCollectorJsonDecoder.decode(body, ctxFor());
    expect(events.map((e) => e.name)).toEqual(["A", "B"]);
    expect(findings).toEqual([]);
    expect(body.toString("utf8", ...events[1].byteRange!)).toBe(b);
  });

  it("reports bad lines as findings with byte offsets and decodes the rest", () => {
    const good = renderJsonEvent({ name: "Ünïcode.Event" });
    const bad = '{"name":"broken",';
    const body = Buffer.from(`${good}\n${bad}\n[1,2]\n${good}`);
    const { events, findings } = oneCollectorJsonDecoder.decode(body, ctxFor());
    expect(events.map((e) => e.index)).toEqual([0, 1]);
    expect(events[1].name).toBe("Ünïcode.Event");
    const badFindings = findings.filter((f) => f.code === "json.bad-line");
    expect(badFindings).toHaveLength(2);
    expect(badFindings[0].offset).toBe(Buffer.byteLength(good) + 1);
    expect(badFindings[0].length).toBe(bad.length);
    expect(badFindings[0].severity).toBe("error");
  });

  it("throws json.invalid when no line decodes", () => {
    const err = decodeError(() => oneCollectorJsonDecoder.decode(Buffer.from("not json\n{also not"), ctxFor()));
    expect(err.code).toBe("json.invalid");
    expect(err.offset).toBe(0);
    expect(err.partial.findings.filter((f) => f.code === "json.bad-line")).toHaveLength(2);
  });

  it("accepts one pretty-printed object", () => {
    const body = Buffer.from(JSON.stringify({ name: "Pretty", data: { a: 1 } }, null, 2));
    const { events, findings } = oneCollectorJsonDecoder.decode(body, ctxFor());
    expect(events.map((e) => e.name)).toEqual(["Pretty"]);
    expect(findings.map((f) => f.code)).toEqual(["json.not-lines"]);
  });

  it("turns ext.metadata.f tags into types, PII kinds and customer content", () => {
    const line = renderJsonEvent({
      name: "Office.Tagged",
      baseData: {
        url: typed("https://contoso.example/a", "string", { pii: 11 }),
        nested: { when: typed("2026-01-01T00:00:00Z", "datetime") },
      },
      data: {
        "Event.Time": typed("2026-11-24T08:00:00.123Z", "datetime"),
        "Event.Sequence": typed(7, "int64"),
        "Device.RamMB": typed(16384, "int32"),
        "Device.Cores": typed(8, "uint32"),
        "Data.Size": typed(123, "uint64"),
        "Data.Ratio": typed(2, "double"),
        "Data.Flag": typed(1, "bool"),
        "Session.Id": typed("C3B7CF3C-2563-42B9-8240-9D3FB64AFEBE", "guid"),
        "User.Email": typed("someone@contoso.example", "string", { pii: 9 }),
        "Doc.Title": typed("Quarterly results", "string", { cc: true }),
        "Doc.Path": typed("https://contoso.example/x.docx", undefined, { pii: 11, cc: true }),
        "Data.Tags": typed(["a", "b"], "string", { pii: 2 }),
        Compound: { Inner: typed(5, "int32") },
      },
    });
    const [e] = oneCollectorJsonDecoder.decode(Buffer.from(line), ctxFor()).events;
    expect(fieldOf(e, "Event.Time")).toMatchObject({ type: "datetime", annotations: { wireType: 9 } });
    expect(fieldOf(e, "Event.Sequence").type).toBe("int64");
    expect(fieldOf(e, "Device.RamMB").type).toBe("int32");
    expect(fieldOf(e, "Device.Cores").type).toBe("uint32");
    expect(fieldOf(e, "Data.Size").type).toBe("uint64");
    expect(fieldOf(e, "Data.Ratio")).toMatchObject({ value: 2, type: "double" });
    expect(fieldOf(e, "Data.Flag").type).toBe("bool");
    expect(fieldOf(e, "Session.Id").type).toBe("guid");
    expect(fieldOf(e, "User.Email")).toMatchObject({ type: "string", annotations: { piiKind: 9, wireType: typeTag("string", 9) } });
    expect(fieldOf(e, "User.Email").annotations?.customerContent).toBeUndefined();
    expect(fieldOf(e, "Doc.Title")).toMatchObject({ type: "string", annotations: { customerContent: true, wireType: 8193 } });
    expect(fieldOf(e, "Doc.Title").annotations?.piiKind).toBeUndefined();
    // typeCode 0 (unspecified): the observed type stays.
    expect(fieldOf(e, "Doc.Path")).toMatchObject({
      type: "string",
      annotations: { piiKind: 11, customerContent: true, wireType: (11 << 5) | 8192 },
    });
    expect(fieldOf(e, "Data.Tags")).toMatchObject({ type: "array", value: ["a", "b"], annotations: { piiKind: 2 } });
    expect(fieldOf(e, "Compound.Inner").type).toBe("int32");
    expect(fieldOf(e, "data.baseData.url")).toMatchObject({ part: "B", annotations: { piiKind: 11 } });
    expect(fieldOf(e, "data.baseData.nested.when").type).toBe("datetime");
    // Untagged fields carry no annotations.
    expect(fieldOf(e, "name").annotations).toBeUndefined();
  });

  it("reads the Windows flattened metadata form and keeps privTags/privLevel as fields", () => {
    const line = JSON.stringify({
      ver: "4.0",
      name: "Census.Memory",
      time: "2021-05-21T15:20:24.5620681Z",
      iKey: "o:0a89d516ae714e01ae89c96d185e9ae3",
      ext: {
        utc: { eventFlags: 514, pgName: "WINCORE", flags: 503317040, epoch: "600830", seq: 552 },
        metadata: { f: { TotalPhysicalRAM: 2, Boot: 5 }, "f.Ratio": 6, privTags: 16779264, privLevel: 2 },
      },
      data: { TotalPhysicalRAM: 2048, TotalVisibleMemory: 2046, Boot: 132000000000000000, Ratio: 3, Sentinel: 4294967295 },
    });
    const [e] = oneCollectorJsonDecoder.decode(Buffer.from(line), ctxFor()).events;
    expect(e.time).toBe("2021-05-21T15:20:24.5620681Z");
    expect(fieldOf(e, "TotalPhysicalRAM")).toMatchObject({ value: 2048, type: "int32", annotations: { wireType: 2 } });
    expect(fieldOf(e, "TotalVisibleMemory").type).toBe("int64");
    expect(fieldOf(e, "Boot")).toMatchObject({ value: "132000000000000000", type: "uint64" });
    expect(fieldOf(e, "Ratio").type).toBe("double");
    expect(fieldOf(e, "Sentinel")).toMatchObject({ value: 4294967295, type: "int64" });
    expect(fieldOf(e, "ext.metadata.privTags")).toMatchObject({ part: "A", value: 16779264 });
    expect(fieldOf(e, "ext.metadata.privLevel").value).toBe(2);
    expect(field(e, "ext.metadata.f.TotalPhysicalRAM")).toBeUndefined();
    expect(field(e, "ext.metadata.f.Ratio")).toBeUndefined();
    expect(fieldOf(e, "ext.utc.eventFlags").value).toBe(514);
  });

  it("keeps integers beyond 2^53 exact, anywhere in the event", () => {
    const line =
      '{"name":"Big","ver":"4.0","ext":{"sdk":{"seq":9007199254740993},"metadata":{"f":{"u":{"t":5}}}},' +
      '"data":{"u":18446744073709551615,"neg":-9223372036854775808,"safe":1234567890123456,"arr":[9007199254740993,1],' +
      '"s":"12345678901234567890","f":12345678901234567.5,"huge":123456789012345678901234567890}}';
    const [e] = oneCollectorJsonDecoder.decode(Buffer.from(line), ctxFor()).events;
    expect(fieldOf(e, "u")).toMatchObject({ value: "18446744073709551615", type: "uint64", annotations: { wireType: 5 } });
    expect(fieldOf(e, "neg")).toMatchObject({ value: "-9223372036854775808", type: "int64" });
    expect(fieldOf(e, "safe")).toMatchObject({ value: 1234567890123456, type: "int64" });
    expect(fieldOf(e, "arr").value).toEqual(["9007199254740993", 1]);
    expect(fieldOf(e, "s")).toMatchObject({ value: "12345678901234567890", type: "string" });
    expect(fieldOf(e, "f").type).toBe("double");
    expect(fieldOf(e, "huge").type).toBe("double");
    expect(fieldOf(e, "ext.sdk.seq").value).toBe("9007199254740993");
    const big = makeJsonLinesBatch(3, 40, { bigInts: true });
    const events = oneCollectorJsonDecoder.decode(big, ctxFor()).events;
    expect(fieldOf(events[2], "Data.Doc.SizeInBytes")).toMatchObject({ value: "18446744073709551557", type: "uint64" });
    expect(fieldOf(events[2], "Session.SamplingClientIdValue")).toMatchObject({ value: "9007199254740993", type: "int64" });
  });

  it("the exact parser agrees with JSON.parse where numbers are safe, and rejects what JSON.parse rejects", () => {
    const samples = [
      '{"a":12345678901234567890,"b":[1,2.5,-3e2,true,false,null],"c":{"d":"\\u00e9\\n\\"x\\""},"__proto__":{"x":1}}',
      '[12345678901234567890, {"k" : "v"} ]',
    ];
    for (const s of samples) {
      const exact = parseJsonExact(s);
      const plain = JSON.parse(s);
      expect(JSON.stringify(exact, (_k, v) => (v instanceof BigIntLiteral ? `#${v.text}` : v))).toBe(
        JSON.stringify(plain, (_k, v) => (typeof v === "number" && !Number.isSafeInteger(v) && Number.isInteger(v) ? "#big" : v)).replace(
          /"#big"/g,
          '"#12345678901234567890"',
        ),
      );
    }
    expect(Object.getPrototypeOf(parseJsonExact('{"__proto__":{"x":1},"n":12345678901234567890}'))).toBe(Object.prototype);
    for (const bad of [
      '{"a":12345678901234567890,}',
      '{"a":12345678901234567890',
      '{"a":012345678901234567}',
      '{"a":12345678901234567890}x',
      '{"a":"\x01","b":12345678901234567}',
    ]) {
      expect(() => JSON.parse(bad)).toThrow();
      expect(() => parseJsonExact(bad)).toThrow();
    }
  });

  it("sniffs JSON lines but not Bond", () => {
    expect(oneCollectorJsonDecoder.sniff!(Buffer.from(renderJsonEvent({ name: "x" })))).toBeGreaterThanOrEqual(0.9);
    expect(oneCollectorJsonDecoder.sniff!(Buffer.from([0x29, 0x03, 0x34, 0x2e, 0x30]))).toBe(0);
    expect(oneCollectorJsonDecoder.sniff!(Buffer.alloc(0))).toBe(0);
  });

  it("applies the event and field limits with findings", () => {
    const body = makeJsonLinesBatch(5, 30);
    const limits = { ...DEFAULT_DECODE_LIMITS, maxEvents: 3, maxFieldsPerEvent: 10 };
    const { events, findings } = oneCollectorJsonDecoder.decode(body, ctxFor({ limits }));
    expect(events).toHaveLength(3);
    expect(events.every((e) => e.fields.length === 10)).toBe(true);
    expect(findings.map((f) => f.code)).toContain("json.too-many-events");
    expect(findings.filter((f) => f.code === "json.too-many-fields")).toHaveLength(3);
    const deep = Buffer.from(
      `{"name":"deep","data":{"a":${"[".repeat(100_000)}${"]".repeat(100_000)},"b":${'{"x":'.repeat(5000)}1${"}".repeat(5000)}}}`,
    );
    const r = oneCollectorJsonDecoder.decode(deep, ctxFor());
    expect(r.events[0].name).toBe("deep");
    expect(r.findings.map((f) => f.code)).toContain("json.too-deep");
  });
});

describe("upload context: effective content type and encoding", () => {
  it("lets the query win over the header, lower-cased, without parameters", () => {
    const beaconQuery = new URLSearchParams("cors=true&content-type=application/x-json-stream&w=0&NoResponseBody=true");
    expect(effectiveContentType([["Content-Type", "text/plain;charset=UTF-8"]], beaconQuery)).toBe("application/x-json-stream");
    expect(effectiveContentType([["content-type", "Application/X-JSON-Stream; charset=utf-8"]], new URLSearchParams())).toBe(
      "application/x-json-stream",
    );
    expect(effectiveContentType([], new URLSearchParams())).toBe("");
    expect(effectiveContentEncoding([["Content-Encoding", "GZIP"]], new URLSearchParams())).toBe("gzip");
    expect(effectiveContentEncoding([["Content-Encoding", "deflate"]], new URLSearchParams("content-encoding=gzip"))).toBe("gzip");
    expect(
      effectiveContentEncoding(
        [
          ["Content-Encoding", "gzip"],
          ["Content-Encoding", "br"],
        ],
        new URLSearchParams(),
      ),
    ).toBe("gzip, br");
    expect(effectiveContentEncoding([], new URLSearchParams())).toBeUndefined();
  });

  const body = jsonLines([renderJsonEvent(WORD_EVENT), renderJsonEvent({ name: "Second" })]);

  it("decodes a gzip upload announced in the Content-Encoding header", () => {
    const p = prepare(
      "/OneCollector/1.0/",
      [
        ["Content-Type", "application/x-json-stream"],
        ["Content-Encoding", "gzip"],
      ],
      gzipSync(body),
    );
    expect(p.applied).toEqual(["gzip"]);
    expect(p.ctx.contentType).toBe("application/x-json-stream");
    expect(oneCollectorJsonDecoder.decode(p.body, p.ctx).events.map((e) => e.name)).toEqual([WORD_EVENT.name, "Second"]);
  });

  it("decodes a gzip upload announced by the content-encoding query parameter (Teams web)", () => {
    const p = prepare(
      "/OneCollector/1.0/?cors=true&content-type=application/x-json-stream&content-encoding=gzip",
      [["Content-Type", "application/x-json-stream"]],
      gzipSync(body),
    );
    expect(p.applied).toEqual(["gzip"]);
    expect(oneCollectorJsonDecoder.decode(p.body, p.ctx).events).toHaveLength(2);
  });

  it("decodes a beacon: text/plain over HTTP, the real type in the query", () => {
    const p = prepare(
      "/OneCollector/1.0/?cors=true&content-type=application/x-json-stream&client-id=NO_AUTH&apikey=x",
      [["Content-Type", "text/plain;charset=UTF-8"]],
      body,
    );
    expect(p.ctx.contentType).toBe("application/x-json-stream");
    expect(p.applied).toEqual([]);
    expect(oneCollectorJsonDecoder.contentTypes).toContain(p.ctx.contentType);
    expect(oneCollectorJsonDecoder.decode(p.body, p.ctx).events).toHaveLength(2);
  });
});

describe("content encoding", () => {
  const plain = makeJsonLinesBatch(20, 20);

  it("exports its defaults", () => {
    expect(DEFAULT_MAX_DECODED_BYTES).toBe(64 * 1024 * 1024);
    expect(DEFAULT_MAX_RATIO).toBe(1000);
  });

  it("leaves identity, none and empty alone", () => {
    for (const d of [undefined, "", "identity", "None", " identity "]) {
      const r = decodeContentEncoding(plain, d);
      expect(r.body).toBe(plain);
      expect(r.applied).toEqual([]);
    }
  });

  it("undoes gzip, zlib (deflate), brotli and a chain", () => {
    expect(Buffer.from(decodeContentEncoding(gzipSync(plain), "gzip").body).equals(plain)).toBe(true);
    expect(Buffer.from(decodeContentEncoding(gzipSync(plain), "x-gzip").body).equals(plain)).toBe(true);
    const z = decodeContentEncoding(deflateSync(plain), "deflate");
    expect(z.applied).toEqual(["deflate(zlib)"]);
    expect(Buffer.from(z.body).equals(plain)).toBe(true);
    const br = decodeContentEncoding(brotliCompressSync(plain), "br");
    expect(br.applied).toEqual(["br"]);
    expect(Buffer.from(br.body).equals(plain)).toBe(true);
    // "gzip, br": gzip applied first, so br is undone first.
    const chain = decodeContentEncoding(brotliCompressSync(gzipSync(plain)), "gzip, br");
    expect(chain.applied).toEqual(["br", "gzip"]);
    expect(Buffer.from(chain.body).equals(plain)).toBe(true);
  });

  it("sniffs what the 1DS C++ SDK labels deflate: raw DEFLATE, gzip or zlib", () => {
    const raw = decodeContentEncoding(deflateRawSync(plain), "deflate");
    expect(raw.applied).toEqual(["deflate(raw)"]);
    expect(Buffer.from(raw.body).equals(plain)).toBe(true);
    const gz = decodeContentEncoding(gzipSync(plain), "deflate");
    expect(gz.applied).toEqual(["deflate(gzip)"]);
    expect(Buffer.from(gz.body).equals(plain)).toBe(true);
    for (const level of [1, 6, 9]) {
      const zl = deflateSync(plain, { level });
      expect(isZlibHeader(zl)).toBe(true);
      expect(Buffer.from(decodeContentEncoding(zl, "deflate").body).equals(plain)).toBe(true);
    }
    expect(isZlibHeader(Buffer.from([0x78, 0x9d]))).toBe(false);
  });

  it("recognises undeclared gzip", () => {
    const r = decodeContentEncoding(gzipSync(plain), undefined);
    expect(r.applied).toEqual(["gzip"]);
    expect(Buffer.from(r.body).equals(plain)).toBe(true);
    expect(r.findings.map((f) => f.code)).toEqual(["encoding.undeclared"]);
  });

  it("throws encoding.corrupt for damaged streams and encoding.unsupported for unknown codings", () => {
    const gz = gzipSync(plain);
    expect(decodeError(() => decodeContentEncoding(gz.subarray(0, gz.length >> 1), "gzip"))).toMatchObject({
      code: "encoding.corrupt",
      offset: 0,
    });
    expect(decodeError(() => decodeContentEncoding(Buffer.from("\x00\x01 binary, not gzip"), "gzip")).code).toBe("encoding.corrupt");
    expect(decodeError(() => decodeContentEncoding(Buffer.from("hello, not deflate at all"), "deflate")).code).toBe("encoding.corrupt");
    expect(decodeError(() => decodeContentEncoding(Buffer.from("garbage!!"), "br")).code).toBe("encoding.corrupt");
    expect(decodeError(() => decodeContentEncoding(plain, "compress"))).toMatchObject({ code: "encoding.unsupported", offset: 0 });
  });

  it("keeps an uncompressed JSON body that is labelled compressed, with a finding", () => {
    for (const label of ["gzip", "deflate", "br"]) {
      const r = decodeContentEncoding(plain, label);
      expect(r.body).toBe(plain);
      expect(r.applied).toEqual([]);
      expect(r.findings.map((f) => f.code)).toEqual(["encoding.not-applied"]);
    }
  });

  it("lets small bodies expand far beyond the ratio", () => {
    const zeros = Buffer.alloc(512 * 1024);
    const tiny = brotliCompressSync(zeros);
    expect(zeros.length / tiny.length).toBeGreaterThan(DEFAULT_MAX_RATIO);
    expect(decodeContentEncoding(tiny, "br").body.length).toBe(zeros.length);
  });

  it("stops a ratio bomb above 1 MiB with encoding.ratio", () => {
    const bomb = brotliCompressSync(Buffer.alloc(32 * 1024 * 1024), { params: { [zc.BROTLI_PARAM_QUALITY]: 5 } });
    expect(decodeError(() => decodeContentEncoding(bomb, "br"))).toMatchObject({ code: "encoding.ratio", offset: 0 });
    const gz = gzipSync(Buffer.alloc(8 * 1024 * 1024));
    expect(decodeError(() => decodeContentEncoding(gz, "gzip", { maxBytes: DEFAULT_MAX_DECODED_BYTES, maxRatio: 100 })).code).toBe(
      "encoding.ratio",
    );
  });

  it("stops a 200 MB gzip bomb with encoding.too-large, quickly and without expanding it", async () => {
    const bomb = await gzipZeros(200 * 1024 * 1024);
    expect(bomb.length).toBeLessThan(1024 * 1024);
    const before = process.memoryUsage();
    const t0 = performance.now();
    const err = decodeError(() => decodeContentEncoding(bomb, "gzip"));
    const ms = performance.now() - t0;
    const after = process.memoryUsage();
    expect(err).toMatchObject({ code: "encoding.too-large", offset: 0 });
    expect(ms).toBeLessThan(5000);
    // Fully expanded it would hold ≥ 200 MiB (twice that once concatenated); the cap keeps it near 64 MiB.
    expect(after.rss - before.rss).toBeLessThan(180 * 1024 * 1024);
    // Labelled deflate, or a tighter cap: the same.
    expect(decodeError(() => decodeContentEncoding(bomb, "deflate")).code).toBe("encoding.too-large");
    const t1 = performance.now();
    expect(decodeError(() => decodeContentEncoding(bomb, "gzip", { maxBytes: 2 * 1024 * 1024, maxRatio: DEFAULT_MAX_RATIO })).code).toBe(
      "encoding.too-large",
    );
    expect(performance.now() - t1).toBeLessThan(1000);
  });
});

/** gzip of `n` zero bytes, streamed so the zeros never exist in memory at once. */
function gzipZeros(n: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const gz = createGzip({ level: 9 });
    const out: Buffer[] = [];
    gz.on("data", (c: Buffer) => out.push(c));
    gz.on("end", () => resolve(Buffer.concat(out)));
    gz.on("error", reject);
    const chunk = Buffer.alloc(1024 * 1024);
    let left = n;
    const pump = () => {
      while (left > 0) {
        const size = Math.min(left, chunk.length);
        left -= size;
        if (!gz.write(chunk.subarray(0, size))) return void gz.once("drain", pump);
      }
      gz.end();
    };
    pump();
  });
}

describe("App Insights", () => {
  const envelope = (name: string) => ({
    name: "Microsoft.ApplicationInsights.0123456789abcdef.Event",
    time: "2026-11-24T08:00:00.000Z",
    iKey: "01234567-89ab-cdef-0123-456789abcdef",
    sampleRate: 100,
    tags: { "ai.cloud.role": "web", "ai.user.id": "u1", "ai.session.id": "s1", "ai.internal.sdkVersion": "javascript:3.3.0" },
    data: {
      baseType: "EventData",
      baseData: { ver: 2, name, properties: { button: "save", "Data.Doc": "x" }, measurements: { duration: 12.5, count: 3 } },
    },
  });
  const ctx = ctxFor({ path: "/v2/track", contentType: "application/json" });

  it("decodes an array of envelopes", () => {
    const body = Buffer.from(JSON.stringify([envelope("ButtonClicked"), envelope("PageLoaded")]));
    const { events, findings } = appInsightsDecoder.decode(body, ctx);
    expect(findings).toEqual([]);
    expect(events).toHaveLength(2);
    const [e] = events;
    expect(e.name).toBe("Microsoft.ApplicationInsights.0123456789abcdef.Event");
    expect(e.iKey).toBe("01234567-89ab-cdef-0123-456789abcdef");
    expect(e.time).toBe("2026-11-24T08:00:00.000Z");
    expect(fieldOf(e, "sampleRate")).toMatchObject({ part: "envelope", value: 100 });
    expect(fieldOf(e, "data.baseType")).toMatchObject({ part: "envelope", value: "EventData" });
    expect(fieldOf(e, "tags.ai.cloud.role")).toMatchObject({ part: "A", value: "web" });
    expect(fieldOf(e, "data.baseData.name")).toMatchObject({ part: "B", value: "ButtonClicked" });
    expect(fieldOf(e, "data.baseData.properties.button")).toMatchObject({ part: "B", value: "save" });
    expect(fieldOf(e, "data.baseData.properties.Data.Doc").value).toBe("x");
    expect(fieldOf(e, "data.baseData.measurements.duration")).toMatchObject({ value: 12.5, type: "double" });
    expect(fieldOf(events[1], "data.baseData.name").value).toBe("PageLoaded");
    expect(appInsightsDecoder.paths!.some((re) => re.test("/v2.1/track"))).toBe(true);
    expect(appInsightsDecoder.sniff!(body)).toBeGreaterThan(0.5);
  });

  it("decodes JSON lines of envelopes", () => {
    const body = Buffer.from(`${JSON.stringify(envelope("A"))}\n${JSON.stringify(envelope("B"))}\n`);
    const { events } = appInsightsDecoder.decode(body, ctx);
    expect(events.map((e) => fieldOf(e, "data.baseData.name").value)).toEqual(["A", "B"]);
    expect(events[1].byteRange![0]).toBe(events[0].byteRange![1] + 1);
  });

  it("throws json.invalid for a broken array", () => {
    expect(decodeError(() => appInsightsDecoder.decode(Buffer.from('[{"name":"x"},'), ctx)).code).toBe("json.invalid");
  });
});

describe("generic decoders", () => {
  it("generic JSON: one pseudo-event with body fields", () => {
    const body = Buffer.from('{"user":{"id":12345678901234567890,"name":"a"},"tags":["x","y"],"ok":true}');
    const ctx = ctxFor({ path: "/api/report", contentType: "application/json" });
    expect(genericJsonDecoder.sniff!(body)).toBeGreaterThan(0.5);
    const { events } = genericJsonDecoder.decode(body, ctx);
    expect(events).toHaveLength(1);
    expect(events[0].name).toBe("json:/api/report");
    expect(events[0].fields).toEqual([
      { path: "user.id", part: "body", value: "12345678901234567890", type: "uint64" },
      { path: "user.name", part: "body", value: "a", type: "string" },
      { path: "tags", part: "body", value: ["x", "y"], type: "array" },
      { path: "ok", part: "body", value: true, type: "bool" },
    ]);
    const arr = genericJsonDecoder.decode(Buffer.from('[{"a":1},2]'), ctx).events[0];
    expect(arr.fields.map((f) => f.path)).toEqual(["[0].a", "[1]"]);
    expect(genericJsonDecoder.decode(Buffer.from("42"), ctx).events[0].fields).toEqual([
      { path: "$", part: "body", value: 42, type: "int64" },
    ]);
    expect(genericJsonDecoder.sniff!(Buffer.from('{"a":1}\n{"b":2}'))).toBe(0);
    expect(decodeError(() => genericJsonDecoder.decode(Buffer.from('{"a": x}'), ctx))).toMatchObject({ code: "json.invalid", offset: 6 });
  });

  it("form: one field per parameter", () => {
    const body = Buffer.from("a=1&b=hello+world&c=%E2%9C%93&a=2&flag");
    const { events } = formDecoder.decode(body, ctxFor({ path: "/collect", contentType: "application/x-www-form-urlencoded" }));
    expect(events[0].name).toBe("form:/collect");
    expect(events[0].fields.map((f) => [f.path, f.value, f.part])).toEqual([
      ["a", "1", "body"],
      ["b", "hello world", "body"],
      ["c", "✓", "body"],
      ["a", "2", "body"],
      ["flag", "", "body"],
    ]);
  });

  it("multipart: text parts as values, files as name/size/sha256", () => {
    const boundary = "----exhaustBoundary7MA4YWxkTrZu0gW";
    const file = Buffer.from([0, 1, 2, 3, 255, 254, 13, 10, 45, 45]);
    const body = Buffer.concat([
      Buffer.from(`preamble\r\n--${boundary}\r\nContent-Disposition: form-data; name="comment"\r\n\r\nhello\r\nworld\r\n`),
      Buffer.from(
        `--${boundary}\r\nContent-Disposition: form-data; name="dump"; filename="crash.dmp"\r\nContent-Type: application/octet-stream\r\n\r\n`,
      ),
      file,
      Buffer.from(
        `\r\n--${boundary}\r\nContent-Disposition: form-data; name="meta"\r\nContent-Type: application/json\r\n\r\n{"a":1}\r\n--${boundary}--\r\n`,
      ),
    ]);
    const ctx = ctxFor({
      path: "/upload",
      contentType: "multipart/form-data",
      headers: [["Content-Type", `multipart/form-data; boundary="${boundary}"`]],
    });
    const { events, findings } = multipartDecoder.decode(body, ctx);
    expect(findings).toEqual([]);
    expect(events[0].name).toBe("multipart:/upload");
    expect(events[0].fields).toEqual([
      { path: "comment", part: "body", value: "hello\r\nworld", type: "string" },
      { path: "dump.filename", part: "body", value: "crash.dmp", type: "string" },
      { path: "dump.contentType", part: "body", value: "application/octet-stream", type: "string" },
      { path: "dump.size", part: "body", value: file.length, type: "int64" },
      { path: "dump.sha256", part: "body", value: createHash("sha256").update(file).digest("hex"), type: "string" },
      { path: "meta", part: "body", value: '{"a":1}', type: "string" },
    ]);
    const cut = multipartDecoder.decode(body.subarray(0, body.length - 40), ctx);
    expect(cut.findings.map((f) => f.code)).toContain("multipart.truncated");
    expect(decodeError(() => multipartDecoder.decode(Buffer.from("no parts here"), ctx)).code).toBe("multipart.no-parts");
    expect(decodeError(() => multipartDecoder.decode(Buffer.from("x"), ctxFor({ contentType: "multipart/form-data" }))).code).toBe(
      "multipart.no-boundary",
    );
  });

  it("opaque: size, sha256, content type and a hex prefix", () => {
    const body = Buffer.from(Array.from({ length: 40 }, (_, i) => i));
    const { events } = opaqueDecoder.decode(body, ctxFor({ contentType: "application/octet-stream" }));
    expect(events).toEqual([
      {
        index: 0,
        name: "opaque",
        byteRange: [0, 40],
        fields: [
          { path: "size", part: "body", value: 40, type: "int64" },
          { path: "sha256", part: "body", value: createHash("sha256").update(body).digest("hex"), type: "string" },
          { path: "contentType", part: "body", value: "application/octet-stream", type: "string" },
          { path: "prefix", part: "body", value: body.subarray(0, 32).toString("hex"), type: "bytes" },
        ],
      },
    ]);
  });
});

// ---------------------------------------------------------------------------------------------
// Robustness: truncated and mutated bodies either decode or throw DecodeError, never anything else.

/** Text mutations; a fixed fast-check seed per seed set (a failure replays as is) and no shrinking. */
const textFuzzOptions = (seeds: Uint8Array[]): FuzzOptions => ({
  mutations: textMutations,
  params: { seed: 0x5eed ^ seeds.length, endOnFailure: true },
});

describe(`robustness (${FUZZ_RUNS} mutated bodies per decoder)`, () => {
  const boundary = "fuzzBoundary";
  const multipartBody = Buffer.from(
    `--${boundary}\r\nContent-Disposition: form-data; name="a"\r\n\r\nhello\r\n--${boundary}\r\n` +
      `Content-Disposition: form-data; name="f"; filename="x.bin"\r\nContent-Type: application/octet-stream\r\n\r\n\x00\x01\x02\r\n--${boundary}--\r\n`,
  );
  const big = '{"name":"b","data":{"n":12345678901234567890,"a":[1,{"b":9007199254740993}],"s":"x\\u00e9"}}';
  const aiBody = Buffer.from(
    JSON.stringify([
      {
        name: "Microsoft.ApplicationInsights.x.Event",
        time: "2026-01-01T00:00:00Z",
        iKey: "k",
        tags: { "ai.user.id": "u" },
        data: { baseType: "EventData", baseData: { name: "e", properties: { a: "b" }, measurements: { m: 1.5 } } },
      },
    ]),
  );
  const cases: Array<{ decoder: Decoder; seeds: Uint8Array[]; ctx: DecodeContext }> = [
    {
      decoder: oneCollectorJsonDecoder,
      seeds: [makeJsonLinesBatch(3, 20), makeJsonLinesBatch(2, 10, { bigInts: true }), Buffer.from(big)],
      ctx: ctxFor(),
    },
    { decoder: appInsightsDecoder, seeds: [aiBody, Buffer.from(aiBody.toString().slice(1, -1))], ctx: ctxFor({ path: "/v2/track" }) },
    {
      decoder: genericJsonDecoder,
      seeds: [Buffer.from('{"a":[1,2,{"b":"c"}],"d":"e=f&g=h","n":12345678901234567890}'), Buffer.from("[1,2,3]")],
      ctx: ctxFor({ contentType: "application/json" }),
    },
    {
      decoder: formDecoder,
      seeds: [Buffer.from("a=1&b=%E2%9C%93&c=x+y&d=%ZZ")],
      ctx: ctxFor({ contentType: "application/x-www-form-urlencoded" }),
    },
    {
      decoder: multipartDecoder,
      seeds: [multipartBody],
      ctx: ctxFor({ contentType: "multipart/form-data", headers: [["Content-Type", `multipart/form-data; boundary=${boundary}`]] }),
    },
    { decoder: opaqueDecoder, seeds: [Buffer.from([1, 2, 3])], ctx: ctxFor({ contentType: "" }) },
  ];
  for (const { decoder, seeds, ctx } of cases) {
    it(
      `${decoder.id}: returns or throws DecodeError`,
      () => {
        fuzzDecoder(decoder, ctx, seeds, textFuzzOptions(seeds));
      },
      FUZZ_TIMEOUT_MS,
    );
  }

  it(
    "onecollector-json: arbitrary JSON in envelope, ext, metadata tags and data never escapes",
    () => {
      const anyJson = fc.jsonValue({ maxDepth: 4 });
      const eventArb = fc.record(
        {
          name: fc.oneof(fc.string(), anyJson),
          time: fc.oneof(fc.string(), fc.integer(), anyJson),
          iKey: anyJson,
          ext: fc.oneof(anyJson, fc.dictionary(fc.string(), fc.oneof(anyJson, fc.record({ f: anyJson, privTags: anyJson })))),
          data: fc.oneof(anyJson, fc.dictionary(fc.string(), anyJson)),
        },
        { requiredKeys: [] },
      );
      fc.assert(
        fc.property(eventArb, fc.array(fc.string(), { maxLength: 3 }), (event, noise) => {
          const body = Buffer.from([JSON.stringify(event), ...noise].join("\n"));
          try {
            const r = oneCollectorJsonDecoder.decode(body, ctxFor());
            expect(r.events).toHaveLength(1);
            for (const f of r.events[0].fields) expect(typeof f.path).toBe("string");
          } catch (e) {
            if (!(e instanceof DecodeError)) throw e;
          }
          // The same bytes through the App Insights and generic decoders.
          for (const d of [appInsightsDecoder, genericJsonDecoder]) {
            try {
              d.decode(body, ctxFor());
            } catch (e) {
              if (!(e instanceof DecodeError)) throw e;
            }
          }
        }),
        { numRuns: Math.min(FUZZ_RUNS, 10_000), seed: 0x1d5 },
      );
    },
    FUZZ_TIMEOUT_MS,
  );

  it(
    "content encoding: returns or throws DecodeError",
    () => {
      const plain = makeJsonLinesBatch(2, 10);
      const seeds = [gzipSync(plain), deflateSync(plain), deflateRawSync(plain), brotliCompressSync(plain)];
      const labels = ["gzip", "deflate", "deflate", "br"];
      let i = 0;
      fuzzDecode(
        seeds,
        (b) => {
          const label = labels[i++ % labels.length];
          return decodeContentEncoding(b, label, { maxBytes: 1024 * 1024, maxRatio: DEFAULT_MAX_RATIO });
        },
        textFuzzOptions(seeds),
      );
    },
    FUZZ_TIMEOUT_MS,
  );
});

describe("byte offsets of JSON syntax errors", () => {
  it("maps a decoded text position back to the bytes it came from, invalid UTF-8 included", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), fc.nat(), (bytes, n) => {
        const buf = Buffer.from(bytes);
        const text = buf.toString("utf8");
        // Positions between characters (not inside a surrogate pair).
        const chars = Array.from(text);
        const position = chars.slice(0, n % (chars.length + 1)).join("").length;
        const offset = utf8ByteOffset(buf, 0, buf.length, position);
        expect(offset).toBeGreaterThanOrEqual(0);
        expect(offset).toBeLessThanOrEqual(buf.length);
        // The bytes before the offset decode to exactly the text before the position.
        expect(buf.subarray(0, offset).toString("utf8")).toBe(text.slice(0, position));
      }),
      { numRuns: 5000, seed: 0x0ff5e7 },
    );
  });

  it("reports the byte of the error in a body with invalid UTF-8 before it", () => {
    const body = Buffer.concat([Buffer.from('{"a": "'), Buffer.from([0xff, 0xfe, 0xe2, 0x82]), Buffer.from('", "b": x}')]);
    const err = decodeError(() => genericJsonDecoder.decode(body, ctxFor({ path: "/api/report", contentType: "application/json" })));
    expect(err.code).toBe("json.invalid");
    expect(body[err.offset]).toBe("x".charCodeAt(0));
  });
});
