/**
 * `exhaust study`: questions across a fleet, answered by DuckDB over the dataset views
 * (src/study/dataset.ts). Each section is a list of flat rows (what --format csv writes); the HTML
 * report (src/study/render.ts) draws them.
 */
import type { DuckDBConnection } from "@duckdb/node-api";
import { exhaustError } from "../errors.js";
import { sqlString } from "../export/duckdb.js";
import { queryRows } from "./dataset.js";

export type Row = Record<string, unknown>;

/** The label keys a comparison can use: the partitions. */
export const COMPARE_KEYS = ["lab", "machine", "session"] as const;
export type CompareKey = (typeof COMPARE_KEYS)[number];

export interface Label {
  key: CompareKey;
  value: string;
}

export interface Comparison {
  before: Label;
  after: Label;
  /** Events per Microsoft group, before and after. */
  groups: Row[];
  /** Event names seen only after, or only before. */
  names: Row[];
  /** Content fields per event and path, before and after. */
  content: Row[];
  /** Hosts contacted, before and after. */
  endpoints: Row[];
}

export interface StudyResult {
  datasets: string[];
  profiles: string[];
  /** Per lab/machine/session: exchanges, events, fields, content fields. */
  summary: Row[];
  /** Machines × profiles: the latest verdict per machine and profile, with the machine's event counts. */
  matrix: Row[];
  /** Events and distinct names per Microsoft group, per lab and machine. */
  groups: Row[];
  /** The most frequent event names per lab, machine and group (up to NAMES_PER_GROUP). */
  names: Row[];
  /** Content fields per lab, machine, event and path, with the winning rule. */
  content: Row[];
  /** Hosts contacted per lab and machine. */
  endpoints: Row[];
  comparisons: Comparison[];
}

export const NAMES_PER_GROUP = 50;

/** Parses `a=b,a=c` into a before and an after label. */
export function parseCompare(text: string): { before: Label; after: Label } {
  const parts = text.split(",").map((p) => p.trim());
  const labels = parts.map((p) => {
    const eq = p.indexOf("=");
    const key = p.slice(0, eq) as CompareKey;
    if (eq <= 0 || !COMPARE_KEYS.includes(key) || eq === p.length - 1) {
      throw exhaustError("EXH_OPT_INVALID", {
        option: "--compare",
        reason: `expected KEY=BEFORE,KEY=AFTER with KEY one of ${COMPARE_KEYS.join(", ")}, got "${text}"`,
      });
    }
    return { key, value: p.slice(eq + 1) };
  });
  if (labels.length !== 2)
    throw exhaustError("EXH_OPT_INVALID", { option: "--compare", reason: `expected two labels separated by a comma, got "${text}"` });
  return { before: labels[0], after: labels[1] };
}

const where = (l: Label, alias = "") => `${alias}${l.key} = ${sqlString(l.value)}`;

/** Per lab/machine/session counts: what the acceptance test compares with SQLite. */
export function summaryRows(conn: DuckDBConnection): Promise<Row[]> {
  return queryRows(
    conn,
    `WITH s AS (SELECT DISTINCT lab, machine, session FROM sessions),
          x AS (SELECT lab, machine, session, count(*) AS n FROM exchanges GROUP BY ALL),
          e AS (SELECT lab, machine, session, count(*) AS n FROM events GROUP BY ALL),
          f AS (SELECT lab, machine, session, count(*) AS n, count(*) FILTER (WHERE category = 'content') AS c FROM fields GROUP BY ALL)
     SELECT s.lab, s.machine, s.session, coalesce(x.n, 0) AS exchanges, coalesce(e.n, 0) AS events,
            coalesce(f.n, 0) AS fields, coalesce(f.c, 0) AS content_fields
       FROM s LEFT JOIN x USING (lab, machine, session) LEFT JOIN e USING (lab, machine, session) LEFT JOIN f USING (lab, machine, session)
      ORDER BY s.lab, s.machine, s.session`,
  );
}

/**
 * Machines × profiles: per lab and machine, the latest verdict of each profile (over all its
 * sessions), with how many events and required-service events the machine sent. Machines without
 * a verdict for a profile get status NULL.
 */
export function matrixRows(conn: DuckDBConnection, profiles: readonly string[]): Promise<Row[]> {
  const profileFilter = profiles.length ? `WHERE profile IN (${profiles.map(sqlString).join(", ")})` : "";
  return queryRows(
    conn,
    `WITH m AS (SELECT DISTINCT lab, machine FROM sessions),
          ev AS (SELECT lab, machine, count(*) AS events, count(*) FILTER (WHERE ms_group = 'required') AS required_events
                   FROM events GROUP BY ALL),
          v AS (SELECT lab, machine, profile, arg_max(status, created_at) AS status, max(created_at) AS verified_at
                  FROM verdicts ${profileFilter} GROUP BY ALL),
          p AS (SELECT DISTINCT profile FROM v UNION SELECT unnest([${profiles.map(sqlString).join(", ")}]::VARCHAR[]))
     SELECT m.lab, m.machine, p.profile, v.status, v.verified_at, coalesce(ev.events, 0) AS events,
            coalesce(ev.required_events, 0) AS required_events
       FROM m LEFT JOIN p ON true LEFT JOIN v ON v.lab = m.lab AND v.machine = m.machine AND v.profile = p.profile
       LEFT JOIN ev ON ev.lab = m.lab AND ev.machine = m.machine
      ORDER BY m.lab, m.machine, p.profile`,
  );
}

function groupRows(conn: DuckDBConnection): Promise<Row[]> {
  return queryRows(
    conn,
    `SELECT lab, machine, coalesce(ms_group, 'unclassified') AS ms_group, count(*) AS events, count(DISTINCT name) AS names
       FROM events GROUP BY ALL ORDER BY lab, machine, ms_group`,
  );
}

function nameRows(conn: DuckDBConnection): Promise<Row[]> {
  return queryRows(
    conn,
    `SELECT lab, machine, coalesce(ms_group, 'unclassified') AS ms_group, name, count(*) AS events
       FROM events GROUP BY lab, machine, ms_group, name
     QUALIFY row_number() OVER (PARTITION BY lab, machine, ms_group ORDER BY count(*) DESC, name) <= ${NAMES_PER_GROUP}
      ORDER BY lab, machine, ms_group, events DESC, name`,
  );
}

function contentRows(conn: DuckDBConnection, filter = "true"): Promise<Row[]> {
  return queryRows(
    conn,
    `SELECT f.lab, f.machine, e.name AS event, f.path, f.rule, count(*) AS fields, count(DISTINCT f.event_id) AS events
       FROM fields f JOIN events e ON e.lab = f.lab AND e.machine = f.machine AND e.session = f.session AND e.id = f.event_id
      WHERE f.category = 'content' AND ${filter}
      GROUP BY ALL ORDER BY f.lab, f.machine, fields DESC, event, f.path`,
  );
}

function endpointRows(conn: DuckDBConnection): Promise<Row[]> {
  return queryRows(
    conn,
    `WITH c AS (SELECT lab, machine, host, count(*) AS connections, sum(bytes_from_client) AS bytes_from_client,
                       string_agg(DISTINCT outcome, ', ' ORDER BY outcome) AS outcomes
                  FROM connections GROUP BY ALL),
          x AS (SELECT lab, machine, host, count(*) AS exchanges, count(DISTINCT endpoint_id) AS endpoint_ids FROM exchanges GROUP BY ALL)
     SELECT lab, machine, host, coalesce(c.connections, 0) AS connections, coalesce(x.exchanges, 0) AS exchanges,
            coalesce(c.bytes_from_client, 0) AS bytes_from_client, c.outcomes
       FROM c FULL JOIN x USING (lab, machine, host)
      ORDER BY lab, machine, exchanges DESC, host`,
  );
}

async function compare(conn: DuckDBConnection, before: Label, after: Label): Promise<Comparison> {
  const b = where(before);
  const a = where(after);
  const groups = await queryRows(
    conn,
    `SELECT coalesce(ms_group, 'unclassified') AS ms_group, count(*) FILTER (WHERE ${b}) AS before, count(*) FILTER (WHERE ${a}) AS after
       FROM events WHERE ${b} OR ${a} GROUP BY ALL ORDER BY ms_group`,
  );
  const names = await queryRows(
    conn,
    `SELECT CASE WHEN count(*) FILTER (WHERE ${b}) = 0 THEN 'only after' ELSE 'only before' END AS seen, coalesce(ms_group, 'unclassified') AS ms_group,
            name, count(*) FILTER (WHERE ${b}) AS before, count(*) FILTER (WHERE ${a}) AS after
       FROM events WHERE ${b} OR ${a} GROUP BY ms_group, name
     HAVING count(*) FILTER (WHERE ${b}) = 0 OR count(*) FILTER (WHERE ${a}) = 0
      ORDER BY seen, ms_group, name`,
  );
  const content = await queryRows(
    conn,
    `SELECT e.name AS event, f.path, f.rule, count(*) FILTER (WHERE ${where(before, "f.")}) AS before, count(*) FILTER (WHERE ${where(after, "f.")}) AS after
       FROM fields f JOIN events e ON e.lab = f.lab AND e.machine = f.machine AND e.session = f.session AND e.id = f.event_id
      WHERE f.category = 'content' AND (${where(before, "f.")} OR ${where(after, "f.")})
      GROUP BY ALL ORDER BY event, f.path`,
  );
  const endpoints = await queryRows(
    conn,
    `SELECT host, count(*) FILTER (WHERE ${b}) AS before, count(*) FILTER (WHERE ${a}) AS after
       FROM (SELECT lab, machine, session, host FROM connections UNION ALL SELECT lab, machine, session, host FROM exchanges)
      WHERE ${b} OR ${a} GROUP BY host ORDER BY host`,
  );
  return { before, after, groups, names, content, endpoints };
}

export async function runStudy(
  conn: DuckDBConnection,
  options: { datasets: string[]; profiles: string[]; compare: string[] },
): Promise<StudyResult> {
  const comparisons: Comparison[] = [];
  for (const c of options.compare) {
    const { before, after } = parseCompare(c);
    comparisons.push(await compare(conn, before, after));
  }
  const matrix = await matrixRows(conn, options.profiles);
  return {
    datasets: options.datasets,
    profiles: [...new Set(matrix.map((r) => r.profile as string).filter((p) => p !== null))],
    summary: await summaryRows(conn),
    matrix,
    groups: await groupRows(conn),
    names: await nameRows(conn),
    content: await contentRows(conn),
    endpoints: await endpointRows(conn),
    comparisons,
  };
}
