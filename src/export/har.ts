/**
 * HAR 1.2 export that loses nothing: bodies that are not valid UTF-8 are written as base64
 * (`content.encoding: "base64"`, and `postData._exhaust.encoding: "base64"` since HAR's postData has
 * no encoding field), headers keep their wire order and case, and every entry carries `_exhaust`:
 * the exchange record (ids, chain links, sizes, flags, times), its decoded events with their
 * classification, the request-side items and the decode findings. Written as a stream of chunks so
 * a large session never sits in memory.
 */
import type { Db } from "../store/database.js";
import { blobData } from "../store/blobs.js";
import { exchangesOfSession, type ExchangeRecord } from "../store/exchanges.js";
import { eventIdsOfExchange } from "../store/export-queries.js";
import type { SessionRecord } from "../store/sessions.js";
import { decodeFindingsOfExchange, requestItemsOfExchange } from "../store/findings.js";
import { getEvent } from "../store/events.js";
import type { RawHeaders } from "../types.js";
import { TOOL_VERSION } from "../version.js";
import { eventJson } from "./jsonl.js";
import { learnSessionSecrets } from "./learn-secrets.js";
import type { OmittedItem } from "../evidence/format.js";
import type { Redactor } from "./redaction.js";
import type { ExportFormat } from "./export-format.js";
import { writePrivateFile } from "./private-files.js";

const utf8 = new TextDecoder("utf-8", { fatal: true });

/** Body as HAR text: UTF-8 as it is, anything else base64. */
export function bodyAsHarText(body: Uint8Array): { text: string; encoding?: "base64" } {
  try {
    return { text: utf8.decode(body) };
  } catch {
    return { text: Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString("base64"), encoding: "base64" };
  }
}

const headerValue = (h: RawHeaders | null, name: string) => h?.find(([n]) => n.toLowerCase() === name)?.[1];
const harHeaders = (h: RawHeaders | null) => (h ?? []).map(([name, value]) => ({ name, value }));

function queryString(path: string): Array<{ name: string; value: string }> {
  const q = path.indexOf("?");
  if (q === -1) return [];
  return [...new URLSearchParams(path.slice(q + 1))].map(([name, value]) => ({ name, value }));
}

export function exchangeUrl(x: Pick<ExchangeRecord, "scheme" | "host" | "port" | "path">): string {
  const defaultPort = x.scheme === "https" ? 443 : 80;
  return `${x.scheme}://${x.host}${x.port === defaultPort ? "" : `:${x.port}`}${x.path}`;
}

/** The exchange record as exports carry it: credentials in headers and the query string redacted. */
export function redactedRecord(x: ExchangeRecord, redactor: Redactor): ExchangeRecord & { chainInputsRedacted?: true } {
  const requestHeaders = redactor.headers(x.requestHeaders);
  const path = redactor.path(x.path);
  const changed = path !== x.path || requestHeaders.some(([, v], i) => v !== x.requestHeaders[i][1]);
  return {
    ...x,
    path,
    requestHeaders,
    responseHeaders: x.responseHeaders && redactor.headers(x.responseHeaders),
    responseTrailers: x.responseTrailers && redactor.headers(x.responseTrailers),
    ...(changed ? { chainInputsRedacted: true as const } : {}),
  };
}

function harEntry(db: Db, x: ExchangeRecord, redactor: Redactor, omitted: OmittedItem[]): object {
  const r = redactedRecord(x, redactor);
  const body = (sha: string | null, what: string, headers: RawHeaders | null, path?: string) => {
    if (sha === null) return undefined;
    const data = blobData(db, sha);
    if (!data) {
      omitted.push({ what, exchange: x.id, sha256: sha, reason: "blob missing from the database" });
      return undefined;
    }
    if (redactor.bodyHasSecret(data, headers, path)) {
      omitted.push({ what, exchange: x.id, sha256: sha, reason: CREDENTIAL_BODY_REASON });
      return undefined;
    }
    return bodyAsHarText(data);
  };
  const request = body(x.requestBodySha256, "request body", x.requestHeaders, x.path);
  const response = body(x.responseBodySha256, "response body", x.responseHeaders);
  const end = x.endedAt ?? x.respondedAt ?? x.requestEndedAt ?? x.startedAt;
  const { requestHeaders: _rh, responseHeaders: _sh, ...record } = r;
  return redactor.deep({
    startedDateTime: new Date(x.startedAt).toISOString(),
    time: Math.max(0, end - x.startedAt),
    request: {
      method: x.method,
      url: exchangeUrl(r),
      httpVersion: `HTTP/${x.httpVersion}`,
      cookies: [],
      headers: harHeaders(r.requestHeaders),
      queryString: queryString(r.path),
      ...(request && request.text.length > 0
        ? {
            postData: {
              mimeType: headerValue(r.requestHeaders, "content-type") ?? "",
              text: request.text,
              ...(request.encoding ? { _exhaust: { encoding: request.encoding } } : {}),
            },
          }
        : {}),
      headersSize: -1,
      bodySize: x.requestBodySize,
    },
    response: {
      status: x.responseStatus ?? 0,
      statusText: "",
      httpVersion: `HTTP/${x.httpVersion}`,
      cookies: [],
      headers: harHeaders(r.responseHeaders),
      content: {
        size: x.responseBodySize ?? 0,
        mimeType: headerValue(r.responseHeaders, "content-type") ?? "",
        ...(response ? { text: response.text, ...(response.encoding ? { encoding: response.encoding } : {}) } : {}),
      },
      redirectURL: headerValue(r.responseHeaders, "location") ?? "",
      headersSize: -1,
      bodySize: x.responseBodySize ?? -1,
    },
    cache: {},
    timings: {
      blocked: -1,
      dns: -1,
      connect: -1,
      ssl: -1,
      send: Math.max(0, (x.requestEndedAt ?? x.startedAt) - x.startedAt),
      wait: Math.max(0, (x.respondedAt ?? x.requestEndedAt ?? x.startedAt) - (x.requestEndedAt ?? x.startedAt)),
      receive: Math.max(0, end - (x.respondedAt ?? end)),
    },
    ...(x.upstream ? { serverIPAddress: x.upstream.replace(/:\d+$/, "") } : {}),
    _exhaust: {
      ...record,
      events: eventIdsOfExchange(db, x.id).map((id) => eventJson(getEvent(db, id)!, redactor)),
      requestItems: requestItemsOfExchange(db, x.id),
      decodeFindings: decodeFindingsOfExchange(db, x.id),
    },
  });
}

/** Why a body was left out of a redacted export. */
export const CREDENTIAL_BODY_REASON =
  "holds a credential value (as stored or after content decoding; export with --include-secrets to keep it)";

/**
 * Lets the redactor see every credential value of the sessions first, so a body holding one is
 * recognised even when the header carrying it comes later in the session.
 */
export function learnCredentials(db: Db, sessions: readonly SessionRecord[], redactor: Redactor): void {
  learnSessionSecrets(
    db,
    sessions.map((s) => s.id),
    redactor,
  );
}

/** The HAR document for the sessions, as chunks of text. `omitted` is filled while writing. */
export function* sessionHarChunks(
  db: Db,
  sessions: readonly SessionRecord[],
  redactor: Redactor,
  omitted: OmittedItem[],
): Generator<string> {
  learnCredentials(db, sessions, redactor);
  yield `{"log":{"version":"1.2","creator":{"name":"exhaust","version":${JSON.stringify(TOOL_VERSION)}},"pages":[],"entries":[`;
  let first = true;
  for (const s of sessions) {
    for (const x of exchangesOfSession(db, s.id)) {
      yield `${first ? "" : ","}\n${JSON.stringify(harEntry(db, x, redactor, omitted))}`;
      first = false;
    }
  }
  const meta = {
    secrets: redactor.redacting ? "redacted" : "included",
    sessions: sessions.map((s) => ({
      name: s.name,
      startedAt: s.startedAt,
      endedAt: s.endedAt,
      toolVersion: s.toolVersion,
      caFingerprint: s.caFingerprint,
    })),
    omitted,
  };
  yield `\n],"_exhaust":${JSON.stringify(meta)}}}\n`;
}

/** `--format har`: one HAR 1.2 file; items left out (bodies holding credentials) listed in it. */
export const harFormat: ExportFormat = {
  name: "har",
  out: () => "file",
  async write(ctx) {
    const omitted: OmittedItem[] = [];
    writePrivateFile(ctx.out, sessionHarChunks(ctx.db, ctx.sessions, ctx.redactor(), omitted), ctx.overwrite);
    return { omitted };
  },
};
