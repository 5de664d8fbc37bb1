import { join } from "node:path";
import { Worker } from "node:worker_threads";
import cliProgress from "cli-progress";
import type { Command } from "commander";
import { exhaustError, type ErrorCode } from "../errors.js";
import { IMPORT_MAX_BODY_DEFAULT } from "../import/limits.js";
import type { ImportSummary } from "../import/session.js";
import type { ImportWorkerData, ImportWorkerMessage } from "../import/worker.js";
import { DEFAULT_DB_FILE, PACKAGE_ROOT } from "../paths.js";
import { positiveInt } from "./events.js";
import { anchorOptions, withAnchorOptions, type AnchorFlags } from "./bundle.js";
import { runCommand } from "./run.js";
import { jsonSafe, schemaUpdateLine, terminalSafe } from "./terminal.js";

const WORKER_FILE = join(PACKAGE_ROOT, "dist", "src", "import", "worker.js");
/**
 * The import thread's heap. Live data is one HAR entry (or SAZ session) plus a few hundred queued
 * commits; the cap makes V8 collect early instead of growing. Bodies up to --max-body (32 MiB) fit;
 * the importers refuse larger ones before reading them (src/import/limits.ts).
 */
const IMPORT_HEAP_LIMITS = { maxOldGenerationSizeMb: 160, maxYoungGenerationSizeMb: 16 };

/** A raised --max-body raises the heap with it: a payload is held about four times over while it is decoded. */
export function importHeapLimits(maxBodyBytes: number): typeof IMPORT_HEAP_LIMITS {
  return {
    ...IMPORT_HEAP_LIMITS,
    maxOldGenerationSizeMb: Math.max(IMPORT_HEAP_LIMITS.maxOldGenerationSizeMb, Math.ceil((4 * maxBodyBytes) / 2 ** 20) + 32),
  };
}

function runImport(data: ImportWorkerData, onSummary: (s: ImportSummary) => void): Promise<void> {
  const limits = importHeapLimits(data.maxBodyBytes ?? IMPORT_MAX_BODY_DEFAULT);
  const worker = new Worker(WORKER_FILE, { workerData: data, resourceLimits: limits });
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
    else if (m.type === "schema") process.stderr.write(schemaUpdateLine(m));
    else if (m.code) failure = exhaustError(m.code as ErrorCode, m.params);
    else failure = new Error(m.message);
  });
  const file = data.files.join(", ");
  return new Promise((resolve, reject) => {
    // Whatever ends the import thread ends the command with one line: out of heap is a file too
    // large to import (the session written so far is left as it is), anything else names itself.
    worker.once("error", (e) => {
      bar?.stop();
      failure ??=
        (e as NodeJS.ErrnoException).code === "ERR_WORKER_OUT_OF_MEMORY"
          ? exhaustError("EXH_IMPORT_FORMAT", {
              file,
              reason: `an entry is too large or too complex to import within the ${limits.maxOldGenerationSizeMb} MB import heap`,
            })
          : exhaustError("EXH_IMPORT_FORMAT", { file, reason: `the import stopped: ${e.message?.split("\n")[0] ?? String(e)}` }, e);
    });
    worker.once("exit", (code) => {
      bar?.stop();
      if (!failure && code !== 0)
        failure = exhaustError("EXH_IMPORT_FORMAT", { file, reason: `the import thread ended with code ${code}` });
      if (failure) reject(failure);
      else resolve();
    });
  });
}

export function registerImportCommand(program: Command): void {
  withAnchorOptions(
    program
      .command("import")
      .description(
        "import captures made elsewhere (HAR, Fiddler SAZ, EventTranscript.db, Get-DiagnosticData JSON, exhaust HAR/JSONL/bundles), one session per file, decoded and classified",
      )
      .argument("<file...>", "files to import"),
  )
    .option("--session <name>", "session name (several files: NAME, NAME-2, ...); default import-<file name>")
    .option("--db <file>", "database file", DEFAULT_DB_FILE)
    .option("--json", "print one JSON summary per session")
    .option(
      "--max-body <bytes>",
      "largest payload, body or archive entry imported; a file holding a larger one is refused",
      String(IMPORT_MAX_BODY_DEFAULT),
    )
    .action((files: string[], opts: AnchorFlags & { session?: string; db: string; json?: boolean; maxBody: string }) =>
      runCommand(() =>
        runImport(
          {
            files,
            dbFile: opts.db,
            session: opts.session,
            progress: process.stderr.isTTY === true,
            maxBodyBytes: positiveInt("--max-body", opts.maxBody),
            verify: anchorOptions(opts),
          },
          (s) =>
            process.stdout.write(
              opts.json
                ? `${jsonSafe(JSON.stringify(s))}\n`
                : terminalSafe(
                    `imported ${s.file} (${s.format}) into session ${s.session}: ${s.exchanges} exchanges, ${s.events} events, ${s.findings} decode findings` +
                      (s.skipped ? `, ${s.skipped} skipped (${s.notes.slice(0, 3).join("; ")})` : "") +
                      (s.verification
                        ? `; bundle ${s.verification === "verified" ? "verified against the trusted CA" : "consistent, signer not anchored (signer not checked against a trusted CA)"}`
                        : "") +
                      "\n",
                  ),
            ),
        ),
      ),
    );
}
