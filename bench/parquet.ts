/**
 * Parquet export and fleet study (issue 18).
 *
 * 1. Export of the queries benchmark's database (1,000,000 events × 40 fields, bench/queries.ts)
 *    to a new dataset, in a child process (bench/parquet-child.ts) so its peak RSS is the
 *    export's own: field rows per second (target ≥ 500,000/s) and peak RSS (≤ 500 MB).
 * 2. `exhaust study` over 100 machines × 100,000 events (10 M event rows, generated straight into
 *    a dataset by DuckDB with the export's schema and partitioning) and a verdict per machine and
 *    profile: time to open the datasets and answer the verdict matrix (target ≤ 3 s).
 */
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { openDuck, sqlString } from "../src/export/duckdb.js";
import { DATASET_MANIFEST, PARQUET_SCHEMA_VERSION, SCHEMA_VERSION_KEY } from "../src/export/parquet-schema.js";
import { PACKAGE_ROOT } from "../src/paths.js";
import { openDatasets } from "../src/study/dataset.js";
import { matrixRows } from "../src/study/study.js";
import { round } from "./load.js";
import { queryBenchDatabase } from "./queries.js";

const STUDY_MACHINES = 100;
const EVENTS_PER_MACHINE = Number(process.env.EXHAUST_BENCH_STUDY_EVENTS ?? 100_000);
const PROFILES = ["office-neither", "office-required", "no-content"];

async function exportBench(say: (m: string) => void): Promise<object> {
  const { file, buildSeconds } = await queryBenchDatabase(say);
  const out = mkdtempSync(join(tmpdir(), "exhaust-bench-parquet-"));
  try {
    say("parquet: exporting 1,000,000 events x 40 fields");
    const r = spawnSync(process.execPath, [join(PACKAGE_ROOT, "dist", "bench", "parquet-child.js"), file, join(out, "dataset")], {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "inherit"],
      maxBuffer: 1 << 20,
    });
    if (r.status !== 0) throw new Error(`parquet export child failed (${r.status})`);
    const m = JSON.parse(r.stdout) as { ms: number; cpuMs: number; rows: Record<string, number>; maxRssKb: number; bytes: number };
    return {
      database: file,
      databaseBuildSeconds: buildSeconds,
      seconds: round(m.ms / 1000, 1),
      fieldRows: m.rows.fields,
      events: m.rows.events,
      fieldRowsPerSec: Math.round(m.rows.fields / (m.ms / 1000)),
      cpuSeconds: round(m.cpuMs / 1000, 1),
      // What the export costs whatever the neighbours do (all its threads counted).
      fieldRowsPerCpuSecond: Math.round(m.rows.fields / (m.cpuMs / 1000)),
      cpuShareOfWall: round(m.cpuMs / m.ms, 2),
      peakRssMb: Math.round(m.maxRssKb / 1024),
      datasetMb: Math.round(m.bytes / 1e6),
      targets: { fieldRowsPerSec: 500_000, peakRssMb: 500 },
    };
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}

/** A dataset of `machines` × `events` event rows, sessions and verdicts, written by DuckDB in the export's layout. */
async function generateFleet(dir: string): Promise<void> {
  const duck = await openDuck({ threads: 2, memoryLimit: "1GB" });
  const meta = `KV_METADATA {${SCHEMA_VERSION_KEY}: '${PARQUET_SCHEMA_VERSION}'}`;
  const opts = `FORMAT parquet, COMPRESSION zstd, PARTITION_BY (lab, machine, session), FILENAME_PATTERN 'part-{i}', ${meta}`;
  const machine = (n: string) => `'vm-' || lpad(CAST(${n} AS VARCHAR), 3, '0')`;
  const lab = (n: string) => `CASE WHEN ${n} % 2 = 0 THEN 'policy-off' ELSE 'policy-on' END`;
  try {
    const total = STUDY_MACHINES * EVENTS_PER_MACHINE;
    await duck.conn.run(
      `COPY (SELECT i AS id, 'x' || (i // 100) AS exchange_id, CAST(i % 100 AS INTEGER) AS idx, 'onecollector-json' AS format,
                    'Office.App.Feature' || (i % 200) || '.Action' || (i % 7) AS name,
                    TIMESTAMPTZ '2026-11-24 00:00:00+00' + to_milliseconds(i) AS time, NULL::VARCHAR AS time_text, 'o:tenant' AS ikey,
                    40 AS field_count, (['required', 'optional', 'optional', 'essential', 'unknown'])[1 + i % 5] AS ms_group,
                    'event.glob' AS group_rule, 'diagnostic' AS category, NULL::VARCHAR AS catalog_category, NULL::VARCHAR AS subtype,
                    CAST(i % 500 = 0 AS INTEGER) AS content_fields, CAST(i % 3 = 0 AS INTEGER) AS personal_fields,
                    ${lab(`i // ${EVENTS_PER_MACHINE}`)} AS lab, ${machine(`i // ${EVENTS_PER_MACHINE}`)} AS machine, 'capture-1' AS session
               FROM range(${total}) t(i))
         TO ${sqlString(join(dir, "events"))} (${opts})`,
    );
    await duck.conn.run(
      `COPY (SELECT m AS session_id, 'capture-1' AS name, TIMESTAMPTZ '2026-11-24 00:00:00+00' AS started_at, NULL::TIMESTAMPTZ AS ended_at,
                    'bench' AS tool_version, NULL::VARCHAR AS ca_fingerprint, '{}' AS options_json, NULL::VARCHAR AS incomplete, now() AS exported_at,
                    ${lab("m")} AS lab, ${machine("m")} AS machine, 'capture-1' AS session
               FROM range(${STUDY_MACHINES}) t(m))
         TO ${sqlString(join(dir, "sessions"))} (${opts})`,
    );
    await duck.conn.run(
      `COPY (SELECT m * 10 + p AS id, ([${PROFILES.map(sqlString).join(", ")}])[1 + p] AS profile,
                    (['pass', 'fail', 'warn', 'inconclusive'])[1 + (m + p) % 4] AS status,
                    TIMESTAMPTZ '2026-11-25 00:00:00+00' + to_minutes(m) AS created_at, '{}' AS report_json,
                    ${lab("m")} AS lab, ${machine("m")} AS machine, 'capture-1' AS session
               FROM range(${STUDY_MACHINES}) t(m), range(${PROFILES.length}) q(p))
         TO ${sqlString(join(dir, "verdicts"))} (${opts})`,
    );
  } finally {
    duck.close();
  }
  writeFileSync(
    join(dir, DATASET_MANIFEST),
    JSON.stringify({ format: "exhaust-parquet", schemaVersion: PARQUET_SCHEMA_VERSION, sessions: {}, exports: [] }),
  );
}

export async function studyBench(say: (m: string) => void): Promise<object> {
  const dir = mkdtempSync(join(tmpdir(), "exhaust-bench-study-"));
  try {
    say(`parquet: generating ${STUDY_MACHINES} machines x ${EVENTS_PER_MACHINE} events`);
    mkdirSync(dir, { recursive: true });
    const g = performance.now();
    await generateFleet(dir);
    const generateSeconds = round((performance.now() - g) / 1000, 1);
    const runs: number[] = [];
    let machines = 0;
    for (let i = 0; i < 3; i++) {
      const t = performance.now();
      const duck = await openDatasets([dir]);
      try {
        const rows = await matrixRows(duck.conn, []);
        machines = new Set(rows.map((r) => r.machine)).size;
      } finally {
        duck.close();
      }
      runs.push(performance.now() - t);
    }
    return {
      machines,
      events: STUDY_MACHINES * EVENTS_PER_MACHINE,
      generateSeconds,
      verdictMatrixSeconds: runs.map((ms) => round(ms / 1000, 2)),
      targetSeconds: 3,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function parquetBench(say: (m: string) => void): Promise<object> {
  return { export: await exportBench(say), study: await studyBench(say) };
}
