import type { Command } from "commander";
import { exhaustError } from "../errors.js";
import type { OmittedItem } from "../evidence/format.js";
import { EXPORT_FORMATS } from "../export/formats.js";
import { learnSessionSecrets } from "../export/learn-secrets.js";
import { createRedactor, loadOrCreateRedactionKey } from "../export/redaction.js";
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
  /** A format's own options (ExportFormat.options). */
  [option: string]: unknown;
}

const FORMAT_NAMES = EXPORT_FORMATS.map((f) => f.name);

export function registerExportCommand(program: Command): void {
  const command = program
    .command("export")
    .description("export sessions as HAR, JSONL, CSV or a signed evidence bundle (credentials redacted unless --include-secrets)")
    .requiredOption("--format <format>", FORMAT_NAMES.join(" | "))
    .requiredOption("--out <path>", ["output file", ...EXPORT_FORMATS.flatMap((f) => f.outHelp ?? [])].join("; "))
    .option("--session <name>", "only this session (default: every session)")
    .option(
      "--include-secrets",
      "keep credentials (headers, query parameters, bodies and decoded fields holding them) as captured; the output says so",
    )
    .option("--db <file>", "database file", DEFAULT_DB_FILE)
    .option("--certs <dir>", "CA directory: the signing key and the redaction key live here", DEFAULT_CERTS_DIR)
    .option("--json", "print a JSON summary")
    .option("--force", "replace an existing --out file (a non-empty directory is never replaced)");
  // Each format's own options, after the shared ones.
  for (const { flags, description } of EXPORT_FORMATS.flatMap((f) => f.options ?? [])) command.option(flags, description);
  command.action((opts: ExportOptions, cmd: Command) =>
    runCommand(async () => {
      requireCaIfExplicit(cmd, opts.certs);
      const format = EXPORT_FORMATS.find((f) => f.name === opts.format);
      if (!format) {
        throw exhaustError("EXH_OPT_INVALID", {
          option: "--format",
          reason: `expected ${FORMAT_NAMES.slice(0, -1).join(", ")} or ${FORMAT_NAMES.at(-1)}, got "${opts.format}"`,
        });
      }
      // Checked before any work (the --force policy of every --out: src/cli/files.ts).
      // A dataset directory is appended to (the format refuses a directory that is not one).
      const out = format.out(opts.out);
      const overwrite = out === "dataset" ? false : checkOut(opts.out, opts.force, { emptyDirectoryOk: out === "directory" });
      let sessionId: number | undefined;
      const { db } = await readCompleted(opts.db, (d) => {
        sessionId = sessionFilter(d, opts.db, opts.session);
        return { sessionIds: sessionId === undefined ? undefined : [sessionId] };
      });
      try {
        const sessions = sessionsForExport(db, sessionId);
        const redactor = () => createRedactor(opts.includeSecrets ? undefined : loadOrCreateRedactionKey(opts.certs));
        const result = await format.write({
          db,
          database: opts.db,
          certs: opts.certs,
          out: opts.out,
          overwrite,
          sessionId,
          sessions,
          redactor,
          learnedRedactor: () => {
            const r = redactor();
            learnSessionSecrets(
              db,
              sessions.map((s) => s.id),
              r,
            );
            return r;
          },
          options: opts,
        });
        const summary: Record<string, unknown> = {
          format: format.name,
          out: opts.out,
          sessions: sessions.map((s) => s.name),
          secrets: opts.includeSecrets ? "included" : "redacted",
          ...result,
        };
        if (opts.json) process.stdout.write(`${JSON.stringify(summary)}\n`);
        else {
          const omitted = (summary.omitted as OmittedItem[] | undefined) ?? [];
          process.stdout.write(
            `exported ${sessions.length} session(s) as ${format.name} to ${opts.out}; credentials ${opts.includeSecrets ? "INCLUDED (--include-secrets: the file holds credentials as captured)" : "redacted (keyed hashes)"}` +
              (omitted.length ? `; ${omitted.length} item(s) left out, listed in the ${format.omittedListedIn ?? "output"}` : "") +
              "\n",
          );
        }
      } finally {
        db.close();
      }
    }),
  );
}
