/**
 * The Parquet dataset: two sessions captured through the real proxy (`exhaust proxy --lab
 * --machine`, a child process each) on two databases, exported into one dataset directory by the
 * CLI, then read back by DuckDB (`exhaust study`) and by an independent reader (hyparquet), and
 * compared with what SQLite holds. A second capture and export appends only the new rows.
 */
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";
import Database from "better-sqlite3";
import { asyncBufferFromFile, parquetMetadataAsync, parquetReadObjects, parquetSchema } from "hyparquet";
import { compressors } from "hyparquet-compressors";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli, spawnProxy, waitExit } from "./helpers/cli.js";
import { httpsThroughProxy } from "./helpers/client.js";
import { JSON_HEADERS, JSON_PATH } from "./helpers/capture-session.js";
import { makeJsonLinesBatch } from "./helpers/json-events.js";
import { tempDir } from "./helpers/proxy.js";
import { PACKAGE_ROOT } from "../src/paths.js";
import { type ColumnKind, PARQUET_SCHEMA_VERSION, PARQUET_TABLES } from "../src/export/parquet-schema.js";

const HOST = "mobile.events.data.microsoft.com";
const SECRET = "Bearer parquet-test-credential-4f1c9a7e2b";

interface Machine {
  dir: string;
  db: string;
  certs: string;
  machine: string;
}

const root = tempDir("exhaust-parquet-");
const dataset = join(root, "dataset");
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** Captures `batches` uploads into session `session` of the machine's database through `exhaust proxy`. */
async function capture(m: Machine, session: string, batches: number[], seed: number): Promise<void> {
  const p = await spawnProxy([
    "--db",
    m.db,
    "--certs",
    m.certs,
    "--session",
    session,
    "--mode",
    "sinkhole",
    "--lab",
    "lab-1",
    "--machine",
    m.machine,
  ]);
  try {
    const ca = readFileSync(join(m.certs, "exhaust-ca.pem"), "utf8");
    for (const [i, n] of batches.entries()) {
      const res = await httpsThroughProxy({
        proxyPort: p.port,
        host: HOST,
        path: JSON_PATH,
        headers: { ...JSON_HEADERS, authorization: SECRET },
        body: makeJsonLinesBatch(n, 30, { seed: seed + i }),
        ca: [ca],
      });
      expect(res.status).toBe(200);
    }
  } finally {
    p.child.kill("SIGTERM");
    await waitExit(p.child);
  }
}

function exportDb(m: Machine): { status: number | null; summary: Record<string, unknown>; stderr: string } {
  const r = runCli(["export", "--format", "parquet", "--out", dataset, "--db", m.db, "--certs", m.certs, "--json"]);
  return { status: r.status, summary: r.status === 0 ? (JSON.parse(r.stdout) as Record<string, unknown>) : {}, stderr: r.stderr };
}

/** What SQLite holds per session of the machine's database. */
function sqliteCounts(m: Machine): Array<Record<string, unknown>> {
  const db = new Database(m.db, { readonly: true });
  try {
    return db
      .prepare(
        `SELECT 'lab-1' AS lab, s.machine, s.name AS session,
                (SELECT COUNT(*) FROM exchanges x WHERE x.session_id = s.id) AS exchanges,
                (SELECT COUNT(*) FROM events e WHERE e.session_id = s.id) AS events,
                (SELECT COUNT(*) FROM field_values v JOIN events e ON e.id = v.event_id WHERE e.session_id = s.id) AS fields,
                (SELECT COUNT(*) FROM field_values v JOIN events e ON e.id = v.event_id WHERE e.session_id = s.id AND v.category = 'content') AS content_fields
           FROM sessions s ORDER BY s.name`,
      )
      .all() as Array<Record<string, unknown>>;
  } finally {
    db.close();
  }
}

function studySummary(): Array<Record<string, unknown>> {
  const r = runCli(["study", dataset, "--format", "json"]);
  expect(r.status, r.stderr).toBe(0);
  return (JSON.parse(r.stdout) as { summary: Array<Record<string, unknown>> }).summary;
}

function parquetFiles(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, encoding: "utf8" })
    .filter((f) => f.endsWith(".parquet"))
    .map((f) => join(dir, f))
    .sort();
}

const fileHash = (f: string) => createHash("sha256").update(readFileSync(f)).digest("hex");

async function readAll(files: string[]): Promise<Array<Record<string, unknown>>> {
  const rows: Array<Record<string, unknown>> = [];
  for (const f of files)
    rows.push(...((await parquetReadObjects({ file: await asyncBufferFromFile(f), compressors })) as Array<Record<string, unknown>>));
  return rows;
}

const machines: Machine[] = ["vm-a", "vm-b"].map((machine) => {
  const dir = join(root, machine);
  mkdirSync(dir);
  return { dir, db: join(dir, "exhaust.db"), certs: join(dir, "certs"), machine };
});

beforeAll(async () => {
  await capture(machines[0], "baseline", [12, 7], 1);
  await capture(machines[1], "baseline", [5, 9, 3], 100);
}, 120_000);

describe("exhaust export --format parquet", () => {
  it("writes both machines into one Hive-partitioned dataset, and study finds exactly SQLite's event, field and content counts", () => {
    for (const m of machines) {
      const r = exportDb(m);
      expect(r.status, r.stderr).toBe(0);
      expect(r.summary.secrets).toBe("redacted");
    }
    for (const table of ["sessions", "connections", "exchanges", "events", "fields", "findings"]) {
      for (const m of machines) {
        const files = parquetFiles(join(dataset, table, "lab=lab-1", `machine=${m.machine}`, "session=baseline"));
        if (table !== "findings")
          expect(
            files.map((f) => relative(dataset, f)),
            table,
          ).toContain(`${table}/lab=lab-1/machine=${m.machine}/session=baseline/part-0.parquet`);
      }
    }
    const expected = [...sqliteCounts(machines[0]), ...sqliteCounts(machines[1])];
    expect(expected.every((r) => (r.events as number) > 0 && (r.content_fields as number) > 0)).toBe(true);
    expect(studySummary()).toEqual(expected);
  });

  it("hyparquet (an independent reader) reads the same rows, types and values SQLite holds", async () => {
    const m = machines[0];
    const part = join("lab=lab-1", `machine=${m.machine}`, "session=baseline");
    const db = new Database(m.db, { readonly: true });
    try {
      const fieldFiles = parquetFiles(join(dataset, "fields", part));
      // Row order inside a part is not part of the contract: compare in (event, position) order.
      const fields = (await readAll(fieldFiles)).sort(
        (a, b) => Number((a.event_id as bigint) - (b.event_id as bigint)) || (a.idx as number) - (b.idx as number),
      );
      const want = db
        .prepare(
          `SELECT f.event_id, f.idx, f.part, f.path, f.value, f.type, f.pii_kind, f.customer_content, f.category, f.personal, f.rule, f.confidence
             FROM fields f ORDER BY f.event_id, f.idx`,
        )
        .all() as Array<Record<string, unknown>>;
      expect(fields.length).toBe(want.length);
      for (let i = 0; i < want.length; i++) {
        const got = fields[i];
        const w = want[i];
        expect(typeof got.event_id).toBe("bigint");
        expect(got.event_id).toBe(BigInt(w.event_id as number));
        expect([got.idx, got.part, got.path, got.type, got.pii_kind, got.category, got.personal, got.rule, got.confidence]).toEqual([
          w.idx,
          w.part,
          w.path,
          w.type,
          w.pii_kind,
          w.category,
          w.personal,
          w.rule,
          w.confidence,
        ]);
        expect(got.customer_content).toBe(w.customer_content === null ? null : w.customer_content === 1);
        expect(got.value).toBe(w.value);
      }

      const events = await readAll(parquetFiles(join(dataset, "events", part)));
      const wantEvents = db.prepare("SELECT id, name, time, ms_group, content_fields FROM events ORDER BY id").all() as Array<
        Record<string, unknown>
      >;
      expect(events.map((e) => [Number(e.id), e.name, e.ms_group, e.content_fields, e.time_text])).toEqual(
        wantEvents.map((e) => [e.id, e.name, e.ms_group, e.content_fields, e.time]),
      );
      // Timestamps with time zone: the wire's time, parsed, as an instant.
      expect(events[0].time).toBeInstanceOf(Date);
      expect((events[0].time as Date).getTime()).toBe(Date.parse(wantEvents[0].time as string));

      const exchanges = await readAll(parquetFiles(join(dataset, "exchanges", part)));
      const wantX = db
        .prepare("SELECT id, seq, request_body_size, request_complete, started_at FROM exchanges ORDER BY seq")
        .all() as Array<Record<string, unknown>>;
      expect(
        exchanges.map((x) => [x.id, Number(x.seq), Number(x.request_body_size), x.request_complete, (x.started_at as Date).getTime()]),
      ).toEqual(wantX.map((x) => [x.id, x.seq, x.request_body_size, x.request_complete === 1, x.started_at]));
      // Credentials are redacted as in every export: the header's value is a keyed hash.
      const headers = JSON.parse(exchanges[0].request_headers as string) as Array<[string, string]>;
      const auth = headers.find(([n]) => n.toLowerCase() === "authorization");
      expect(auth?.[1]).toMatch(/^hmac-sha256:[0-9a-f]{64}$/);
      expect(readFileSync(parquetFiles(join(dataset, "exchanges", part))[0]).includes("parquet-test-credential")).toBe(false);

      // Logical types, zstd, dictionary-encoded strings and the schema version in the key-value metadata.
      const meta = await parquetMetadataAsync(await asyncBufferFromFile(fieldFiles[0]));
      expect(meta.key_value_metadata?.find((kv) => kv.key === "exhaust_schema_version")?.value).toBe("1");
      const schema = parquetSchema(meta);
      const col = (name: string) => schema.children.find((c) => c.element.name === name)!.element;
      expect(col("event_id").type).toBe("INT64");
      expect(col("customer_content").type).toBe("BOOLEAN");
      expect(col("path").converted_type).toBe("UTF8");
      const chunk = meta.row_groups[0].columns.find((c) => c.meta_data?.path_in_schema[0] === "path")!.meta_data!;
      expect(chunk.codec).toBe("ZSTD");
      expect(chunk.encodings.some((e) => e === "PLAIN_DICTIONARY" || e === "RLE_DICTIONARY")).toBe(true);
      const xMeta = await parquetMetadataAsync(await asyncBufferFromFile(parquetFiles(join(dataset, "exchanges", part))[0]));
      const ts = parquetSchema(xMeta).children.find((c) => c.element.name === "started_at")!.element.logical_type;
      expect(ts).toMatchObject({ type: "TIMESTAMP", isAdjustedToUTC: true });
    } finally {
      db.close();
    }
  });

  it("a second export after more uploads appends only the new rows, in new files", async () => {
    const before = new Map(parquetFiles(dataset).map((f) => [f, fileHash(f)]));
    await capture(machines[0], "baseline", [4], 500); // the same session, continued
    await capture(machines[0], "policy-on", [6], 600); // and a new one
    const r = exportDb(machines[0]);
    expect(r.status, r.stderr).toBe(0);
    const sessions = r.summary.sessions as Array<{ session: string; rows: Record<string, number> }>;
    expect(sessions.find((s) => s.session === "baseline")!.rows).toMatchObject({ exchanges: 1, events: 4 });
    expect(sessions.find((s) => s.session === "policy-on")!.rows).toMatchObject({ exchanges: 1, events: 6 });
    // Every file written before is still there, byte for byte, except the one-row sessions partitions.
    for (const [f, hash] of before) {
      if (f.includes(`${join(dataset, "sessions")}`)) continue;
      expect(fileHash(f), f).toBe(hash);
    }
    expect(parquetFiles(join(dataset, "events", "lab=lab-1", "machine=vm-a", "session=baseline")).map((f) => f.split("/").pop())).toEqual([
      "part-0.parquet",
      "part-1.parquet",
    ]);
    // No row twice, and the totals are SQLite's again.
    const dup = runCli([
      "study",
      dataset,
      "--format",
      "json",
      "--sql",
      "SELECT count(*) AS n, count(DISTINCT (machine, id)) AS distinct_ids FROM events",
    ]);
    expect(dup.status, dup.stderr).toBe(0);
    const [counts] = JSON.parse(dup.stdout) as Array<{ n: number; distinct_ids: number }>;
    expect(counts.n).toBe(counts.distinct_ids);
    expect(studySummary()).toEqual([...sqliteCounts(machines[0]), ...sqliteCounts(machines[1])]);
    // Nothing new: nothing appended.
    const again = exportDb(machines[0]);
    expect(again.status, again.stderr).toBe(0);
    expect((again.summary.rows as Record<string, number>).events).toBe(0);
  }, 120_000);

  it("refuses a directory that is not a dataset, with one line and exit 2", () => {
    const other = join(root, "not-a-dataset");
    mkdirSync(other);
    writeFileSync(join(other, "notes.txt"), "mine");
    const r = runCli(["export", "--format", "parquet", "--out", other, "--db", machines[0].db, "--certs", machines[0].certs]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/EXH_DATASET_INVALID/);
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
    const s = runCli(["study", other]);
    expect(s.status).toBe(2);
    expect(s.stderr).toMatch(/EXH_DATASET_INVALID/);
  });
});

describe("the Parquet schema and labels", () => {
  const PARQUET_TYPE_NAMES: Record<ColumnKind, string> = {
    i64: "INT64 (BIGINT)",
    i32: "INT32 (INTEGER)",
    f64: "DOUBLE",
    bool: "BOOLEAN",
    str: "BYTE_ARRAY, UTF8 (VARCHAR)",
    ts: "INT64 TIMESTAMP(MICROS, isAdjustedToUTC) (TIMESTAMPTZ)",
    blob: "BYTE_ARRAY (BLOB)",
  };

  it("docs/parquet-schema.md describes every column of every table and the current schema version", () => {
    const doc = readFileSync(join(PACKAGE_ROOT, "docs", "parquet-schema.md"), "utf8");
    expect(doc).toContain(`**Current version: ${PARQUET_SCHEMA_VERSION}.**`);
    for (const [table, cols] of Object.entries(PARQUET_TABLES)) {
      const section = doc.split(`### \`${table}\``)[1]?.split("### ")[0];
      expect(section, table).toBeDefined();
      // The whole row: the Parquet type the column's kind is written as, and the same description
      // as the column spec in src/export/parquet-schema.ts (a | inside a cell is escaped in Markdown).
      for (const c of cols) {
        expect(section, `${table}.${c.name}`).toContain(
          `| \`${c.name}\` | ${PARQUET_TYPE_NAMES[c.kind]} | ${c.doc.replaceAll("|", "\\|")} |`,
        );
      }
    }
  });

  it("refuses an empty --machine label on the proxy with one line and exit 2", () => {
    const r = runCli(["proxy", "--db", join(root, "labels.db"), "--certs", join(root, "labels-certs"), "--init-ca", "--machine", ""]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/invalid option --machine.*EXH_OPT_INVALID/);
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
  });
});
