/**
 * Windows Diagnostic Data Viewer importers: `EventTranscript.db` (wire-formats.md §5.1: table
 * `events_persisted`, one Common Schema 4.0 JSON payload per event, data-category tags through
 * `event_tags` and `tag_descriptions`) and the JSON that `Get-DiagnosticData | ConvertTo-Json`
 * writes: the older module's (Name, Timestamp, Payload, IsBasic, DiagnosticDataTypes) and the current
 * one's (IsRequired, DiagnosticDataCategories), as JSON or as `Get-DiagnosticData | Export-Csv` (the
 * form Microsoft's documentation shows).
 *
 * DiagTrack pins its certificate, so these events never cross the proxy decrypted. Each one is
 * stored as the upload it stands for: a 1DS JSON-lines POST to the v10c OneCollector path, whose
 * body is the payload byte for byte, so the existing onecollector-json decoder and the classifier
 * treat it exactly like live traffic. What the viewer adds (tags, sid, full name, flags) travels in
 * `X-Exhaust-Ddv-*` request headers, kept with the exchange.
 */
import Database from "better-sqlite3";
import type { Readable } from "node:stream";
import { parse as parseCsv } from "csv-parse";
import { exhaustError, isExhaustError } from "../errors.js";
import type { RawHeaders } from "../types.js";
import { jsonArrayItems } from "./json-items.js";
import { tooLarge } from "./limits.js";
import type { ImportedExchange, ImportSession } from "./session.js";

/** Where DiagTrack uploads on Windows 10 1809+ (wire-formats.md §5.1). */
export const DDV_HOST = "v10c.events.data.microsoft.com";
export const DDV_PATH = "/OneCollector/1.0/";

/** FILETIME (100-ns ticks since 1601-01-01) to ms since the Unix epoch. */
export function fileTimeToMs(ft: bigint | number): number {
  return Number(BigInt(ft) / 10_000n - 11_644_473_600_000n);
}

export function ddvExchange(payload: string, startedAt: number, extra: RawHeaders): ImportedExchange {
  return {
    method: "POST",
    scheme: "https",
    host: DDV_HOST,
    port: 443,
    path: DDV_PATH,
    requestHeaders: [["Content-Type", "application/x-json-stream"], ...extra],
    requestBody: Buffer.from(payload, "utf8"),
    startedAt,
    respondedAt: startedAt,
    endedAt: startedAt,
  };
}

/** Header values must be one line of visible ASCII: tags are plain English, but be safe. */
const headerText = (s: string) => s.replace(/[^\x20-\x7e]/g, "?");

export async function importEventTranscript(file: string, sink: ImportSession, maxBody: number): Promise<void> {
  let db: Database.Database;
  try {
    db = new Database(file, { readonly: true, fileMustExist: true });
  } catch (e) {
    throw exhaustError("EXH_IMPORT_FORMAT", { file, reason: (e as Error).message }, e);
  }
  try {
    const has = (t: string) => db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?").get(t) !== undefined;
    if (!has("events_persisted"))
      throw exhaustError("EXH_IMPORT_FORMAT", {
        file,
        reason: "an SQLite file without an events_persisted table (not an EventTranscript.db)",
      });
    const tagsOf =
      has("event_tags") && has("tag_descriptions")
        ? db
            .prepare(
              `SELECT DISTINCT d.tag_name FROM event_tags t JOIN tag_descriptions d ON d.tag_id = t.tag_id
                WHERE t.full_event_name_hash = ? AND (d.locale_name = 'en-US' OR NOT EXISTS
                      (SELECT 1 FROM tag_descriptions e WHERE e.tag_id = d.tag_id AND e.locale_name = 'en-US'))
                ORDER BY t.tag_id`,
            )
            .pluck()
        : undefined;
    // Read in pages: SQLite cannot run the tag query while a cursor over the events is open. The
    // page carries each payload's size only (octet_length reads no content); payloads are then
    // read one at a time, and one above the limit is refused before it is read.
    const page = db
      .prepare(
        `SELECT rowid AS rowid, sid, timestamp, octet_length(payload) AS size, full_event_name AS name, full_event_name_hash AS hash,
                logging_binary_name AS binary FROM events_persisted WHERE rowid > ? ORDER BY rowid LIMIT 500`,
      )
      .safeIntegers(true);
    const payloadOf = db.prepare("SELECT payload FROM events_persisted WHERE rowid = ?").pluck();
    let after = 0n;
    for (;;) {
      const batch = page.all(after) as Array<{
        rowid: bigint;
        sid: string | null;
        timestamp: bigint | null;
        size: bigint | null;
        name: string | null;
        hash: bigint | null;
        binary: string | null;
      }>;
      if (batch.length === 0) break;
      for (const r of batch) {
        after = r.rowid;
        if (r.size === null) {
          sink.skipped++;
          continue;
        }
        if (r.size > BigInt(maxBody)) throw tooLarge(file, `the payload of events_persisted row ${r.rowid} is ${r.size} bytes`, maxBody);
        const raw = payloadOf.get(r.rowid) as string | Buffer | null;
        if (raw === null) {
          sink.skipped++;
          continue;
        }
        const payload = typeof raw === "string" ? raw : raw.toString("utf8");
        const tags = tagsOf && r.hash !== null ? (tagsOf.all(r.hash) as string[]) : [];
        const headers: RawHeaders = [];
        if (r.name) headers.push(["X-Exhaust-Ddv-Event", headerText(r.name)]);
        if (tags.length) headers.push(["X-Exhaust-Ddv-Tags", headerText(tags.join("; "))]);
        if (r.sid) headers.push(["X-Exhaust-Ddv-Sid", headerText(String(r.sid))]);
        if (r.binary) headers.push(["X-Exhaust-Ddv-Binary", headerText(r.binary)]);
        headers.push(["X-Exhaust-Source", "EventTranscript.db"]);
        await sink.add(ddvExchange(payload, r.timestamp === null ? 0 : fileTimeToMs(r.timestamp), headers));
      }
    }
  } finally {
    db.close();
  }
}

interface DiagnosticDataItem {
  Name?: string;
  Timestamp?: string;
  Payload?: string | object;
  /** Older module. */
  IsBasic?: boolean | string;
  DiagnosticDataTypes?: number[] | number | string;
  /** Current module. */
  IsRequired?: boolean | string;
  DiagnosticDataCategories?: number[] | number | string;
}

/**
 * Data categories as numbers. JSON has a number or a list; Export-Csv writes a list's .NET type name
 * (`System.Collections.Generic.List\`1[System.Int32]`), which says nothing: then none.
 */
function categoryNumbers(v: DiagnosticDataItem["DiagnosticDataCategories"]): number[] {
  if (v === undefined || v === null) return [];
  if (typeof v === "string") return /^\s*\d+(\s*[,;]\s*\d+)*\s*$/.test(v) ? v.split(/[,;]/).map((x) => Number(x.trim())) : [];
  return ([] as number[]).concat(v).filter((n) => typeof n === "number" && Number.isFinite(n));
}

/** One item of Get-DiagnosticData output (JSON or CSV) as the upload it stands for. */
async function addDiagnosticDataItem(
  value: DiagnosticDataItem,
  file: string,
  sink: ImportSession,
  maxBody: number,
  source: string,
): Promise<void> {
  if (value.Payload === undefined || value.Payload === null || value.Payload === "") {
    sink.skipped++;
    return;
  }
  const payload = typeof value.Payload === "string" ? value.Payload : JSON.stringify(value.Payload);
  if (Buffer.byteLength(payload) > maxBody)
    throw tooLarge(file, `the payload of ${value.Name ?? "an event"} is ${Buffer.byteLength(payload)} bytes`, maxBody);
  const headers: RawHeaders = [];
  if (value.Name) headers.push(["X-Exhaust-Ddv-Event", headerText(value.Name)]);
  const types = categoryNumbers(value.DiagnosticDataTypes);
  if (types.length) headers.push(["X-Exhaust-Ddv-Types", types.join(", ")]);
  const categories = categoryNumbers(value.DiagnosticDataCategories);
  if (categories.length) headers.push(["X-Exhaust-Ddv-Categories", categories.join(", ")]);
  if (value.IsBasic !== undefined && value.IsBasic !== "") headers.push(["X-Exhaust-Ddv-Basic", headerText(String(value.IsBasic))]);
  if (value.IsRequired !== undefined && value.IsRequired !== "")
    headers.push(["X-Exhaust-Ddv-Required", headerText(String(value.IsRequired))]);
  headers.push(["X-Exhaust-Source", source]);
  await sink.add(ddvExchange(payload, psTime(value.Timestamp), headers));
}

/** Windows PowerShell 5.1 writes DateTime as "\/Date(1541695973000)\/"; PowerShell 7 as ISO 8601. */
function psTime(t: string | undefined): number {
  const m = /Date\((-?\d+)/.exec(t ?? "");
  if (m) return Number(m[1]);
  const parsed = Date.parse(t ?? "");
  return Number.isFinite(parsed) ? parsed : 0;
}

export async function importDiagnosticDataJson(input: Readable, file: string, sink: ImportSession, maxBody: number): Promise<void> {
  try {
    for await (const value of jsonArrayItems(input, [], maxBody, file, "the top-level value is not an array")) {
      if (value === null || typeof value !== "object") sink.skipped++;
      else await addDiagnosticDataItem(value, file, sink, maxBody, "Get-DiagnosticData");
    }
  } catch (e) {
    if (isExhaustError(e)) throw e;
    throw exhaustError("EXH_IMPORT_FORMAT", { file, reason: `not Get-DiagnosticData JSON: ${(e as Error).message}` }, e);
  }
}

/** The columns `Get-DiagnosticData | Export-Csv` writes; Payload is the one that must be there. */
const CSV_REQUIRED_COLUMNS = ["Name", "Payload"];

/**
 * `Get-DiagnosticData | Export-Csv`: an optional `#TYPE DDVCmdlets.Containers.EventRecord` line,
 * a header row, then one quoted row per event with the payload as JSON text (quotes doubled).
 * Streamed; a record (a payload) beyond the size limit is refused before it is held.
 */
export async function importDiagnosticDataCsv(input: Readable, file: string, sink: ImportSession, maxBody: number): Promise<void> {
  const rows = input.pipe(
    parseCsv({
      columns: (header: string[]) => {
        const missing = CSV_REQUIRED_COLUMNS.filter((c) => !header.includes(c));
        if (missing.length)
          throw exhaustError("EXH_IMPORT_FORMAT", { file, reason: `a CSV without the Get-DiagnosticData column(s) ${missing.join(", ")}` });
        return header;
      },
      // Export-Csv's first line names the .NET type the rows came from.
      comment: "#",
      comment_no_infix: true,
      bom: true,
      relax_column_count: true,
      max_record_size: maxBody + 64 * 1024,
    }),
  );
  try {
    for await (const row of rows as AsyncIterable<Record<string, string>>) {
      await addDiagnosticDataItem(row, file, sink, maxBody, "Get-DiagnosticData CSV");
    }
  } catch (e) {
    if (isExhaustError(e)) throw e;
    const code = (e as { code?: string }).code;
    if (code === "CSV_MAX_RECORD_SIZE") throw tooLarge(file, "a CSV row holds a payload larger than the limit", maxBody);
    throw exhaustError("EXH_IMPORT_FORMAT", { file, reason: `not Get-DiagnosticData CSV: ${(e as Error).message.split("\n")[0]}` }, e);
  } finally {
    input.destroy();
  }
}
