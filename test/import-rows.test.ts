/**
 * The importer decodes, classifies and stores each upload from the body it holds in memory, as a
 * new exchange (no read-back, no DELETEs). Every row it writes must be what the pipeline writes for
 * the same stored exchange read back from the database: `exhaust reprocess --all` (which loads each
 * upload and replaces its results in place, keeping event ids) must change nothing at all.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import Database from "better-sqlite3";
import { existsSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { runCli } from "./helpers/cli.js";
import { tempDir } from "./helpers/proxy.js";
import { REAL_WORLD_SAMPLES } from "./helpers/real-world.js";

let dir: string;
beforeAll(() => {
  dir = tempDir("exhaust-import-rows-");
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Every row the processing stage writes, in a stable order (decoded_at, a clock reading, left out). */
function snapshot(file: string): Record<string, unknown[]> {
  const db = new Database(file, { readonly: true });
  try {
    const all = (sql: string) => db.prepare(sql).raw().all();
    return {
      exchanges: all(
        `SELECT id, decoder, content_encoding, upload_facts, classified_with, decoded_at IS NOT NULL FROM exchanges ORDER BY session_id, seq`,
      ),
      events: all("SELECT * FROM events ORDER BY id"),
      fieldValues: all("SELECT * FROM field_values ORDER BY event_id, idx"),
      fieldPaths: all("SELECT * FROM field_paths ORDER BY id"),
      fieldClasses: all("SELECT * FROM field_classes ORDER BY id"),
      classificationFindings: all("SELECT * FROM classification_findings ORDER BY event_id, idx"),
      decodeFindings: all("SELECT * FROM decode_findings ORDER BY exchange_id, idx"),
      requestItems: all("SELECT * FROM request_items ORDER BY exchange_id, idx"),
    };
  } finally {
    db.close();
  }
}

const SECRET_HEADERS = [
  { name: "Authorization", value: "Bearer eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ1c2VyIn0.c2lnbmF0dXJl" },
  { name: "Client-Id", value: "NO_AUTH" },
];

/** A 1DS JSON-lines upload of `events` events whose values are all different (as the bench's). */
function upload(n: number, events: number): string {
  const lines: string[] = [];
  for (let e = 0; e < events; e++) {
    const data: Record<string, unknown> = { "Event.Sequence": n * 1000 + e, "Activity.Success": e % 2 === 0, "Data.Doc.Ext": "docx" };
    for (let i = 0; i < 12; i++) data[`Data.Field${i}`] = `value ${n}-${e}-${i}`;
    data["Data.UserEmail"] = `someone${n}@contoso.com`;
    data["Data.Text"] = `the quick brown fox ${n} jumps over the lazy dog and writes a sentence`;
    lines.push(
      JSON.stringify({
        name: `Office.Test.Event${e % 5}`,
        time: new Date(Date.UTC(2026, 10, 24, 8) + n).toISOString(),
        ver: "4.0",
        iKey: "o:0123456789abcdef0123456789abcdef",
        ext: { app: { name: "Word" }, device: { localId: `s:6C4E3D2A-0000-4000-8000-${String(n).padStart(12, "0")}` } },
        data,
      }),
    );
  }
  return lines.join("\n");
}

/**
 * A HAR past the importer's batches (about 100 exchanges per commit, 1,000 events per
 * transaction): gzip bodies as base64, query strings and credential headers (request items), a
 * GET without a body, a body that does not decode (findings), one upload of 1,500 events.
 */
function writeHar(file: string, entries: number): void {
  const entry = (n: number) => {
    const body = upload(n, n === 150 ? 1500 : 1 + (n % 4));
    const gz = n % 3 === 0;
    const get = n % 50 === 7;
    const broken = n % 50 === 13;
    const headers = [
      { name: "Content-Type", value: "application/x-json-stream" },
      ...(gz ? [{ name: "Content-Encoding", value: "gzip" }] : []),
      ...(n % 5 === 0 ? SECRET_HEADERS : []),
    ];
    return JSON.stringify({
      startedDateTime: new Date(Date.UTC(2026, 10, 24, 8) + n * 10).toISOString(),
      time: 5,
      request: {
        method: get ? "GET" : "POST",
        url: `https://mobile.events.data.microsoft.com/OneCollector/1.0/${n % 7 === 0 ? `?cors=true&apikey=k${n}&upload-time=${n}` : ""}`,
        httpVersion: "HTTP/1.1",
        headers,
        ...(get
          ? {}
          : {
              postData: gz
                ? { mimeType: "application/x-json-stream", text: gzipSync(body).toString("base64"), encoding: "base64" }
                : { mimeType: "application/x-json-stream", text: broken ? `${body.slice(0, 40)}\n{"name": ` : body },
            }),
      },
      response: { status: 200, headers: [], content: { size: 10, mimeType: "application/json", text: '{"acc":1}' } },
    });
  };
  const parts = ['{"log":{"version":"1.2","creator":{"name":"test","version":"1"},"entries":['];
  for (let i = 0; i < entries; i++) parts.push(`${i ? ",\n" : ""}${entry(i)}`);
  parts.push("]}}");
  writeFileSync(file, parts.join(""));
}

describe("import stores what the pipeline stores for the same exchanges", () => {
  const cases: Array<[string, () => string]> = [
    [
      "a generated HAR across the importer's batches",
      () => {
        const har = join(dir, "generated.har");
        writeHar(har, 260);
        return har;
      },
    ],
  ];
  const real = join(REAL_WORLD_SAMPLES, "psappinsights/Capture-1.har");
  if (existsSync(real)) cases.push(["a real Fiddler HAR (psappinsights Capture-1)", () => real]);

  it.each(cases)(
    "%s: `reprocess --all` finds every row as it is",
    (name, make) => {
      const har = make();
      const db = join(dir, `${name.replace(/\W+/g, "-")}.db`);
      const r = runCli(["import", har, "--db", db, "--session", "s", "--json"], undefined, 120_000);
      expect(r.status, r.stderr).toBe(0);
      const summary = JSON.parse(r.stdout.trim()) as { exchanges: number; events: number };
      const imported = snapshot(db);
      expect(imported.exchanges).toHaveLength(summary.exchanges);
      expect(imported.events).toHaveLength(summary.events);
      expect(imported.events.length).toBeGreaterThan(0);
      expect(imported.fieldValues.length).toBeGreaterThan(imported.events.length);
      // Every exchange was processed by the import itself.
      for (const x of imported.exchanges as unknown[][]) expect(x[1], String(x[0])).not.toBeNull();
      if (name.startsWith("a generated")) {
        expect(summary.events).toBeGreaterThan(2000);
        expect(imported.requestItems.length).toBeGreaterThan(0);
        expect(imported.decodeFindings.length).toBeGreaterThan(0);
        expect(imported.classificationFindings.length + imported.requestItems.length).toBeGreaterThan(0);
      }
      const again = runCli(["reprocess", "--db", db, "--session", "s", "--all", "--json"], undefined, 120_000);
      expect(again.status, again.stderr).toBe(0);
      expect(JSON.parse(again.stdout.trim())).toMatchObject({ exchanges: summary.exchanges, events: summary.events });
      const reprocessed = snapshot(db);
      for (const table of Object.keys(imported)) expect(reprocessed[table], table).toEqual(imported[table]);
    },
    240_000,
  );
});
