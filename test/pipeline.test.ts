import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { gzipSync } from "node:zlib";
import { httpsThroughProxy } from "./helpers/client.js";
import { runCli } from "./helpers/cli.js";
import { openDatabase } from "../src/store/database.js";
import { eventually, startTestProxy, type TestProxy } from "./helpers/proxy.js";

const HOST = "browser.events.data.microsoft.com";

interface EventJson {
  session: string;
  exchange: string;
  event: { id: number; name: string; time: string; format: string; iKey: string };
  fields: Array<{
    path: string;
    part: string;
    value: unknown;
    type: string;
    declared: { piiKind: string | null; customerContent: boolean | null };
  }>;
}

const eventsJson = (p: TestProxy, ...args: string[]): EventJson[] =>
  runCli(["events", "--db", p.dbFile, "--json", ...args])
    .stdout.split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l) as EventJson);

describe("decoding captured uploads end to end", () => {
  let p: TestProxy;
  beforeAll(async () => {
    p = await startTestProxy({ mode: "sinkhole" });
  });
  afterAll(() => p.close());

  it("shows a 1DS JSON upload sent through the proxy in `exhaust events --json`, field by field", async () => {
    const event = {
      name: "Office.Word.FileOpen.UserInitiatedOpen",
      time: "2026-11-24T08:00:00.123Z",
      ver: "4.0",
      iKey: "o:0123456789abcdef0123456789abcdef",
      ext: {
        app: { name: "Word", ver: "16.0.17029" },
        device: { localId: "s:6C4E3D2A-1111-4000-8000-000000000000" },
        metadata: { f: { "Activity.Duration": { t: 4 } } },
      },
      data: { "Data.Doc.Ext": "docx", "Activity.Success": true, "Activity.Duration": 1234 },
    };
    const second = { ...event, name: "Office.Word.FileClose" };
    const res = await httpsThroughProxy({
      proxyPort: p.port,
      host: HOST,
      path: "/OneCollector/1.0/?cors=true&content-type=application/x-json-stream",
      headers: {
        "content-type": "text/plain;charset=UTF-8",
        "content-encoding": "gzip",
        APIKey: "0123456789abcdef0123456789abcdef-aaaa-bbbb-7000",
      },
      body: gzipSync(`${JSON.stringify(event)}\n${JSON.stringify(second)}`),
      ca: [p.caPem],
    });
    expect(JSON.parse(res.body.toString())).toEqual({ acc: 2 });
    const events = await eventually(() => {
      const e = eventsJson(p, "--session", "test", "--name", "Office.Word.*");
      return e.length === 2 ? e : undefined;
    });
    const [open] = events;
    expect(open.event).toMatchObject({ name: event.name, time: event.time, format: "onecollector-json", iKey: event.iKey });
    const byPath = new Map(open.fields.map((f) => [f.path, f]));
    expect(byPath.get("Data.Doc.Ext")).toMatchObject({ part: "C", value: "docx", type: "string" });
    expect(byPath.get("Activity.Success")).toMatchObject({ part: "C", value: true, type: "bool" });
    expect(byPath.get("Activity.Duration")).toMatchObject({ part: "C", value: 1234, type: "int64" });
    expect(byPath.get("ext.device.localId")).toMatchObject({ part: "A", value: event.ext.device.localId });
    expect(byPath.get("ext.app.ver")).toMatchObject({ part: "A", value: "16.0.17029" });
    // `show` prints the same event for people.
    const shown = runCli(["show", String(open.event.id), "--db", p.dbFile]);
    expect(shown.status).toBe(0);
    expect(shown.stdout).toMatch(/Data\.Doc\.Ext\s+diagnostic\s+\S+\s+\S+\s+docx/);
    // The upload's header facts are kept on the exchange.
    const facts = JSON.parse(
      (p.db.prepare("SELECT upload_facts FROM exchanges WHERE id = ?").get(open.exchange) as { upload_facts: string }).upload_facts,
    );
    expect(facts.tenantIds).toEqual(["0123456789abcdef0123456789abcdef"]);
  });

  it("keeps the raw bytes and reports a decode error with its offset for a body that does not decode", async () => {
    await httpsThroughProxy({
      proxyPort: p.port,
      host: HOST,
      path: "/OneCollector/1.0/",
      headers: { "content-type": "application/x-json-stream", "content-encoding": "gzip" },
      body: Buffer.from("this is not gzip at all"),
      ca: [p.caPem],
    });
    const row = await eventually(
      () =>
        p.db
          .prepare(
            `SELECT x.id, x.decoder, f.code, f.offset FROM exchanges x JOIN decode_findings f ON f.exchange_id = x.id
              WHERE x.path = '/OneCollector/1.0/' AND f.severity = 'error'`,
          )
          .get() as { id: string; decoder: string; code: string; offset: number } | undefined,
    );
    expect(row.code).toMatch(/^encoding\./);
    expect(row.offset).toBe(0);
    const opaque = eventsJson(p, "--name", "opaque");
    expect(opaque.some((e) => e.exchange === row.id)).toBe(true);
  });

  it("re-decodes stored raw bodies on `exhaust reprocess --all`", () => {
    const before = eventsJson(p, "--limit", "1000").length;
    const r = runCli(["reprocess", "--db", p.dbFile, "--session", "test", "--all", "--json"]);
    expect(r.status).toBe(0);
    const summary = JSON.parse(r.stdout);
    expect(summary.exchanges).toBeGreaterThanOrEqual(2);
    expect(eventsJson(p, "--limit", "1000").length).toBe(before);
    // The old events' field rows went with them: every stored field row belongs to a current event.
    const db = openDatabase(p.dbFile, { readonly: true });
    const counts = db
      .prepare(
        `SELECT (SELECT COUNT(*) FROM field_values) AS rows,
                (SELECT COALESCE(SUM(field_count), 0) FROM events) AS declared,
                (SELECT COUNT(*) FROM field_values v WHERE NOT EXISTS (SELECT 1 FROM events e WHERE e.id = v.event_id)) AS orphans`,
      )
      .get() as { rows: number; declared: number; orphans: number };
    db.close();
    expect(counts.orphans).toBe(0);
    expect(counts.rows).toBe(counts.declared);
    expect(counts.rows).toBeGreaterThan(0);
    expect(runCli(["reprocess", "--db", p.dbFile, "--session", "nope"]).status).toBe(2);
  });
});
