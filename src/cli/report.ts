import type { Command } from "commander";
import { writePrivateFile } from "../export/private-files.js";
import { renderReport } from "../export/report.js";
import { DEFAULT_DB_FILE } from "../paths.js";
import { resolveSession } from "../store/sessions.js";
import { readCompleted } from "./complete.js";
import { checkOut } from "./files.js";
import { runCommand } from "./run.js";

export function registerReportCommand(program: Command): void {
  program
    .command("report")
    .description("write a self-contained HTML report of one session (prints cleanly to PDF)")
    .option("--db <file>", "database file", DEFAULT_DB_FILE)
    .option("--session <name>", "the session (default: the newest)")
    .requiredOption("--out <file>", "the HTML file to write (mode 0600)")
    .option("--include-secrets", "show credential values as captured (default: [redacted])")
    .option("--force", "replace an existing --out file")
    .action((opts: { db: string; session?: string; out: string; includeSecrets?: boolean; force?: boolean }) =>
      runCommand(async () => {
        const overwrite = checkOut(opts.out, opts.force);
        let sessionId: number | undefined;
        const { db } = await readCompleted(opts.db, (d) => {
          sessionId = resolveSession(d, opts.db, opts.session).id;
          return { sessionIds: [sessionId] };
        });
        try {
          if (sessionId === undefined) return;
          writePrivateFile(opts.out, [renderReport(db, sessionId, { includeSecrets: opts.includeSecrets })], overwrite);
          process.stderr.write(`exhaust: report written to ${opts.out}${opts.includeSecrets ? " (CREDENTIALS INCLUDED)" : ""}\n`);
        } finally {
          db.close();
        }
      }),
    );
}
