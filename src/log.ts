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

export function createLogger(options: LogOptions = {}): Logger {
  return pino(
    {
      name: "exhaust",
      level: options.level ?? process.env.EXHAUST_LOG_LEVEL ?? "info",
      redact: { paths: REDACT_PATHS, censor: REDACTED },
      base: undefined,
      serializers: { err: pino.stdSerializers.err },
    },
    options.destination ?? pino.destination({ dest: 2, sync: false }),
  );
}

export type { Logger };
