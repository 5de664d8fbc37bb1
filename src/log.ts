import pino, { type Logger, type DestinationStream } from "pino";

/**
 * Header names whose values are credentials. Matched case-insensitively, on whole names or prefixes
 * (`Auth*`, `Aad-*`), also as query parameters. One list serves log, UI and export redaction. MSFPC
 * is Microsoft's first-party cookie, also sent as a header or parameter of its own.
 */
const SECRET_HEADER = /^(tickets|auth.*|aad-.*|authorization|proxy-authorization|cookie|set-cookie|x-api-key|msfpc)$/i;

export function isSecretHeader(name: string): boolean {
  return SECRET_HEADER.test(name);
}

export const REDACTED = "[redacted]";

/**
 * Paths pino removes from every log line, compiled once. Our serializers never put headers or
 * bodies in a line at all; this is the second fence, for anything that slips through.
 */
const REDACT_PATHS = [
  "headers.authorization",
  "headers.tickets",
  "headers.cookie",
  "*.headers.authorization",
  "*.headers.tickets",
  "*.headers.cookie",
  "*.headers['proxy-authorization']",
  "*.headers['set-cookie']",
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
