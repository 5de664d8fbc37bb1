import type { Command } from "commander";
import { exhaustError } from "../errors.js";
import { piiKindName } from "../decode/pii-kinds.js";
import { eventJson, eventJsonLine } from "../export/jsonl.js";
import { DEFAULT_DB_FILE } from "../paths.js";
import { openDatabase, type Db } from "../store/database.js";
import { getEvent, listEvents, sessionIdByName } from "../store/queries.js";
import { formatTable } from "./sessions.js";
import { runCommand } from "./run.js";

export function registerEventCommands(program: Command): void {
  program
    .command("events")
    .description("list decoded events")
    .option("--db <file>", "database file", DEFAULT_DB_FILE)
    .option("--session <name>", "only this session")
    .option("--name <glob>", "event name glob, e.g. 'Office.Word.*'")
    .option("--category <category>", "content | functional | diagnostic (of the event as a whole)")
    .option("--limit <n>", "at most this many events", "100")
    .option("--offset <n>", "skip this many", "0")
    .option("--json", "one JSON object per line, with every field")
    .action((opts: { db: string; session?: string; name?: string; category?: string; limit: string; offset: string; json?: boolean }) =>
      runCommand(() => {
        const db = openDatabase(opts.db);
        try {
          const sessionId = resolveSession(db, opts.db, opts.session);
          const rows = listEvents(db, {
            sessionId,
            nameGlob: opts.name,
            category: parseCategory(opts.category),
            limit: positiveInt("--limit", opts.limit),
            offset: positiveInt("--offset", opts.offset, true),
          });
          if (opts.json) {
            for (const r of rows) process.stdout.write(eventJsonLine(db, r.id));
            return;
          }
          if (rows.length === 0) {
            process.stdout.write("no events (capture something, or run `exhaust reprocess` after a decoder update)\n");
            return;
          }
          const header = ["ID", "TIME", "GROUP", "CATEGORY", "NAME"];
          process.stdout.write(
            formatTable([
              header,
              ...rows.map((r) => [String(r.id), (r.time ?? "").slice(0, 19), r.group ?? "-", r.category ?? "-", r.name]),
            ]),
          );
        } finally {
          db.close();
        }
      }),
    );

  program
    .command("show")
    .description("print one decoded event with its fields")
    .argument("<event-id>", "event id (from `exhaust events`)")
    .option("--db <file>", "database file", DEFAULT_DB_FILE)
    .option("--json", "print JSON")
    .action((id: string, opts: { db: string; json?: boolean }) =>
      runCommand(() => {
        const db = openDatabase(opts.db);
        try {
          const ev = getEvent(db, positiveInt("event-id", id));
          if (!ev) throw exhaustError("EXH_EVENT_UNKNOWN", { id, file: opts.db });
          if (opts.json) {
            process.stdout.write(`${JSON.stringify(eventJson(ev), null, 2)}\n`);
            return;
          }
          process.stdout.write(
            [
              `event     ${ev.id}  ${ev.name}`,
              `time      ${ev.time ?? "-"}`,
              `tenant    ${ev.iKey ?? "-"}`,
              `format    ${ev.format} (${ev.exchange.decoder ?? "not decoded"})`,
              `group     ${ev.group ?? "-"} (${ev.groupRule ?? "-"})${ev.catalogCategory ? `, ${ev.catalogCategory}` : ""}${ev.subtype ? ` / ${ev.subtype}` : ""}`,
              `category  ${ev.category ?? "-"}`,
              `exchange  ${ev.exchangeId}  ${ev.exchange.method} ${ev.exchange.scheme}://${ev.host}${ev.exchange.path.split("?")[0]}`,
              `body      sha256 ${ev.exchange.requestBodySha256}`,
              "",
            ].join("\n"),
          );
          const table = [["PATH", "CATEGORY", "PERSONAL", "RULE", "VALUE", "DECLARED"]];
          for (const f of ev.fields) {
            const declared = [piiKindName(f.piiKind), f.customerContent ? "CustomerContent" : undefined].filter(Boolean).join(",");
            table.push([f.path, f.category ?? "-", f.personal ?? "-", f.rule ?? "-", ellipsis(f.value ?? "null", 40), declared]);
          }
          process.stdout.write(formatTable(table));
          if (ev.findings.length) {
            process.stdout.write(`\nfindings\n${ev.findings.map((f) => `  ${f.code}  ${f.fieldPath}: ${f.message}`).join("\n")}\n`);
          }
        } finally {
          db.close();
        }
      }),
    );
}

const CATEGORIES = ["content", "functional", "diagnostic"];

function parseCategory(text: string | undefined): string | undefined {
  if (text === undefined) return undefined;
  if (!CATEGORIES.includes(text)) {
    throw exhaustError("EXH_OPT_INVALID", { option: "--category", reason: `expected content, functional or diagnostic, got "${text}"` });
  }
  return text;
}

function resolveSession(db: Db, file: string, name: string | undefined): number | undefined {
  if (name === undefined) return undefined;
  const id = sessionIdByName(db, name);
  if (id === undefined) throw exhaustError("EXH_DB_SESSION_UNKNOWN", { session: name, file });
  return id;
}

export function positiveInt(option: string, text: string, allowZero = false): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < (allowZero ? 0 : 1)) {
    throw exhaustError("EXH_OPT_INVALID", { option, reason: `expected a ${allowZero ? "non-negative" : "positive"} integer, got "${text}"` });
  }
  return n;
}

function ellipsis(text: string, max: number): string {
  const oneLine = text.replace(/\s+/g, " ");
  return oneLine.length > max ? `${oneLine.slice(0, max - 1)}…` : oneLine;
}
