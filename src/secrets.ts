/**
 * The ONE list of credential names (classifiers/secrets.yaml): headers, query-string parameters and
 * JSON keys whose values are credentials. Logs (src/log.ts), the UI, the report and every export ask
 * here. Loaded once, at first use.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parse as parseYaml } from "yaml";
import { z } from "zod";
import { globPattern } from "./glob.js";
import { CLASSIFIERS_DIR } from "./paths.js";

/** The shortest minValueLength the list may set: the exports' redaction window (8 bytes). */
export const MIN_SECRET_VALUE_LENGTH = 8;

export const SECRETS_FILE = join(CLASSIFIERS_DIR, "secrets.yaml");
export type SecretPlace = "header" | "query" | "json";

const Schema = z.object({
  // At least 8: the exports' redaction (src/export/secret-values.ts) indexes every value by its
  // first 8 bytes and cannot find a shorter one, so a lower setting would silently not redact.
  minValueLength: z.number().int().min(MIN_SECRET_VALUE_LENGTH),
  minValueLengthSource: z.string().min(1),
  secrets: z
    .array(
      z.object({
        name: z.string().regex(/^[A-Za-z0-9_.-]+\*?$/),
        in: z.array(z.enum(["header", "query", "json"])).min(1),
        source: z.string().min(1),
      }),
    )
    .min(1),
});

export interface SecretName {
  name: string;
  in: SecretPlace[];
  source: string;
}

let loaded: { entries: SecretName[]; minValueLength: number; patterns: Record<SecretPlace, RegExp>; jsonKeyInText: RegExp } | undefined;

function load(): NonNullable<typeof loaded> {
  if (loaded) return loaded;
  const parsed = Schema.parse(parseYaml(readFileSync(SECRETS_FILE, "utf8")));
  const pattern = (place: SecretPlace) => {
    const alts = parsed.secrets.filter((e) => e.in.includes(place)).map((e) => globPattern(e.name));
    return new RegExp(`^(?:${alts.join("|")})$`, "is");
  };
  const jsonAlts = parsed.secrets.filter((e) => e.in.includes("json")).map((e) => globPattern(e.name, '[^"]*'));
  loaded = {
    entries: parsed.secrets,
    minValueLength: parsed.minValueLength,
    patterns: { header: pattern("header"), query: pattern("query"), json: pattern("json") },
    jsonKeyInText: new RegExp(`"(?:${jsonAlts.join("|")})"\\s*:`, "i"),
  };
  return loaded;
}

/**
 * A credential's value counts (is followed into bodies, marks a URL field secret) from this many
 * characters: shorter ones (`code=1`) would redact ordinary text. Set in classifiers/secrets.yaml
 * (`minValueLength`), the one place.
 */
export function minSecretValueLength(): number {
  return load().minValueLength;
}

/** Every entry of the list, with its source. */
export function secretNames(): readonly SecretName[] {
  return load().entries;
}

/** Whether a header's value is a credential (case-insensitive; `Auth*`, `Aad-*` are prefixes). */
export function isSecretHeaderName(name: string): boolean {
  return load().patterns.header.test(name);
}

/** Whether a query-string or form parameter's value is a credential. */
export function isSecretParam(name: string): boolean {
  return load().patterns.query.test(name);
}

/** Whether a JSON key (or a decoded field path, by its last segment) holds a credential. */
export function isSecretJsonKey(keyOrPath: string): boolean {
  const dot = keyOrPath.lastIndexOf(".");
  return load().patterns.json.test(dot === -1 ? keyOrPath : keyOrPath.slice(dot + 1));
}

/** Whether JSON text may hold a credential key (`"access_token":` …): a fast test before parsing. */
export function mayHoldSecretJsonKey(text: string): boolean {
  return load().jsonKeyInText.test(text);
}

/** Exact (non-prefix) header names of the list, lower case: pino's redact paths. */
export function exactSecretHeaderNames(): string[] {
  return load()
    .entries.filter((e) => e.in.includes("header") && !e.name.endsWith("*"))
    .map((e) => e.name.toLowerCase());
}

/** `name=value` pairs after `?`, `&`, `;` or `#` (a URL's query or fragment, a form, a relative URL). */
const QUERY_PAIR = /[?&;#]([A-Za-z0-9_.%-]{1,64})=([^&#;\s"'<>]*)/g;

function decodeQueryPart(s: string): string {
  try {
    return decodeURIComponent(s.replace(/\+/g, " "));
  } catch {
    return s;
  }
}

/**
 * The values of credential parameters (classifiers/secrets.yaml, `in: query`) inside a text that
 * holds a URL or query string (`…/geocode/json?latlng=…&key=AIza…`), URL-decoded, each at least
 * the list's minValueLength characters: what a field value carries in its query that must not
 * leave unredacted.
 */
export function secretQueryValues(text: string): string[] {
  if (!text.includes("=")) return [];
  const minLength = minSecretValueLength();
  const out: string[] = [];
  QUERY_PAIR.lastIndex = 0;
  let m: RegExpExecArray | null;
  while ((m = QUERY_PAIR.exec(text)) !== null) {
    if (m[2].length < minLength || !isSecretParam(decodeQueryPart(m[1]))) continue;
    const value = decodeQueryPart(m[2]);
    if (value.length >= minLength) out.push(value);
  }
  return out;
}
