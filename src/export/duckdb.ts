/**
 * A DuckDB instance for the Parquet export and `exhaust study`: in memory, extensions never
 * fetched (the parquet, json and icu extensions are built in; anything else would be downloaded,
 * which an offline lab must never attempt), time zone UTC.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DuckDBInstance, type DuckDBConnection } from "@duckdb/node-api";

export interface Duck {
  conn: DuckDBConnection;
  close(): void;
}

export interface DuckOptions {
  memoryLimit?: string;
  threads?: number;
  /** Further DuckDB settings (name → value) given when the instance is made. */
  settings?: Record<string, string>;
}

export async function openDuck(options: DuckOptions = {}): Promise<Duck> {
  // Where DuckDB spills when a sort or a temp table outgrows its memory limit: private, removed on close.
  const spill = mkdtempSync(join(tmpdir(), "exhaust-duckdb-"));
  const instance = await DuckDBInstance.create(":memory:", {
    temp_directory: spill,
    autoinstall_known_extensions: "false",
    autoload_known_extensions: "false",
    allow_community_extensions: "false",
    ...(options.memoryLimit ? { memory_limit: options.memoryLimit } : {}),
    ...(options.threads ? { threads: String(options.threads) } : {}),
    ...options.settings,
  });
  const conn = await instance.connect();
  await conn.run("SET TimeZone = 'UTC'");
  return {
    conn,
    close() {
      conn.closeSync();
      instance.closeSync();
      rmSync(spill, { recursive: true, force: true });
    },
  };
}

/** A string as a SQL literal. */
export const sqlString = (s: string): string => `'${s.replace(/'/g, "''")}'`;

/** A user-facing one-line reason from a DuckDB error. */
export const duckReason = (e: unknown): string => String((e as Error)?.message ?? e).split("\n")[0];
