import pino, { type Logger, type DestinationStream } from "pino";
import { exactSecretHeaderNames, isSecretHeaderName, isSecretJsonKey, isSecretParam } from "./secrets.js";

export { isSecretHeaderName, isSecretJsonKey, isSecretParam };

/**
 * Whether a header or query-string parameter holds a credential: the one list in
 * classifiers/secrets.yaml (src/secrets.ts), matched case-insensitively on whole names or prefixes
 * (`Auth*`, `Aad-*`). It serves log, UI, report and export redaction.
 */
export function isSecretHeader(name: string): boolean {
  return isSecretHeaderName(name) || isSecretParam(name);
}

export const REDACTED = "[redacted]";

/**
 * Paths pino removes from every log line, compiled once. Our serializers never put headers or
 * bodies in a line at all; this is the second fence, for anything that slips through.
 */
const REDACT_PATHS = [
  ...exactSecretHeaderNames().flatMap((n) => [`headers[${JSON.stringify(n)}]`, `*.headers[${JSON.stringify(n)}]`]),
  "auth",
  "password",
  "key",
  "privateKey",
];

export interface LogOptions {
  level?: string;
  destination?: DestinationStream;
}

/** Info lines wait at most this long in the buffer (warnings and errors are written at once). */
const LOG_FLUSH_MS = 50;

/** Bytes of buffered lines that are written at once, before LOG_FLUSH_MS is up. */
const LOG_BUFFER_BYTES = 8192;

/**
 * Standard error, buffered: under load the proxy logs a line per exchange, and one write(2) per
 * line cost about a tenth of its thread. Lines gather in pino's asynchronous destination and go
 * out together when 8 KB are pending or 50 ms after the first, whichever is sooner; a warning or an
 * error is written at once (with what is pending before it, so the order holds); `flush()` and the
 * process's exit write what is left.
 */
function bufferedStderr(): DestinationStream & { flush(cb?: (err?: Error) => void): void; flushSync(): void } {
  const sonic = pino.destination({ dest: 2, sync: false, minLength: LOG_BUFFER_BYTES });
  let timer: NodeJS.Timeout | undefined;
  const flush = () => {
    timer = undefined;
    try {
      sonic.flush();
    } catch {
      // Ended at exit (or stderr is gone): nothing more can be written.
    }
  };
  return {
    write(line: string) {
      sonic.write(line);
      // A pino line starts `{"level":NN`: 40 and up are warnings, errors and fatal ones.
      if (line.charCodeAt(9) >= 0x34) {
        clearTimeout(timer);
        flush();
      } else if (timer === undefined) {
        timer = setTimeout(flush, LOG_FLUSH_MS);
        timer.unref();
      }
    },
    flush(cb?: (err?: Error) => void) {
      clearTimeout(timer);
      timer = undefined;
      sonic.flush(cb);
    },
    flushSync() {
      clearTimeout(timer);
      timer = undefined;
      sonic.flushSync();
    },
  };
}

export function createLogger(options: LogOptions = {}): Logger {
  return pino(
    {
      name: "exhaust",
      level: options.level ?? process.env.EXHAUST_LOG_LEVEL ?? "info",
      redact: { paths: REDACT_PATHS, censor: REDACTED },
      base: undefined,
      serializers: { err: pino.stdSerializers.err },
    },
    options.destination ?? bufferedStderr(),
  );
}

export type { Logger };
