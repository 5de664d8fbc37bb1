import { join } from "node:path";
import { Worker } from "node:worker_threads";
import cliProgress from "cli-progress";
import type { Command } from "commander";
import { exhaustError, type ErrorCode } from "../errors.js";
import type { ImportSummary } from "../import/session.js";
import type { ImportWorkerData, ImportWorkerMessage } from "../import/worker.js";
import { DEFAULT_DB_FILE, PACKAGE_ROOT } from "../paths.js";
import { anchorOptions, withAnchorOptions, type AnchorFlags } from "./bundle.js";
import { runCommand } from "./run.js";

const WORKER_FILE = join(PACKAGE_ROOT, "dist", "src", "import", "worker.js");
/**
 * The import thread's heap. Live data is one HAR entry (or SAZ session) plus a few hundred queued
 * commits; the cap makes V8 collect early instead of growing. Bodies up to --max-body (32 MiB) fit.
 */
const IMPORT_HEAP_LIMITS = { maxOldGenerationSizeMb: 160, maxYoungGenerationSizeMb: 16 };

function runImport(data: ImportWorkerData, onSummary: (s: ImportSummary) => void): Promise<void> {
  const worker = new Worker(WORKER_FILE, { workerData: data, resourceLimits: IMPORT_HEAP_LIMITS });
  let bar: cliProgress.SingleBar | undefined;
  let failure: Error | undefined;
  worker.on("message", (m: ImportWorkerMessage) => {
    if (m.type === "start") {
      bar = new cliProgress.SingleBar(
        { format: `import ${m.label} [{bar}] {percentage}% | {value}/{total} bytes | {eta_formatted}`, stream: process.stderr },
        cliProgress.Presets.shades_classic,
      );
      bar.start(m.total, 0);
    } else if (m.type === "update") bar?.update(m.done);
    else if (m.type === "stop") bar?.stop();
    else if (m.type === "summary") onSummary(m.summary);
    else if (m.code) failure = exhaustError(m.code as ErrorCode, m.params);
    else failure = new Error(m.message);
  });
  return new Promise((resolve, reject) => {
    worker.once("error", (e) => {
      bar?.stop();
      reject(
        (e as NodeJS.ErrnoException).code === "ERR_WORKER_OUT_OF_MEMORY"
          ? exhaustError("EXH_IMPORT_FORMAT", { file: data.files.join(", "), reason: `an entry is too large to import within ${IMPORT_HEAP_LIMITS.maxOldGenerationSizeMb} MB` })
          : e,
      );
    });
    worker.once("exit", () => (failure ? reject(failure) : resolve()));
  });
}

export function registerImportCommand(program: Command): void {
  withAnchorOptions(
    program
      .command("import")
      .description("import captures made elsewhere (HAR, Fiddler SAZ, EventTranscript.db, Get-DiagnosticData JSON, exhaust HAR/JSONL/bundles), one session per file, decoded and classified")
      .argument("<file...>", "files to import"),
  )
    .option("--session <name>", "session name (several files: NAME, NAME-2, ...); default import-<file name>")
    .option("--db <file>", "database file", DEFAULT_DB_FILE)
    .option("--json", "print one JSON summary per session")
    .action((files: string[], opts: AnchorFlags & { session?: string; db: string; json?: boolean }) =>
      runCommand(() =>
        runImport({ files, dbFile: opts.db, session: opts.session, progress: process.stderr.isTTY === true, verify: anchorOptions(opts) }, (s) =>
          process.stdout.write(
            opts.json
              ? `${JSON.stringify(s)}\n`
              : `imported ${s.file} (${s.format}) into session ${s.session}: ${s.exchanges} exchanges, ${s.events} events, ${s.findings} decode findings` +
                  (s.skipped ? `, ${s.skipped} skipped (${s.notes.slice(0, 3).join("; ")})` : "") +
                  (s.verification ? `; bundle ${s.verification === "verified" ? "verified against the trusted CA" : "consistent, signer not anchored (signer not checked against a trusted CA)"}` : "") +
                  "\n",
          ),
        ),
      ),
    );
}
