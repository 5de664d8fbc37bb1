import { piiKindName } from "../decode/pii-kinds.js";
import type { Db } from "../store/database.js";
import { chainSummary } from "../store/export-queries.js";
import {
  categoriesPerEventName,
  contentFindings,
  eventsOverTime,
  eventsPerGroup,
  fieldsByCategory,
  sessionEndpoints,
} from "../store/ui-queries.js";
import { sessionOverview } from "../store/sessions.js";
import { latestVerdicts } from "../store/verdicts.js";
import { TOOL_VERSION } from "../version.js";
import { sessionCoverage, sessionStates } from "../store/completeness.js";
import { coverageText } from "../verify/format.js";
import type { Evidence, VerdictReport } from "../verdict.js";
import { CATEGORY_COLORS, categoryShareChart, escapeHtml as h, eventsOverTimeChart } from "../html/charts.js";
import { DOCUMENT_CSS } from "../html/document-css.js";
import { learnSessionSecrets } from "./learn-secrets.js";
import { createMarkerRedactor, createRedactor, type Redactor } from "./redaction.js";

/** Content findings listed in full; past this the report says how many were left out. */
export const REPORT_MAX_FINDINGS = 10_000;
/** Evidence items shown per verdict rule (the verdict itself caps what it stores). */
const EVIDENCE_PER_RULE = 50;
/** Characters of a captured value shown; the rest is in the database and the exports. */
const VALUE_CHARS = 400;
const TIME_BUCKETS = 48;

/**
 * One session as a self-contained HTML document: inline CSS and SVG, no scripts, no external
 * references of any kind, so it can be mailed, archived and printed to PDF. Every captured string
 * is escaped (it is hostile input).
 */
export function renderReport(db: Db, sessionId: number, options: { includeSecrets?: boolean } = {}): string {
  const info = sessionOverview(db, sessionId);
  if (!info) throw new Error(`no session with id ${sessionId}`);
  // Credentials (classifiers/secrets.yaml, and their values wherever they went) show as [redacted].
  const r = options.includeSecrets ? createRedactor(undefined) : createMarkerRedactor();
  learnSessionSecrets(db, [sessionId], r);
  const endpoints = sessionEndpoints(db, sessionId);
  const groups = eventsPerGroup(db, sessionId);
  const categories = fieldsByCategory(db, sessionId);
  const findings = contentFindings(db, sessionId, REPORT_MAX_FINDINGS);
  const verdicts = latestVerdicts(db, sessionId);
  const chain = chainSummary(db, sessionId);
  const overTime = eventsOverTime(db, sessionId, TIME_BUCKETS);
  const shares = categoriesPerEventName(db, sessionId, 20, "fields");

  const out: string[] = [];
  out.push(`<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">`);
  out.push(`<meta name="viewport" content="width=device-width, initial-scale=1">`);
  out.push(`<title>exhaust report: ${h(info.name)}</title><style>${REPORT_CSS}</style></head><body>`);
  out.push(`<header><h1>exhaust report: session <span class="mono">${h(info.name)}</span></h1>`);
  out.push(
    `<p class="meta">Generated ${h(iso(Date.now()))} by exhaust ${h(TOOL_VERSION)}. Every value below is shown as captured (escaped)${options.includeSecrets ? "; CREDENTIALS INCLUDED as captured" : ", except credentials, shown as [redacted]"}; values longer than ${VALUE_CHARS} characters are cut.</p></header>`,
  );
  const index = new EvidenceIndex();
  out.push(summarySection({ info, verdicts, findingsTotal: findings.total, endpoints, chain }));
  out.push(nav());

  out.push(
    section("captured", "What was captured", [
      dl([
        ["Session", info.name],
        ["Started", iso(info.startedAt)],
        ["Ended", info.endedAt === null ? "still open (or not closed cleanly)" : iso(info.endedAt)],
        ["First / last upload", info.firstExchangeAt === null ? "none" : `${iso(info.firstExchangeAt)} / ${iso(info.lastExchangeAt!)}`],
        ["Connections", String(info.connections)],
        ["Exchanges (uploads)", String(info.exchanges)],
        ["Request bytes", String(info.requestBytes)],
        ["Decoded events", String(info.events)],
        ...completenessRows(db, sessionId),
        ["Captured by", `exhaust ${info.toolVersion}`],
        ["CA fingerprint (SHA-256)", info.caFingerprint ?? "-"],
      ]),
    ]),
  );

  out.push(
    section("endpoints", "Endpoints", [
      `<p>Every connection the client opened through the proxy.${outcomeNotes(endpoints.map((e) => e.outcome))}</p>`,
      table(
        ["Host", "Port", "Outcome", "Connections", "Exchanges", "Bytes from client", "Bytes to client"],
        endpoints.map((e) => [
          { text: e.host, cls: "mono" },
          String(e.port),
          { text: e.outcome, cls: e.outcome === "intercepted" ? "" : "flag" },
          String(e.connections),
          String(e.exchanges ?? 0),
          String(e.bytesFromClient ?? 0),
          String(e.bytesToClient ?? 0),
        ]),
        "no connections recorded",
      ),
      `<h3>Events over time per endpoint</h3>`,
      eventsOverTimeChart(overTime, TIME_BUCKETS),
    ]),
  );

  out.push(
    section("groups", "Events per Microsoft group", [
      `<p>Microsoft's diagnostic data groups: <em>required</em>, <em>optional</em>, <em>essential</em> services, <em>connected-experience</em>; <em>unknown</em> = in no published catalogue.</p>`,
      table(
        ["Group", "Events", "Events with content", "Events with personal data"],
        groups.map((g) => [g.group ?? "(not classified)", String(g.events), String(g.contentEvents), String(g.personalEvents)]),
        "no decoded events",
      ),
    ]),
  );

  const totalFields = categories.reduce((a, c) => a + c.fields, 0) || 1;
  out.push(
    section("categories", "Fields by category", [
      table(
        ["Category", "Fields", "Share"],
        categories.map((c) => [
          { text: c.category ?? "(not classified)", cls: `cat-${c.category ?? "unclassified"}` },
          String(c.fields),
          `${((c.fields / totalFields) * 100).toFixed(1)} %`,
        ]),
        "no fields",
      ),
      `<h3>Share of field categories per event name (20 most frequent names)</h3>`,
      categoryShareChart(shares),
    ]),
  );

  const omitted = findings.total - findings.rows.length;
  out.push(
    section("content", "Content findings", [
      `<p>${findings.total} field${findings.total === 1 ? "" : "s"} classified as <strong>content</strong> (customer content: what a user wrote, named or opened).${omitted > 0 ? ` The first ${findings.rows.length} are listed; ${omitted} more are in the database (<code>content_findings</code> view).` : ""} Each row is evidence: the event id, the exchange and the SHA-256 of the request body it was decoded from.</p>`,
      table(
        ["Event", "Field", "Value", "Rule / reasons", "Declared by client", "Evidence"],
        findings.rows.map((f) => [
          `<span class="mono" id="${index.add(fieldKey(f.eventId, f.path))}">#${f.eventId}</span><br>${h(f.eventName)}`,
          { text: f.path, cls: "mono" },
          { text: cut(String(r.field(f.path, f.value) ?? "null")), cls: "value cat-content" },
          h(f.rule ?? "-") + (f.reasons ? `<br><small>${h((JSON.parse(f.reasons) as string[]).join(", "))}</small>` : ""),
          h([piiKindName(f.piiKind), f.customerContent ? "CustomerContent" : undefined].filter(Boolean).join(", ") || "nothing"),
          `<small class="mono">exchange ${h(f.exchangeId)}<br>${h(f.host)}<br>body sha256 ${h(f.bodySha256)}</small>`,
        ]),
        "no content fields in this session",
      ),
    ]),
  );

  out.push(section("canaries", "Canary hits", [canaryHits(verdicts, r, index)]));
  out.push(
    section(
      "verdicts",
      "Verdicts",
      verdicts.length
        ? [
            `<p>Evidence is listed once: an item already shown under Content findings, Canary hits or an earlier verdict is a link to it.</p>`,
            ...verdicts.map((v, i) => verdictBlock(v, i, r, index)),
          ]
        : [`<p>No verdict stored for this session (run <code>exhaust verify</code>).</p>`],
    ),
  );

  out.push(
    section("chain", "Hash chain head", [
      chain.head
        ? dl([
            ["Exchanges in the chain", String(chain.exchanges)],
            ["Last sequence number", String(chain.lastSeq)],
            ["Head hash (SHA-256)", chain.head],
          ])
        : "<p>No exchanges, so no chain.</p>",
      `<p>Each exchange's hash covers the previous hash and the request as the client sent it; recomputing the chain (docs/database.md, “Hash chain”) and comparing the head with this value shows that no stored upload was changed, inserted or removed before it.</p>`,
    ]),
  );
  out.push(`</body></html>\n`);
  return out.join("\n");
}

const CANARY_KIND = /canary/i;

/** Canary hits are the evidence of canary rules in the verdicts, with the form and where it was found. */
function canaryHits(verdicts: VerdictReport[], red: Redactor, index: EvidenceIndex): string {
  const rows: Array<Array<string | Cell>> = [];
  let checked = false;
  for (const v of verdicts) {
    for (const r of v.rules) {
      const isCanaryRule = CANARY_KIND.test(r.kind);
      checked ||= isCanaryRule;
      for (const e of r.evidence) {
        if (!isCanaryRule && e.form === undefined) continue;
        const key = evidenceKey(e);
        // The same hit found by two profiles (zero-exhaust includes no-content) is one hit.
        if (index.has(key)) continue;
        rows.push([
          `<span id="${index.add(key)}">${h(v.profile.name)}</span>`,
          { text: r.id, cls: "mono" },
          h(e.form ?? "-"),
          h(e.location ?? "-"),
          evidenceText(e, red),
        ]);
      }
    }
  }
  if (!rows.length) {
    return checked ? `<p class="pass">Canary rules were checked and no canary was found.</p>` : `<p>No verdict checked for canaries.</p>`;
  }
  return (
    `<p class="fail">${rows.length} canary hit${rows.length === 1 ? "" : "s"}.</p>` +
    table(["Profile", "Rule", "Form", "Location", "Evidence"], rows, "")
  );
}

/** Undecoded exchanges and an unfinished import, said in the report itself (not only on stderr). */
function completenessRows(db: Db, sessionId: number): Array<[string, string]> {
  const c = sessionCoverage(db, sessionId);
  const incomplete = sessionStates(db, [sessionId])[0]?.incomplete;
  const rows: Array<[string, string]> = [];
  if (c.exchanges > c.decoded)
    rows.push(["Undecoded exchanges", `${c.exchanges - c.decoded} (left out of everything below; \`exhaust reprocess\` decodes them)`]);
  if (incomplete) rows.push(["Incomplete", incomplete]);
  return rows;
}

function verdictBlock(v: VerdictReport, n: number, red: Redactor, index: EvidenceIndex): string {
  const rules = table(
    ["Rule", "Status", "Count", "What it checks", "Evidence"],
    v.rules.map((r) => [
      { text: r.id, cls: "mono" },
      { text: r.status, cls: r.status },
      String(r.count),
      h(r.description) + (r.setting ? `<br><small>setting: ${h(r.setting)}</small>` : "") + `<br><small>source: ${h(r.source)}</small>`,
      r.evidence.length
        ? `<ul class="evidence">${r.evidence
            .slice(0, EVIDENCE_PER_RULE)
            .map((e) => evidenceItem(e, red, index))
            .join(
              "",
            )}</ul>${r.evidence.length > EVIDENCE_PER_RULE || r.evidenceOmitted ? `<small>${r.evidence.length - Math.min(EVIDENCE_PER_RULE, r.evidence.length) + r.evidenceOmitted} more not shown</small>` : ""}`
        : "-",
    ]),
    "no rules",
  );
  return (
    `<div class="verdict" id="verdict-${n + 1}"><h3>Profile <span class="mono">${h(v.profile.name)}</span>: <span class="${h(v.status)}">${h(v.status.toUpperCase())}</span></h3>` +
    `<p>${h(v.profile.description)}<br><small>profile sha256 ${h(v.profile.sha256)}; checked ${h(iso(v.createdAt))} by exhaust ${h(v.toolVersion)}; classification rules ${h(v.rulesFingerprint)}; pass ${v.counts.pass}, warn ${v.counts.warn}, fail ${v.counts.fail}</small></p>` +
    (v.coverage ? `<p><small>covered: ${h(coverageText(v) ?? "")}</small></p>` : "") +
    (v.inconclusive?.length ? `<ul class="inconclusive">${v.inconclusive.map((r) => `<li>${h(r)}</li>`).join("")}</ul>` : "") +
    rules +
    `</div>`
  );
}

/**
 * Anchors of evidence already printed in full (content findings, canary hits, earlier verdicts):
 * everything after links to them instead of printing the evidence again.
 */
class EvidenceIndex {
  private readonly anchors = new Map<string, string>();

  has(key: string): boolean {
    return this.anchors.has(key);
  }

  get(key: string): string | undefined {
    return this.anchors.get(key);
  }

  /** Registers evidence printed here; returns its anchor id. */
  add(key: string): string {
    const id = `evidence-${this.anchors.size + 1}`;
    this.anchors.set(key, id);
    return id;
  }
}

const fieldKey = (eventId: number, path: string) => `field\u0000${eventId}\u0000${path}`;

function evidenceKey(e: Evidence): string {
  return JSON.stringify([e.exchangeId, e.eventId, e.fieldPath, e.connectionId, e.host, e.location, e.form, e.note]);
}

/** One verdict evidence item: a link when it is already in the report, else in full (and anchored). */
function evidenceItem(e: Evidence, red: Redactor, index: EvidenceIndex): string {
  const label =
    e.eventId !== undefined ? `event #${e.eventId}${e.fieldPath ? ` field ${e.fieldPath}` : ""}` : e.host ? `host ${e.host}` : "evidence";
  const field = e.eventId !== undefined && e.fieldPath ? index.get(fieldKey(e.eventId, e.fieldPath)) : undefined;
  if (field)
    return `<li><a href="#${field}">${h(red.text(label))}</a> (in Content findings)${e.note ? `<br><small>${h(red.text(e.note))}</small>` : ""}</li>`;
  const key = evidenceKey(e);
  const seen = index.get(key);
  if (seen) return `<li><a href="#${seen}">${h(red.text(label))}</a> (listed above)</li>`;
  return `<li id="${index.add(key)}">${evidenceText(e, red)}</li>`;
}

function evidenceText(e: Evidence, red: Redactor): string {
  const parts: string[] = [];
  if (e.eventId !== undefined) parts.push(`event #${e.eventId}${e.eventName ? ` ${e.eventName}` : ""}`);
  else if (e.eventName) parts.push(`event ${e.eventName}`);
  if (e.fieldPath) parts.push(`field ${e.fieldPath}`);
  if (e.host) parts.push(`host ${e.host}`);
  if (e.exchangeId) parts.push(`exchange ${e.exchangeId}`);
  if (e.connectionId) parts.push(`connection ${e.connectionId}`);
  if (e.location) parts.push(`at ${e.location}`);
  if (e.form) parts.push(`as ${e.form}`);
  if (e.bodySha256) parts.push(`body sha256 ${e.bodySha256}`);
  let html = h(red.text(parts.join(", ")));
  if (e.excerpt !== undefined) {
    const excerpt = e.fieldPath ? String(red.field(e.fieldPath, e.excerpt)) : e.excerpt;
    html += `<br><span class="value">${h(cut(red.text(excerpt)))}</span>`;
  }
  if (e.note) html += `<br><small>${h(red.text(e.note))}</small>`;
  return html;
}

type Cell = { text: string; cls: string };

/** A table; plain strings are trusted markup built here, Cells carry captured text to escape. */
function table(header: string[], rows: Array<Array<string | Cell>>, empty: string): string {
  if (!rows.length) return empty ? `<p>${h(empty)}</p>` : "";
  const cell = (c: string | Cell) => (typeof c === "string" ? `<td>${c}</td>` : `<td class="${h(c.cls)}">${h(c.text)}</td>`);
  return `<table><thead><tr>${header.map((x) => `<th>${h(x)}</th>`).join("")}</tr></thead><tbody>${rows
    .map((r) => `<tr>${r.map(cell).join("")}</tr>`)
    .join("")}</tbody></table>`;
}

interface SummaryInput {
  info: NonNullable<ReturnType<typeof sessionOverview>>;
  verdicts: VerdictReport[];
  findingsTotal: number;
  endpoints: ReturnType<typeof sessionEndpoints>;
  chain: ReturnType<typeof chainSummary>;
}

/** One screen: verdicts per profile, content findings, endpoints, pinned hosts, the chain head. */
function summarySection(s: SummaryInput): string {
  const verdictRows = s.verdicts.map((v, i) => [
    `<a href="#verdict-${i + 1}" class="mono">${h(v.profile.name)}</a>`,
    `<span class="${h(v.status)}">${h(v.status.toUpperCase())}</span>`,
    `${v.counts.fail} fail, ${v.counts.warn} warn, ${v.counts.pass} pass`,
  ]);
  const hosts = [...new Set(s.endpoints.map((e) => e.host))];
  const pinned = [...new Set(s.endpoints.filter((e) => e.outcome === "client-rejected-certificate").map((e) => e.host))];
  const rows: Array<[string, string]> = [
    ["Content findings", `<a href="#content">${s.findingsTotal} field${s.findingsTotal === 1 ? "" : "s"} classified content</a>`],
    [
      "Endpoints contacted",
      `<a href="#endpoints">${hosts.length} host${hosts.length === 1 ? "" : "s"}</a>${hosts.length ? `: <span class="mono">${hosts.map(h).join(", ")}</span>` : ""}`,
    ],
    [
      "Pinned hosts",
      pinned.length
        ? `<span class="flag">${pinned.length}</span>: <span class="mono">${pinned.map(h).join(", ")}</span> (the client refused exhaust's certificate; not readable)`
        : "none",
    ],
    [
      "Captured",
      `${s.info.exchanges} exchange${s.info.exchanges === 1 ? "" : "s"}, ${s.info.events} decoded event${s.info.events === 1 ? "" : "s"}`,
    ],
    [
      "Chain head",
      s.chain.head ? `<a href="#chain">seq ${s.chain.lastSeq}</a> <span class="mono">${h(s.chain.head)}</span>` : "no exchanges, no chain",
    ],
  ];
  return section("summary", "Summary", [
    s.verdicts.length
      ? table(["Profile", "Verdict", "Rules"], verdictRows, "")
      : `<p>No verdict stored for this session (run <code>exhaust verify --profile NAME</code>, then the report again).</p>`,
    `<dl>${rows.map(([k, v]) => `<dt>${h(k)}</dt><dd>${v}</dd>`).join("")}</dl>`,
  ]);
}

function dl(items: Array<[string, string]>): string {
  return `<dl>${items.map(([k, v]) => `<dt>${h(k)}</dt><dd>${h(v)}</dd>`).join("")}</dl>`;
}

function section(id: string, title: string, body: string[]): string {
  return `<section id="${id}"><h2>${h(title)}</h2>${body.join("\n")}</section>`;
}

function nav(): string {
  const items: Array<[string, string]> = [
    ["summary", "Summary"],
    ["captured", "What was captured"],
    ["endpoints", "Endpoints"],
    ["groups", "Microsoft groups"],
    ["categories", "Fields by category"],
    ["content", "Content findings"],
    ["canaries", "Canary hits"],
    ["verdicts", "Verdicts"],
    ["chain", "Hash chain head"],
  ];
  return `<nav><ol>${items.map(([id, t]) => `<li><a href="#${id}">${h(t)}</a></li>`).join("")}</ol></nav>`;
}

function cut(text: string): string {
  return text.length > VALUE_CHARS ? `${text.slice(0, VALUE_CHARS)}… (${text.length} characters)` : text;
}

function iso(ms: number): string {
  return new Date(ms)
    .toISOString()
    .replace("T", " ")
    .replace(/\.\d+Z$/, " UTC");
}

const REPORT_CSS = `${DOCUMENT_CSS}
:root { --content: ${CATEGORY_COLORS.content}; --functional: ${CATEGORY_COLORS.functional}; --diagnostic: ${CATEGORY_COLORS.diagnostic}; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; }
.mono, code { font-family: ui-monospace, "Cascadia Mono", Consolas, monospace; font-size: 0.92em; }
table { width: 100%; }
td { overflow-wrap: anywhere; }
.value { font-family: ui-monospace, Consolas, monospace; white-space: pre-wrap; overflow-wrap: anywhere; }
.cat-content { color: var(--content); font-weight: 600; } .cat-functional { color: var(--functional); } .cat-diagnostic { color: var(--diagnostic); }
td.cat-content { background: #fdecea; }
.flag { color: #ef6c00; font-weight: 600; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: 0.2em 1em; } dt { font-weight: 600; } dd { margin: 0; overflow-wrap: anywhere; }
nav ol { columns: 2; }
ul.evidence { margin: 0; padding-left: 1.1em; }
@media print {
  body { max-width: none; padding: 0; font-size: 10.5pt; }
  nav { display: none; }
  a { color: inherit; text-decoration: none; }
  section { break-inside: auto; } h2, h3 { break-after: avoid; }
  tr, .chart, dl { break-inside: avoid; }
  thead { display: table-header-group; }
  @page { size: A4; margin: 15mm 12mm; }
}
`;

/** What each stored connection outcome means, said only for the outcomes the report shows. */
const OUTCOME_NOTES: Record<string, string> = {
  "client-rejected-certificate":
    "<em>client-rejected-certificate</em> means the client refused exhaust's certificate (certificate pinning): the connection is evidence in itself, but its content could not be read.",
  tunnelled: "<em>tunnelled</em> connections reached their upstream and were passed through unread.",
  "upstream-failed":
    "<em>upstream-failed</em> connections never reached their upstream (refused, not found, timed out): nothing was relayed.",
  "refused-private":
    "<em>refused-private</em> connections named a private, loopback or link-local target (or the proxy or its UI) and were refused: nothing was relayed.",
  "closed-by-policy":
    "<em>closed-by-policy</em> connections were refused because relaying them would have let data out in sinkhole or block mode.",
  "tls-failed": "<em>tls-failed</em> connections never completed a TLS handshake (nothing was read or relayed).",
};

function outcomeNotes(outcomes: string[]): string {
  const notes = [...new Set(outcomes)].map((o) => OUTCOME_NOTES[o]).filter(Boolean);
  return notes.length ? ` ${notes.join(" ")}` : "";
}
