import type { Command } from "commander";
import { importFile } from "../import/index.js";
import type { ImportSummary } from "../import/session.js";
import { DEFAULT_DB_FILE } from "../paths.js";
import { openDatabase } from "../store/database.js";
import { runCommand } from "./run.js";

export function registerImportCommand(program: Command): void {
  program
    .command("import")
    .description("import captures made elsewhere (HAR, Fiddler SAZ, EventTranscript.db, Get-DiagnosticData JSON, exhaust HAR/JSONL/bundles), one session per file, decoded and classified")
    .argument("<file...>", "files to import")
    .option("--session <name>", "session name (several files: NAME, NAME-2, ...); default import-<file name>")
    .option("--db <file>", "database file", DEFAULT_DB_FILE)
    .option("--json", "print one JSON summary per session")
    .action((files: string[], opts: { session?: string; db: string; json?: boolean }) =>
      runCommand(async () => {
        const db = openDatabase(opts.db);
        try {
          for (const [i, file] of files.entries()) {
            const summaries: ImportSummary[] = await importFile(file, { db, dbFile: opts.db, session: opts.session, progress: process.stderr.isTTY === true }, i);
            for (const s of summaries) {
              process.stdout.write(
                opts.json
                  ? `${JSON.stringify(s)}\n`
                  : `imported ${s.file} (${s.format}) into session ${s.session}: ${s.exchanges} exchanges, ${s.events} events, ${s.findings} decode findings` +
                      (s.skipped ? `, ${s.skipped} skipped (${s.notes.slice(0, 3).join("; ")})` : "") +
                      "\n",
              );
            }
          }
        } finally {
          db.close();
        }
      }),
    );
}
