/**
 * HTML and SVG building blocks shared by the web UI and the HTML report. Everything captured is
 * hostile input: every string that reaches markup goes through escapeHtml.
 */

const ESCAPES: Record<string, string> = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };

export function escapeHtml(text: unknown): string {
  return String(text ?? "").replace(/[&<>"']/g, (c) => ESCAPES[c]);
}

/** Colours of the DPIA categories, the same in the UI, its charts and the report. */
export const CATEGORY_COLORS: Record<string, string> = {
  content: "#c62828",
  functional: "#1565c0",
  diagnostic: "#6d7b3a",
  unclassified: "#9e9e9e",
};

const SERIES_COLORS = ["#1565c0", "#c62828", "#2e7d32", "#ef6c00", "#6a1b9a", "#00838f", "#ad1457", "#5d4037", "#455a64", "#9e9d24"];

export function seriesColor(i: number): string {
  return SERIES_COLORS[i % SERIES_COLORS.length];
}

export interface StackedRow {
  label: string;
  parts: Record<string, number>;
}

/** Horizontal 100 % stacked bars, one per row, with a legend: "share of categories per event name". */
export function stackedBarsSvg(rows: StackedRow[], colors: Record<string, string> = CATEGORY_COLORS): string {
  const keys = [...new Set(rows.flatMap((r) => Object.keys(r.parts)))];
  const labelW = 300;
  const barW = 360;
  const rowH = 20;
  const width = labelW + barW + 70;
  const height = 28 + rows.length * rowH;
  const out: string[] = [];
  out.push(`<svg class="chart" role="img" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}">`);
  keys.forEach((k, i) => {
    const x = labelW + i * 110;
    out.push(`<rect x="${x}" y="4" width="10" height="10" fill="${colors[k] ?? seriesColor(i)}"/>`);
    out.push(`<text x="${x + 14}" y="13" font-size="11">${escapeHtml(k)}</text>`);
  });
  rows.forEach((r, i) => {
    const y = 24 + i * rowH;
    const total = Object.values(r.parts).reduce((a, b) => a + b, 0) || 1;
    const label = r.label.length > 46 ? `${r.label.slice(0, 45)}…` : r.label;
    out.push(
      `<text x="${labelW - 6}" y="${y + 13}" font-size="11" text-anchor="end"><title>${escapeHtml(r.label)}</title>${escapeHtml(label)}</text>`,
    );
    let x = labelW;
    keys.forEach((k, ki) => {
      const n = r.parts[k] ?? 0;
      if (!n) return;
      const w = (n / total) * barW;
      out.push(
        `<rect x="${x.toFixed(1)}" y="${y + 2}" width="${w.toFixed(1)}" height="${rowH - 5}" fill="${colors[k] ?? seriesColor(ki)}"><title>${escapeHtml(`${r.label}: ${k} ${n} (${((n / total) * 100).toFixed(1)} %)`)}</title></rect>`,
      );
      x += w;
    });
    out.push(`<text x="${labelW + barW + 6}" y="${y + 13}" font-size="11">${total}</text>`);
  });
  out.push("</svg>");
  return out.join("");
}

export interface Series {
  name: string;
  values: number[];
}

/** Lines over equal time buckets, one per series (events over time per endpoint). */
export function timeSeriesSvg(series: Series[], from: number, to: number): string {
  const width = 760;
  const plotH = 160;
  const left = 48;
  const top = 10;
  const plotW = width - left - 10;
  const legendH = 16 * Math.ceil(series.length / 3);
  const height = top + plotH + 22 + legendH;
  const buckets = Math.max(1, ...series.map((s) => s.values.length));
  const max = Math.max(1, ...series.flatMap((s) => s.values));
  const out: string[] = [];
  out.push(`<svg class="chart" role="img" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}">`);
  out.push(`<rect x="${left}" y="${top}" width="${plotW}" height="${plotH}" fill="none" stroke="#bbb"/>`);
  out.push(`<text x="${left - 4}" y="${top + 10}" font-size="10" text-anchor="end">${max}</text>`);
  out.push(`<text x="${left - 4}" y="${top + plotH}" font-size="10" text-anchor="end">0</text>`);
  out.push(`<text x="${left}" y="${top + plotH + 14}" font-size="10">${escapeHtml(isoMinute(from))}</text>`);
  out.push(`<text x="${left + plotW}" y="${top + plotH + 14}" font-size="10" text-anchor="end">${escapeHtml(isoMinute(to))}</text>`);
  series.forEach((s, i) => {
    const pts = s.values.map((v, b) => {
      const x = left + (buckets === 1 ? plotW / 2 : (b / (buckets - 1)) * plotW);
      const y = top + plotH - (v / max) * plotH;
      return `${x.toFixed(1)},${y.toFixed(1)}`;
    });
    out.push(
      `<polyline fill="none" stroke-width="1.5" stroke="${seriesColor(i)}" points="${pts.join(" ")}"><title>${escapeHtml(s.name)}</title></polyline>`,
    );
    const lx = left + (i % 3) * 240;
    const ly = top + plotH + 30 + Math.floor(i / 3) * 16;
    out.push(`<rect x="${lx}" y="${ly - 9}" width="10" height="10" fill="${seriesColor(i)}"/>`);
    const total = s.values.reduce((a, b) => a + b, 0);
    out.push(
      `<text x="${lx + 14}" y="${ly}" font-size="11">${escapeHtml(`${s.name.length > 36 ? `${s.name.slice(0, 35)}…` : s.name} (${total})`)}</text>`,
    );
  });
  out.push("</svg>");
  return out.join("");
}

function isoMinute(ms: number): string {
  return new Date(ms).toISOString().slice(0, 16).replace("T", " ");
}

/** The chart "share of categories per event name" from its query rows. */
export function categoryShareChart(rows: ReadonlyArray<{ name: string; category: string | null; count: number }>): string {
  const byName = new Map<string, Record<string, number>>();
  for (const r of rows) {
    const parts = byName.get(r.name) ?? {};
    parts[r.category ?? "unclassified"] = (parts[r.category ?? "unclassified"] ?? 0) + r.count;
    byName.set(r.name, parts);
  }
  const total = (p: Record<string, number>) => Object.values(p).reduce((a, b) => a + b, 0);
  const stacked = [...byName].map(([label, parts]) => ({ label, parts })).sort((a, b) => total(b.parts) - total(a.parts));
  return stacked.length ? stackedBarsSvg(stacked) : "<p>no events</p>";
}

/** The chart "events over time per endpoint" from its query rows; the busiest `maxHosts` hosts. */
export function eventsOverTimeChart(
  data: { from: number; to: number; rows: ReadonlyArray<{ host: string; bucket: number; events: number }> },
  buckets: number,
  maxHosts = 9,
): string {
  const byHost = new Map<string, number[]>();
  for (const r of data.rows) {
    const values = byHost.get(r.host) ?? new Array<number>(buckets).fill(0);
    values[Math.min(buckets - 1, r.bucket)] += r.events;
    byHost.set(r.host, values);
  }
  const sum = (v: number[]) => v.reduce((a, b) => a + b, 0);
  const series = [...byHost].map(([name, values]) => ({ name, values })).sort((a, b) => sum(b.values) - sum(a.values));
  if (series.length > maxHosts) {
    const rest = series.splice(maxHosts - 1);
    series.push({
      name: `${rest.length} other hosts`,
      values: rest.reduce((acc, s) => acc.map((v, i) => v + s.values[i]), new Array<number>(buckets).fill(0)),
    });
  }
  return series.length ? timeSeriesSvg(series, data.from, data.to) : "<p>no events</p>";
}
