/**
 * The before/after view of applying a policy: two sessions compared by endpoints contacted, event
 * names, field paths per event name and DPIA categories. What appeared, what disappeared, what
 * changed category (and, for endpoints and events, what changed in count).
 */
import type { Db } from "../store/database.js";
import type { SessionRef } from "../store/sessions.js";
import { endpointSummary } from "../store/connections.js";
import { eventNameSummary } from "../store/events.js";
import { iterateFieldSummary } from "../store/fields.js";

export interface EndpointEntry {
  host: string;
  connections: number;
  exchanges: number;
  outcomes: string[];
}
export interface EventEntry {
  name: string;
  count: number;
  categories: string[];
  groups: string[];
}
export interface FieldEntry {
  event: string;
  path: string;
  count: number;
  categories: string[];
}

export interface SessionDiff {
  a: SessionRef;
  b: SessionRef;
  endpoints: {
    appeared: EndpointEntry[];
    disappeared: EndpointEntry[];
    changed: Array<{ host: string; a: EndpointEntry; b: EndpointEntry }>;
  };
  events: {
    appeared: EventEntry[];
    disappeared: EventEntry[];
    countChanged: Array<{ name: string; a: number; b: number }>;
    categoryChanged: Array<{ name: string; a: string[]; b: string[] }>;
  };
  fields: {
    appeared: FieldEntry[];
    disappeared: FieldEntry[];
    categoryChanged: Array<{ event: string; path: string; a: string[]; b: string[] }>;
  };
  /** Field counts per DPIA category in each session. */
  categories: { a: Record<string, number>; b: Record<string, number> };
  /** Event counts per Microsoft group in each session (a name seen in two groups counts as `g1/g2`). */
  groups: { a: Record<string, number>; b: Record<string, number> };
  /** Events in each session. */
  eventCounts: { a: number; b: number };
}

const split = (s: string | null) => (s ? s.split(",").sort() : []);
const sameList = (x: string[], y: string[]) => x.length === y.length && x.every((v, i) => v === y[i]);

/** Keys only in a, only in b, and in both (sorted by key). */
function partition<T>(a: Map<string, T>, b: Map<string, T>) {
  const keys = [...new Set([...a.keys(), ...b.keys()])].sort();
  return {
    onlyA: keys.filter((k) => !b.has(k)).map((k) => a.get(k)!),
    onlyB: keys.filter((k) => !a.has(k)).map((k) => b.get(k)!),
    both: keys.filter((k) => a.has(k) && b.has(k)).map((k) => [a.get(k)!, b.get(k)!] as const),
  };
}

function endpoints(db: Db, sessionId: number): Map<string, EndpointEntry> {
  return new Map(
    endpointSummary(db, sessionId).map((r) => [
      r.host,
      { host: r.host, connections: r.connections, exchanges: r.exchanges, outcomes: split(r.outcomes) },
    ]),
  );
}

function events(db: Db, sessionId: number): Map<string, EventEntry> {
  return new Map(
    eventNameSummary(db, sessionId).map((r) => [
      r.name,
      { name: r.name, count: r.count, categories: split(r.categories), groups: split(r.groups) },
    ]),
  );
}

/** Fields per event name and path, and the session's field count per category, from one pass. */
function fields(db: Db, sessionId: number): { byPath: Map<string, FieldEntry>; categories: Record<string, number> } {
  const byPath = new Map<string, FieldEntry>();
  const categories: Record<string, number> = {};
  for (const r of iterateFieldSummary(db, sessionId)) {
    const key = `${r.name}\u0000${r.path}`;
    let e = byPath.get(key);
    if (!e) byPath.set(key, (e = { event: r.name, path: r.path, count: 0, categories: [] }));
    e.count += r.count;
    if (r.category && !e.categories.includes(r.category)) e.categories.push(r.category);
    const category = r.category ?? "unclassified";
    categories[category] = (categories[category] ?? 0) + r.count;
  }
  for (const e of byPath.values()) e.categories.sort();
  return { byPath, categories: Object.fromEntries(Object.entries(categories).sort(([x], [y]) => x.localeCompare(y))) };
}

function groupCounts(evs: Map<string, EventEntry>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const e of evs.values()) {
    const g = e.groups.length ? e.groups.join("/") : "unknown";
    out[g] = (out[g] ?? 0) + e.count;
  }
  return Object.fromEntries(Object.entries(out).sort(([x], [y]) => x.localeCompare(y)));
}

const total = (evs: Map<string, EventEntry>) => [...evs.values()].reduce((n, e) => n + e.count, 0);

export function diffSessions(db: Db, a: SessionRef, b: SessionRef): SessionDiff {
  const ep = partition(endpoints(db, a.id), endpoints(db, b.id));
  const eva = events(db, a.id);
  const evb = events(db, b.id);
  const ev = partition(eva, evb);
  const fa = fields(db, a.id);
  const fb = fields(db, b.id);
  const fl = partition(fa.byPath, fb.byPath);
  return {
    a,
    b,
    endpoints: {
      appeared: ep.onlyB,
      disappeared: ep.onlyA,
      changed: ep.both
        .filter(([x, y]) => x.connections !== y.connections || x.exchanges !== y.exchanges || !sameList(x.outcomes, y.outcomes))
        .map(([x, y]) => ({ host: x.host, a: x, b: y })),
    },
    events: {
      appeared: ev.onlyB,
      disappeared: ev.onlyA,
      countChanged: ev.both.filter(([x, y]) => x.count !== y.count).map(([x, y]) => ({ name: x.name, a: x.count, b: y.count })),
      categoryChanged: ev.both
        .filter(([x, y]) => !sameList(x.categories, y.categories))
        .map(([x, y]) => ({ name: x.name, a: x.categories, b: y.categories })),
    },
    fields: {
      appeared: fl.onlyB,
      disappeared: fl.onlyA,
      categoryChanged: fl.both
        .filter(([x, y]) => !sameList(x.categories, y.categories))
        .map(([x, y]) => ({ event: x.event, path: x.path, a: x.categories, b: y.categories })),
    },
    categories: { a: fa.categories, b: fb.categories },
    groups: { a: groupCounts(eva), b: groupCounts(evb) },
    eventCounts: { a: total(eva), b: total(evb) },
  };
}

const cats = (c: string[]) => (c.length ? c.join("/") : "-");

/** "a → b" lines for every key of either side, aligned. */
function countLines(a: Record<string, number>, b: Record<string, number>): string[] {
  const names = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort();
  const w = Math.max(0, ...names.map((n) => n.length));
  return names.map((n) => `${n.padEnd(w)}  ${a[n] ?? 0} → ${b[n] ?? 0}`);
}

/**
 * The diff as text: the summary first (categories, groups, event names that appeared or
 * disappeared, endpoints), then the event-level lists; field-level lines only with `fields`.
 */
export function formatDiffText(d: SessionDiff, options: { fields?: boolean } = {}): string {
  const lines = [`diff  ${d.a.name} → ${d.b.name}`, ""];
  const section = (title: string, items: string[]) => {
    lines.push(`${title} (${items.length})`);
    for (const i of items) lines.push(`  ${i}`);
  };
  const f = d.fields;
  const e = d.events;
  const ep = d.endpoints;
  lines.push(
    "summary",
    `  events     ${d.eventCounts.a} → ${d.eventCounts.b}; names +${e.appeared.length} -${e.disappeared.length}, ${e.countChanged.length} changed count, ${e.categoryChanged.length} changed category`,
    `  endpoints  +${ep.appeared.length} -${ep.disappeared.length}, ${ep.changed.length} changed`,
    `  fields     +${f.appeared.length} -${f.disappeared.length}, ${f.categoryChanged.length} changed category${options.fields ? "" : " (listed with --fields)"}`,
    "",
  );
  section("fields per category", countLines(d.categories.a, d.categories.b));
  section("events per group", countLines(d.groups.a, d.groups.b));
  section(
    "event names appeared",
    e.appeared.map((x) => `+ ${x.name}  ×${x.count}  ${cats(x.categories)}`),
  );
  section(
    "event names disappeared",
    e.disappeared.map((x) => `- ${x.name}  ×${x.count}  ${cats(x.categories)}`),
  );
  section(
    "events changed count",
    e.countChanged.map((x) => `~ ${x.name}  ×${x.a} → ×${x.b}`),
  );
  section(
    "events changed category",
    e.categoryChanged.map((x) => `~ ${x.name}  ${cats(x.a)} → ${cats(x.b)}`),
  );
  section(
    "endpoints appeared",
    ep.appeared.map((x) => `+ ${x.host}  ${x.connections} conn, ${x.exchanges} exch [${x.outcomes.join(",")}]`),
  );
  section(
    "endpoints disappeared",
    ep.disappeared.map((x) => `- ${x.host}  ${x.connections} conn, ${x.exchanges} exch [${x.outcomes.join(",")}]`),
  );
  section(
    "endpoints changed",
    ep.changed.map((x) => `~ ${x.host}  ${x.a.connections}→${x.b.connections} conn, ${x.a.exchanges}→${x.b.exchanges} exch`),
  );
  if (options.fields) {
    section(
      "fields appeared",
      f.appeared.map((x) => `+ ${x.event}  ${x.path}  ${cats(x.categories)}`),
    );
    section(
      "fields disappeared",
      f.disappeared.map((x) => `- ${x.event}  ${x.path}  ${cats(x.categories)}`),
    );
    section(
      "fields changed category",
      f.categoryChanged.map((x) => `~ ${x.event}  ${x.path}  ${cats(x.a)} → ${cats(x.b)}`),
    );
  }
  return `${lines.join("\n")}\n`;
}
