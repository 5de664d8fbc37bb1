import type { Command } from "commander";
import { DEFAULT_DB_FILE } from "../paths.js";
import { ExchangeProcessor } from "../pipeline/process.js";
import { Checkpointer } from "../store/checkpointer.js";
import { openDatabase } from "../store/database.js";
import { sessionFilter } from "../store/sessions.js";
import { runCommand } from "./run.js";

export function registerReprocessCommand(program: Command): void {
  program
    .command("reprocess")
    .description("decode stored raw captures again (those never decoded or decoded by an older decoder; --all for every one)")
    .option("--db <file>", "database file", DEFAULT_DB_FILE)
    .option("--session <name>", "only this session")
    .option("--all", "re-decode every exchange, not only stale ones")
    .option("--json", "print a JSON summary")
    .action((opts: { db: string; session?: string; all?: boolean; json?: boolean }) =>
      runCommand(async () => {
        const db = openDatabase(opts.db, { mustExist: true });
        // Checkpoints on their own thread, as beside the proxy: the inserting thread never waits for them.
        const checkpointer = Checkpointer.start(db, opts.db);
        try {
          const sessionId = sessionFilter(db, opts.db, opts.session);
          const processor = new ExchangeProcessor(db);
          const ids = processor.pending({ sessionId, all: opts.all });
          let events = 0;
          let findings = 0;
          for (const id of ids) {
            const outcome = processor.process(id);
            events += outcome?.events ?? 0;
            findings += outcome?.findings ?? 0;
          }
          const summary = { exchanges: ids.length, events, findings };
          process.stdout.write(
            opts.json ? `${JSON.stringify(summary)}\n` : `reprocessed ${ids.length} exchanges: ${events} events, ${findings} findings\n`,
          );
        } finally {
          await checkpointer.stop();
          db.close();
        }
      }),
    );
}
