import type { Command } from "commander";
import { DEFAULT_DB_FILE } from "../paths.js";
import { openDatabase } from "../store/database.js";
import { listSessions } from "../store/queries.js";
import { runCommand } from "./run.js";
import { escapeControls, jsonSafe, terminalSafe } from "./terminal.js";

export function registerSessionsCommand(program: Command): void {
  program
    .command("sessions")
    .description("list capture sessions with their counts")
    .option("--db <file>", "database file", DEFAULT_DB_FILE)
    .option("--json", "print JSON")
    .action((opts: { db: string; json?: boolean }) =>
      runCommand(() => {
        const db = openDatabase(opts.db);
        const rows = listSessions(db);
        db.close();
        if (opts.json) {
          process.stdout.write(`${jsonSafe(JSON.stringify(rows, null, 2))}\n`);
          return;
        }
        if (rows.length === 0) {
          process.stdout.write("no sessions yet: run `exhaust proxy` and send traffic through it\n");
          return;
        }
        const header = ["SESSION", "STARTED", "EXCH", "CONN", "PINNED", "TUNNEL", "UPLOADED"];
        const lines = rows.map((r) => [
          escapeControls(r.name),
          new Date(r.startedAt).toISOString().slice(0, 19).replace("T", " "),
          String(r.exchanges),
          String(r.connections),
          String(r.pinned),
          String(r.tunnelled),
          formatBytes(r.requestBytes),
        ]);
        process.stdout.write(terminalSafe(formatTable([header, ...lines])));
      }),
    );
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KB`;
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}

export function formatTable(rows: string[][]): string {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  return rows.map((r) => r.map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i]))).join("  ")).join("\n") + "\n";
}
