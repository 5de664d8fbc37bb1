/** A VerdictReport as text (people), JSON (as it is), JUnit XML (CI, lab automation) or Markdown. */
import type { Evidence, RuleVerdict, VerdictReport } from "../verdict.js";

export const VERDICT_FORMATS = ["text", "json", "junit", "markdown"] as const;
export type VerdictFormat = (typeof VERDICT_FORMATS)[number];

export function formatVerdict(report: VerdictReport, format: VerdictFormat): string {
  switch (format) {
    case "json":
      return `${JSON.stringify(report, null, 2)}\n`;
    case "junit":
      return junit(report);
    case "markdown":
      return markdown(report);
    default:
      return text(report);
  }
}

/** One line per piece of evidence: everything needed to find the bytes again. */
export function describeEvidence(e: Evidence): string {
  const parts: string[] = [];
  if (e.eventId !== undefined) parts.push(`event ${e.eventId}${e.eventName ? ` ${e.eventName}` : ""}`);
  if (e.fieldPath) parts.push(`field ${e.fieldPath}`);
  if (e.location && !e.location.startsWith("field ")) parts.push(`in ${e.location}`);
  if (e.form) parts.push(`as ${e.form}`);
  if (e.host && e.eventId === undefined) parts.push(`host ${e.host}`);
  if (e.exchangeId) parts.push(`exchange ${e.exchangeId}`);
  if (e.connectionId) parts.push(`connection ${e.connectionId}`);
  if (e.bodySha256) parts.push(`body sha256 ${e.bodySha256}`);
  if (e.note) parts.push(e.note);
  if (e.excerpt) parts.push(`"${e.excerpt}"`);
  return parts.join("; ");
}

const omitted = (r: RuleVerdict) => (r.evidenceOmitted > 0 ? `… and ${r.evidenceOmitted} more (not listed)` : undefined);

function countText(r: RuleVerdict): string {
  const items = r.status === "pass" ? "no items" : `${r.count} item${r.count === 1 ? "" : "s"}`;
  const review = r.reviewCount ? `, ${r.reviewCount} more to review` : "";
  return `${items}${review}${r.checked !== undefined ? ` (checked ${r.checked})` : ""}`;
}

/** "12 exchanges (10 decoded), 40 events, 3 connections without an exchange, 12 to catalogue hosts". */
export function coverageText(report: VerdictReport): string | undefined {
  const c = report.coverage;
  if (!c) return undefined;
  return (
    `${c.exchanges} exchange${c.exchanges === 1 ? "" : "s"} (${c.decodedExchanges} decoded), ${c.events} event${c.events === 1 ? "" : "s"}, ` +
    `${c.bareConnections} connection${c.bareConnections === 1 ? "" : "s"} without an exchange; ${c.catalogueTraffic} to catalogue hosts` +
    (c.incomplete ? `; incomplete: ${c.incomplete}` : "")
  );
}

const reasonsText = (report: VerdictReport) => (report.inconclusive ?? []).join("; ");

function text(report: VerdictReport): string {
  const coverage = coverageText(report);
  const lines = [
    `profile  ${report.profile.name}  (sha256 ${report.profile.sha256.slice(0, 16)})  ${report.profile.description}`,
    `session  ${report.session.name}`,
    ...(coverage ? [`covered  ${coverage}`] : []),
    "",
  ];
  for (const r of report.rules) {
    lines.push(`${r.status.toUpperCase().padEnd(4)}  ${r.id}  [${r.kind}]  ${countText(r)}`);
    lines.push(`      ${r.description}`);
    if (r.status !== "pass" || r.note) {
      if (r.setting) lines.push(`      setting: ${r.setting}`);
      lines.push(`      source: ${r.source}`);
      if (r.note) lines.push(`      note: ${r.note}`);
      for (const e of r.evidence) lines.push(`      - ${describeEvidence(e)}`);
      const more = omitted(r);
      if (more) lines.push(`      ${more}`);
    }
  }
  const c = report.counts;
  lines.push("", `verdict: ${report.status.toUpperCase()} (${c.fail} fail, ${c.warn} warn, ${c.pass} pass)`);
  for (const reason of report.inconclusive ?? []) lines.push(`${report.status === "inconclusive" ? "because" : "also"}: ${reason}`);
  return `${lines.join("\n")}\n`;
}

const xml = (s: string) =>
  s
    .replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]/g, "\ufffd")
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;");

function evidenceBlock(r: RuleVerdict): string {
  return [
    r.description,
    r.setting ? `setting: ${r.setting}` : undefined,
    `source: ${r.source}`,
    r.note ? `note: ${r.note}` : undefined,
    ...r.evidence.map((e) => `- ${describeEvidence(e)}`),
    omitted(r),
  ]
    .filter(Boolean)
    .join("\n");
}

/**
 * One testsuite per verification, one testcase per rule: fail → <failure>, warn → passes with
 * <system-out>. A verdict that cannot speak for its session (inconclusive reasons) adds a testcase
 * `coverage` with an <error>.
 */
function junit(report: VerdictReport): string {
  const c = report.counts;
  const suite = `${report.profile.name} @ ${report.session.name}`;
  const errors = report.inconclusive?.length ? 1 : 0;
  const tests = report.rules.length + errors;
  const out = [
    `<?xml version="1.0" encoding="UTF-8"?>`,
    `<testsuites name="exhaust verify" tests="${tests}" failures="${c.fail}" errors="${errors}">`,
    `  <testsuite name="${xml(suite)}" tests="${tests}" failures="${c.fail}" errors="${errors}" skipped="0" timestamp="${new Date(report.createdAt).toISOString()}">`,
    `    <properties>`,
    `      <property name="profile" value="${xml(report.profile.name)}"/>`,
    `      <property name="profile.sha256" value="${report.profile.sha256}"/>`,
    `      <property name="session" value="${xml(report.session.name)}"/>`,
    `      <property name="verdict" value="${report.status}"/>`,
    `      <property name="tool.version" value="${xml(report.toolVersion)}"/>`,
    ...(report.coverage
      ? Object.entries(report.coverage)
          .filter(([, v]) => v !== undefined)
          .map(([k, v]) => `      <property name="coverage.${k}" value="${xml(String(v))}"/>`)
      : []),
    `    </properties>`,
  ];
  if (errors) {
    out.push(
      `    <testcase classname="exhaust.${xml(report.profile.name)}" name="coverage">`,
      `      <error type="inconclusive" message="${xml(reasonsText(report))}">${xml(`${reasonsText(report)}\ncovered: ${coverageText(report) ?? "-"}`)}</error>`,
      `    </testcase>`,
    );
  }
  for (const r of report.rules) {
    out.push(`    <testcase classname="exhaust.${xml(report.profile.name)}" name="${xml(r.id)}">`);
    if (r.status === "fail") {
      out.push(`      <failure type="${xml(r.kind)}" message="${xml(`${r.id}: ${countText(r)}`)}">${xml(evidenceBlock(r))}</failure>`);
    } else if (r.status === "warn") {
      out.push(`      <system-out>${xml(`WARN ${r.id}: ${countText(r)}\n${evidenceBlock(r)}`)}</system-out>`);
    }
    out.push(`    </testcase>`);
  }
  out.push(`  </testsuite>`, `</testsuites>`);
  return `${out.join("\n")}\n`;
}

const md = (s: string) => s.replace(/[|\\`*_<>]/g, (ch) => `\\${ch}`).replace(/\n/g, " ");

function markdown(report: VerdictReport): string {
  const c = report.counts;
  const out = [
    `# Verification: ${md(report.profile.name)} — ${report.status.toUpperCase()}`,
    "",
    `Session **${md(report.session.name)}**, profile ${md(report.profile.description)} (sha256 \`${report.profile.sha256}\`), ` +
      `${c.fail} fail, ${c.warn} warn, ${c.pass} pass. exhaust ${md(report.toolVersion)}, ${new Date(report.createdAt).toISOString()}.`,
    ...(report.coverage ? ["", `Covered: ${md(coverageText(report)!)}.`] : []),
    ...(report.inconclusive?.length ? ["", "**Inconclusive:**", "", ...report.inconclusive.map((r) => `- ${md(r)}`)] : []),
    "",
    "| status | rule | kind | items | description |",
    "|---|---|---|---|---|",
    ...report.rules.map((r) => `| ${r.status.toUpperCase()} | ${md(r.id)} | ${md(r.kind)} | ${r.count} | ${md(r.description)} |`),
  ];
  for (const r of report.rules.filter((x) => x.status !== "pass")) {
    out.push("", `## ${r.status.toUpperCase()}: ${md(r.id)}`, "", md(r.description), "");
    if (r.setting) out.push(`- setting: ${md(r.setting)}`);
    out.push(`- source: ${md(r.source)}`, `- ${countText(r)}`);
    if (r.note) out.push(`- note: ${md(r.note)}`);
    out.push("", ...r.evidence.map((e) => `1. ${md(describeEvidence(e))}`));
    const more = omitted(r);
    if (more) out.push("", more);
  }
  return `${out.join("\n")}\n`;
}
