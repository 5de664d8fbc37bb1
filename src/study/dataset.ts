/**
 * Datasets as DuckDB views: one view per table of src/export/parquet-schema.ts over the Parquet
 * files of every dataset given (local directories, or s3://, gs://, http(s):// URLs where DuckDB's
 * httpfs extension is installed), with the Hive partitions lab, machine and session as columns.
 */
import { existsSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { DuckDBTypeId, type DuckDBConnection } from "@duckdb/node-api";
import { exhaustError } from "../errors.js";
import { duckReason, openDuck, sqlString, type Duck } from "../export/duckdb.js";
import { readDatasetManifest } from "../export/parquet.js";
import { DATASET_MANIFEST, duckType, isDatasetUrl, PARQUET_TABLES, PARTITION_KEYS, TABLE_NAMES } from "../export/parquet-schema.js";

function hasParquet(dir: string): boolean {
  if (!existsSync(dir)) return false;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (e.isFile() && e.name.endsWith(".parquet")) return true;
    if (e.isDirectory() && hasParquet(join(dir, e.name))) return true;
  }
  return false;
}

/** Opens DuckDB with the dataset views; `close()` when done. */
export async function openDatasets(dirs: readonly string[], options: { threads?: number } = {}): Promise<Duck> {
  if (dirs.length === 0) throw exhaustError("EXH_OPT_INVALID", { option: "DIR", reason: "give at least one dataset directory" });
  for (const d of dirs) {
    if (isDatasetUrl(d)) continue;
    if (!existsSync(d) || !statSync(d).isDirectory() || !existsSync(join(d, DATASET_MANIFEST))) {
      throw exhaustError("EXH_DATASET_INVALID", {
        dir: d,
        reason: `no ${DATASET_MANIFEST} (write one with exhaust export --format parquet --out ${d})`,
      });
    }
    readDatasetManifest(d);
  }
  const duck = await openDuck({ threads: options.threads });
  try {
    if (dirs.some(isDatasetUrl)) await loadHttpfs(duck.conn);
    for (const table of TABLE_NAMES) {
      const globs = dirs
        .filter((d) => isDatasetUrl(d) || hasParquet(join(d, table)))
        .map((d) => sqlString(`${d.replace(/\/+$/, "")}/${table}/*/*/*/*.parquet`));
      const cols = PARQUET_TABLES[table];
      const sql = `SELECT * FROM read_parquet([${globs.join(", ")}], hive_partitioning = true, union_by_name = true,
             hive_types = {${PARTITION_KEYS.map((k) => `'${k}': VARCHAR`).join(", ")}})`;
      const empty = `SELECT ${[...cols.map((c) => `CAST(NULL AS ${duckType(c.kind)}) AS ${c.name}`), ...PARTITION_KEYS.map((k) => `CAST(NULL AS VARCHAR) AS ${k}`)].join(", ")} WHERE false`;
      try {
        await duck.conn.run(`CREATE VIEW ${table} AS ${globs.length ? sql : empty}`);
      } catch (e) {
        // A remote dataset without this table (no blobs without --with-bodies): an empty view.
        if (!dirs.some(isDatasetUrl) || !/no files found/i.test(duckReason(e))) throw e;
        await duck.conn.run(`CREATE VIEW ${table} AS ${empty}`);
      }
    }
  } catch (e) {
    duck.close();
    if ((e as { code?: string }).code?.startsWith("EXH_")) throw e;
    throw exhaustError("EXH_DATASET_INVALID", { dir: dirs.join(", "), reason: duckReason(e) }, e);
  }
  return duck;
}

/** httpfs for remote datasets: loaded only when installed (never downloaded). */
async function loadHttpfs(conn: DuckDBConnection): Promise<void> {
  try {
    await conn.run("LOAD httpfs");
  } catch (e) {
    throw exhaustError("EXH_DATASET_INVALID", {
      dir: "remote dataset",
      reason: `DuckDB's httpfs extension is not installed (install it where the network allows: duckdb -c "INSTALL httpfs"): ${duckReason(e)}`,
    });
  }
}

/** Runs a query and returns its rows as plain objects (BIGINT as number, timestamps as ISO text). */
export async function queryRows(conn: DuckDBConnection, sql: string): Promise<Array<Record<string, unknown>>> {
  let reader;
  try {
    reader = await conn.runAndReadAll(sql);
  } catch (e) {
    throw exhaustError("EXH_STUDY_QUERY", { reason: duckReason(e) }, e);
  }
  // The JSON form gives 64- and 128-bit integers as strings: numbers again, column by column,
  // under the names the row objects carry (a repeated name is deduplicated there as `id:1`).
  const bigIntColumns = new Set(reader.deduplicatedColumnNames().filter((_, i) => BIG_INT_TYPES.has(reader.columnType(i).typeId)));
  return reader
    .getRowObjectsJson()
    .map((row) =>
      Object.fromEntries(
        Object.entries(row).map(([k, v]) => [k, typeof v === "string" && bigIntColumns.has(k) && /^-?\d+$/.test(v) ? Number(v) : v]),
      ),
    );
}

const BIG_INT_TYPES: ReadonlySet<DuckDBTypeId> = new Set([DuckDBTypeId.BIGINT, DuckDBTypeId.UBIGINT, DuckDBTypeId.HUGEINT]);
