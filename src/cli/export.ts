import { rmSync } from "node:fs";
import type { Command } from "commander";
import { loadOrCreateAuthority } from "../ca/authority.js";
import { loadOrCreateSigningIdentity } from "../ca/signing.js";
import { EndpointCatalog } from "../catalog/endpoints.js";
import { exhaustError } from "../errors.js";
import { writeBundle } from "../export/bundle.js";
import { sessionCsvLines } from "../export/csv.js";
import type { OmittedItem } from "../evidence/format.js";
import { sessionHarChunks } from "../export/har.js";
import { sessionEventLines } from "../export/jsonl.js";
import { learnSessionSecrets } from "../export/learn-secrets.js";
import { writePrivateFile } from "../export/private-files.js";
import { createRedactor, loadOrCreateRedactionKey } from "../export/redaction.js";
import { renderReport } from "../export/report.js";
import { validateLabel } from "../export/parquet-schema.js";
import { DEFAULT_CERTS_DIR, DEFAULT_DB_FILE } from "../paths.js";
import { sessionFilter, sessionsForExport } from "../store/sessions.js";
import { readCompleted } from "./complete.js";
import { checkOut, requireCaIfExplicit } from "./files.js";
import { runCommand } from "./run.js";

interface ExportOptions {
  format: string;
  out: string;
  session?: string;
  includeSecrets?: boolean;
  db: string;
  certs: string;
  json?: boolean;
  force?: boolean;
  lab?: string;
  machine?: string;
  withBodies?: boolean;
}

const FORMATS = ["har", "jsonl", "csv", "bundle", "parquet"] as const;

export function registerExportCommand(program: Command): void {
  program
    .command("export")
    .description("export sessions as HAR, JSONL, CSV or a signed evidence bundle (credentials redacted unless --include-secrets)")
    .requiredOption("--format <format>", "har | jsonl | csv | bundle | parquet")
    .requiredOption(
      "--out <path>",
      "output file; for bundle a directory, or a file ending in .zip; for parquet a dataset directory (appended to)",
    )
    .option("--session <name>", "only this session (default: every session)")
    .option(
      "--include-secrets",
      "keep credentials (headers, query parameters, bodies and decoded fields holding them) as captured; the output says so",
    )
    .option("--db <file>", "database file", DEFAULT_DB_FILE)
    .option("--certs <dir>", "CA directory: the signing key and the redaction key live here", DEFAULT_CERTS_DIR)
    .option("--json", "print a JSON summary")
    .option("--force", "replace an existing --out file (a non-empty directory is never replaced)")
    .option("--lab <name>", "parquet: lab label for sessions captured without one (default: default)")
    .option("--machine <name>", "parquet: machine label for sessions captured without one (default: this host's name)")
    .option(
      "--with-bodies",
      "parquet: add a blobs table with the raw bodies (those holding a credential are left out unless --include-secrets)",
    )
    .action((opts: ExportOptions, cmd: Command) =>
      runCommand(async () => {
        requireCaIfExplicit(cmd, opts.certs);
        const format = opts.format as (typeof FORMATS)[number];
        if (!FORMATS.includes(format)) {
          throw exhaustError("EXH_OPT_INVALID", {
            option: "--format",
            reason: `expected har, jsonl, csv, bundle or parquet, got "${opts.format}"`,
          });
        }
        // Checked before any work (the --force policy of every --out: src/cli/files.ts).
        // A Parquet dataset directory is appended to (incremental; it refuses a directory that is not one).
        const overwrite =
          format === "parquet"
            ? false
            : checkOut(opts.out, opts.force, { emptyDirectoryOk: format === "bundle" && !opts.out.toLowerCase().endsWith(".zip") });
        const writeChunks = (out: string, chunks: Iterable<string>) => writePrivateFile(out, chunks, overwrite);
        let sessionId: number | undefined;
        const { db } = await readCompleted(opts.db, (d) => {
          sessionId = sessionFilter(d, opts.db, opts.session);
          return { sessionIds: sessionId === undefined ? undefined : [sessionId] };
        });
        try {
          const sessions = sessionsForExport(db, sessionId);
          const redactor = () => createRedactor(opts.includeSecrets ? undefined : loadOrCreateRedactionKey(opts.certs));
          const learned = () => {
            const r = redactor();
            learnSessionSecrets(
              db,
              sessions.map((s) => s.id),
              r,
            );
            return r;
          };
          let summary: Record<string, unknown> = {
            format,
            out: opts.out,
            sessions: sessions.map((s) => s.name),
            secrets: opts.includeSecrets ? "included" : "redacted",
          };
          if (format === "parquet") {
            // DuckDB (a native library) is loaded only by the commands that use it.
            const { exportParquet } = await import("../export/parquet.js");
            const result = await exportParquet(db, {
              out: opts.out,
              database: opts.db,
              sessionId,
              lab: opts.lab === undefined ? undefined : validateLabel("--lab", opts.lab),
              machine: opts.machine === undefined ? undefined : validateLabel("--machine", opts.machine),
              withBodies: opts.withBodies,
              redactor: learned(),
            });
            summary = { ...summary, ...result };
          } else if (format === "jsonl")
            writeChunks(
              opts.out,
              sessionEventLines(
                db,
                sessions.map((s) => s.id),
                learned(),
              ),
            );
          else if (format === "csv")
            writeChunks(
              opts.out,
              sessionCsvLines(
                db,
                sessions.map((s) => s.id),
                learned(),
              ),
            );
          else if (format === "har") {
            const omitted: OmittedItem[] = [];
            writeChunks(opts.out, sessionHarChunks(db, sessions, redactor(), omitted));
            summary = { ...summary, omitted };
          } else {
            const ca = await loadOrCreateAuthority(opts.certs, { permittedDomains: EndpointCatalog.load().constraintDomains() });
            const signer = await loadOrCreateSigningIdentity(ca);
            if (overwrite) rmSync(opts.out);
            const result = await writeBundle(db, { out: opts.out, sessions, redactor: redactor(), signer, renderReport });
            summary = { ...summary, ...result };
          }
          if (opts.json) process.stdout.write(`${JSON.stringify(summary)}\n`);
          else {
            const omitted = (summary.omitted as OmittedItem[] | undefined) ?? [];
            process.stdout.write(
              `exported ${sessions.length} session(s) as ${format} to ${opts.out}; credentials ${opts.includeSecrets ? "INCLUDED (--include-secrets: the file holds credentials as captured)" : "redacted (keyed hashes)"}` +
                (omitted.length
                  ? `; ${omitted.length} item(s) left out, listed in the ${format === "bundle" ? "manifest" : "output"}`
                  : "") +
                "\n",
            );
          }
        } finally {
          db.close();
        }
      }),
    );
}
