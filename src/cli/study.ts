import { writeFileSync } from "node:fs";
import { resolve } from "node:path";
import type { Command } from "commander";
import { exhaustError } from "../errors.js";
import { externalTableDdl, isDatasetUrl } from "../export/parquet-schema.js";
import { collect, runCommand } from "./run.js";

interface StudyFlags {
  profile: string[];
  compare: string[];
  out?: string;
  format?: string;
  sql?: string;
  ddl?: string | boolean;
  location?: string;
}

const FORMATS = ["html", "json", "csv"] as const;

export function registerStudyCommand(program: Command): void {
  program
    .command("study")
    .description(
      "study Parquet datasets (exhaust export --format parquet) with DuckDB: verdict matrix, event groups, content, endpoints, comparisons",
    )
    .argument("[dir...]", "dataset directories (or s3://, gs:// URLs where DuckDB's httpfs is installed)")
    .option("--profile <name>", "verification profile for the verdict matrix (repeatable; default: every profile verified)", collect, [])
    .option(
      "--compare <labels>",
      "before/after comparison of two labels, e.g. lab=policy-off,lab=policy-on (KEY: lab, machine, session; repeatable)",
      collect,
      [],
    )
    .option("--out <file>", "write the report here (default: stdout)")
    .option("--format <format>", "html | json | csv (default: html, or json when --out is not .html)")
    .option(
      "--sql <query>",
      "run a query against the dataset views (sessions, connections, exchanges, events, fields, findings, verdicts, verdict_items, blobs)",
    )
    .option("--ddl [dialect]", "print external-table DDL for the dataset: trino (default) or hive")
    .option("--location <url>", "--ddl: where the dataset lives for the engine (default: file:// URL of the first DIR)")
    .action((dirs: string[], flags: StudyFlags) => runCommand(() => study(dirs, flags)));
}

async function study(dirs: string[], flags: StudyFlags): Promise<void> {
  const write = (text: string) => (flags.out ? writeFileSync(flags.out, text, { mode: 0o600 }) : process.stdout.write(text));
  if (flags.ddl !== undefined) {
    const dialect = flags.ddl === true ? "trino" : flags.ddl;
    if (dialect !== "trino" && dialect !== "hive")
      throw exhaustError("EXH_OPT_INVALID", { option: "--ddl", reason: `expected trino or hive, got "${dialect}"` });
    const location = flags.location ?? (dirs[0] ? (isDatasetUrl(dirs[0]) ? dirs[0] : `file://${resolve(dirs[0])}`) : undefined);
    if (!location) throw exhaustError("EXH_OPT_INVALID", { option: "--ddl", reason: "give a dataset DIR or --location" });
    write(externalTableDdl(dialect, location.replace(/\/+$/, "")));
    return;
  }
  const format = flags.format ?? (flags.sql ? "csv" : !flags.out || flags.out.endsWith(".html") ? "html" : "json");
  if (!(FORMATS as readonly string[]).includes(format))
    throw exhaustError("EXH_OPT_INVALID", { option: "--format", reason: `expected html, json or csv, got "${format}"` });
  // DuckDB (a native library) is loaded only by the commands that use it.
  const { openDatasets, queryRows } = await import("../study/dataset.js");
  const { renderStudyHtml, rowsCsv, studyCsv } = await import("../study/render.js");
  const { runStudy } = await import("../study/study.js");
  const duck = await openDatasets(dirs);
  try {
    if (flags.sql !== undefined) {
      const rows = await queryRows(duck.conn, flags.sql);
      write(format === "json" ? `${JSON.stringify(rows, null, 2)}\n` : rowsCsv(rows));
      return;
    }
    const result = await runStudy(duck.conn, { datasets: dirs, profiles: flags.profile, compare: flags.compare });
    write(format === "html" ? renderStudyHtml(result) : format === "csv" ? studyCsv(result) : `${JSON.stringify(result, null, 2)}\n`);
    if (flags.out)
      process.stderr.write(
        `study of ${dirs.length} dataset(s), ${new Set(result.matrix.map((r) => `${r.lab as string}/${r.machine as string}`)).size} machine(s) written to ${flags.out}\n`,
      );
  } finally {
    duck.close();
  }
}
