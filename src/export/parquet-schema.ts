/**
 * The Parquet dataset's tables, column by column (docs/parquet-schema.md describes each). The
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

const c = (name: string, kind: ColumnKind, doc: string): ColumnDef => ({ name, kind, doc });

export const PARQUET_TABLES = {
  sessions: [
    c("session_id", "i64", "the session's id in its SQLite database"),
    c("name", "str", "session name (also the `session` partition)"),
    c("started_at", "ts", "capture start"),
    c("ended_at", "ts", "capture end; NULL while the proxy runs"),
    c("tool_version", "str", "exhaust version that captured"),
    c("ca_fingerprint", "str", "SHA-256 of the CA that signed the leaves"),
    c("options_json", "str", "proxy options in force (no secrets), JSON"),
    c("incomplete", "str", "why the session is known to be incomplete (unfinished import); NULL when whole"),
    c("exported_at", "ts", "when this row was written (the row is rewritten by each export)"),
  ],
  connections: [
    c("id", "str", "connection id"),
    c("client_address", "str", "client IP"),
    c("client_port", "i32", "client port"),
    c("host", "str", "CONNECT target host"),
    c("port", "i32", "CONNECT target port"),
    c("sni", "str", "TLS server name the client sent"),
    c("outcome", "str", "intercepted | tunnelled | plain-http | client-rejected-certificate | tls-failed | upstream-failed | denied | ..."),
    c("upstream", "str", "where the bytes went when --map-host/--upstream changed it"),
    c("bytes_from_client", "i64", "bytes the client sent"),
    c("bytes_to_client", "i64", "bytes sent to the client"),
    c("exchanges", "i32", "HTTP exchanges on the connection"),
    c("started_at", "ts", "connection start"),
    c("ended_at", "ts", "connection end"),
    c("error", "str", "why it failed, when it did"),
  ],
  exchanges: [
    c("id", "str", "exchange id"),
    c("seq", "i64", "order of capture within the session (the hash chain order)"),
    c("connection_id", "str", "connections.id"),
    c("scheme", "str", "https | http"),
    c("method", "str", "HTTP method"),
    c("host", "str", "host"),
    c("port", "i32", "port"),
    c("path", "str", "path and query (credential parameters redacted)"),
    c("http_version", "str", "HTTP version"),
    c("request_headers", "str", "JSON [[name, value], ...] in wire order (credentials redacted)"),
    c("request_body_sha256", "str", "SHA-256 of the stored request body (blobs.sha256)"),
    c("request_body_size", "i64", "bytes the client sent"),
    c("request_body_truncated", "bool", "the stored body was cut at --max-body"),
    c("request_complete", "bool", "the request body arrived whole"),
    c("mode", "str", "forward | sinkhole | block"),
    c("endpoint_id", "str", "classifiers/endpoints.yaml entry"),
    c("response_status", "i32", "HTTP status"),
    c("response_headers", "str", "JSON pairs (credentials redacted)"),
    c("response_body_sha256", "str", "SHA-256 of the stored response body"),
    c("response_body_size", "i64", "response body bytes"),
    c("response_source", "str", "upstream | exhaust"),
    c("outcome", "str", "ok | sinkholed | blocked | upstream-* | client-aborted"),
    c("error_code", "str", "EXH_* code"),
    c("error_message", "str", "error text"),
    c("decoder", "str", "decoder@version that produced the events"),
    c("content_encoding", "str", "encodings undone, e.g. deflate(raw)"),
    c("started_at", "ts", "request start"),
    c("ended_at", "ts", "exchange end"),
    c("hash", "str", "hash-chain value of the exchange"),
  ],
  events: [
    c("id", "i64", "event id in its SQLite database (what `exhaust show` takes)"),
    c("exchange_id", "str", "exchanges.id"),
    c("idx", "i32", "position in the upload"),
    c("format", "str", "decoder id"),
    c("name", "str", "event name"),
    c("time", "ts", "event time as the wire gives it, parsed; NULL when absent or not a time"),
    c("time_text", "str", "event time as the wire gives it"),
    c("ikey", "str", "instrumentation key / tenant token"),
    c("field_count", "i32", "decoded fields"),
    c("ms_group", "str", "required | optional | essential | connected-experience | unknown"),
    c("group_rule", "str", "rule that set ms_group"),
    c("category", "str", "DPIA category of the event as a whole"),
    c("catalog_category", "str", "Microsoft's category (office-events.tsv)"),
    c("subtype", "str", "event subtype"),
    c("content_fields", "i32", "fields classified content"),
    c("personal_fields", "i32", "fields whose personal kind is not none"),
  ],
  fields: [
    c("event_id", "i64", "events.id"),
    c("idx", "i32", "position in the event"),
    c("part", "str", "envelope | A | B | C | body"),
    c("path", "str", "field path"),
    c("value", "str", "strings as they are, other types as JSON; credentials replaced by hmac-sha256:<hex>"),
    c("type", "str", "wire type name"),
    c("pii_kind", "i32", "PIIKind declared on the wire"),
    c("customer_content", "bool", "customer content declared on the wire"),
    c("wire_type", "i32", "wire type code"),
    c("scrub_type", "i32", "scrub type declared on the wire"),
    c("category", "str", "content | functional | diagnostic; NULL = not classified"),
    c("personal", "str", "direct-identifier | pseudonymous-id | network-identifier | none"),
    c("rule", "str", "the winning rule id"),
    c("reasons", "str", "JSON array of every rule that fired; NULL when only the winning rule did"),
    c("confidence", "f64", "classification confidence"),
  ],
  findings: [
    c("kind", "str", "decode | classification"),
    c("exchange_id", "str", "exchanges.id"),
    c("event_id", "i64", "events.id (classification findings; decode findings when tied to an event)"),
    c("idx", "i32", "position among the exchange's (decode) or event's (classification) findings"),
    c("code", "str", "dotted code, e.g. bond.truncated, declared.untagged-pii"),
    c("severity", "str", "decode findings: severity"),
    c("message", "str", "what was found"),
    c("field_path", "str", "classification findings: the field"),
    c("rule", "str", "classification findings: the rule"),
    c("byte_offset", "i64", "decode findings: offset in the body"),
    c("byte_length", "i64", "decode findings: length"),
  ],
  verdicts: [
    c("id", "i64", "verdict id in its SQLite database"),
    c("profile", "str", "verification profile"),
    c("status", "str", "pass | fail | warn | inconclusive"),
    c("created_at", "ts", "when `exhaust verify` ran"),
    c("report_json", "str", "the whole VerdictReport, JSON (credentials redacted)"),
  ],
  verdict_items: [
    c("verdict_id", "i64", "verdicts.id"),
    c("idx", "i32", "position in the report"),
    c("rule_id", "str", "the profile rule's id"),
    c("kind", "str", "rule kind"),
    c("setting", "str", "the setting the rule checks"),
    c("status", "str", "pass | fail | warn"),
    c("count", "i64", "items that violated (fail) or need review (warn)"),
    c("checked", "i64", "items the rule looked at"),
    c("description", "str", "what the rule checks"),
  ],
  blobs: [c("sha256", "str", "SHA-256 of the bytes"), c("size", "i64", "bytes"), c("data", "blob", "the body exactly as stored")],
} as const satisfies Record<string, readonly ColumnDef[]>;

export type ParquetTable = keyof typeof PARQUET_TABLES;
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
    const cols = PARQUET_TABLES[table] as readonly ColumnDef[];
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
