/** CSV export: one row per decoded field, RFC 4180 (CRLF line ends, fields quoted when needed). */
import type { Db } from "../store/database.js";
import { fieldRowsOfSession, type FieldExportRow } from "../store/fields.js";
import type { EventDetail } from "../store/events.js";
import type { Redactor } from "./redaction.js";
import { linesFormat } from "./export-format.js";

export const CSV_COLUMNS = ["session", "exchange", "event", "name", "path", "value", "type", "category", "personal", "rule"] as const;

/** RFC 4180 §2.6–2.7: quote a field holding a comma, quote, CR or LF, doubling inner quotes. */
export function csvField(value: string | number | null): string {
  if (value === null) return "";
  const text = String(value);
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

export function csvRecord(values: ReadonlyArray<string | number | null>): string {
  return `${values.map(csvField).join(",")}\r\n`;
}

/** The header line, then one record per field of every event of the sessions. */
export function* sessionCsvLines(db: Db, sessionIds: readonly number[], redactor?: Redactor): Generator<string> {
  yield csvRecord(CSV_COLUMNS);
  for (const sessionId of sessionIds) {
    for (const row of fieldRowsOfSession(db, sessionId)) {
      yield csvFieldRecord(row, redactor);
    }
  }
}

/** One field row as a CSV record; only the value is captured data of any length, the rest are names and classes. */
function csvFieldRecord(row: FieldExportRow, redactor?: Redactor): string {
  const r = redactor?.redacting ? { ...row, value: redactor.field(row.path, row.value) as string | null } : row;
  return csvRecord(CSV_COLUMNS.map((c) => r[c]));
}

/** The records of one event's fields (no header line): the same columns as the session export. */
export function* eventCsvRecords(ev: EventDetail, redactor?: Redactor): Generator<string> {
  for (const f of ev.fields) {
    yield csvFieldRecord(
      {
        session: ev.session,
        exchange: ev.exchangeId,
        event: ev.id,
        name: ev.name,
        path: f.path,
        value: f.value,
        type: f.type,
        category: f.category,
        personal: f.personal,
        rule: f.rule,
      },
      redactor,
    );
  }
}

/** `--format csv`: one record per decoded field. */
export const csvFormat = linesFormat("csv", sessionCsvLines);
