import type { Command } from "commander";
import { DEFAULT_DB_FILE } from "../paths.js";
import { openDatabase } from "../store/database.js";
import { insertCanaries, listCanaries } from "../store/canaries.js";
import { newCanaryToken } from "../verify/canary.js";
import { positiveInt } from "./events.js";
import { runCommand } from "./run.js";
import { formatTable } from "./sessions.js";

export function registerCanaryCommand(program: Command): void {
  const canary = program.command("canary").description("unique tokens to plant in documents, file names, mail subjects and typed text");
  canary
    .command("new")
    .description("make and record new canary tokens (verification searches every capture for them)")
    .option("--count <n>", "how many", "1")
    .option("--label <text>", "a note kept with the tokens (where you plant them)")
    .option("--db <file>", "database file", DEFAULT_DB_FILE)
    .option("--json", "print JSON")
    .action((opts: { count: string; label?: string; db: string; json?: boolean }) =>
      runCommand(() => {
        const count = positiveInt("--count", opts.count);
        const tokens = Array.from({ length: count }, newCanaryToken);
        const createdAt = Date.now();
        const db = openDatabase(opts.db);
        try {
          insertCanaries(db, tokens, opts.label, createdAt);
        } finally {
          db.close();
        }
        process.stdout.write(
          opts.json
            ? `${JSON.stringify(
                tokens.map((token) => ({ token, label: opts.label ?? null, createdAt })),
                null,
                2,
              )}\n`
            : `${tokens.join("\n")}\n`,
        );
      }),
    );
  canary
    .command("list")
    .description("the recorded canary tokens")
    .option("--db <file>", "database file", DEFAULT_DB_FILE)
    .option("--json", "print JSON")
    .action((opts: { db: string; json?: boolean }) =>
      runCommand(() => {
        const db = openDatabase(opts.db, { mustExist: true });
        const rows = listCanaries(db);
        db.close();
        if (opts.json) {
          process.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
          return;
        }
        if (!rows.length) {
          process.stdout.write("no canaries yet: run `exhaust canary new`\n");
          return;
        }
        process.stdout.write(
          formatTable([
            ["TOKEN", "CREATED", "LABEL"],
            ...rows.map((r) => [r.token, new Date(r.createdAt).toISOString().slice(0, 19).replace("T", " "), r.label ?? ""]),
          ]),
        );
      }),
    );
}
