import type { Command } from "commander";
import { CATEGORIES, GROUPS } from "../classify/schema.js";
import { exhaustError } from "../errors.js";
import { piiKindName } from "../decode/pii-kinds.js";
import { eventJson, eventJsonLine } from "../export/jsonl.js";
import { DEFAULT_DB_FILE } from "../paths.js";
import { eventScope } from "../store/completeness.js";
import type { Db } from "../store/database.js";
import { decodeFindingsOfEvent } from "../store/findings.js";
import { getEvent, listEvents, listEventsPage, type EventFilter, type EventRow } from "../store/events.js";
import { sessionFilter } from "../store/sessions.js";
import { readCompleted } from "./complete.js";
import { runCommand } from "./run.js";
import { escapeControls, jsonSafe, terminalSafe, terminalWidth } from "./terminal.js";

export function registerEventCommands(program: Command): void {
  program
    .command("events")
    .description("list decoded events")
    .option("--db <file>", "database file", DEFAULT_DB_FILE)
    .option("--session <name>", "only this session")
    .option("--name <glob>", "event name glob, e.g. 'Office.Word.*'")
    .option("--category <category>", "content | functional | diagnostic (of the event as a whole)")
    .option("--host <host>", "only uploads to this host")
    .option("--group <group>", "Microsoft group: required | optional | essential | connected-experience | unknown")
    .option("--personal", "only events with a field that is personal data")
    .option("--search <text>", "text in the event name or any field value (a bounded scan: see docs/guide.md)")
    .option("--limit <n>", "at most this many events", "100")
    .option("--offset <n>", "skip this many", "0")
    .option("--after <id>", "only events after this id (fast paging: pass the last id printed)")
    .option("--wide", "never cut names to the terminal's width")
    .option("--json", "one JSON object per line, with every field")
    .action((opts: EventsOptions) =>
      runCommand(async () => {
        let sessionId: number | undefined;
        const { db } = await readCompleted(opts.db, (d) => {
          sessionId = sessionFilter(d, opts.db, opts.session);
          return { sessionIds: sessionId === undefined ? undefined : [sessionId] };
        });
        try {
          const filter: EventFilter = {
            sessionId,
            nameGlob: opts.name,
            category: parseCategory(opts.category),
            host: opts.host,
            group: parseGroup(opts.group),
            personal: opts.personal,
            search: opts.search,
            limit: positiveInt("--limit", opts.limit),
            offset: positiveInt("--offset", opts.offset, true),
            afterId: opts.after === undefined ? undefined : positiveInt("--after", opts.after, true),
          };
          let rows = findEvents(db, filter);
          // Names match as typed (the index helps); when that finds nothing, ignoring case.
          if (rows.length === 0 && opts.name !== undefined && caseInsensitiveGlob(opts.name) !== opts.name) {
            rows = findEvents(db, { ...filter, nameGlob: caseInsensitiveGlob(opts.name) });
            if (rows.length)
              process.stderr.write(`exhaust: no event name matches ${JSON.stringify(opts.name)} as typed; matched ignoring case\n`);
          }
          if (opts.json) {
            for (const r of rows) process.stdout.write(jsonSafe(eventJsonLine(db, r.id)));
            return;
          }
          if (rows.length === 0) {
            const used = (["session", "name", "category", "host", "group", "personal", "search", "after"] as const).filter(
              (k) => opts[k] !== undefined,
            );
            process.stdout.write(
              used.length || Number(opts.offset) > 0
                ? terminalSafe(
                    `no events match ${used.map((k) => (opts[k] === true ? `--${k}` : `--${k} ${JSON.stringify(opts[k])}`)).join(" ") || `--offset ${opts.offset}`}\n`,
                  )
                : "no events (capture something, or run `exhaust reprocess` after a decoder update)\n",
            );
            return;
          }
          process.stdout.write(
            terminalSafe(
              fitTable(
                ["ID", "TIME", "GROUP", "CATEGORY", "C/P", "NAME"],
                rows.map((r) => [
                  String(r.id),
                  (r.time ?? "").slice(5, 19).replace("T", " "),
                  (r.group ?? "-").replace("connected-experience", "connected"),
                  r.category ?? "-",
                  `${r.contentFields}/${r.personalFields}`,
                  escapeControls(r.name),
                ]),
                5,
                terminalWidth(opts.wide),
              ),
            ),
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
    .option("--wide", "never cut values to the terminal's width")
    .action((id: string, opts: { db: string; json?: boolean; wide?: boolean }) =>
      runCommand(async () => {
        const eventId = positiveInt("event-id", id);
        // Its exchange decoded with the current decoders and rules (the id survives re-decoding).
        const { db } = await readCompleted(opts.db, (d) => {
          const scope = eventScope(d, eventId);
          return scope ? { sessionIds: [scope.sessionId], exchangeId: scope.exchangeId } : { sessionIds: [] };
        });
        try {
          const ev = getEvent(db, eventId);
          if (!ev) throw exhaustError("EXH_EVENT_UNKNOWN", { id, file: opts.db });
          const decodeFindings = decodeFindingsOfEvent(db, eventId);
          if (opts.json) {
            process.stdout.write(`${jsonSafe(JSON.stringify({ ...eventJson(ev), decodeFindings }, null, 2))}\n`);
            return;
          }
          const WIDTH = terminalWidth(opts.wide);
          const head = [
            `event     ${ev.id}  ${ev.name}`,
            `time      ${ev.time ?? "-"}`,
            `tenant    ${ev.iKey ?? "-"}`,
            `format    ${ev.format} (${ev.exchange.decoder ?? "not decoded"})`,
            `group     ${ev.group ?? "-"} (${ev.groupRule ?? "-"})${ev.catalogCategory ? `, ${ev.catalogCategory}` : ""}${ev.subtype ? ` / ${ev.subtype}` : ""}`,
            `category  ${ev.category ?? "-"}`,
            `exchange  ${ev.exchangeId}`,
            `request   ${ev.exchange.method} ${ev.exchange.scheme}://${ev.host}${ev.exchange.path.split("?")[0]}`,
            `sha256    ${ev.exchange.requestBodySha256}`,
          ].map(escapeControls);
          // What a line labels is never cut: a long line wraps under its label.
          process.stdout.write(terminalSafe(`${head.flatMap((l) => wrapLabelled(l, WIDTH, 10)).join("\n")}\n\n`));
          // 80 columns: one line per field with what decided, its value on the next line.
          const lines = fitTable(
            ["PATH", "CATEGORY", "PERSONAL", "RULE"],
            ev.fields.map((f) => [f.path, f.category ?? "-", f.personal ?? "-", f.rule ?? "-"].map(escapeControls)),
            0,
            WIDTH,
          ).split("\n");
          const out = [lines[0]];
          ev.fields.forEach((f, i) => {
            const declared = [piiKindName(f.piiKind), f.customerContent ? "CustomerContent" : undefined].filter(Boolean).join(",");
            out.push(
              lines[i + 1],
              `    ${ellipsis(escapeControls(f.value ?? "null"), WIDTH - 4 - (declared ? declared.length + 13 : 0))}${declared ? `  [declared ${declared}]` : ""}`,
            );
          });
          process.stdout.write(terminalSafe(`${out.join("\n")}\n`));
          if (ev.findings.length) {
            const lines = ev.findings.flatMap((f) => [
              ellipsis(escapeControls(`  ${f.code}  ${f.fieldPath}`), WIDTH),
              ...wrap(escapeControls(f.message), WIDTH - 6).map((l) => `      ${l}`),
            ]);
            process.stdout.write(terminalSafe(`\nfindings\n${lines.join("\n")}\n`));
          }
          if (decodeFindings.length) {
            const lines = decodeFindings.flatMap((f) => [
              escapeControls(
                `  ${f.severity.padEnd(7)}  ${f.code}${f.offset !== null ? `  at byte ${f.offset}` : ""}${f.eventIndex === null ? "  (whole body)" : ""}`,
              ),
              ...wrap(escapeControls(f.message), WIDTH - 6).map((l) => `      ${l}`),
            ]);
            process.stdout.write(terminalSafe(`\ndecode findings\n${lines.join("\n")}\n`));
          }
        } finally {
          db.close();
        }
      }),
    );
}

interface EventsOptions {
  db: string;
  session?: string;
  name?: string;
  category?: string;
  host?: string;
  group?: string;
  personal?: boolean;
  search?: string;
  limit: string;
  offset: string;
  after?: string;
  json?: boolean;
  wide?: boolean;
}

/** A GLOB pattern that matches ignoring case: every letter outside `[...]` becomes `[xX]`. */
export function caseInsensitiveGlob(glob: string): string {
  let out = "";
  let inClass = false;
  for (const c of glob) {
    if (inClass) {
      out += c;
      if (c === "]") inClass = false;
    } else if (c === "[") {
      out += c;
      inClass = true;
    } else out += c.toLowerCase() !== c.toUpperCase() ? `[${c.toLowerCase()}${c.toUpperCase()}]` : c;
  }
  return out;
}

/**
 * Events for the CLI: a search is a bounded scan per call (listEventsPage), so keep calling until
 * the page is full or nothing is left; a command line may wait longer than a web page.
 */
function findEvents(db: Db, filter: EventFilter): EventRow[] {
  if (!filter.search) return listEvents(db, filter);
  const rows: EventRow[] = [];
  let skip = filter.offset ?? 0;
  let afterId = filter.afterId;
  for (;;) {
    const page = listEventsPage(db, { ...filter, offset: 0, afterId, limit: filter.limit - rows.length + skip });
    const take = page.rows.slice(Math.min(skip, page.rows.length));
    skip -= Math.min(skip, page.rows.length);
    rows.push(...take);
    if (rows.length >= filter.limit || page.nextAfterId === null) return rows.slice(0, filter.limit);
    afterId = page.nextAfterId;
  }
}

/**
 * A table that fits `width` columns: every column as wide as its widest cell, except column `flex`,
 * which gets what is left and loses the middle of longer cells (names differ at both ends).
 */
export function fitTable(header: string[], rows: string[][], flex: number, width = 80): string {
  const all = [header, ...rows];
  const widths = header.map((_, i) => Math.max(...all.map((r) => r[i].length)));
  const others = widths.reduce((a, w, i) => (i === flex ? a : a + w + 2), 0);
  widths[flex] = Math.max(12, Math.min(widths[flex], width - others - (flex === header.length - 1 ? 0 : 2)));
  const cell = (text: string, i: number) => {
    const t = i === flex ? middleEllipsis(text, widths[i]) : text;
    return i === header.length - 1 ? t : t.padEnd(widths[i]);
  };
  return all.map((r) => r.map(cell).join("  ").trimEnd()).join("\n") + "\n";
}

/**
 * Words to lines of at most `max` characters, continuation lines indented by `indent`; a word
 * longer than a line is split, never cut (nothing is lost).
 */
function wrap(text: string, max: number, indent = 0): string[] {
  const pad = " ".repeat(indent);
  const room = Math.max(8, max - indent);
  const lines: string[] = [];
  let line = "";
  for (let word of text.split(/\s+/)) {
    const limit = () => (lines.length ? room : max);
    if (line && line.length + 1 + word.length > limit()) {
      lines.push(line);
      line = "";
    }
    while (word.length > limit() - (line ? line.length + 1 : 0)) {
      const take = limit() - (line ? line.length + 1 : 0);
      if (take <= 0) break;
      lines.push(line ? `${line} ${word.slice(0, take)}` : word.slice(0, take));
      word = word.slice(take);
      line = "";
    }
    line = line ? `${line} ${word}` : word;
  }
  if (line) lines.push(line);
  return lines.map((l, i) => (i ? pad + l : l));
}

/** A `label     text` line of at most `width` columns; the rest continues under the text, never cut. */
function wrapLabelled(line: string, width: number, indent: number): string[] {
  const pad = " ".repeat(indent);
  const out: string[] = [];
  let rest = line;
  for (let room = width; rest.length > room; room = Math.max(8, width - indent)) {
    let cut = rest.lastIndexOf(" ", room);
    if (cut <= (out.length ? 0 : indent)) cut = room;
    out.push((out.length ? pad : "") + rest.slice(0, cut).trimEnd());
    rest = rest.slice(cut).trimStart();
  }
  out.push((out.length ? pad : "") + rest);
  return out;
}

function middleEllipsis(text: string, max: number): string {
  if (text.length <= max) return text;
  const head = Math.ceil((max - 1) / 2);
  return `${text.slice(0, head)}…${text.slice(text.length - (max - 1 - head))}`;
}

function parseGroup(text: string | undefined): string | undefined {
  if (text === undefined) return undefined;
  if (!(GROUPS as readonly string[]).includes(text)) {
    throw exhaustError("EXH_OPT_INVALID", { option: "--group", reason: `expected one of ${GROUPS.join(", ")}, got "${text}"` });
  }
  return text;
}

function parseCategory(text: string | undefined): string | undefined {
  if (text === undefined) return undefined;
  if (!(CATEGORIES as readonly string[]).includes(text)) {
    throw exhaustError("EXH_OPT_INVALID", { option: "--category", reason: `expected content, functional or diagnostic, got "${text}"` });
  }
  return text;
}

export function positiveInt(option: string, text: string, allowZero = false): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < (allowZero ? 0 : 1)) {
    throw exhaustError("EXH_OPT_INVALID", {
      option,
      reason: `expected a ${allowZero ? "non-negative" : "positive"} integer, got "${text}"`,
    });
  }
  return n;
}

function ellipsis(text: string, max: number): string {
  const oneLine = text.replace(/\s+/g, " ");
  return oneLine.length > max ? `${oneLine.slice(0, max - 1)}…` : oneLine;
}
