/**
 * Query latency over a generated database of 1,000,000 events: the event list (first and deep
 * pages), its filters (session, category=content, personal, group, name glob, host, combined),
 * the content-field list, one event with its fields, and the bounded free-text search.
 *
 * The database is written through the real EventStore (replaceEvents) from synthetic decoded and
 * classified events, with exchanges committed by the real CaptureStore (hash chain included). It
 * is cached under os.tmpdir(), keyed by schema version and shape, because building it takes
 * minutes: 1 M events × 40 fields (as a real upload's) = 40 M field rows, a few GB.
 */
import { createHash } from "node:crypto";
import { existsSync, renameSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import type { ClassifiedEvent, ClassifiedField } from "../src/classify/types.js";
import type { DecodedEvent, DecodedField } from "../src/decode/types.js";
import { CaptureStore } from "../src/store/capture-store.js";
import { openDatabase, type Db } from "../src/store/database.js";
import { EventStore } from "../src/store/event-store.js";
import { MIGRATIONS } from "../src/store/migrations.js";
import { getEvent, listEventsPage, type EventFilter } from "../src/store/events.js";
import { listFieldsPage } from "../src/store/fields.js";
import { makeExchange } from "../test/helpers/exchange.js";
import { round } from "./load.js";

export const QUERY_BENCH_EVENTS = 1_000_000;
const EVENTS_PER_UPLOAD = 100;
/** A real upload's ~40: 12 with meaning for the filters, the rest ordinary diagnostic values. */
const FIELDS_PER_EVENT = 40;
const HOSTS = [
  "mobile.events.data.microsoft.com",
  "self.events.data.microsoft.com",
  "nexusrules.officeapps.live.com",
  "v10.events.data.microsoft.com",
  "browser.pipe.aria.microsoft.com",
];
const GROUPS = ["required", "required", "optional", "optional", "optional", "essential", "unknown"] as const;
/** One event in CONTENT_EVERY carries a document path (content), like a real capture: content is rare. */
const CONTENT_EVERY = 500;
/** One event in PERSONAL_EVERY carries a pseudonymous device id. */
const PERSONAL_EVERY = 3;
export const PLANTED_SEARCH = "needle-that-is-nowhere";

function dbFile(): string {
  // Keyed by the schema itself, so any change to a migration builds a new database.
  const schema = createHash("sha256").update(MIGRATIONS.join("\0")).digest("hex").slice(0, 12);
  return join(tmpdir(), `exhaust-bench-queries-${schema}-${QUERY_BENCH_EVENTS}x${FIELDS_PER_EVENT}.db`);
}

function syntheticUpload(u: number): { events: DecodedEvent[]; classified: ClassifiedEvent[] } {
  const events: DecodedEvent[] = [];
  const classified: ClassifiedEvent[] = [];
  for (let i = 0; i < EVENTS_PER_UPLOAD; i++) {
    const n = u * EVENTS_PER_UPLOAD + i;
    const app = ["Word", "Excel", "PowerPoint", "Outlook"][n % 4];
    const name = `Office.${app}.Feature${n % 50}.Action${n % 7}`;
    const fields: DecodedField[] = [
      { path: "name", part: "envelope", value: name, type: "string" },
      { path: "time", part: "envelope", value: new Date(Date.UTC(2026, 10, 24) + n * 7).toISOString(), type: "datetime" },
      { path: "ver", part: "envelope", value: "4.0", type: "string" },
      { path: "iKey", part: "envelope", value: "o:0123456789abcdef0123456789abcdef", type: "string" },
      { path: "ext.app.name", part: "A", value: app, type: "string" },
      { path: "ext.app.ver", part: "A", value: "16.0.17029.20108", type: "string" },
      {
        path: "ext.device.localId",
        part: "A",
        value: `s:6C4E3D2A-${String(n % 9999).padStart(4, "0")}-4000-8000-000000000000`,
        type: "string",
      },
      { path: "App.Version", part: "C", value: "16.0.17029.20108", type: "string" },
      { path: "Activity.Success", part: "C", value: n % 13 !== 0, type: "bool" },
      { path: "Activity.Duration", part: "C", value: (n * 37) % 100_000, type: "int32" },
      { path: "Data.Doc.Ext", part: "C", value: ["docx", "xlsx", "pptx"][n % 3], type: "string" },
      n % CONTENT_EVERY === 0
        ? { path: "Data.Doc.FileName", part: "C", value: `C:\\Users\\user${n % 97}\\Documents\\Report ${n}.docx`, type: "string" }
        : { path: "Data.Doc.SizeBucket", part: "C", value: n % 6, type: "int32" },
    ];
    for (let k = 0; fields.length < FIELDS_PER_EVENT; k++) {
      fields.push(
        k % 3 === 0
          ? { path: `Data.Counter${k}`, part: "C", value: (n * (k + 1)) % 1000, type: "int32" }
          : k % 3 === 1
            ? { path: `Data.Flag${k}`, part: "C", value: (n + k) % 5 === 0, type: "bool" }
            : { path: `Data.Label${k}`, part: "C", value: `label-${(n + k) % 17}`, type: "string" },
      );
    }
    const personalId = n % PERSONAL_EVERY === 0;
    const cf: ClassifiedField[] = fields.map((f) => {
      if (f.path === "Data.Doc.FileName")
        return {
          category: "content",
          personal: "none",
          rule: "detector.windows-path",
          reasons: ["detector.windows-path"],
          confidence: 0.9,
        };
      if (f.path === "ext.device.localId" && personalId) {
        return {
          category: "diagnostic",
          personal: "pseudonymous-id",
          rule: "field.part-a.device-localid",
          reasons: ["field.part-a.device-localid"],
          confidence: 1,
        };
      }
      return { category: "diagnostic", personal: "none", rule: "field.office.app", reasons: ["field.office.app"], confidence: 1 };
    });
    const group = GROUPS[n % GROUPS.length];
    events.push({ index: i, name, time: fields[1].value as string, iKey: "o:0123456789abcdef0123456789abcdef", fields });
    classified.push({
      group,
      groupRule: `event.glob.${group}`,
      eventCategory: cf.some((f) => f.category === "content") ? "content" : group === "essential" ? "functional" : "diagnostic",
      fields: cf,
      findings: [],
    });
  }
  return { events, classified };
}

async function buildDatabase(file: string, say: (m: string) => void): Promise<void> {
  const tmp = `${file}.building`;
  for (const f of [tmp, `${tmp}-wal`, `${tmp}-shm`]) rmSync(f, { force: true });
  const db = openDatabase(tmp);
  const capture = new CaptureStore(db);
  const uploads = QUERY_BENCH_EVENTS / EVENTS_PER_UPLOAD;
  const sessions = [capture.openSession("bench-a", { toolVersion: "bench" }), capture.openSession("bench-b", { toolVersion: "bench" })];
  const t0 = Date.now();
  const ids: Array<{ id: string; sessionId: number; host: string }> = [];
  for (let u = 0; u < uploads; u++) {
    // Session b is the last tenth: a small session inside a large database.
    const session = u < uploads * 0.9 ? sessions[0] : sessions[1];
    const host = HOSTS[u % HOSTS.length];
    const x = makeExchange(`upload ${u}`, { host, startedAt: t0 - (uploads - u) * 700 });
    void capture.commitExchange(session, x);
    ids.push({ id: x.id, sessionId: session.id, host });
    if (u % 1000 === 999) await capture.flush();
  }
  await capture.flush();
  const events = new EventStore(db);
  for (let u = 0; u < uploads; u++) {
    const { events: decoded, classified } = syntheticUpload(u);
    const { id, sessionId, host } = ids[u];
    events.replaceEvents(
      { id, sessionId, method: "POST", host, path: "/OneCollector/1.0/", headers: [], body: Buffer.alloc(0) },
      {
        decoded: {
          decoder: "onecollector-bond@1",
          encodings: [],
          events: decoded,
          findings: [],
          facts: { tenantTokens: [], tenantIds: [], credentialHeaders: [] },
        },
        classified,
        request: [],
        rulesFingerprint: "rules:bench",
      },
    );
    if (u % 1000 === 999) say(`queries: generated ${(u + 1) * EVENTS_PER_UPLOAD} events (${Math.round((Date.now() - t0) / 1000)} s)`);
  }
  await capture.close();
  db.pragma("wal_checkpoint(TRUNCATE)");
  db.close();
  renameSync(tmp, file);
  for (const f of [`${tmp}-wal`, `${tmp}-shm`]) rmSync(f, { force: true });
}

function time(run: () => unknown, repeats: number): { p50: number; p99: number; max: number; rows: number } {
  let rows = 0;
  const ms: number[] = [];
  run(); // warm the page cache and the statement
  for (let i = 0; i < repeats; i++) {
    const t = performance.now();
    const r = run() as { rows?: unknown[] } | unknown[];
    ms.push(performance.now() - t);
    rows = Array.isArray(r) ? r.length : (r.rows?.length ?? 0);
  }
  ms.sort((a, b) => a - b);
  const at = (q: number) => ms[Math.min(ms.length - 1, Math.floor(q * ms.length))];
  return { p50: round(at(0.5), 2), p99: round(at(0.99), 2), max: round(ms[ms.length - 1], 2), rows };
}

/** The generated database (built and cached on first use): its file and how long building took (null when cached). */
export async function queryBenchDatabase(say: (m: string) => void): Promise<{ file: string; buildSeconds: number | null }> {
  const file = dbFile();
  let buildSeconds: number | null = null;
  if (!existsSync(file)) {
    say(`queries: building ${file} (${QUERY_BENCH_EVENTS} events x ${FIELDS_PER_EVENT} fields; minutes)`);
    const t = Date.now();
    await buildDatabase(file, say);
    buildSeconds = Math.round((Date.now() - t) / 1000);
  }
  return { file, buildSeconds };
}

export async function queryLatency(say: (m: string) => void, repeats = 30): Promise<object> {
  const { file, buildSeconds } = await queryBenchDatabase(say);
  const db: Db = openDatabase(file, { readonly: true });
  try {
    const counts = db
      .prepare(
        "SELECT (SELECT COUNT(*) FROM events) AS events, (SELECT COUNT(*) FROM field_values) AS fields, (SELECT MAX(id) FROM events) AS maxId",
      )
      .get() as {
      events: number;
      fields: number;
      maxId: number;
    };
    const small = (db.prepare("SELECT id FROM sessions WHERE name = 'bench-b'").get() as { id: number }).id;
    const big = (db.prepare("SELECT id FROM sessions WHERE name = 'bench-a'").get() as { id: number }).id;
    const deep = Math.floor(counts.maxId * 0.95);
    const page = 100;
    const list = (f: Omit<EventFilter, "limit">) => () => listEventsPage(db, { limit: page, ...f });
    const cases: Record<string, () => unknown> = {
      "list: first page": list({}),
      "list: deep page (keyset, after 95 %)": list({ afterId: deep }),
      "list: offset 100,000 (CLI --offset)": list({ offset: 100_000 }),
      "list: big session, first page": list({ sessionId: big }),
      "list: big session, deep page": list({ sessionId: big, afterId: Math.floor(counts.maxId * 0.85) }),
      "list: small session, first page": list({ sessionId: small }),
      "filter: category=content": list({ category: "content" }),
      "filter: category=content, deep page": list({ category: "content", afterId: deep }),
      "filter: category=content, session": list({ category: "content", sessionId: big }),
      "filter: personal": list({ personal: true }),
      "filter: personal, deep page": list({ personal: true, afterId: deep }),
      "filter: group=essential": list({ group: "essential" }),
      "filter: group=essential, session, deep page": list({ group: "essential", sessionId: big, afterId: Math.floor(counts.maxId * 0.85) }),
      "filter: name glob Office.Excel.*": list({ nameGlob: "Office.Excel.*" }),
      "filter: name glob, rare (Office.Word.Feature4.Action3)": list({ nameGlob: "Office.Word.Feature4.Action3" }),
      "filter: host": list({ host: HOSTS[2] }),
      "filter: host, deep page": list({ host: HOSTS[2], afterId: deep }),
      "filter: host + group + session": list({ host: HOSTS[1], group: "optional", sessionId: big }),
      "fields: content fields, first page": () => listFieldsPage(db, { category: "content", limit: page }),
      "fields: content fields, deep page": () => listFieldsPage(db, { category: "content", afterEventId: deep, limit: page }),
      "fields: content fields, session": () => listFieldsPage(db, { sessionId: big, category: "content", limit: page }),
      "event: one event with its fields": () => getEvent(db, deep),
      "search: common value (docx), first page": list({ search: "docx" }),
      "search: absent value, one bounded window": list({ search: PLANTED_SEARCH }),
      "search: absent value, one window, deep": list({ search: PLANTED_SEARCH, afterId: deep }),
    };
    const results: Record<string, object> = {};
    for (const [name, run] of Object.entries(cases)) {
      say(`queries: ${name}`);
      results[name] = time(run, repeats);
    }
    return {
      database: { file, events: counts.events, fieldRows: counts.fields, fieldsPerEvent: FIELDS_PER_EVENT, buildSeconds },
      pageSize: page,
      repeats,
      targetMs: 200,
      note: "ms per call; the search examines at most SEARCH_SCAN_EVENTS events per call (a bounded window, continued by the caller)",
      results,
    };
  } finally {
    db.close();
  }
}
