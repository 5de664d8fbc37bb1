/**
 * Every error exhaust raises on purpose, with a stable code (`EXH_<AREA>_<WHAT>`), a message a
 * user can act on, the CLI exit code and, where it reaches a client, an HTTP status.
 * docs/errors.md lists the same codes; test/errors.test.ts keeps the two in step.
 */

interface ErrorDefinition {
  /** Message template; `{name}` is replaced by the parameter of that name. */
  message: string;
  /** Exit code when the error ends a CLI command: 2 = usage or input. */
  exitCode: number;
  /** HTTP status when the error is answered to a proxied client. */
  httpStatus?: number;
}

export const ERROR_DEFINITIONS = {
  EXH_OPT_INVALID: { message: "invalid option {option}: {reason}", exitCode: 2 },
  EXH_LISTEN_UNPROTECTED: {
    message: "refusing to listen on non-loopback address {address} without --auth user:pass or --allow CIDR",
    exitCode: 2,
  },
  EXH_LISTEN_FAILED: { message: "cannot listen on {address}: {reason}", exitCode: 2 },
  EXH_CATALOG_INVALID: { message: "endpoint catalogue {file} is invalid: {reason}", exitCode: 2 },
  EXH_RULES_INVALID: { message: "rule pack {file} is invalid: {reason}", exitCode: 2 },
  EXH_CA_MISSING: { message: "no CA in {dir}: run `exhaust ca init` first", exitCode: 2 },
  EXH_CA_INVALID: { message: "CA material in {dir} is unusable: {reason}", exitCode: 2 },
  EXH_CA_CONSTRAINED: {
    message:
      "--intercept all needs an unconstrained CA, but the CA in {dir} is name-constrained to the catalogue's domains; re-create it with `exhaust ca init --unconstrained --force`",
    exitCode: 2,
  },
  EXH_CA_EXISTS: { message: "a CA already exists in {dir}; pass --force to replace it", exitCode: 2 },
  EXH_DB_OPEN: { message: "cannot open database {file}: {reason}", exitCode: 2 },
  EXH_DB_SESSION_UNKNOWN: { message: "no session named {session} in {file}", exitCode: 2 },
  EXH_UPSTREAM_REFUSED: { message: "upstream {target} refused the connection", exitCode: 1, httpStatus: 502 },
  EXH_UPSTREAM_RESET: { message: "upstream {target} reset the connection", exitCode: 1, httpStatus: 502 },
  EXH_UPSTREAM_TIMEOUT: {
    message: "upstream {target} did not answer within {ms} ms",
    exitCode: 1,
    httpStatus: 504,
  },
  EXH_UPSTREAM_FAILED: { message: "upstream {target} failed: {reason}", exitCode: 1, httpStatus: 502 },
  EXH_CLIENT_ABORTED: { message: "client closed the connection before the request body ended", exitCode: 1 },
  EXH_PROCESS_FAILED: { message: "decoding exchange {exchange} failed: {reason}", exitCode: 1 },
  EXH_EVENT_UNKNOWN: { message: "no event with id {id} in {file}", exitCode: 2 },
  EXH_EXPORT_OUT_EXISTS: {
    message: "{path} already exists; choose a new --out, or pass --force to replace a file (a non-empty directory is never replaced)",
    exitCode: 2,
  },
  EXH_BUNDLE_INVALID: { message: "cannot read bundle {path}: {reason}", exitCode: 2 },
  EXH_IMPORT_FORMAT: { message: "cannot import {file}: {reason}", exitCode: 2 },
  EXH_IMPORT_SESSION_EXISTS: {
    message: "session {session} already exists in {file}; imports go into a new session (pick another --session)",
    exitCode: 2,
  },
  EXH_ADDON_FAILED: { message: "addon {addon} failed in {hook}: {reason}", exitCode: 1, httpStatus: 500 },
  EXH_WEBSOCKET_COMPRESSED: {
    message: "WebSocket message sent compressed (permessage-deflate); stored as sent, not inflated",
    exitCode: 1,
  },
  EXH_DB_NO_SESSION: { message: "no sessions in {file}: capture or import something first", exitCode: 2 },
  EXH_PROFILE_UNKNOWN: { message: "no verification profile {profile} (shipped: {known}); give a profile name or a YAML file", exitCode: 2 },
  EXH_PROFILE_INVALID: { message: "profile {file} is invalid: {reason}", exitCode: 2 },
  EXH_DB_NOT_FOUND: { message: "no database at {file}: capture (exhaust proxy) or import first, or pass --db", exitCode: 2 },
  EXH_CAPTURE_FAILED: {
    message: "the capture could not be stored ({reason}); not acknowledged, retry later",
    exitCode: 1,
    httpStatus: 503,
  },
  EXH_SESSION_BUSY: {
    message: "session {session} in {file} is being captured by another proxy ({owner}); stop it or choose another --session",
    exitCode: 2,
  },
  EXH_STOP_FAILED: {
    message:
      "stopping the capture of session {session} could not write to {file} ({reason}): every acknowledged upload is stored, but the session stays marked open and without its stop checkpoint; free space, then run `exhaust reprocess` and `exhaust sessions --head --session {session}`",
    exitCode: 1,
  },
  EXH_STORE_GONE: { message: "the database {file} was deleted or replaced under the running proxy; capture stopped", exitCode: 1 },
  // containment
  EXH_TARGET_REFUSED: { message: "relay to {target} refused: {reason}", exitCode: 1, httpStatus: 403 },
  EXH_HOST_MISMATCH: {
    message: "Host header {host} differs from the connection's target {target}; the request went to {target}",
    exitCode: 1,
  },
  EXH_PROXY_BUSY: { message: "proxy at its limit ({reason}); try again later", exitCode: 1, httpStatus: 503 },
  EXH_BODY_STALLED: { message: "{side} body stalled for {ms} ms", exitCode: 1 },
  EXH_UI_HOST_REFUSED: {
    message: "misdirected request: {reason} (open the address `exhaust ui` printed, or add the name with --host-name)",
    exitCode: 1,
    httpStatus: 421,
  },
  EXH_UI_ORIGIN_REFUSED: { message: "cross-origin request refused: {reason}", exitCode: 1, httpStatus: 403 },
  EXH_CERTS_NO_CA: {
    message: "--certs {dir} holds no CA (exhaust-ca.pem): check the path, or create one there with `exhaust ca init --certs {dir}`",
    exitCode: 2,
  },
  // demo
  EXH_DEMO_FAILED: { message: "the demo could not capture its corpus: {reason}", exitCode: 1 },
  EXH_DATASET_INVALID: { message: "dataset {dir} is unusable: {reason}", exitCode: 2 },
  EXH_STUDY_QUERY: { message: "study query failed: {reason}", exitCode: 2 },
} as const satisfies Record<string, ErrorDefinition>;

export type ErrorCode = keyof typeof ERROR_DEFINITIONS;

/** The message of `code` with its parameters filled in (a missing one stays as `{name}`). */
export function errorMessage(code: ErrorCode, params: Record<string, string | number> = {}): string {
  const def: ErrorDefinition = ERROR_DEFINITIONS[code];
  return def.message.replace(/\{(\w+)\}/g, (_, name: string) => String(params[name] ?? `{${name}}`));
}

export class ExhaustError extends Error {
  readonly code: ErrorCode;
  readonly exitCode: number;
  readonly httpStatus: number | undefined;
  readonly params: Record<string, string | number>;

  constructor(code: ErrorCode, params: Record<string, string | number> = {}, options?: { cause?: unknown }) {
    const def: ErrorDefinition = ERROR_DEFINITIONS[code];
    super(errorMessage(code, params), options);
    this.name = "ExhaustError";
    this.code = code;
    this.exitCode = def.exitCode;
    this.httpStatus = def.httpStatus;
    this.params = params;
  }
}

export function exhaustError(code: ErrorCode, params: Record<string, string | number> = {}, cause?: unknown): ExhaustError {
  return new ExhaustError(code, params, cause === undefined ? undefined : { cause });
}

export function isExhaustError(e: unknown): e is ExhaustError {
  return e instanceof ExhaustError;
}
