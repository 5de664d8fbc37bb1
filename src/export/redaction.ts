/**
 * Credential redaction for exports, the report and the UI. Values under a credential name (the one
 * list, classifiers/secrets.yaml via src/secrets.ts) are replaced by a keyed hash,
 * `hmac-sha256:<hex>`, so the same ticket or cookie gives the same text in every export made with
 * this lab's key (values stay comparable) while the value itself cannot be recovered or guessed
 * offline. The key lives in certs/ (0600) beside the CA and never leaves it.
 *
 * The values are also followed (src/export/secret-values.ts): learned per session from headers,
 * query strings, JSON/form bodies and decoded fields, they are looked for in raw and decoded bodies
 * (a body holding one is left out of the export and listed), in decoded field values (replaced by
 * the keyed hash) and in every other string an export writes (the occurrence replaced).
 */
import { createHmac, randomBytes } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { exhaustError } from "../errors.js";
import { isSecretHeader, REDACTED } from "../log.js";
import { isSecretJsonKey, secretQueryValues } from "../secrets.js";
import type { RawHeaders } from "../types.js";
import { SecretValues } from "./secret-values.js";

export const REDACTION_KEY_FILE = "exhaust-redaction.key";
export const REDACTED_PREFIX = "hmac-sha256:";

export interface Redactor {
  /** false with --include-secrets: values pass through untouched. */
  readonly redacting: boolean;
  headers(h: RawHeaders): RawHeaders;
  /** Path with query string; credential parameters get their value replaced, the rest stays byte for byte. */
  path(p: string): string;
  /** The credential values learned so far and the forms they travel in. */
  readonly secrets: SecretValues;
  /** The credential values this redactor knows (to find them again inside bodies). */
  readonly seenValues: ReadonlySet<string>;
  /** A decoded field value: replaced when its key is a credential name or it holds a credential. */
  field(path: string, value: unknown): unknown;
  /** Any other text: each credential form in it replaced. */
  text(s: string): string;
  /** Every string inside a JSON-shaped value passed through text(). */
  deep<T>(value: T): T;
  /** Whether a body (as stored or content-decoded) holds a credential and must be left out. */
  bodyHasSecret(data: Uint8Array, headers: RawHeaders | null | undefined, path?: string): boolean;
}

/** Loads the lab's redaction key from `certsDir`, creating it (32 random bytes, mode 0600) on first use. */
export function loadOrCreateRedactionKey(certsDir: string): Buffer {
  const file = join(certsDir, REDACTION_KEY_FILE);
  try {
    if (!existsSync(file)) {
      mkdirSync(certsDir, { recursive: true, mode: 0o700 });
      writeFileSync(file, `${randomBytes(32).toString("hex")}\n`, { mode: 0o600, flag: "wx" });
    }
    if (process.platform !== "win32" && (statSync(file).mode & 0o777) !== 0o600) chmodSync(file, 0o600);
    const key = Buffer.from(readFileSync(file, "utf8").trim(), "hex");
    if (key.length < 16) throw new Error(`${REDACTION_KEY_FILE} holds fewer than 16 bytes of hex`);
    return key;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "EEXIST") return loadOrCreateRedactionKey(certsDir);
    throw exhaustError("EXH_CA_INVALID", { dir: certsDir, reason: (e as Error).message }, e);
  }
}

/** Keyed-hash redaction (exports); `undefined` = --include-secrets, nothing is changed. */
export function createRedactor(key: Buffer | undefined): Redactor {
  return makeRedactor(key ? (value) => `${REDACTED_PREFIX}${createHmac("sha256", key).update(value, "utf8").digest("hex")}` : undefined);
}

/** Redaction with the fixed marker `[redacted]`, for views that have no key (report, UI). */
export function createMarkerRedactor(): Redactor {
  return makeRedactor(() => REDACTED);
}

function makeRedactor(hash: ((value: string) => string) | undefined): Redactor {
  const secrets = new SecretValues();
  const seen = new Set<string>();
  const hide = (value: string): string => {
    if (value.length > 0) {
      seen.add(value);
      secrets.add(value);
    }
    return hash!(value);
  };
  const text = (s: string): string => (hash ? secrets.scrub(s, (v) => hash(v)) : s);
  const deep = <T>(value: T): T => {
    if (!hash) return value;
    if (typeof value === "string") return text(value) as T;
    if (Array.isArray(value)) return value.map(deep) as T;
    if (value && typeof value === "object" && !(value instanceof Uint8Array)) {
      return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, deep(v)])) as T;
    }
    return value;
  };
  return {
    redacting: hash !== undefined,
    secrets,
    seenValues: seen,
    headers: (h) => (hash ? h.map(([n, v]) => [n, isSecretHeader(n) ? hide(v) : text(v)]) : h),
    path(p) {
      if (!hash) return p;
      const q = p.indexOf("?");
      if (q === -1) return text(p);
      const parts = p
        .slice(q + 1)
        .split("&")
        .map((pair) => {
          const eq = pair.indexOf("=");
          if (eq === -1) return pair;
          let name: string;
          try {
            name = decodeURIComponent(pair.slice(0, eq).replace(/\+/g, " "));
          } catch {
            name = pair.slice(0, eq);
          }
          if (!isSecretHeader(name)) return pair;
          let value = pair.slice(eq + 1);
          try {
            value = decodeURIComponent(value.replace(/\+/g, " "));
          } catch {
            // keep it as written
          }
          return `${pair.slice(0, eq)}=${encodeURIComponent(hide(value))}`;
        });
      return text(`${p.slice(0, q)}?${parts.join("&")}`);
    },
    field(path, value) {
      if (!hash || value === null || value === undefined) return value;
      if (isSecretJsonKey(path)) return hide(typeof value === "string" ? value : JSON.stringify(value));
      if (typeof value === "string") {
        // A URL whose query carries a credential (api key, token, signature): its value is learned, the field hidden.
        const inQuery = secretQueryValues(value);
        for (const v of inQuery) hide(v);
        return inQuery.length > 0 || secrets.inText(value) !== undefined ? hide(value) : value;
      }
      if (typeof value === "object") {
        const json = JSON.stringify(value);
        return secrets.inText(json) !== undefined ? hide(json) : value;
      }
      return value;
    },
    text,
    deep,
    bodyHasSecret: (data, headers, path) => hash !== undefined && secrets.inBody(data, headers, path),
  };
}

/** Whether `body` contains any of the credential values (at least 8 bytes long) verbatim. */
export function containsCredential(body: Uint8Array, values: ReadonlySet<string>): boolean {
  if (values.size === 0 || body.length === 0) return false;
  const buf = Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  for (const v of values) if (v.length >= 8 && buf.includes(v, 0, "utf8")) return true;
  return false;
}
