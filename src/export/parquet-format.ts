/**
 * `--format parquet`: a Hive-partitioned Parquet dataset directory, appended to. The format is
 * declared here and written by src/export/parquet.ts, which is imported only when a Parquet
 * export runs: DuckDB, a native library, is loaded only by the commands that use it.
 */
import type { ExportFormat } from "./export-format.js";
import { validateLabel } from "./parquet-schema.js";

export const parquetFormat: ExportFormat = {
  name: "parquet",
  out: () => "dataset",
  outHelp: "for parquet a dataset directory (appended to)",
  options: [
    { flags: "--lab <name>", description: "parquet: lab label for sessions captured without one (default: default)" },
    { flags: "--machine <name>", description: "parquet: machine label for sessions captured without one (default: this host's name)" },
    {
      flags: "--with-bodies",
      description: "parquet: add a blobs table with the raw bodies (those holding a credential are left out unless --include-secrets)",
    },
  ],
  async write(ctx) {
    const { exportParquet } = await import("./parquet.js");
    const o = ctx.options as { lab?: string; machine?: string; withBodies?: boolean };
    return {
      ...(await exportParquet(ctx.db, {
        out: ctx.out,
        database: ctx.database,
        sessionId: ctx.sessionId,
        lab: o.lab === undefined ? undefined : validateLabel("--lab", o.lab),
        machine: o.machine === undefined ? undefined : validateLabel("--machine", o.machine),
        withBodies: o.withBodies,
        redactor: ctx.learnedRedactor(),
      })),
    };
  },
};
