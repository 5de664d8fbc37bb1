import type { Command } from "commander";
import { EndpointCatalog } from "../catalog/endpoints.js";
import { exhaustError } from "../errors.js";
import { DEFAULT_DB_FILE } from "../paths.js";
import { saveVerdict } from "../store/verdicts.js";
import { resolveSession, type SessionRef } from "../store/sessions.js";
import { formatVerdict, VERDICT_FORMATS, type VerdictFormat } from "../verify/format.js";
import { loadProfile } from "../verify/profile.js";
import { verifySession } from "../verify/verify.js";
import { readCompleted } from "./complete.js";
import { positiveInt } from "./events.js";
import { runCommand } from "./run.js";
import { jsonSafe, terminalSafe } from "./terminal.js";

export function registerVerifyCommand(program: Command): void {
  program
    .command("verify")
    .description(
      "check a session against a verification profile: pass / fail / warn per rule, with evidence " +
        `(exit ${VERIFY_EXIT.fail} on any failure, ${VERIFY_EXIT.inconclusive} when the session cannot speak for the setting)`,
    )
    .requiredOption(
      "--profile <name|file>",
      "a shipped profile (office-neither, office-required, connected-experiences-off, windows-security, no-content, zero-exhaust) or a YAML file",
    )
    .option("--session <name>", "the session to check (default: the latest)")
    .option("--db <file>", "database file", DEFAULT_DB_FILE)
    .option("--format <format>", `output: ${VERDICT_FORMATS.join(" | ")}`, "text")
    .option("--evidence <n>", "evidence items listed per rule (the rest are counted)")
    .option("--no-save", "do not store the verdict with the session")
    .action((opts: { profile: string; session?: string; db: string; format: string; evidence?: string; save: boolean }) =>
      runCommand(async () => {
        const format = parseFormat(opts.format);
        const evidenceLimit = opts.evidence === undefined ? undefined : positiveInt("--evidence", opts.evidence);
        const catalog = EndpointCatalog.load();
        const profile = loadProfile(opts.profile, catalog);
        let session: SessionRef | undefined;
        const { db, readonly, completion } = await readCompleted(opts.db, (d) => {
          session = resolveSession(d, opts.db, opts.session);
          return { sessionIds: [session.id] };
        });
        try {
          const report = verifySession(db, profile, session!, { catalog, evidenceLimit, undecodedReasons: completion.reasons });
          // A read-only database keeps no verdict (the output is the record).
          if (opts.save && !readonly) saveVerdict(db, report);
          const output = formatVerdict(report, format);
          process.stdout.write(format === "json" ? jsonSafe(output) : terminalSafe(output));
          return VERIFY_EXIT[report.status];
        } finally {
          db.close();
        }
      }),
    );
}

/** Exit codes of `exhaust verify` (2 is a usage or input error, as for every command). */
export const VERIFY_EXIT = { pass: 0, warn: 0, fail: 1, inconclusive: 3 } as const;

function parseFormat(text: string): VerdictFormat {
  if (!(VERDICT_FORMATS as readonly string[]).includes(text)) {
    throw exhaustError("EXH_OPT_INVALID", { option: "--format", reason: `expected ${VERDICT_FORMATS.join(", ")}, got "${text}"` });
  }
  return text as VerdictFormat;
}
