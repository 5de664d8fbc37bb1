/**
 * The study's outputs: a self-contained HTML report (tables and inline SVG charts, no script),
 * JSON, and CSV (every section's rows under one header, the section named in the first column).
 */
import { csvRecord } from "../export/csv.js";
import { escapeHtml as h, seriesColor, stackedBarsSvg } from "../html/charts.js";
import { DOCUMENT_CSS } from "../html/document-css.js";
import { TOOL_VERSION } from "../version.js";
import type { Comparison, Row, StudyResult } from "./study.js";

const STATUS_CLASS = new Set(["pass", "fail", "warn", "inconclusive"]);

const CSS = `${DOCUMENT_CSS}
body { max-width: 1200px; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
.fail { background: #fdecea; }
`;

const cell = (v: unknown): string => (typeof v === "number" ? `<td class="n">${v}</td>` : `<td>${h(v ?? "")}</td>`);

function table(rows: Row[], columns?: string[], empty = "none"): string {
  if (rows.length === 0) return `<p><small>${h(empty)}</small></p>`;
  const cols = columns ?? Object.keys(rows[0]);
  return `<table><thead><tr>${cols.map((c) => `<th>${h(c)}</th>`).join("")}</tr></thead><tbody>${rows
    .map((r) => `<tr>${cols.map((c) => cell(r[c])).join("")}</tr>`)
    .join("")}</tbody></table>`;
}

/** Machines as rows, profiles as columns, the latest status in each cell. */
function matrixTable(result: StudyResult): string {
  const machines = new Map<string, Row[]>();
  for (const r of result.matrix) {
    const k = `${r.lab as string}\u0000${r.machine as string}`;
    machines.set(k, [...(machines.get(k) ?? []), r]);
  }
  if (machines.size === 0) return "<p><small>no machines in the datasets</small></p>";
  const head = `<tr><th>lab</th><th>machine</th><th>events</th><th>required-service events</th>${result.profiles.map((p) => `<th>${h(p)}</th>`).join("")}</tr>`;
  const body = [...machines.values()]
    .map((rows) => {
      const byProfile = new Map(rows.map((r) => [r.profile, r.status as string | null]));
      const cells = result.profiles.map((p) => {
        const s = byProfile.get(p) ?? null;
        return s === null ? "<td><small>not verified</small></td>" : `<td class="${STATUS_CLASS.has(s) ? s : ""}">${h(s)}</td>`;
      });
      return `<tr>${cell(rows[0].lab)}${cell(rows[0].machine)}${cell(rows[0].events)}${cell(rows[0].required_events)}${cells.join("")}</tr>`;
    })
    .join("");
  return `<table><thead>${head}</thead><tbody>${body}</tbody></table>`;
}

function groupChart(rows: Row[]): string {
  const byMachine = new Map<string, Record<string, number>>();
  for (const r of rows) {
    const k = `${r.lab as string} / ${r.machine as string}`;
    const parts = byMachine.get(k) ?? {};
    parts[r.ms_group as string] = r.events as number;
    byMachine.set(k, parts);
  }
  const groups = [...new Set(rows.map((r) => r.ms_group as string))].sort();
  const colors = Object.fromEntries(groups.map((g, i) => [g, seriesColor(i)]));
  return byMachine.size
    ? stackedBarsSvg(
        [...byMachine].map(([label, parts]) => ({ label, parts })),
        colors,
      )
    : "";
}

function comparisonBlock(c: Comparison): string {
  const title = `${c.before.key}=${c.before.value} → ${c.after.key}=${c.after.value}`;
  const chart = c.groups.length
    ? stackedBarsSvg(
        [
          {
            label: `before: ${c.before.value}`,
            parts: Object.fromEntries(c.groups.map((g) => [g.ms_group as string, g.before as number])),
          },
          { label: `after: ${c.after.value}`, parts: Object.fromEntries(c.groups.map((g) => [g.ms_group as string, g.after as number])) },
        ],
        Object.fromEntries(c.groups.map((g, i) => [g.ms_group as string, seriesColor(i)])),
      )
    : "";
  return [
    `<h3>${h(title)}</h3>`,
    "<h4>Events per Microsoft group</h4>",
    table(c.groups),
    chart,
    "<h4>Event names seen on one side only</h4>",
    table(c.names, undefined, "the same event names on both sides"),
    "<h4>Content fields</h4>",
    table(c.content, undefined, "no content on either side"),
    "<h4>Hosts contacted</h4>",
    table(c.endpoints),
  ].join("\n");
}

export function renderStudyHtml(result: StudyResult, generatedAt = new Date()): string {
  const sections: Array<[string, string, string]> = [
    [
      "matrix",
      "Verdict matrix: machines × profiles",
      `<p class="meta">The latest verdict of each profile per machine (exhaust verify, stored with the session and exported). Required-service events: events Microsoft classes as required diagnostic data.</p>${matrixTable(result)}`,
    ],
    ["summary", "Sessions", table(result.summary)],
    ["groups", "Events by Microsoft group per machine", `${groupChart(result.groups)}${table(result.groups)}`],
    [
      "names",
      "Event names by group per machine",
      `<p class="meta">Up to the 50 most frequent names per machine and group; --format json or --sql for all.</p>${table(result.names)}`,
    ],
    ["content", "Content findings per machine", table(result.content, undefined, "no field classified as content")],
    ["endpoints", "Endpoints contacted per machine", table(result.endpoints)],
  ];
  if (result.comparisons.length) sections.push(["compare", "Before and after", result.comparisons.map(comparisonBlock).join("\n")]);
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>exhaust fleet study</title><style>${CSS}</style></head>
<body>
<h1>exhaust fleet study</h1>
<p class="meta">Datasets: ${result.datasets.map((d) => `<code>${h(d)}</code>`).join(", ")} · generated ${h(generatedAt.toISOString())} by exhaust ${h(TOOL_VERSION)} · credentials in the datasets are keyed hashes</p>
<nav><ol>${sections.map(([id, title]) => `<li><a href="#${id}">${h(title)}</a></li>`).join("")}</ol></nav>
${sections.map(([id, title, body]) => `<section id="${id}"><h2>${h(title)}</h2>\n${body}</section>`).join("\n")}
</body></html>
`;
}

/** Rows of every section under one header: section first, then the union of the columns. */
export function studyCsv(result: StudyResult): string {
  const sections: Array<[string, Row[]]> = [
    ["matrix", result.matrix],
    ["summary", result.summary],
    ["groups", result.groups],
    ["names", result.names],
    ["content", result.content],
    ["endpoints", result.endpoints],
  ];
  result.comparisons.forEach((c, i) => {
    const tag = (rows: Row[]) =>
      rows.map((r) => ({ before_label: `${c.before.key}=${c.before.value}`, after_label: `${c.after.key}=${c.after.value}`, ...r }));
    sections.push(
      [`compare${i + 1}.groups`, tag(c.groups)],
      [`compare${i + 1}.names`, tag(c.names)],
      [`compare${i + 1}.content`, tag(c.content)],
      [`compare${i + 1}.endpoints`, tag(c.endpoints)],
    );
  });
  return rowsCsv(sections.flatMap(([section, rows]) => rows.map((r) => ({ section, ...r }))));
}

/** RFC 4180 CSV of rows (the union of their keys, in first-seen order). */
export function rowsCsv(rows: Row[], columns?: string[]): string {
  const cols = columns ?? [...new Set(rows.flatMap((r) => Object.keys(r)))];
  const value = (v: unknown): string | number | null =>
    v === null || v === undefined ? null : typeof v === "number" ? v : typeof v === "object" ? JSON.stringify(v) : String(v);
  return [csvRecord(cols), ...rows.map((r) => csvRecord(cols.map((c) => value(r[c]))))].join("");
}
