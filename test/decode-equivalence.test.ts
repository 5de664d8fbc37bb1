import { describe, expect, it } from "vitest";
import { deflateRawSync, gzipSync } from "node:zlib";
import { chooseDecoder, decodeUpload, type UploadInput } from "../src/decode/registry.js";
import { DEFAULT_DECODE_LIMITS, type DecodedEvent } from "../src/decode/types.js";
import { encodeCsRecords, V, type CsRecordSpec } from "./helpers/bond-writer.js";
import { jsonLines, renderJsonEvent, typed, type JsonEventSpec } from "./helpers/json-events.js";

/**
 * One set of Office-like events, written once as 1DS JSON lines and once as Bond Common Schema
 * records, each sent the ways real clients send them: both must decode to the same events.
 */
const TENANT = "o:0123456789abcdef0123456789abcdef";
const base = [
  { name: "Office.Word.FileOpen.UserInitiatedOpen", ms: Date.UTC(2026, 10, 24, 8, 0, 0, 123), ext: "docx", ok: true, n: 1234 },
  { name: "Office.Excel.Save", ms: Date.UTC(2026, 10, 24, 8, 0, 1, 500), ext: "xlsx", ok: false, n: 7 },
];

const asJson = (e: (typeof base)[number]): JsonEventSpec => ({
  name: e.name,
  time: new Date(e.ms).toISOString(),
  ver: "4.0",
  iKey: TENANT,
  ext: {
    app: { name: "Word", ver: "16.0.17029.20108" },
    device: { localId: "s:6c4e3d2a-1111-4000-8000-000000000000" },
    loc: { tz: "+01:00" },
  },
  data: {
    "Data.Doc.Ext": e.ext,
    "Activity.Success": e.ok,
    "Activity.Duration": typed(e.n, "int64"),
    "Activity.Ratio": typed(0.25, "double"),
    "Data.Doc.Id": typed("0f8fad5b-d9cb-469f-a165-70867728950e", "guid"),
    "Data.Tags": ["a", "b"],
    "Data.User": typed("jdoe@example.com", "string", { pii: 9 }),
    "Data.Title": typed("Salaries 2019", "string", { cc: true }),
  },
});

const asBond = (e: (typeof base)[number]): CsRecordSpec => ({
  ver: "4.0",
  name: e.name,
  time: e.ms,
  iKey: TENANT,
  ext: {
    app: { name: "Word", ver: "16.0.17029.20108" },
    device: { localId: "s:6c4e3d2a-1111-4000-8000-000000000000" },
    loc: { tz: "+01:00" },
  },
  data: {
    "Data.Doc.Ext": V.str(e.ext),
    "Activity.Success": V.bool(e.ok),
    "Activity.Duration": V.i64(e.n),
    "Activity.Ratio": V.dbl(0.25),
    "Data.Doc.Id": V.guid("0f8fad5b-d9cb-469f-a165-70867728950e"),
    "Data.Tags": V.arr.str(["a", "b"]),
    "Data.User": V.pii("jdoe@example.com", 9),
    "Data.Title": V.cc("Salaries 2019"),
  },
});

const jsonBody = jsonLines(base.map((e) => renderJsonEvent(asJson(e))));
const bondBody = Buffer.from(encodeCsRecords(base.map(asBond)));
const COLLECTOR = "/OneCollector/1.0/";

const variants: Record<string, UploadInput> = {
  "JSON lines": { method: "POST", path: COLLECTOR, headers: [["Content-Type", "application/x-json-stream"]], body: jsonBody },
  "JSON lines, gzip": {
    method: "POST",
    path: COLLECTOR,
    headers: [
      ["Content-Type", "application/x-json-stream"],
      ["Content-Encoding", "gzip"],
    ],
    body: gzipSync(jsonBody),
  },
  "JSON lines, text/plain beacon with query parameters": {
    method: "POST",
    path: `${COLLECTOR}?cors=true&content-type=application/x-json-stream&content-encoding=gzip&client-id=NO_AUTH&apikey=0123456789abcdef0123456789abcdef-1-7000`,
    headers: [["Content-Type", "text/plain;charset=UTF-8"]],
    body: gzipSync(jsonBody),
  },
  "Bond, uncompressed": { method: "POST", path: COLLECTOR, headers: [["Content-Type", "application/bond-compact-binary"]], body: bondBody },
  "Bond, raw deflate labelled deflate": {
    method: "POST",
    path: COLLECTOR,
    headers: [
      ["Content-Type", "application/bond-compact-binary"],
      ["Content-Encoding", "deflate"],
    ],
    body: deflateRawSync(bondBody),
  },
  "Bond, gzip labelled deflate": {
    method: "POST",
    path: COLLECTOR,
    headers: [
      ["Content-Type", "application/bond-compact-binary"],
      ["Content-Encoding", "deflate"],
    ],
    body: gzipSync(bondBody),
  },
};

/** What must agree across formats: names, times (as instants), and every non-envelope field. */
function comparable(events: DecodedEvent[]) {
  return events.map((e) => ({
    name: e.name,
    iKey: e.iKey,
    time: Date.parse(e.time ?? ""),
    fields: e.fields
      .filter((f) => f.part !== "envelope")
      .map((f) => ({
        path: f.path,
        part: f.part,
        type: f.type,
        value: f.value,
        pii: f.annotations?.piiKind,
        cc: f.annotations?.customerContent ?? undefined,
      }))
      .sort((a, b) => a.path.localeCompare(b.path)),
  }));
}

describe("the same events in every format and transport", () => {
  const decoded = Object.fromEntries(Object.entries(variants).map(([k, v]) => [k, decodeUpload(v)]));
  const reference = comparable(decoded["JSON lines"].events);

  it.each(Object.keys(variants))("%s decodes without error findings", (k) => {
    expect(decoded[k].findings.filter((f) => f.severity === "error")).toEqual([]);
    expect(decoded[k].events).toHaveLength(2);
  });

  it.each(Object.keys(variants))("%s gives the same names, paths, types and values", (k) => {
    expect(comparable(decoded[k].events)).toEqual(reference);
  });

  it("reads the declared annotations and keeps dotted Part C keys whole", () => {
    const fields = new Map(decoded["Bond, raw deflate labelled deflate"].events[0].fields.map((f) => [f.path, f]));
    expect(fields.get("Data.User")?.annotations?.piiKind).toBe(9);
    expect(fields.get("Data.Title")?.annotations?.customerContent).toBe(true);
    expect(fields.get("Data.Doc.Ext")).toMatchObject({ part: "C", value: "docx" });
    expect(fields.get("ext.loc.tz")).toMatchObject({ part: "A", value: "+01:00" });
    expect(decoded["Bond, raw deflate labelled deflate"].encodings).toEqual(["deflate(raw)"]);
    expect(decoded["Bond, gzip labelled deflate"].encodings).toEqual(["deflate(gzip)"]);
  });

  it("keeps the upload's header facts (tenants from the beacon's query)", () => {
    expect(decoded["JSON lines, text/plain beacon with query parameters"].facts).toMatchObject({
      tenantIds: ["0123456789abcdef0123456789abcdef"],
      clientId: "NO_AUTH",
    });
  });
});

describe("decoder choice", () => {
  const ctx = (path: string, contentType: string) => ({
    method: "POST",
    path,
    query: new URLSearchParams(),
    contentType,
    headers: [] as Array<[string, string]>,
    limits: DEFAULT_DECODE_LIMITS,
  });
  const json = new TextEncoder().encode('{"name":"x"}');
  it.each([
    ["/OneCollector/1.0/", "application/bond-compact-binary", bondBody, "onecollector-bond"],
    ["/OneCollector/1.0/", "application/x-json-stream", json, "onecollector-json"],
    ["/OneCollector/1.0/", "", json, "onecollector-json"],
    ["/Collector/3.0/", "application/bond-compact-binary", new Uint8Array([0x6d, 0x09, 0x0b, 0x00, 0x00]), "aria-collector"],
    ["/v2/track", "application/json", new TextEncoder().encode('[{"name":"x"}]'), "appinsights"],
    ["/api/x", "application/json", new TextEncoder().encode('{"a":1}'), "json"],
    ["/api/x", "application/x-www-form-urlencoded", new TextEncoder().encode("a=1&b=2"), "form"],
    ["/blob", "application/octet-stream", new Uint8Array([1, 2, 3, 4]), "opaque"],
    // A Bond body on an unlabelled request to an unknown path is still recognised by its bytes.
    ["/upload", "", bondBody, "onecollector-bond"],
  ])("%s %s → %s", (path, type, body, expected) => {
    expect(chooseDecoder(body, ctx(path, type)).id).toBe(expected);
  });
});
