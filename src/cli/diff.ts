import type { Command } from "commander";
import { DEFAULT_DB_FILE } from "../paths.js";
import { resolveSession, type SessionRef } from "../store/sessions.js";
import { diffSessions, formatDiffText } from "../verify/diff.js";
import { readCompleted } from "./complete.js";
import { runCommand } from "./run.js";
import { jsonSafe, terminalSafe } from "./terminal.js";

export function registerDiffCommand(program: Command): void {
  program
    .command("diff")
    .description(
      "compare two sessions (before/after a policy): a summary (categories, groups, event names, endpoints) first; field-level lines with --fields",
    )
    .argument("<session-a>", "the baseline session")
    .argument("<session-b>", "the session to compare with it")
    .option("--db <file>", "database file", DEFAULT_DB_FILE)
    .option("--fields", "also list every field that appeared, disappeared or changed category (JSON always has them)")
    .option("--json", "print JSON")
    .action((a: string, b: string, opts: { db: string; json?: boolean; fields?: boolean }) =>
      runCommand(async () => {
        let sessions: SessionRef[] = [];
        const { db } = await readCompleted(opts.db, (d) => {
          sessions = [resolveSession(d, opts.db, a), resolveSession(d, opts.db, b)];
          return { sessionIds: sessions.map((s) => s.id) };
        });
        try {
          const diff = diffSessions(db, sessions[0], sessions[1]);
          process.stdout.write(
            opts.json ? `${jsonSafe(JSON.stringify(diff, null, 2))}\n` : terminalSafe(formatDiffText(diff, { fields: opts.fields })),
          );
        } finally {
          db.close();
        }
      }),
    );
}
