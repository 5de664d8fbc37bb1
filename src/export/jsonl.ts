/**
 * The per-event JSON shape of design.md §4: what `exhaust events --json` prints and what the JSONL
 * export and the bundle's events.jsonl hold, one line per event.
 */
import { piiKindName } from "../decode/pii-kinds.js";
import type { Db } from "../store/database.js";
import { fieldValueFromText } from "../store/event-store.js";
import { eventIdsOfSession } from "../store/export-queries.js";
import { getEvent, type EventDetail } from "../store/events.js";
import type { EventJson } from "../evidence/format.js";
import type { Redactor } from "./redaction.js";
import { linesFormat } from "./export-format.js";

/** The event's JSON; with a redactor, credential field values are replaced (and any credential in the rest). */
export function eventJson(ev: EventDetail, redactor?: Redactor): EventJson {
  const json: EventJson = {
    session: ev.session,
    exchange: ev.exchangeId,
    event: { id: ev.id, name: ev.name, time: ev.time, format: ev.format, iKey: ev.iKey, group: ev.group, category: ev.category },
    fields: ev.fields.map((f) => ({
      path: f.path,
      part: f.part,
      value: redactor ? redactor.field(f.path, fieldValueFromText(f.value, f.type)) : fieldValueFromText(f.value, f.type),
      type: f.type,
      category: f.category,
      personal: f.personal,
      declared: {
        piiKind: piiKindName(f.piiKind) ?? null,
        customerContent: f.customerContent === null ? null : f.customerContent === 1,
      },
      rule: f.rule,
      reasons: f.reasons ? (JSON.parse(f.reasons) as string[]) : f.rule ? [f.rule] : [],
      confidence: f.confidence,
    })),
    findings: ev.findings,
  };
  return redactor?.redacting ? redactor.deep(json) : json;
}

/** One event as one JSONL line (with the newline). */
export function eventJsonLine(db: Db, eventId: number, redactor?: Redactor): string {
  return `${JSON.stringify(eventJson(getEvent(db, eventId)!, redactor))}\n`;
}

/** The JSONL lines of every event of the sessions, in capture order (credentials redacted with a redactor that learned them). */
export function* sessionEventLines(db: Db, sessionIds: readonly number[], redactor?: Redactor): Generator<string> {
  for (const sessionId of sessionIds) for (const id of eventIdsOfSession(db, sessionId)) yield eventJsonLine(db, id, redactor);
}

/** `--format jsonl`: one line per event. */
export const jsonlFormat = linesFormat("jsonl", sessionEventLines);
