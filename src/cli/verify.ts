import type { Command } from "commander";
import { EndpointCatalog } from "../catalog/endpoints.js";
import { exhaustError } from "../errors.js";
import { DEFAULT_DB_FILE } from "../paths.js";
import { openDatabase, type Db } from "../store/database.js";
import { saveVerdict } from "../store/verdicts.js";
import { latestSession, sessionByName, type SessionRef } from "../store/verify-queries.js";
import { formatVerdict, VERDICT_FORMATS, type VerdictFormat } from "../verify/format.js";
import { loadProfile } from "../verify/profile.js";
import { verifySession } from "../verify/verify.js";
import { positiveInt } from "./events.js";
import { runCommand } from "./run.js";
import { jsonSafe, terminalSafe } from "./terminal.js";

export function registerVerifyCommand(program: Command): void {
  program
    .command("verify")
    .description("check a session against a verification profile: pass / fail / warn per rule, with evidence (exit 1 on any failure)")
    .requiredOption("--profile <name|file>", "a shipped profile (office-neither, office-required, connected-experiences-off, windows-security, no-content, zero-exhaust) or a YAML file")
    .option("--session <name>", "the session to check (default: the latest)")
    .option("--db <file>", "database file", DEFAULT_DB_FILE)
    .option("--format <format>", `output: ${VERDICT_FORMATS.join(" | ")}`, "text")
    .option("--evidence <n>", "evidence items listed per rule (the rest are counted)")
    .option("--no-save", "do not store the verdict with the session")
    .action((opts: { profile: string; session?: string; db: string; format: string; evidence?: string; save: boolean }) =>
      runCommand(() => {
        const format = parseFormat(opts.format);
        const evidenceLimit = opts.evidence === undefined ? undefined : positiveInt("--evidence", opts.evidence);
        const catalog = EndpointCatalog.load();
        const profile = loadProfile(opts.profile, catalog);
        const db = openDatabase(opts.db);
        try {
          const session = resolveSessionOrLatest(db, opts.db, opts.session);
          const report = verifySession(db, profile, session, { catalog, evidenceLimit });
          if (opts.save) saveVerdict(db, report);
          const output = formatVerdict(report, format);
          process.stdout.write(format === "json" ? jsonSafe(output) : terminalSafe(output));
          return report.status === "fail" ? 1 : 0;
        } finally {
          db.close();
        }
      }),
    );
}

function parseFormat(text: string): VerdictFormat {
  if (!(VERDICT_FORMATS as readonly string[]).includes(text)) {
    throw exhaustError("EXH_OPT_INVALID", { option: "--format", reason: `expected ${VERDICT_FORMATS.join(", ")}, got "${text}"` });
  }
  return text as VerdictFormat;
}

/** The named session, or the newest one when no name is given. */
export function resolveSessionOrLatest(db: Db, file: string, name: string | undefined): SessionRef {
  if (name !== undefined) {
    const s = sessionByName(db, name);
    if (!s) throw exhaustError("EXH_DB_SESSION_UNKNOWN", { session: name, file });
    return s;
  }
  const latest = latestSession(db);
  if (!latest) throw exhaustError("EXH_DB_NO_SESSION", { file });
  return latest;
}
