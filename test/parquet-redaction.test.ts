/**
 * Credentials in field values stay out of a Parquet dataset: a value under a credential key and a
 * value holding the Authorization header's token are keyed hashes in the `fields` table (the
 * export reads an event's fields packed, and redacts them value by value), every other value is
 * exactly SQLite's.
 */
import { readdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import Database from "better-sqlite3";
import { asyncBufferFromFile, parquetReadObjects } from "hyparquet";
import { compressors } from "hyparquet-compressors";
import { afterAll, expect, it } from "vitest";
import { runCli, spawnProxy, waitExit } from "./helpers/cli.js";
import { httpsThroughProxy } from "./helpers/client.js";
import { JSON_HEADERS, JSON_PATH } from "./helpers/capture-session.js";
import { makeJsonLinesBatch } from "./helpers/json-events.js";
import { tempDir } from "./helpers/proxy.js";

const HOST = "mobile.events.data.microsoft.com";
const TOKEN = "parquet-redact-token-7d2e91c04b";
const PASSWORD = "parquet-redact-password-0a8f3c";

const root = tempDir("exhaust-parquet-redact-");
afterAll(() => rmSync(root, { recursive: true, force: true }));

it("redacts credential field values in the fields table and keeps every other value", async () => {
  const db = join(root, "exhaust.db");
  const certs = join(root, "certs");
  const p = await spawnProxy(["--db", db, "--certs", certs, "--session", "s1", "--mode", "sinkhole"]);
  try {
    const body = makeJsonLinesBatch(4, 30, { seed: 7 })
      .toString("utf8")
      .replace('"Data.Doc.Location":"SharePoint"', `"Data.Doc.Location":${JSON.stringify(`id ${TOKEN}`)}`)
      .replace('"Data.Doc.Ext":"docx"', `"password":${JSON.stringify(PASSWORD)}`);
    expect(body.includes(TOKEN) && body.includes(PASSWORD)).toBe(true);
    const res = await httpsThroughProxy({
      proxyPort: p.port,
      host: HOST,
      path: JSON_PATH,
      headers: { ...JSON_HEADERS, authorization: `Bearer ${TOKEN}` },
      body: Buffer.from(body),
      ca: [readFileSync(join(certs, "exhaust-ca.pem"), "utf8")],
    });
    expect(res.status).toBe(200);
  } finally {
    p.child.kill("SIGTERM");
    await waitExit(p.child);
  }
  const out = join(root, "dataset");
  const r = runCli(["export", "--format", "parquet", "--out", out, "--db", db, "--certs", certs, "--machine", "m1", "--json"]);
  expect(r.status, r.stderr).toBe(0);

  const dir = join(out, "fields");
  const files = readdirSync(dir, { recursive: true, encoding: "utf8" })
    .filter((f) => f.endsWith(".parquet"))
    .map((f) => join(dir, f));
  expect(files.length).toBeGreaterThan(0);
  const rows: Array<Record<string, unknown>> = [];
  for (const f of files) {
    expect(readFileSync(f).includes(TOKEN)).toBe(false);
    expect(readFileSync(f).includes(PASSWORD)).toBe(false);
    rows.push(...((await parquetReadObjects({ file: await asyncBufferFromFile(f), compressors })) as Array<Record<string, unknown>>));
  }
  const sqlite = new Database(db, { readonly: true });
  try {
    const want = sqlite.prepare("SELECT event_id, idx, path, value FROM fields ORDER BY event_id, idx").all() as Array<
      Record<string, unknown>
    >;
    const got = rows
      .map((x) => ({ event_id: Number(x.event_id), idx: x.idx, path: x.path, value: x.value }))
      .sort((a, b) => a.event_id - b.event_id || (a.idx as number) - (b.idx as number));
    expect(got.length).toBe(want.length);
    let redacted = 0;
    for (const [i, w] of want.entries()) {
      expect([got[i].event_id, got[i].idx, got[i].path]).toEqual([w.event_id, w.idx, w.path]);
      const v = w.value as string | null;
      if (v !== null && (v.includes(TOKEN) || v.includes(PASSWORD))) {
        redacted++;
        expect(got[i].value).toMatch(/hmac-sha256:[0-9a-f]{64}/);
      } else {
        expect(got[i].value).toBe(v);
      }
    }
    expect(redacted).toBe(2);
  } finally {
    sqlite.close();
  }
}, 120_000);
