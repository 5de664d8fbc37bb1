/**
 * The Parquet dataset's tables, column by column (docs/parquet-schema.md has the same descriptions,
 * row for row; test/parquet.test.ts keeps the two equal). The
 * export writes exactly these columns in this order; `exhaust study` and `--ddl` read the same
 * list. Any change here is a schema change: bump PARQUET_SCHEMA_VERSION and document it.
 *
 * Every table is partitioned Hive-style by lab, machine and session (directory names, not
 * columns inside the files).
 */
import { exhaustError } from "../errors.js";

export const PARQUET_SCHEMA_VERSION = 1;
/** Key of the schema version in every file's key-value metadata. */
export const SCHEMA_VERSION_KEY = "exhaust_schema_version";
/** The manifest in the dataset directory: schema version and what was exported from where. */
export const DATASET_MANIFEST = "exhaust-dataset.json";
export const PARTITION_KEYS = ["lab", "machine", "session"] as const;

/** A column's logical type. `ts` is a timestamp with time zone (UTC, millisecond precision). */
export type ColumnKind = "i64" | "i32" | "f64" | "bool" | "str" | "ts" | "blob";

export interface ColumnDef {
  name: string;
  kind: ColumnKind;
  doc: string;
}

/**
 * One table's columns, one a line: name, kind (ColumnKind) and what it holds, separated by spaces.
 * The tables are data; this reads them.
 */
function columns(table: string, spec: string): ColumnDef[] {
  return spec
    .trim()
    .split("\n")
    .map((line) => {
      const m = /^\s*([a-z_0-9]+)\s+(i64|i32|f64|bool|str|ts|blob)\s+(.+)$/.exec(line);
      if (!m) throw new Error(`parquet-schema: table ${table}: not a column line: ${line}`);
      return { name: m[1], kind: m[2] as ColumnKind, doc: m[3].trim() };
    });
}

const TABLE_SPECS = {
  sessions: `
    session_id      i64   the session's id in its SQLite database
    name            str   session name (also the \`session\` partition)
    started_at      ts    capture start
    ended_at        ts    capture end; NULL while the proxy runs
    tool_version    str   exhaust version that captured
    ca_fingerprint  str   SHA-256 of the CA that signed the leaves
    options_json    str   proxy options in force (no secrets), JSON
    incomplete      str   why the session is known to be incomplete (unfinished import); NULL when whole
    exported_at     ts    when this row was written (the row is rewritten by each export)`,
  connections: `
    id                 str   connection id
    client_address     str   client IP
    client_port        i32   client port
    host               str   CONNECT target host
    port               i32   CONNECT target port
    sni                str   TLS server name the client sent
    outcome            str   intercepted | tunnelled | plain-http | client-rejected-certificate | tls-failed | upstream-failed | denied | ...
    upstream           str   where the bytes went when --map-host/--upstream changed it
    bytes_from_client  i64   bytes the client sent
    bytes_to_client    i64   bytes sent to the client
    exchanges          i32   HTTP exchanges on the connection
    started_at         ts    connection start
    ended_at           ts    connection end
    error              str   why it failed, when it did`,
  exchanges: `
    id                      str   exchange id
    seq                     i64   order of capture within the session (the hash chain order)
    connection_id           str   connections.id
    scheme                  str   https | http
    method                  str   HTTP method
    host                    str   host
    port                    i32   port
    path                    str   path and query (credential parameters redacted)
    http_version            str   HTTP version
    request_headers         str   JSON [[name, value], ...] in wire order (credentials redacted)
    request_body_sha256     str   SHA-256 of the stored request body (blobs.sha256)
    request_body_size       i64   bytes the client sent
    request_body_truncated  bool  the stored body was cut at --max-body
    request_complete        bool  the request body arrived whole
    mode                    str   forward | sinkhole | block
    endpoint_id             str   classifiers/endpoints.yaml entry
    response_status         i32   HTTP status
    response_headers        str   JSON pairs (credentials redacted)
    response_body_sha256    str   SHA-256 of the stored response body
    response_body_size      i64   response body bytes
    response_source         str   upstream | exhaust
    outcome                 str   ok | sinkholed | blocked | upstream-* | client-aborted
    error_code              str   EXH_* code
    error_message           str   error text
    decoder                 str   decoder@version that produced the events
    content_encoding        str   encodings undone, e.g. deflate(raw)
    started_at              ts    request start
    ended_at                ts    exchange end
    hash                    str   hash-chain value of the exchange`,
  events: `
    id                i64   event id in its SQLite database (what \`exhaust show\` takes)
    exchange_id       str   exchanges.id
    idx               i32   position in the upload
    format            str   decoder id
    name              str   event name
    time              ts    event time as the wire gives it, parsed; NULL when absent or not a time
    time_text         str   event time as the wire gives it
    ikey              str   instrumentation key / tenant token
    field_count       i32   decoded fields
    ms_group          str   required | optional | essential | connected-experience | unknown
    group_rule        str   rule that set ms_group
    category          str   DPIA category of the event as a whole
    catalog_category  str   Microsoft's category (office-events.tsv)
    subtype           str   event subtype
    content_fields    i32   fields classified content
    personal_fields   i32   fields whose personal kind is not none`,
  fields: `
    event_id          i64   events.id
    idx               i32   position in the event
    part              str   envelope | A | B | C | body
    path              str   field path
    value             str   strings as they are, other types as JSON; credentials replaced by hmac-sha256:<hex>
    type              str   wire type name
    pii_kind          i32   PIIKind declared on the wire
    customer_content  bool  customer content declared on the wire
    wire_type         i32   wire type code
    scrub_type        i32   scrub type declared on the wire
    category          str   content | functional | diagnostic; NULL = not classified
    personal          str   direct-identifier | network-identifier | browsing-history | pseudonymous-id | none
    rule              str   the winning rule id
    reasons           str   JSON array of every rule that fired; NULL when only the winning rule did
    confidence        f64   classification confidence`,
  findings: `
    kind         str   decode | classification
    exchange_id  str   exchanges.id
    event_id     i64   events.id (classification findings; decode findings when tied to an event)
    idx          i32   position among the exchange's (decode) or event's (classification) findings
    code         str   dotted code, e.g. bond.truncated, declared.untagged-pii
    severity     str   decode findings: severity
    message      str   what was found
    field_path   str   classification findings: the field
    rule         str   classification findings: the rule
    byte_offset  i64   decode findings: offset in the body
    byte_length  i64   decode findings: length`,
  verdicts: `
    id           i64   verdict id in its SQLite database
    profile      str   verification profile
    status       str   pass | fail | warn | inconclusive
    created_at   ts    when \`exhaust verify\` ran
    report_json  str   the whole VerdictReport, JSON (credentials redacted)`,
  verdict_items: `
    verdict_id   i64   verdicts.id
    idx          i32   position in the report
    rule_id      str   the profile rule's id
    kind         str   rule kind
    setting      str   the setting the rule checks
    status       str   pass | fail | warn
    count        i64   items that violated (fail) or need review (warn)
    checked      i64   items the rule looked at
    description  str   what the rule checks`,
  blobs: `
    sha256  str   SHA-256 of the bytes
    size    i64   bytes
    data    blob  the body exactly as stored`,
};

export type ParquetTable = keyof typeof TABLE_SPECS;

function readTables(): Record<ParquetTable, readonly ColumnDef[]> {
  const tables = {} as Record<ParquetTable, readonly ColumnDef[]>;
  for (const table of Object.keys(TABLE_SPECS) as ParquetTable[]) tables[table] = columns(table, TABLE_SPECS[table]);
  return tables;
}

/** Every table's columns in file order. */
export const PARQUET_TABLES: Readonly<Record<ParquetTable, readonly ColumnDef[]>> = readTables();

export const TABLE_NAMES = Object.keys(PARQUET_TABLES) as ParquetTable[];

const DUCK: Record<ColumnKind, string> = {
  i64: "BIGINT",
  i32: "INTEGER",
  f64: "DOUBLE",
  bool: "BOOLEAN",
  str: "VARCHAR",
  ts: "TIMESTAMPTZ",
  blob: "BLOB",
};
const TRINO: Record<ColumnKind, string> = {
  i64: "bigint",
  i32: "integer",
  f64: "double",
  bool: "boolean",
  str: "varchar",
  ts: "timestamp(3) with time zone",
  blob: "varbinary",
};
const HIVE: Record<ColumnKind, string> = {
  i64: "BIGINT",
  i32: "INT",
  f64: "DOUBLE",
  bool: "BOOLEAN",
  str: "STRING",
  ts: "TIMESTAMP",
  blob: "BINARY",
};

export const duckType = (k: ColumnKind): string => DUCK[k];

/** External-table DDL for the dataset at `location` (a URL or path ending without a slash). */
export function externalTableDdl(dialect: "trino" | "hive", location: string, schema = "exhaust"): string {
  const out: string[] = [];
  for (const table of TABLE_NAMES) {
    const cols = PARQUET_TABLES[table];
    if (dialect === "trino") {
      const list = [...cols.map((col) => `  ${col.name} ${TRINO[col.kind]}`), ...PARTITION_KEYS.map((k) => `  ${k} varchar`)];
      out.push(
        `CREATE TABLE IF NOT EXISTS hive.${schema}.${table} (\n${list.join(",\n")}\n) WITH (\n  format = 'PARQUET',\n  external_location = '${location}/${table}',\n  partitioned_by = ARRAY['lab', 'machine', 'session']\n);`,
        `CALL hive.system.sync_partition_metadata('${schema}', '${table}', 'FULL');`,
      );
    } else {
      const list = cols.map((col) => `  \`${col.name}\` ${HIVE[col.kind]}`);
      out.push(
        `CREATE EXTERNAL TABLE IF NOT EXISTS ${schema}.${table} (\n${list.join(",\n")}\n)\nPARTITIONED BY (lab STRING, machine STRING, session STRING)\nSTORED AS PARQUET\nLOCATION '${location}/${table}';`,
        `MSCK REPAIR TABLE ${schema}.${table};`,
      );
    }
  }
  return `${out.join("\n")}\n`;
}

/** A label must name a directory: 1 to 128 characters, no control characters. */
export function validateLabel(option: string, value: string): string {
  if (value.length === 0 || value.length > 128 || /[\u0000-\u001f\u007f]/.test(value)) {
    throw exhaustError("EXH_OPT_INVALID", { option, reason: `expected 1 to 128 printable characters, got ${JSON.stringify(value)}` });
  }
  return value;
}

/** A dataset location given as a URL (`s3://…`, `gs://…`, `file://…`) rather than a directory. */
export function isDatasetUrl(location: string): boolean {
  return /^[a-z][a-z0-9+.-]*:\/\//i.test(location);
}
