import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { EventJson } from "../src/evidence/format.js";
import { createHash } from "node:crypto";
import { rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { openDatabase } from "../src/store/database.js";
import { runCli } from "./helpers/cli.js";
import { writeEventTranscript } from "./helpers/event-transcript.js";
import { renderJsonEvent, typed, type JsonEventSpec } from "./helpers/json-events.js";
import { tempDir } from "./helpers/proxy.js";
import { writeSaz } from "./helpers/saz-writer.js";

let dir: string;
beforeAll(() => {
  dir = tempDir("exhaust-import-");
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// One line of `exhaust events --json` (the same record as `export --format jsonl`).
type EventOut = EventJson;

const events = (db: string, session: string): EventOut[] =>
  runCli(["events", "--db", db, "--session", session, "--json", "--limit", "10000"])
    .stdout.split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l) as EventOut);

const importOk = (db: string, file: string, session: string) => {
  const r = runCli(["import", file, "--db", db, "--session", session, "--json"]);
  expect(r.stderr).toBe("");
  expect(r.status).toBe(0);
  return JSON.parse(r.stdout.trim().split("\n")[0]) as { format: string; exchanges: number; events: number; skipped: number };
};

/** What went in, as the decoder must give it back: Part C keys verbatim, Part A under ext. */
function expectEventMatches(got: EventOut, spec: JsonEventSpec): void {
  expect(got.event.name).toBe(spec.name);
  if (spec.time) expect(got.event.time).toBe(spec.time);
  if (spec.iKey) expect(got.event.iKey).toBe(spec.iKey);
  const byPath = new Map(got.fields.map((f) => [f.path, f]));
  for (const [k, v] of Object.entries(spec.data ?? {})) {
    const plain = v !== null && typeof v === "object" && "value" in v ? (v as { value: unknown }).value : v;
    expect(byPath.get(k), k).toMatchObject({ part: "C", value: plain });
  }
  for (const [ext, values] of Object.entries(spec.ext ?? {})) {
    for (const [k, v] of Object.entries(values))
      expect(byPath.get(`ext.${ext}.${k}`), `ext.${ext}.${k}`).toMatchObject({ part: "A", value: v });
  }
  for (const f of got.fields) expect(f.category, f.path).toMatch(/^(content|functional|diagnostic)$/);
}

const WINDOWS_EVENTS: JsonEventSpec[] = [
  {
    name: "Census.OS",
    time: "2026-11-20T10:00:00.1234567Z",
    ver: "4.0",
    iKey: "o:0a89d516ae714e01ae89c96d185e9ae3",
    metadataForm: "windows",
    ext: {
      utc: { pgName: "WINCORE", eventFlags: 514 },
      device: { localId: "s:11111111-2222-4333-8444-555555555555" },
      os: { name: "Windows" },
    },
    data: { OSEdition: "Professional", OSSKU: typed(48, "int32"), OSUILocale: "en-US", DeviceTimeZone: "Pacific Standard Time" },
  },
  {
    name: "Microsoft.Windows.Inventory.Core.InventoryApplicationAdd",
    time: "2026-11-20T10:00:05.0000000Z",
    ver: "4.0",
    iKey: "o:0a89d516ae714e01ae89c96d185e9ae3",
    metadataForm: "windows",
    ext: { user: { localId: "w:AAAAAAAA-BBBB-4CCC-8DDD-EEEEEEEEEEEE" } },
    data: { Name: "Contoso Editor", Version: "1.2.3", Publisher: "Contoso", RootDirPath: "C:\\Program Files\\Contoso" },
  },
];
const TAGS = [["Product and Service Performance", "Device Connectivity and Configuration"], ["Software Setup and Inventory"]];

describe("Windows Diagnostic Data Viewer", () => {
  it("imports an EventTranscript.db: every event and field as put in, with its data-category tags", () => {
    const file = join(dir, "EventTranscript.db");
    const times = [Date.parse("2026-11-20T10:00:00Z"), Date.parse("2026-11-20T10:00:05Z")];
    writeEventTranscript(
      file,
      WINDOWS_EVENTS.map((spec, i) => ({ payload: JSON.parse(renderJsonEvent(spec)), time: times[i], tags: TAGS[i] })),
    );
    const db = join(dir, "ddv.db");
    expect(importOk(db, file, "ddv")).toMatchObject({ format: "event-transcript", exchanges: 2, events: 2, skipped: 0 });
    const got = events(db, "ddv");
    expect(got).toHaveLength(2);
    got.forEach((e, i) => {
      expect(e.event.format).toBe("onecollector-json");
      expectEventMatches(e, WINDOWS_EVENTS[i]);
    });
    const store = openDatabase(db, { readonly: true });
    const rows = store.prepare("SELECT request_headers AS h, started_at AS t, host FROM exchanges ORDER BY seq").all() as Array<{
      h: string;
      t: number;
      host: string;
    }>;
    const options = JSON.parse(store.prepare("SELECT options_json FROM sessions WHERE name = 'ddv'").pluck().get() as string);
    store.close();
    rows.forEach((r, i) => {
      const tags = (JSON.parse(r.h) as Array<[string, string]>).find(([n]) => n === "X-Exhaust-Ddv-Tags")?.[1];
      expect(tags).toBe(TAGS[i].join("; "));
      expect(r.t).toBe(times[i]);
      expect(r.host).toBe("v10c.events.data.microsoft.com");
    });
    expect(options.imported).toMatchObject({ file: "EventTranscript.db", format: "event-transcript" });
    expect(options.imported.sha256).toMatch(/^[0-9a-f]{64}$/);
  });

  it("imports Get-DiagnosticData JSON (Windows PowerShell dates, payload as text)", () => {
    const file = join(dir, "diagnostic-data.json");
    writeFileSync(
      file,
      JSON.stringify(
        WINDOWS_EVENTS.map((spec, i) => ({
          Name: spec.name,
          Timestamp: `/Date(${1763632800000 + i * 1000})/`,
          Payload: renderJsonEvent(spec),
          IsBasic: i === 0,
          DiagnosticDataTypes: [11, 3 + i],
        })),
        null,
        2,
      ),
    );
    const db = join(dir, "gdd.db");
    expect(importOk(db, file, "gdd")).toMatchObject({ format: "diagnostic-data-json", exchanges: 2, events: 2 });
    events(db, "gdd").forEach((e, i) => expectEventMatches(e, WINDOWS_EVENTS[i]));
  });
});

describe("Fiddler SAZ", () => {
  it("imports the raw sessions (chunked and binary bodies, CONNECT skipped) into matching events and fields", async () => {
    const office: JsonEventSpec[] = [
      {
        name: "Office.Word.FileOpen.UserInitiatedOpen",
        time: "2026-11-24T08:00:00.123Z",
        iKey: "o:0123456789abcdef0123456789abcdef",
        ext: { app: { name: "Word", ver: "16.0.17029" } },
        data: { "Data.Doc.Ext": "docx", "Activity.Success": true, "Activity.Duration": typed(1234, "int64") },
      },
      { name: "Office.Word.FileClose", time: "2026-11-24T08:00:01.000Z", data: { "Activity.Count": typed(2, "int32") } },
    ];
    const gz = gzipSync(`${renderJsonEvent(office[1])}\n`);
    const file = join(dir, "capture.saz");
    await writeSaz(file, [
      {
        requestLine: "CONNECT mobile.events.data.microsoft.com:443 HTTP/1.1",
        requestHeaders: [["Host", "mobile.events.data.microsoft.com:443"]],
        status: 200,
      },
      {
        requestLine: "POST https://mobile.events.data.microsoft.com/OneCollector/1.0/ HTTP/1.1",
        requestHeaders: [
          ["Host", "mobile.events.data.microsoft.com"],
          ["Content-Type", "application/x-json-stream"],
        ],
        requestBody: `${renderJsonEvent(office[0])}\n`,
        chunked: 50,
        status: 200,
        responseHeaders: [["Content-Type", "application/json"]],
        responseBody: '{"acc":1}',
        beginRequest: "2026-11-24T09:00:00.1234567+01:00",
      },
      {
        requestLine: "POST https://mobile.events.data.microsoft.com/OneCollector/1.0/ HTTP/1.1",
        requestHeaders: [
          ["Host", "mobile.events.data.microsoft.com"],
          ["Content-Type", "application/x-json-stream"],
          ["Content-Encoding", "gzip"],
        ],
        requestBody: gz,
        status: 200,
        responseBody: '{"acc":1}',
      },
    ]);
    const db = join(dir, "saz.db");
    expect(importOk(db, file, "saz")).toMatchObject({ format: "saz", exchanges: 2, events: 2, skipped: 1 });
    const got = events(db, "saz");
    got.forEach((e, i) => expectEventMatches(e, office[i]));
    expect(got[0].fields.find((f) => f.path === "Activity.Duration")!.type).toBe("int64");
    const store = openDatabase(db, { readonly: true });
    const rows = store.prepare("SELECT request_body_sha256 AS sha, started_at AS t FROM exchanges ORDER BY seq").all() as Array<{
      sha: string;
      t: number;
    }>;
    store.close();
    expect(rows[0].sha).toBe(
      createHash("sha256")
        .update(`${renderJsonEvent(office[0])}\n`)
        .digest("hex"),
    ); // de-chunked
    expect(rows[0].t).toBe(Date.parse("2026-11-24T08:00:00.123Z"));
    expect(rows[1].sha).toBe(createHash("sha256").update(gz).digest("hex")); // byte for byte
  });
});

describe("exhaust JSONL and bad input", () => {
  it("imports exhaust's own JSONL export back into the same events and field values", () => {
    const db = join(dir, "ddv.db");
    const jsonl = join(dir, "ddv.jsonl");
    const r = runCli(["export", "--format", "jsonl", "--db", db, "--session", "ddv", "--out", jsonl]);
    expect(r.status).toBe(0);
    const db2 = join(dir, "jsonl.db");
    expect(importOk(db2, jsonl, "again")).toMatchObject({ format: "exhaust-jsonl", events: 2 });
    const before = events(db, "ddv");
    const after = events(db2, "again");
    expect(after.map((e) => e.event.name)).toEqual(before.map((e) => e.event.name));
    after.forEach((e, i) => {
      const values = (x: EventOut) => x.fields.filter((f) => f.part === "C").map((f) => [f.path, f.value]);
      expect(values(e)).toEqual(values(before[i]));
    });
  });

  it("rejects an unrecognised file with exit 2 and a one-line error; a taken session name too", () => {
    const file = join(dir, "notes.txt");
    writeFileSync(file, "hello, these are not telemetry\n");
    const r = runCli(["import", file, "--db", join(dir, "x.db")]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/^exhaust: cannot import .*notes\.txt: unrecognised format.*\[EXH_IMPORT_FORMAT\]\n$/);
    const again = runCli(["import", join(dir, "EventTranscript.db"), "--db", join(dir, "ddv.db"), "--session", "ddv"]);
    expect(again.status).toBe(2);
    expect(again.stderr).toContain("EXH_IMPORT_SESSION_EXISTS");
    const broken = join(dir, "broken.har");
    writeFileSync(broken, '{"log":{"entries":[{"request":');
    const r3 = runCli(["import", broken, "--db", join(dir, "x.db")]);
    expect(r3.status).toBe(2);
    expect(r3.stderr).toContain("EXH_IMPORT_FORMAT");
    const notHar = join(dir, "package.json");
    writeFileSync(notHar, '{"name": "not a har", "version": "1.0.0"}\n');
    const r4 = runCli(["import", notHar, "--db", join(dir, "x.db"), "--session", "nothing"]);
    expect(r4.status).toBe(2);
    expect(r4.stderr).toContain("without log.entries");
    expect(runCli(["sessions", "--db", join(dir, "x.db"), "--json"]).stdout).not.toContain('"nothing"');
  });
});
