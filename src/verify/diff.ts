/**
 * The before/after view of applying a policy: two sessions compared by endpoints contacted, event
 * names, field paths per event name and DPIA categories. What appeared, what disappeared, what
 * changed category (and, for endpoints and events, what changed in count).
 */
import type { Db } from "../store/database.js";
import {
  endpointSummary,
  eventNameSummary,
  iterateFieldSummary,
  type SessionRef,
} from "../store/verify-queries.js";

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
  endpoints: { appeared: EndpointEntry[]; disappeared: EndpointEntry[]; changed: Array<{ host: string; a: EndpointEntry; b: EndpointEntry }> };
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
    endpointSummary(db, sessionId).map((r) => [r.host, { host: r.host, connections: r.connections, exchanges: r.exchanges, outcomes: split(r.outcomes) }]),
  );
}

function events(db: Db, sessionId: number): Map<string, EventEntry> {
  return new Map(
    eventNameSummary(db, sessionId).map((r) => [r.name, { name: r.name, count: r.count, categories: split(r.categories), groups: split(r.groups) }]),
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

export function diffSessions(db: Db, a: SessionRef, b: SessionRef): SessionDiff {
  const ep = partition(endpoints(db, a.id), endpoints(db, b.id));
  const ev = partition(events(db, a.id), events(db, b.id));
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
  };
}

const cats = (c: string[]) => (c.length ? c.join("/") : "-");

export function formatDiffText(d: SessionDiff): string {
  const lines = [`diff  ${d.a.name} → ${d.b.name}`, ""];
  const section = (title: string, items: string[]) => {
    lines.push(`${title} (${items.length})`);
    for (const i of items) lines.push(`  ${i}`);
  };
  section("endpoints appeared", d.endpoints.appeared.map((e) => `+ ${e.host}  ${e.connections} conn, ${e.exchanges} exch [${e.outcomes.join(",")}]`));
  section("endpoints disappeared", d.endpoints.disappeared.map((e) => `- ${e.host}  ${e.connections} conn, ${e.exchanges} exch [${e.outcomes.join(",")}]`));
  section("endpoints changed", d.endpoints.changed.map((e) => `~ ${e.host}  ${e.a.connections}→${e.b.connections} conn, ${e.a.exchanges}→${e.b.exchanges} exch`));
  section("events appeared", d.events.appeared.map((e) => `+ ${e.name}  ×${e.count}  ${cats(e.categories)}`));
  section("events disappeared", d.events.disappeared.map((e) => `- ${e.name}  ×${e.count}  ${cats(e.categories)}`));
  section("events changed count", d.events.countChanged.map((e) => `~ ${e.name}  ×${e.a} → ×${e.b}`));
  section("events changed category", d.events.categoryChanged.map((e) => `~ ${e.name}  ${cats(e.a)} → ${cats(e.b)}`));
  section("fields appeared", d.fields.appeared.map((f) => `+ ${f.event}  ${f.path}  ${cats(f.categories)}`));
  section("fields disappeared", d.fields.disappeared.map((f) => `- ${f.event}  ${f.path}  ${cats(f.categories)}`));
  section("fields changed category", d.fields.categoryChanged.map((f) => `~ ${f.event}  ${f.path}  ${cats(f.a)} → ${cats(f.b)}`));
  const names = [...new Set([...Object.keys(d.categories.a), ...Object.keys(d.categories.b)])].sort();
  section("fields per category", names.map((n) => `${n}  ${d.categories.a[n] ?? 0} → ${d.categories.b[n] ?? 0}`));
  return `${lines.join("\n")}\n`;
}
