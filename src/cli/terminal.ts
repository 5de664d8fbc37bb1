import type { SchemaUpdate } from "../store/database.js";

/**
 * Captured values are hostile text: an event name or field value can carry ESC sequences (that
 * rewrite the terminal, set its title, hide lines), BEL, or bidi overrides that make `exe.txt`
 * read as `txt.exe`. Every CLI printer of captured data passes it through here, so these
 * characters are shown escaped (`\x1b`, `\u202e`) and never reach the terminal raw.
 *
 * Escaped: C0 controls (U+0000–U+001F), DEL, C1 controls (U+0080–U+009F), the bidi marks,
 * embeddings, overrides and isolates (U+061C, U+200E, U+200F, U+202A–U+202E, U+2066–U+2069) and
 * the line/paragraph separators U+2028/U+2029. Backslashes stay as they are (Windows paths).
 */

const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;
/** The same, less the newline: for whole blocks of output whose lines we made ourselves. */
const UNSAFE_BUT_NEWLINE = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;
/** What JSON.stringify leaves raw inside strings (it escapes C0 itself). */
const UNSAFE_IN_JSON = /[\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

function escapeChar(c: string): string {
  const code = c.charCodeAt(0);
  return code < 0x100 ? `\\x${code.toString(16).padStart(2, "0")}` : `\\u${code.toString(16).padStart(4, "0")}`;
}

/** One captured value (a cell, a name, a field value): every control and bidi character escaped, newlines too. */
export function escapeControls(text: string): string {
  return text.replace(UNSAFE, escapeChar);
}

/** A block of output made of our own lines around captured text: as escapeControls, but newlines stay. */
export function terminalSafe(output: string): string {
  return output.replace(UNSAFE_BUT_NEWLINE, escapeChar);
}

/**
 * JSON text (from JSON.stringify) with the characters it leaves raw written as `\uXXXX` escapes:
 * still the same JSON value, but nothing a terminal acts on.
 */
export function jsonSafe(json: string): string {
  return json.replace(UNSAFE_IN_JSON, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}

/**
 * The width tables are made for: unlimited with `--wide`, else the terminal's (process.stdout.columns),
 * else $COLUMNS, else 80 (a pipe without COLUMNS).
 */
export function terminalWidth(wide?: boolean): number {
  if (wide) return Number.POSITIVE_INFINITY;
  const cols = process.stdout.columns || Number(process.env.COLUMNS);
  return Number.isInteger(cols) && cols >= 40 ? cols : 80;
}

/**
 * The line a command prints before the first open of an older database updates its schema
 * (onSchemaUpdate): a large capture takes a while, once, and the command should not look hung.
 */
export function schemaUpdateLine({ file, from, to }: SchemaUpdate): string {
  return `exhaust: updating the schema of ${escapeControls(file)} (version ${from} to ${to}); a large capture takes a while, once (docs/database.md)\n`;
}
