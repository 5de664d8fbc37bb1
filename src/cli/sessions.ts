import type { Command } from "commander";
import { loadAuthority } from "../ca/authority.js";
import { checkpointCanonical, describeCheckpoint, recordCheckpoint } from "../capture/checkpoint.js";
import { DEFAULT_CERTS_DIR, DEFAULT_DB_FILE } from "../paths.js";
import { openDatabase } from "../store/database.js";
import { sessionStates, undecodedBySession } from "../store/completeness.js";
import { listSessions, resolveSession } from "../store/sessions.js";
import { runCommand } from "./run.js";
import { escapeControls, jsonSafe, terminalSafe } from "./terminal.js";

/** `exhaust sessions --head`: sign, store and print a checkpoint of a session's chain head. */
async function printHead(opts: { db: string; session?: string; certs: string; json?: boolean }): Promise<void> {
  const ca = await loadAuthority(opts.certs);
  const db = openDatabase(opts.db, { mustExist: true });
  try {
    const session = resolveSession(db, opts.db, opts.session);
    const c = recordCheckpoint(db, session, ca);
    process.stdout.write(
      opts.json
        ? `${JSON.stringify({ ...c, canonical: checkpointCanonical(c).toString("utf8") }, null, 2)}\n`
        : `${describeCheckpoint(c)}\n`,
    );
  } finally {
    db.close();
  }
}

export function registerSessionsCommand(program: Command): void {
  program
    .command("sessions")
    .description("list capture sessions with their counts")
    .option("--db <file>", "database file", DEFAULT_DB_FILE)
    .option("--json", "print JSON")
    .option("--head", "sign, store and print a checkpoint of the chain head (session, seq, head hash, time, CA fingerprint)")
    .option("--session <name>", "with --head: the session (default: the newest)")
    .option("--certs <dir>", "with --head: the CA directory whose key signs the checkpoint", DEFAULT_CERTS_DIR)
    .action((opts: { db: string; json?: boolean; head?: boolean; session?: string; certs: string }) =>
      runCommand(() => {
        if (opts.head) return printHead(opts);
        const db = openDatabase(opts.db, { mustExist: true });
        // With each session: whether it is known incomplete (an unfinished import) and what is undecoded.
        const states = new Map(sessionStates(db).map((s) => [s.id, s]));
        const undecoded = undecodedBySession(db);
        const rows = listSessions(db).map((r) => ({
          ...r,
          incomplete: states.get(r.id)?.incomplete ?? null,
          undecoded: undecoded.get(r.id) ?? 0,
        }));
        db.close();
        if (opts.json) {
          process.stdout.write(`${jsonSafe(JSON.stringify(rows, null, 2))}\n`);
          return;
        }
        if (rows.length === 0) {
          process.stdout.write("no sessions yet: run `exhaust proxy` and send traffic through it\n");
          return;
        }
        const header = ["SESSION", "STARTED", "EXCH", "CONN", "PINNED", "TUNNEL", "UPLOADED", "STATE"];
        const lines = rows.map((r) => [
          escapeControls(r.name),
          new Date(r.startedAt).toISOString().slice(0, 19).replace("T", " "),
          String(r.exchanges),
          String(r.connections),
          String(r.pinned),
          String(r.tunnelled),
          formatBytes(r.requestBytes),
          [r.incomplete ? "INCOMPLETE" : r.endedAt === null ? "open" : "ended", r.undecoded ? `${r.undecoded} undecoded` : ""]
            .filter(Boolean)
            .join(", "),
        ]);
        process.stdout.write(terminalSafe(formatTable([header, ...lines])));
        for (const r of rows) if (r.incomplete) process.stdout.write(terminalSafe(`${r.name}: incomplete: ${r.incomplete}\n`));
        // Pin evidence: which client rejected our certificate for which host (docs/containment.md).
        for (const r of rows) {
          for (const pin of r.pins) {
            const last = new Date(pin.lastAt).toISOString().slice(0, 19).replace("T", " ");
            process.stdout.write(
              terminalSafe(
                `pinned in ${r.name}: client ${pin.client} rejected the certificate of ${pin.host} (${pin.connections}×, last ${last})\n`,
              ),
            );
          }
        }
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
