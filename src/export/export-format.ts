/**
 * What an export format is: a name for `--format`, what its `--out` names (and so how the CLI
 * checks it before any work), its own options, and `write`, which produces the output from the
 * store's read queries and a redactor and returns what the command's summary adds. Every format is
 * one file exporting an ExportFormat plus its line in EXPORT_FORMATS (src/export/formats.ts).
 */
import type { Db } from "../store/database.js";
import type { SessionRecord } from "../store/sessions.js";
import { writePrivateFile } from "./private-files.js";
import type { Redactor } from "./redaction.js";

/**
 * What `--out` names, checked before any work (the --force policy of src/cli/files.ts):
 * - `file`: a new file, or an existing one replaced with --force;
 * - `directory`: a new or empty directory (a file in its place is replaced with --force);
 * - `dataset`: a dataset directory appended to: not checked by the CLI, the format refuses a
 *   directory that is not one of its datasets.
 */
export type ExportOut = "file" | "directory" | "dataset";

/** A format's own option: a commander flag, registered on `exhaust export` after the shared ones. */
export interface ExportOption {
  flags: string;
  description: string;
}

export interface ExportContext {
  db: Db;
  /** The database file (`--db`). */
  database: string;
  /** The CA directory (`--certs`): the signing key and the redaction key live there. */
  certs: string;
  out: string;
  /** Whether checking --out found a file that --force replaces. */
  overwrite: boolean;
  /** The session named by --session, or undefined for every session. */
  sessionId: number | undefined;
  sessions: readonly SessionRecord[];
  /** A redactor (no-op with --include-secrets). */
  redactor(): Redactor;
  /** A redactor that has learned the sessions' credential values first. */
  learnedRedactor(): Redactor;
  /** The values of the format's own options, under commander's attribute names. */
  options: Readonly<Record<string, unknown>>;
}

export interface ExportFormat {
  name: string;
  out(path: string): ExportOut;
  /** What `--out` help says of this format's output, when it is not a file. */
  outHelp?: string;
  options?: readonly ExportOption[];
  /**
   * Writes the output; resolves with the keys the summary adds (`omitted`: the items left out,
   * which the human line counts).
   */
  write(ctx: ExportContext): Promise<Record<string, unknown>>;
  /** Where the items left out are listed, for the human line (default: the output). */
  omittedListedIn?: string;
}

/** A format that is one file of text, written from the sessions' ids by a redactor that learned their credentials. */
export function linesFormat(
  name: string,
  lines: (db: Db, sessionIds: readonly number[], redactor: Redactor) => Iterable<string>,
): ExportFormat {
  return {
    name,
    out: () => "file",
    async write(ctx) {
      const ids = ctx.sessions.map((s) => s.id);
      writePrivateFile(ctx.out, lines(ctx.db, ids, ctx.learnedRedactor()), ctx.overwrite);
      return {};
    },
  };
}
