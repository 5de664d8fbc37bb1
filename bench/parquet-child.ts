/**
 * Child of bench/parquet.ts: exports DB (argv[2]) to a new dataset (argv[3]) exactly as
 * `exhaust export --format parquet` does (credentials learned and redacted with a key), and prints
 * the time, row counts and this process's peak RSS as JSON.
 */
import { randomBytes } from "node:crypto";
import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { learnSessionSecrets } from "../src/export/learn-secrets.js";
import { exportParquet } from "../src/export/parquet.js";
import { createRedactor } from "../src/export/redaction.js";
import { openDatabase } from "../src/store/database.js";
import { sessionsForExport } from "../src/store/sessions.js";

const [file, out] = process.argv.slice(2);
const db = openDatabase(file, { readonly: true });
const t = performance.now();
const redactor = createRedactor(randomBytes(32));
learnSessionSecrets(
  db,
  sessionsForExport(db).map((s) => s.id),
  redactor,
);
const summary = await exportParquet(db, { out, database: file, redactor, machine: "bench" });
const ms = performance.now() - t;
db.close();
const size = (dir: string): number =>
  readdirSync(dir, { withFileTypes: true }).reduce(
    (a, e) => a + (e.isDirectory() ? size(join(dir, e.name)) : statSync(join(dir, e.name)).size),
    0,
  );
const usage = process.resourceUsage();
// CPU time (all threads: DuckDB's and libuv's too) alongside the wall time: on a shared machine the
// wall time says how busy the neighbours were, the CPU time what the export costs.
const cpuMs = (usage.userCPUTime + usage.systemCPUTime) / 1000;
process.stdout.write(`${JSON.stringify({ ms, cpuMs, rows: summary.rows, maxRssKb: usage.maxRSS, bytes: size(out) })}\n`);
