import type { Command } from "commander";
import { DEFAULT_DB_FILE } from "../paths.js";
import { openDatabase } from "../store/database.js";
import { diffSessions, formatDiffText } from "../verify/diff.js";
import { runCommand } from "./run.js";
import { jsonSafe, terminalSafe } from "./terminal.js";
import { resolveSessionOrLatest } from "./verify.js";

export function registerDiffCommand(program: Command): void {
  program
    .command("diff")
    .description("compare two sessions (before/after a policy): endpoints, event names, fields per event, categories")
    .argument("<session-a>", "the baseline session")
    .argument("<session-b>", "the session to compare with it")
    .option("--db <file>", "database file", DEFAULT_DB_FILE)
    .option("--json", "print JSON")
    .action((a: string, b: string, opts: { db: string; json?: boolean }) =>
      runCommand(() => {
        const db = openDatabase(opts.db);
        try {
          const diff = diffSessions(db, resolveSessionOrLatest(db, opts.db, a), resolveSessionOrLatest(db, opts.db, b));
          process.stdout.write(opts.json ? `${jsonSafe(JSON.stringify(diff, null, 2))}\n` : terminalSafe(formatDiffText(diff)));
        } finally {
          db.close();
        }
      }),
    );
}
