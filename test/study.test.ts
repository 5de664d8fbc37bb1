/**
 * `exhaust study` over two datasets captured through the real proxy (generated uploads): machines × profiles verdict matrix,
 * events by group, content, endpoints, a before/after comparison between two lab labels, --sql,
 * --format csv, the HTML report and --ddl. Every expectation is computed from the SQLite databases.
 */
import { existsSync, mkdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openDatabase } from "../src/store/database.js";
import { setSessionLabels } from "../src/store/parquet-queries.js";
import { captureSession, JSON_HEADERS } from "./helpers/capture-session.js";
import { runCli } from "./helpers/cli.js";
import { makeJsonLinesBatch } from "./helpers/json-events.js";
import { tempDir } from "./helpers/proxy.js";

const HOST = "mobile.events.data.microsoft.com";
const PROFILES = ["no-content", "office-neither"];
const root = tempDir("exhaust-study-");
afterAll(() => rmSync(root, { recursive: true, force: true }));

interface Fleet {
  db: string;
  certs: string;
  dataset: string;
}

const fleets: Fleet[] = ["site-1", "site-2"].map((name) => {
  mkdirSync(join(root, name));
  return { db: join(root, name, "exhaust.db"), certs: join(root, name, "certs"), dataset: join(root, name, "dataset") };
});

/** One session captured through the proxy, labelled, verified with every profile. */
async function session(f: Fleet, name: string, lab: string, machine: string, events: number, seed: number): Promise<void> {
  await captureSession(f.db, name, [{ host: HOST, headers: JSON_HEADERS, body: makeJsonLinesBatch(events, 30, { seed }) }]);
  const db = openDatabase(f.db);
  try {
    setSessionLabels(db, (db.prepare("SELECT id FROM sessions WHERE name = ?").get(name) as { id: number }).id, { lab, machine });
  } finally {
    db.close();
  }
  for (const profile of PROFILES) {
    const r = runCli(["verify", "--db", f.db, "--session", name, "--profile", profile, "--format", "json"]);
    expect([0, 1, 3]).toContain(r.status);
  }
}

function sqlite<T>(f: Fleet, sql: string, ...params: unknown[]): T[] {
  const db = new Database(f.db, { readonly: true });
  try {
    return db.prepare(sql).all(...params) as T[];
  } finally {
    db.close();
  }
}

function study(args: string[]): string {
  const r = runCli(["study", ...fleets.map((f) => f.dataset), ...args]);
  expect(r.status, r.stderr).toBe(0);
  return r.stdout;
}

beforeAll(async () => {
  await session(fleets[0], "before", "policy-off", "vm-1", 10, 1);
  await session(fleets[0], "after", "policy-on", "vm-1", 2, 2);
  await session(fleets[1], "before", "policy-off", "vm-2", 7, 3);
  for (const f of fleets) {
    // An explicit --certs must hold a CA (EXH_CERTS_NO_CA): each site's, made once.
    if (!existsSync(join(f.certs, "exhaust-ca.pem"))) expect(runCli(["ca", "init", "--certs", f.certs]).status).toBe(0);
    const r = runCli(["export", "--format", "parquet", "--out", f.dataset, "--db", f.db, "--certs", f.certs]);
    expect(r.status, r.stderr).toBe(0);
  }
}, 120_000);

describe("exhaust study", () => {
  it("answers the machines × profiles verdict matrix with the latest stored verdicts", () => {
    const result = JSON.parse(study(["--format", "json"])) as { matrix: Array<Record<string, unknown>>; profiles: string[] };
    const want = fleets.flatMap((f) =>
      sqlite<Record<string, unknown>>(
        f,
        `SELECT s.lab, s.machine, v.profile, v.status,
                (SELECT COUNT(*) FROM events e WHERE e.session_id = s.id) AS events,
                (SELECT COUNT(*) FROM events e WHERE e.session_id = s.id AND e.ms_group = 'required') AS required_events
           FROM verdicts v JOIN sessions s ON s.id = v.session_id
          WHERE v.id = (SELECT MAX(id) FROM verdicts w WHERE w.session_id = v.session_id AND w.profile = v.profile)`,
      ),
    );
    const got = result.matrix.map((r) => ({
      lab: r.lab,
      machine: r.machine,
      profile: r.profile,
      status: r.status,
      events: r.events,
      required_events: r.required_events,
    }));
    const key = (r: Record<string, unknown>) => `${r.lab as string}/${r.machine as string}/${r.profile as string}`;
    expect(got.sort((a, b) => key(a).localeCompare(key(b)))).toEqual(want.sort((a, b) => key(a).localeCompare(key(b))));
    expect(result.profiles).toEqual(PROFILES);
    expect(want.some((r) => r.status === "fail")).toBe(true);

    const one = JSON.parse(study(["--format", "json", "--profile", "no-content"])) as {
      matrix: Array<Record<string, unknown>>;
      profiles: string[];
    };
    expect(one.profiles).toEqual(["no-content"]);
    expect(one.matrix).toHaveLength(3);
  });

  it("counts events per group, content per machine with its rule, and endpoints per machine as SQLite does", () => {
    const result = JSON.parse(study(["--format", "json"])) as Record<string, Array<Record<string, unknown>>>;
    const groups = fleets.flatMap((f) =>
      sqlite<Record<string, unknown>>(
        f,
        "SELECT s.lab, s.machine, COALESCE(e.ms_group, 'unclassified') AS ms_group, COUNT(*) AS events, COUNT(DISTINCT e.name) AS names FROM events e JOIN sessions s ON s.id = e.session_id GROUP BY 1, 2, 3",
      ),
    );
    const sortKey = (r: Record<string, unknown>) => JSON.stringify([r.lab, r.machine, r.ms_group]);
    expect([...result.groups].sort((a, b) => sortKey(a).localeCompare(sortKey(b)))).toEqual(
      groups.sort((a, b) => sortKey(a).localeCompare(sortKey(b))),
    );

    // Every machine with content in SQLite, and no other, has content rows in the study.
    const contentMachines = fleets.flatMap((f) =>
      sqlite<{ machine: string }>(
        f,
        "SELECT DISTINCT s.machine FROM field_values v JOIN events e ON e.id = v.event_id JOIN sessions s ON s.id = e.session_id WHERE v.category = 'content'",
      ).map((r) => r.machine),
    );
    expect(contentMachines.length).toBeGreaterThan(0);
    expect([...new Set(result.content.map((r) => r.machine))].sort()).toEqual([...new Set(contentMachines)].sort());
    for (const f of fleets) {
      for (const { machine, n } of sqlite<{ machine: string; n: number }>(
        f,
        "SELECT s.machine, COUNT(*) AS n FROM field_values v JOIN events e ON e.id = v.event_id JOIN sessions s ON s.id = e.session_id WHERE v.category = 'content' GROUP BY 1",
      )) {
        const rows = result.content.filter((r) => r.machine === machine);
        expect(rows.reduce((a, r) => a + (r.fields as number), 0)).toBe(n);
        expect(rows.every((r) => typeof r.rule === "string" && r.rule.length > 0)).toBe(true);
      }
      for (const { machine, n } of sqlite<{ machine: string; n: number }>(
        f,
        "SELECT s.machine, COUNT(*) AS n FROM exchanges x JOIN sessions s ON s.id = x.session_id GROUP BY 1",
      )) {
        expect(
          result.endpoints.filter((r) => r.machine === machine && r.host === HOST).reduce((a, r) => a + (r.exchanges as number), 0),
        ).toBe(n);
      }
    }
  });

  it("compares two labels: events per group and the names seen on one side only", () => {
    const result = JSON.parse(study(["--format", "json", "--compare", "lab=policy-off,lab=policy-on"])) as {
      comparisons: Array<{ groups: Array<Record<string, unknown>>; names: Array<Record<string, unknown>> }>;
    };
    const [c] = result.comparisons;
    const perLab = (lab: string) =>
      fleets.flatMap((f) =>
        sqlite<{ g: string; name: string }>(
          f,
          "SELECT COALESCE(e.ms_group, 'unclassified') AS g, e.name FROM events e JOIN sessions s ON s.id = e.session_id WHERE s.lab = ?",
          lab,
        ),
      );
    const before = perLab("policy-off");
    const after = perLab("policy-on");
    expect(c.groups.map((g) => g.ms_group).sort()).toEqual([...new Set([...before, ...after].map((e) => e.g))].sort());
    for (const g of c.groups) {
      expect(g.before).toBe(before.filter((e) => e.g === g.ms_group).length);
      expect(g.after).toBe(after.filter((e) => e.g === g.ms_group).length);
    }
    const onlyBefore = [...new Set(before.map((e) => e.name))].filter((n) => !after.some((e) => e.name === n)).sort();
    expect(onlyBefore.length).toBeGreaterThan(0);
    expect(
      c.names
        .filter((n) => n.seen === "only before")
        .map((n) => n.name)
        .sort(),
    ).toEqual(onlyBefore);
  });

  it("writes CSV and a self-contained HTML report with inline SVG", () => {
    const csv = study(["--format", "csv"]);
    const [header, ...lines] = csv.trimEnd().split("\r\n");
    expect(header.split(",")[0]).toBe("section");
    expect(lines.filter((l) => l.startsWith("matrix,"))).toHaveLength(6);
    const out = join(root, "study.html");
    study(["--out", out, "--compare", "lab=policy-off,lab=policy-on"]);
    const html = readFileSync(out, "utf8");
    expect(html).toMatch(/^<!doctype html>/);
    expect(html).toContain("<svg");
    expect(html).not.toMatch(/<script/i);
    for (const m of ["vm-1", "vm-2", "no-content", "office-neither", "Before and after"]) expect(html).toContain(m);
  });

  it("runs a user's query against the dataset views; a bad one is one line and exit 2", () => {
    const rows = JSON.parse(
      study(["--format", "json", "--sql", "SELECT machine, count(*) AS events FROM events GROUP BY machine ORDER BY machine"]),
    ) as Array<{ machine: string; events: number }>;
    const want = fleets.flatMap((f) =>
      sqlite<{ machine: string; events: number }>(
        f,
        "SELECT s.machine, COUNT(*) AS events FROM events e JOIN sessions s ON s.id = e.session_id GROUP BY 1",
      ),
    );
    expect(rows).toEqual(want.sort((a, b) => a.machine.localeCompare(b.machine)));
    const bad = runCli(["study", fleets[0].dataset, "--sql", "SELECT no_such_column FROM events"]);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/EXH_STUDY_QUERY/);
    expect(bad.stderr.trim().split("\n")).toHaveLength(1);
  });

  it("prints Trino and Hive external-table DDL for every table", () => {
    const trino = study(["--ddl", "--location", "s3://lab-bucket/exhaust"]);
    for (const t of ["sessions", "connections", "exchanges", "events", "fields", "findings", "verdicts", "verdict_items", "blobs"]) {
      expect(trino).toContain(`CREATE TABLE IF NOT EXISTS hive.exhaust.${t} (`);
      expect(trino).toContain(`external_location = 's3://lab-bucket/exhaust/${t}'`);
    }
    expect(trino).toContain("partitioned_by = ARRAY['lab', 'machine', 'session']");
    const hive = runCli(["study", fleets[0].dataset, "--ddl", "hive"]);
    expect(hive.status).toBe(0);
    expect(hive.stdout).toContain("PARTITIONED BY (lab STRING, machine STRING, session STRING)");
    expect(hive.stdout).toContain(`LOCATION 'file://${fleets[0].dataset}/events'`);
  });
});
