/**
 * Credential redaction for exports. Header values (and query-string parameters) whose name marks a
 * credential are replaced by a keyed hash, `hmac-sha256:<hex>`, so the same ticket or cookie gives
 * the same text in every export made with this lab's key (values stay comparable) while the value
 * itself cannot be recovered or guessed offline. The key lives in certs/ (0600) beside the CA.
 */
import { createHmac, randomBytes } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { exhaustError } from "../errors.js";
import { isSecretHeader } from "../log.js";
import type { RawHeaders } from "../types.js";

export const REDACTION_KEY_FILE = "exhaust-redaction.key";
export const REDACTED_PREFIX = "hmac-sha256:";

export interface Redactor {
  /** false with --include-secrets: values pass through untouched. */
  readonly redacting: boolean;
  headers(h: RawHeaders): RawHeaders;
  /** Path with query string; credential parameters get their value replaced, the rest stays byte for byte. */
  path(p: string): string;
  /** The credential values this redactor has replaced so far (to find them again inside bodies). */
  readonly seenValues: ReadonlySet<string>;
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

export function createRedactor(key: Buffer | undefined): Redactor {
  const seen = new Set<string>();
  const hide = (value: string): string => {
    if (!key) return value;
    if (value.length > 0) seen.add(value);
    return `${REDACTED_PREFIX}${createHmac("sha256", key).update(value, "utf8").digest("hex")}`;
  };
  return {
    redacting: key !== undefined,
    seenValues: seen,
    headers: (h) => (key ? h.map(([n, v]) => [n, isSecretHeader(n) ? hide(v) : v]) : h),
    path(p) {
      const q = p.indexOf("?");
      if (!key || q === -1) return p;
      const parts = p.slice(q + 1).split("&").map((pair) => {
        const eq = pair.indexOf("=");
        if (eq === -1) return pair;
        let name: string;
        try {
          name = decodeURIComponent(pair.slice(0, eq).replace(/\+/g, " "));
        } catch {
          name = pair.slice(0, eq);
        }
        return isSecretHeader(name) ? `${pair.slice(0, eq)}=${encodeURIComponent(hide(pair.slice(eq + 1)))}` : pair;
      });
      return `${p.slice(0, q)}?${parts.join("&")}`;
    },
  };
}

/** Whether `body` contains any of the credential values (at least 8 bytes long) verbatim. */
export function containsCredential(body: Uint8Array, values: ReadonlySet<string>): boolean {
  if (values.size === 0 || body.length === 0) return false;
  const buf = Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  for (const v of values) if (v.length >= 8 && buf.includes(v, 0, "utf8")) return true;
  return false;
}
