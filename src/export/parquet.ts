/**
 * `exhaust export --format parquet --out DIR`: a Hive-partitioned Parquet dataset, one directory per
 * table (src/export/parquet-schema.ts), `DIR/<table>/lab=…/machine=…/session=…/part-N.parquet`,
 * written by DuckDB (zstd, dictionary-encoded strings, logical types, the schema version in each
 * file's key-value metadata).
 *
 * Rows stream from the store into DuckDB temp tables through appenders (data chunks), and each
 * table is copied out to a new part file every FLUSH_ROWS rows, so memory stays bounded whatever
 * the session's size. Incremental: DIR/exhaust-dataset.json records, per lab/machine/session, the
 * last exchange seq, connection and verdict exported; the next export appends only later rows in
 * new part files (the one-row `sessions` partition is rewritten). New files are written under a
 * temporary name and renamed before the manifest is saved.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { hostname } from "node:os";
import { join, resolve } from "node:path";
import {
  BLOB,
  BOOLEAN,
  blobValue,
  DOUBLE,
  DuckDBDataChunk,
  INTEGER,
  VARCHAR,
  type DuckDBAppender,
  type DuckDBConnection,
  type DuckDBType,
  type DuckDBValue,
} from "@duckdb/node-api";
import { exhaustError } from "../errors.js";
import { isSecretJsonKey } from "../secrets.js";
import type { Db } from "../store/database.js";
import { blobData } from "../store/blobs.js";
import { fieldValueFromText } from "../store/event-store.js";
import {
  allFieldClasses,
  allFieldPaths,
  classificationFindingsBetween,
  connectionsAfter,
  decodedSeqBound,
  decodeFindingsInRange,
  eventPagesInRange,
  exchangesInRange,
  fieldPacksBetween,
  labelledSessions,
  sessionRow,
  verdictsAfter,
} from "../store/parquet-queries.js";
import type { RawHeaders } from "../types.js";
import type { VerdictReport } from "../verdict.js";
import { duckReason, openDuck, sqlString } from "./duckdb.js";
import {
  DATASET_MANIFEST,
  PARQUET_SCHEMA_VERSION,
  PARQUET_TABLES,
  SCHEMA_VERSION_KEY,
  type ColumnDef,
  type ColumnKind,
  type ParquetTable,
} from "./parquet-schema.js";
import type { Redactor } from "./redaction.js";

/** Rows per part file (fields: the bulk); row groups inside are ROW_GROUP_SIZE rows. */
const FLUSH_ROWS = 1_000_000;
/**
 * Events are wide rows (names, keys, groups) and their temp table lives while every fields part of
 * the same events is written: a part every EVENT_FLUSH_ROWS keeps it to about 30 MB.
 */
const EVENT_FLUSH_ROWS = 100_000;
/** Field rows per part: DuckDB holds a part's joined rows while it writes them in order. */
const FIELD_FLUSH_ROWS = 500_000;
const ROW_GROUP_SIZE = 122_880;
const CHUNK_ROWS = 2048;
export const DEFAULT_LAB = "default";
/**
 * DuckDB's allocator (jemalloc, inside libduckdb) keeps freed pages in the arena that freed them
 * until later allocations there age them out, and the export's queries run on several of libuv's
 * threads, so several arenas each kept a COPY's worth. Background threads return them on time; a
 * release of more than 16 MB at once (a part's temp table dropped) purges every arena, and a task
 * that peaked above 16 MB flushes its thread's cache. About 50 MB of the export's peak RSS
 * (docs/benchmarks.md, 2026-12-03).
 */
const EXPORT_ALLOCATOR = {
  allocator_background_threads: "true",
  allocator_bulk_deallocation_flush_threshold: "16MB",
  allocator_flush_threshold: "16MB",
};

/** What the manifest keeps per exported session. */
export interface SessionWatermark {
  lab: string;
  machine: string;
  session: string;
  database: string;
  lastSeq: number;
  lastConnectionRowid: number;
  lastVerdictId: number;
  exportedAt: string;
}

export interface DatasetManifest {
  format: "exhaust-parquet";
  schemaVersion: number;
  sessions: Record<string, SessionWatermark>;
  exports: Array<{ at: string; database: string; sessions: number; rows: Record<string, number> }>;
}

export interface ParquetExportOptions {
  out: string;
  /** The database file (recorded in the manifest). */
  database: string;
  sessionId?: number;
  /** Labels for sessions that have none recorded. */
  lab?: string;
  machine?: string;
  withBodies?: boolean;
  redactor: Redactor;
}

export interface ParquetExportSummary {
  out: string;
  schemaVersion: number;
  rows: Record<string, number>;
  files: number;
  sessions: Array<{ lab: string; machine: string; session: string; fromSeq: number; toSeq: number; rows: Record<string, number> }>;
  omittedBodies: Array<{ sha256: string; reason: string }>;
}

/** Hive-style partition value: letters, digits and `._-` as they are, every other byte %XX. */
export function partitionValue(v: string): string {
  return [...Buffer.from(v, "utf8")]
    .map((b) =>
      /[A-Za-z0-9._-]/.test(String.fromCharCode(b)) ? String.fromCharCode(b) : `%${b.toString(16).toUpperCase().padStart(2, "0")}`,
    )
    .join("");
}

const partitionPath = (lab: string, machine: string, session: string) =>
  `lab=${partitionValue(lab)}/machine=${partitionValue(machine)}/session=${partitionValue(session)}`;

/** Reads the dataset manifest of `dir`; a new manifest when the directory is absent or empty. */
export function readDatasetManifest(dir: string): DatasetManifest {
  const file = join(dir, DATASET_MANIFEST);
  if (!existsSync(file)) {
    if (existsSync(dir) && (!statSync(dir).isDirectory() || readdirSync(dir).length > 0)) {
      throw exhaustError("EXH_DATASET_INVALID", {
        dir,
        reason: `it exists and holds no ${DATASET_MANIFEST} (choose an empty or new directory)`,
      });
    }
    return { format: "exhaust-parquet", schemaVersion: PARQUET_SCHEMA_VERSION, sessions: {}, exports: [] };
  }
  let m: DatasetManifest;
  try {
    m = JSON.parse(readFileSync(file, "utf8")) as DatasetManifest;
  } catch (e) {
    throw exhaustError("EXH_DATASET_INVALID", { dir, reason: `${DATASET_MANIFEST} does not parse: ${(e as Error).message}` });
  }
  if (m.format !== "exhaust-parquet" || m.schemaVersion !== PARQUET_SCHEMA_VERSION) {
    throw exhaustError("EXH_DATASET_INVALID", {
      dir,
      reason: `schema version ${String(m.schemaVersion)}, this exhaust writes and reads ${PARQUET_SCHEMA_VERSION}`,
    });
  }
  return m;
}

const TEMP_TYPE: Record<ColumnKind, DuckDBType> = {
  i64: DOUBLE,
  i32: INTEGER,
  f64: DOUBLE,
  bool: BOOLEAN,
  str: VARCHAR,
  ts: DOUBLE,
  blob: BLOB,
};

/** How a temp column (doubles for int64 and ms timestamps) becomes the file's column. */
function outExpr(col: ColumnDef, textTime: boolean): string {
  if (textTime) return `try_cast(${col.name} AS TIMESTAMPTZ) AS ${col.name}`;
  if (col.kind === "ts") return `CAST(make_timestamp(CAST(${col.name} * 1000 AS BIGINT)) AS TIMESTAMPTZ) AS ${col.name}`;
  if (col.kind === "i64") return `CAST(${col.name} AS BIGINT) AS ${col.name}`;
  return col.name;
}

/** One table of one session partition: rows buffered into a DuckDB temp table, copied out per part. */
class PartWriter {
  private appender: DuckDBAppender | undefined;
  private buffers: unknown[][];
  private pending = 0;
  private pendingWeight = 0;
  private inTable = 0;
  rows = 0;
  /** Output rows after which spill() writes a part file. */
  flushRows = FLUSH_ROWS;
  private readonly tempTypes: DuckDBType[];

  constructor(
    private readonly conn: DuckDBConnection,
    readonly table: ParquetTable,
    private readonly temp: string,
    private readonly tempColumns: Array<[string, DuckDBType]>,
    private readonly select: string,
    private readonly dir: string,
    private readonly files: FileTracker,
  ) {
    this.tempTypes = tempColumns.map(([, t]) => t);
    this.buffers = tempColumns.map(() => []);
  }

  static forSchema(conn: DuckDBConnection, table: ParquetTable, dir: string, files: FileTracker, textTime: string[] = []): PartWriter {
    const cols = PARQUET_TABLES[table];
    const temp = `tmp_${table}`;
    const tempColumns = cols.map((c): [string, DuckDBType] => [c.name, textTime.includes(c.name) ? VARCHAR : TEMP_TYPE[c.kind]]);
    return new PartWriter(
      conn,
      table,
      temp,
      tempColumns,
      `SELECT ${cols.map((c) => outExpr(c, textTime.includes(c.name))).join(", ")} FROM ${temp}`,
      dir,
      files,
    );
  }

  async open(): Promise<void> {
    const ddl = this.tempColumns.map(([n, t]) => `${n} ${t.toString()}`).join(", ");
    await this.conn.run(`CREATE OR REPLACE TEMP TABLE ${this.temp} (${ddl})`);
    this.appender = await this.conn.createAppender(this.temp);
  }

  /** One row, values in the temp columns' order; `weight`: the output rows it stands for (a packed row). */
  push(row: readonly unknown[], weight = 1): void {
    for (let i = 0; i < row.length; i++) this.buffers[i].push(row[i] ?? null);
    this.pending++;
    this.pendingWeight += weight;
    this.rows += weight;
    if (this.pending >= CHUNK_ROWS) this.appendChunk();
  }

  /** Writes a part file once the temp table holds flushRows rows (call between pages). */
  async spill(): Promise<void> {
    if (this.inTable >= this.flushRows) await this.flush();
  }

  private appendChunk(): void {
    if (this.pending === 0) return;
    const chunk = DuckDBDataChunk.create(this.tempTypes, this.pending);
    chunk.setColumns(this.buffers as DuckDBValue[][]);
    this.appender!.appendDataChunk(chunk);
    this.inTable += this.pendingWeight;
    this.pending = 0;
    this.pendingWeight = 0;
    this.buffers = this.tempColumns.map(() => []);
  }

  /** Copies what the temp table holds to a new part file and starts a new, empty one. */
  async flush(): Promise<void> {
    this.appendChunk();
    if (this.inTable === 0) return;
    this.appender!.closeSync();
    const file = this.files.next(this.dir);
    mkdirSync(this.dir, { recursive: true });
    const meta = `{${SCHEMA_VERSION_KEY}: '${PARQUET_SCHEMA_VERSION}', exhaust_table: '${this.table}'}`;
    try {
      await this.conn.run(
        `COPY (${this.select}) TO ${sqlString(file)} (FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE ${ROW_GROUP_SIZE}, KV_METADATA ${meta})`,
      );
    } catch (e) {
      throw exhaustError("EXH_DATASET_INVALID", { dir: this.dir, reason: `writing a Parquet file failed: ${duckReason(e)}` }, e);
    }
    // A new table, not DELETE: deleted rows of an in-memory table keep their row groups' memory.
    this.inTable = 0;
    await this.open();
  }
}

/** New part files: written as part-N.parquet.tmp, renamed once everything is written. */
class FileTracker {
  private readonly nextNumber = new Map<string, number>();
  readonly written: string[] = [];
  /** Partition directories whose old files go (the sessions table). */
  readonly replaced = new Set<string>();

  next(dir: string): string {
    let n = this.nextNumber.get(dir);
    if (n === undefined) {
      n = 0;
      if (!this.replaced.has(dir) && existsSync(dir)) {
        for (const f of readdirSync(dir)) {
          const m = /^part-(\d+)\.parquet$/.exec(f);
          if (m) n = Math.max(n, Number(m[1]) + 1);
        }
      }
    }
    this.nextNumber.set(dir, n + 1);
    const file = join(dir, `part-${n}.parquet.tmp`);
    this.written.push(file);
    return file;
  }

  commit(): void {
    for (const dir of this.replaced) {
      if (!existsSync(dir)) continue;
      for (const f of readdirSync(dir)) if (/^part-\d+\.parquet$/.test(f)) rmSync(join(dir, f));
    }
    for (const f of this.written) renameSync(f, f.slice(0, -".tmp".length));
  }

  discard(): void {
    for (const f of this.written) rmSync(f, { force: true });
  }
}

const bool = (v: unknown): boolean | null => (v === null || v === undefined ? null : v === 1 || v === true);
// Stored headers are JSON already: parsed and written again only when credentials are redacted.
const headersJson = (text: unknown, r: Redactor): string | null =>
  typeof text !== "string" ? null : r.redacting ? JSON.stringify(r.headers(JSON.parse(text) as RawHeaders)) : text;
const text = (v: unknown, r: Redactor): string | null => (typeof v === "string" ? r.text(v) : null);

/** Writes the sessions of `db` (or one) into the dataset at `opts.out`, appending only what is new. */
export async function exportParquet(db: Db, opts: ParquetExportOptions): Promise<ParquetExportSummary> {
  const manifest = readDatasetManifest(opts.out);
  mkdirSync(opts.out, { recursive: true });
  const manifestFile = join(opts.out, DATASET_MANIFEST);
  const saveManifest = () => {
    writeFileSync(`${manifestFile}.tmp`, `${JSON.stringify(manifest, null, 2)}\n`);
    renameSync(`${manifestFile}.tmp`, manifestFile);
  };
  // A new dataset is one from the start: a failed first export leaves a dataset, not a stray directory.
  if (!existsSync(manifestFile)) saveManifest();
  const database = resolve(opts.database);
  const r = opts.redactor;
  const duck = await openDuck({ memoryLimit: "160MB", threads: 1, settings: EXPORT_ALLOCATOR });
  const files = new FileTracker();
  const total: Record<string, number> = {};
  const summary: ParquetExportSummary = {
    out: opts.out,
    schemaVersion: PARQUET_SCHEMA_VERSION,
    rows: total,
    files: 0,
    sessions: [],
    omittedBodies: [],
  };
  const now = new Date();
  const { conn } = duck;
  try {
    // The small lookup tables once: fields are stored as ids into them.
    const paths = allFieldPaths(db);
    const pathById = new Map(paths.map((p) => [p.id, p]));
    const secretPath = new Set(paths.filter((p) => isSecretJsonKey(p.path)).map((p) => p.id));
    await conn.run(
      `CREATE TEMP TABLE fp (id INTEGER, part VARCHAR, path VARCHAR, type VARCHAR, pii_kind INTEGER, customer_content INTEGER, wire_type INTEGER, scrub_type INTEGER)`,
    );
    await appendRows(
      conn,
      "fp",
      [INTEGER, VARCHAR, VARCHAR, VARCHAR, INTEGER, INTEGER, INTEGER, INTEGER],
      paths.map((p) => [p.id, p.part, p.path, p.type, p.piiKind, p.customerContent, p.wireType, p.scrubType]),
    );
    await conn.run(
      "CREATE TEMP TABLE fc (id INTEGER, category VARCHAR, personal VARCHAR, rule VARCHAR, reasons VARCHAR, confidence DOUBLE)",
    );
    await appendRows(
      conn,
      "fc",
      [INTEGER, VARCHAR, VARCHAR, VARCHAR, VARCHAR, DOUBLE],
      allFieldClasses(db).map((c) => [c.id, c.category, c.personal, c.rule, c.reasons, c.confidence]),
    );
    const seenBlobs = new Set<string>();
    const fieldPacks = fieldPacksBetween(db, [...secretPath]);
    // A form found in no value's JSON quoting is in no value (forms that JSON escapes: each value is searched).
    const survive = r.secrets.formsSurviveJson();
    const mayHoldSecret = (valuesJson: string, secretPaths: number) =>
      secretPaths > 0 || (r.secrets.size > 0 && (!survive || r.secrets.inText(valuesJson) !== undefined));
    /** An event's values (a JSON array) with credentials redacted, value by value as every export does. */
    const redactPacked = (pathIdsJson: string, valuesJson: string): string => {
      const pathIds = JSON.parse(pathIdsJson) as number[];
      const values = JSON.parse(valuesJson) as Array<string | null>;
      for (let i = 0; i < values.length; i++) {
        const value = values[i];
        if (value === null) continue;
        if (secretPath.has(pathIds[i]) || r.secrets.inText(value) !== undefined) {
          const p = pathById.get(pathIds[i])!;
          const red = r.field(p.path, fieldValueFromText(value, p.type));
          values[i] = typeof red === "string" ? red : JSON.stringify(red);
        }
      }
      return JSON.stringify(values);
    };

    for (const s of labelledSessions(db, opts.sessionId)) {
      const lab = s.lab ?? opts.lab ?? DEFAULT_LAB;
      const machine = s.machine ?? opts.machine ?? hostname();
      const part = partitionPath(lab, machine, s.name);
      const key = part;
      const mark: SessionWatermark = manifest.sessions[key] ?? {
        lab,
        machine,
        session: s.name,
        database,
        lastSeq: 0,
        lastConnectionRowid: 0,
        lastVerdictId: 0,
        exportedAt: "",
      };
      if (manifest.sessions[key] && mark.database !== database) {
        throw exhaustError("EXH_DATASET_INVALID", {
          dir: opts.out,
          reason: `session ${s.name} of lab ${lab}, machine ${machine} was exported from ${mark.database}, not ${database}; give this database's sessions another --machine`,
        });
      }
      const dirOf = (t: ParquetTable) => join(opts.out, t, part);
      const writer = async (t: ParquetTable, textTime: string[] = []) => {
        const w = PartWriter.forSchema(conn, t, dirOf(t), files, textTime);
        await w.open();
        return w;
      };
      const rows: Record<string, number> = {};

      // sessions: one row, rewritten.
      files.replaced.add(dirOf("sessions"));
      const sw = await writer("sessions");
      const sr = sessionRow(db, s.id);
      sw.push([sr[0], sr[1], sr[2], sr[3], sr[4], sr[5], text(sr[6], r), text(sr[7], r), now.getTime()]);
      await sw.flush();
      rows.sessions = sw.rows;

      const cw = await writer("connections");
      let lastConnectionRowid = mark.lastConnectionRowid;
      for (const c of connectionsAfter(db, s.id, mark.lastConnectionRowid)) {
        lastConnectionRowid = c[0] as number;
        const row = c.slice(1);
        row[13] = text(row[13], r);
        cw.push(row);
        await cw.spill();
      }
      await cw.flush();
      rows.connections = cw.rows;

      const toSeq = decodedSeqBound(db, s.id, mark.lastSeq);
      const xw = await writer("exchanges");
      const bw = opts.withBodies ? await writer("blobs") : undefined;
      for (const x of exchangesInRange(db, s.id, mark.lastSeq, toSeq)) {
        xw.push([
          x.id,
          x.seq,
          x.connection_id,
          x.scheme,
          x.method,
          x.host,
          x.port,
          r.path(x.path as string),
          x.http_version,
          headersJson(x.request_headers, r),
          x.request_body_sha256,
          x.request_body_size,
          bool(x.request_body_truncated),
          bool(x.request_complete),
          x.mode,
          x.endpoint_id,
          x.response_status,
          headersJson(x.response_headers, r),
          x.response_body_sha256,
          x.response_body_size,
          x.response_source,
          x.outcome,
          x.error_code,
          text(x.error_message, r),
          x.decoder,
          x.content_encoding,
          x.started_at,
          x.ended_at,
          x.hash,
        ]);
        await xw.spill();
        if (bw) {
          const bodies: Array<[unknown, unknown, string | undefined]> = [
            [x.request_body_sha256, x.request_headers, x.path as string],
            [x.response_body_sha256, x.response_headers, undefined],
          ];
          for (const [sha, headers, path] of bodies) {
            if (typeof sha !== "string" || seenBlobs.has(sha)) continue;
            seenBlobs.add(sha);
            const data = blobData(db, sha);
            if (!data) continue;
            const parsedHeaders = r.redacting && typeof headers === "string" ? (JSON.parse(headers) as RawHeaders) : null;
            if (r.bodyHasSecret(data, parsedHeaders, path)) {
              summary.omittedBodies.push({ sha256: sha, reason: "holds a credential" });
              continue;
            }
            bw.push([sha, data.length, blobValue(data)]);
            await bw.spill();
          }
        }
      }
      await xw.flush();
      rows.exchanges = xw.rows;
      if (bw) {
        await bw.flush();
        rows.blobs = bw.rows;
      }

      const ew = await writer("events", ["time"]);
      ew.flushRows = EVENT_FLUSH_ROWS;
      const fw = new PartWriter(
        conn,
        "fields",
        "tmp_fv",
        [
          ["event_id", DOUBLE],
          ["idxs", VARCHAR],
          ["path_ids", VARCHAR],
          ["class_ids", VARCHAR],
          ["vals", VARCHAR],
        ],
        // One packed row per event (JSON arrays from SQLite), unnested here: DuckDB does the per-field work.
        `SELECT CAST(v.event_id AS BIGINT) AS event_id, v.idx, p.part, p.path, v.value, p.type, p.pii_kind, p.customer_content = 1 AS customer_content,
                p.wire_type, p.scrub_type, c.category, c.personal, c.rule, c.reasons, c.confidence
           FROM (SELECT event_id, unnest(from_json(idxs, '["INTEGER"]')) AS idx, unnest(from_json(path_ids, '["INTEGER"]')) AS path_id,
                        unnest(from_json(class_ids, '["INTEGER"]')) AS class_id, unnest(from_json(vals, '["VARCHAR"]')) AS value
                   FROM tmp_fv) v
           JOIN fp p ON p.id = v.path_id LEFT JOIN fc c ON c.id = v.class_id`,
        dirOf("fields"),
        files,
      );
      fw.flushRows = FIELD_FLUSH_ROWS;
      await fw.open();
      const nw = await writer("findings");
      for (const f of decodeFindingsInRange(db, s.id, mark.lastSeq, toSeq)) {
        f[6] = text(f[6], r);
        nw.push(f);
      }
      for (const page of eventPagesInRange(db, s.id, mark.lastSeq, toSeq)) {
        const first = page[0][0] as number;
        const last = page[page.length - 1][0] as number;
        const ids = last - first + 1 === page.length ? undefined : new Set(page.map((e) => e[0] as number));
        for (const e of page) {
          e[4] = r.text(e[4] as string);
          ew.push(e);
        }
        for (const f of fieldPacks(first, last)) {
          if (ids && !ids.has(f[0] as number)) continue;
          if (r.redacting && mayHoldSecret(f[4] as string, f[5] as number)) f[4] = redactPacked(f[2] as string, f[4] as string);
          fw.push(f.slice(0, 5), f[6] as number);
        }
        for (const f of classificationFindingsBetween(db, first, last)) {
          if (ids && !ids.has(f[2] as number)) continue;
          f[6] = text(f[6], r);
          nw.push(f);
        }
        await ew.spill();
        await fw.spill();
        await nw.spill();
      }
      await ew.flush();
      await fw.flush();
      await nw.flush();
      rows.events = ew.rows;
      rows.fields = fw.rows;
      rows.findings = nw.rows;

      const vw = await writer("verdicts");
      const iw = await writer("verdict_items");
      let lastVerdictId = mark.lastVerdictId;
      for (const v of verdictsAfter(db, s.id, mark.lastVerdictId)) {
        lastVerdictId = v[0] as number;
        const report = r.deep(JSON.parse(v[4] as string) as VerdictReport);
        vw.push([v[0], v[1], v[2], v[3], JSON.stringify(report)]);
        let i = 0;
        for (const rule of report.rules ?? []) {
          iw.push([v[0], i++, rule.id, rule.kind, rule.setting ?? null, rule.status, rule.count, rule.checked ?? null, rule.description]);
        }
      }
      await vw.flush();
      await iw.flush();
      rows.verdicts = vw.rows;
      rows.verdict_items = iw.rows;

      for (const [t, n] of Object.entries(rows)) total[t] = (total[t] ?? 0) + n;
      summary.sessions.push({ lab, machine, session: s.name, fromSeq: mark.lastSeq, toSeq: Math.max(toSeq, mark.lastSeq), rows });
      manifest.sessions[key] = {
        ...mark,
        lastSeq: Math.max(toSeq, mark.lastSeq),
        lastConnectionRowid,
        lastVerdictId,
        exportedAt: now.toISOString(),
      };
    }
    files.commit();
  } catch (e) {
    files.discard();
    throw e;
  } finally {
    duck.close();
  }
  summary.files = files.written.length;
  manifest.exports = [...manifest.exports, { at: now.toISOString(), database, sessions: summary.sessions.length, rows: total }].slice(-100);
  saveManifest();
  return summary;
}

/** Appends rows (values in column order) to a DuckDB table. */
async function appendRows(conn: DuckDBConnection, table: string, types: DuckDBType[], rows: unknown[][]): Promise<void> {
  const appender = await conn.createAppender(table);
  for (let s = 0; s < rows.length; s += CHUNK_ROWS) {
    const slice = rows.slice(s, s + CHUNK_ROWS);
    const chunk = DuckDBDataChunk.create(types, slice.length);
    chunk.setColumns(types.map((_, i) => slice.map((row) => (row[i] ?? null) as DuckDBValue)));
    appender.appendDataChunk(chunk);
  }
  appender.closeSync();
}
