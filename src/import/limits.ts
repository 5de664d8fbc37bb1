/**
 * Import bounds. An imported file is as hostile as live traffic: one payload, archive entry, JSON
 * string or line may claim or hold gigabytes. The importer runs on a worker with a capped heap, so
 * everything it holds at once is bounded here, by the same limit as the proxy's --max-body: a
 * payload (EventTranscript.db row, Get-DiagnosticData payload, HAR body, bundle blob) above it, a
 * SAZ raw file above it plus room for the HTTP head, a zip entry that declares more or inflates to
 * more, a JSON string or a JSONL line beyond it, ends the import with EXH_IMPORT_FORMAT naming what
 * and where, before the bytes are read.
 */
import type { Readable } from "node:stream";
import { exhaustError, type ExhaustError } from "../errors.js";
import { PROXY_DEFAULTS } from "../proxy/options.js";

/** Default payload limit of `exhaust import --max-body`: the proxy's --max-body default (32 MiB). */
export const IMPORT_MAX_BODY_DEFAULT = PROXY_DEFAULTS.maxBodyBytes;
/** Room for the request line and headers around a body in a SAZ raw file. */
export const HEAD_ALLOWANCE = 1024 * 1024;
/** Index files of a bundle (manifest, exchanges.jsonl, ...) read whole by verification. */
export const BUNDLE_INDEX_MAX = 128 * 1024 * 1024;

/** EXH_IMPORT_FORMAT for `what` ("the payload of row 7 is 300000000 bytes") above `limit`. */
export function tooLarge(file: string, what: string, limit: number): ExhaustError {
  return exhaustError("EXH_IMPORT_FORMAT", {
    file,
    reason: `${what}, above the import limit of ${limit} bytes (raise it with --max-body)`,
  });
}

/** JSON characters allowed in one string: a body of `maxBody` bytes as base64, with room to spare. */
export function jsonStringLimit(maxBody: number): number {
  return Math.ceil(maxBody / 3) * 4 + 64 * 1024;
}

/** JSON one item (a HAR entry, a Get-DiagnosticData event) may weigh: two bodies and their headers. */
export function jsonItemLimit(maxBody: number): number {
  return 4 * maxBody + 1024 * 1024;
}

/**
 * Lines of a UTF-8 stream (LF or CRLF), each at most jsonStringLimit(maxBody) bytes: a longer line
 * fails the import instead of being gathered in memory (readline would hold any length).
 */
export async function* boundedLines(input: Readable, maxBody: number, file: string): AsyncGenerator<string> {
  const maxBytes = jsonStringLimit(maxBody);
  let parts: Buffer[] = [];
  let held = 0;
  const line = (tail: Buffer): string => {
    const all = parts.length ? Buffer.concat([...parts, tail]) : tail;
    parts = [];
    held = 0;
    const end = all.length && all[all.length - 1] === 0x0d ? all.length - 1 : all.length;
    return all.toString("utf8", 0, end);
  };
  for await (const chunk of input) {
    let buf = chunk as Buffer;
    for (let nl = buf.indexOf(0x0a); nl !== -1; nl = buf.indexOf(0x0a)) {
      if (held + nl > maxBytes) throw tooLarge(file, `a line is longer than ${maxBytes} bytes`, maxBody);
      yield line(buf.subarray(0, nl));
      buf = buf.subarray(nl + 1);
    }
    held += buf.length;
    if (held > maxBytes) throw tooLarge(file, `a line is longer than ${maxBytes} bytes`, maxBody);
    if (buf.length) parts.push(buf);
  }
  if (held > 0) yield line(Buffer.alloc(0));
}
