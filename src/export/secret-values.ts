/**
 * Following a credential wherever it went: the values seen under a credential name
 * (classifiers/secrets.yaml) are collected per session, together with the forms they travel in
 * (the token after an authentication scheme, the pieces of a cookie or ticket, URL-decoded,
 * base64-decoded, and the URL-encoded, form-encoded, base64 and JSON-escaped forms of each), and
 * then looked for in raw and content-decoded bodies, in decoded field values and in any text an
 * export writes.
 */
import { decodeContentEncoding, effectiveContentEncoding } from "../decode/content-encoding.js";
import {
  isSecretHeaderName,
  isSecretJsonKey,
  isSecretParam,
  mayHoldSecretJsonKey,
  MIN_SECRET_VALUE_LENGTH,
  minSecretValueLength,
  secretQueryValues,
} from "../secrets.js";
import type { RawHeaders } from "../types.js";

/** A piece of a value (a cookie's GUID, a ticket's t=...) counts from this many characters. */
const MIN_PIECE = 16;
/** Bodies searched after content decoding, at most this large. */
const MAX_DECODED = 16 * 1024 * 1024;

const PRINTABLE = /^[\x20-\x7e]+$/;

function tryDecodeUri(s: string): string | undefined {
  try {
    const d = decodeURIComponent(s.replace(/\+/g, " "));
    return d === s ? undefined : d;
  } catch {
    return undefined;
  }
}

function tryBase64(s: string): string | undefined {
  if (s.length < 16 || !/^[A-Za-z0-9+/_-]+={0,2}$/.test(s)) return undefined;
  const d = Buffer.from(s, /[-_]/.test(s) ? "base64url" : "base64").toString("latin1");
  return d.length >= 12 && PRINTABLE.test(d) ? d : undefined;
}

/** Every form of a credential value worth looking for, each at least minSecretValueLength() characters (classifiers/secrets.yaml): the whole value, or the token after its scheme. */
export function credentialForms(value: string): Set<string> {
  const base = new Set<string>();
  const add = (s: string | undefined, min: number) => {
    const t = s?.trim();
    if (t && t.length >= min) base.add(t);
  };
  add(value, minSecretValueLength());
  const scheme = /^[A-Za-z][\w.+-]*\s+(\S[\s\S]*)$/.exec(value.trim());
  if (scheme) add(scheme[1], minSecretValueLength());
  for (const piece of value.split(/[\s;,"'&|]+/)) {
    add(piece, MIN_PIECE);
    const eq = piece.indexOf("=");
    if (eq > 0) add(piece.slice(eq + 1), MIN_PIECE);
    const colon = piece.indexOf(":");
    if (colon > 0) add(piece.slice(colon + 1), MIN_PIECE);
  }
  for (const b of [...base]) {
    add(tryDecodeUri(b), minSecretValueLength());
    add(tryBase64(b), 12);
  }
  const out = new Set(base);
  for (const b of base) {
    out.add(encodeURIComponent(b));
    out.add(encodeURIComponent(b).replace(/%20/g, "+"));
    out.add(Buffer.from(b, "utf8").toString("base64").replace(/=+$/, ""));
    out.add(Buffer.from(b, "utf8").toString("base64url"));
    out.add(JSON.stringify(b).slice(1, -1));
  }
  return out;
}

const headerValue = (h: RawHeaders | null | undefined, name: string) => h?.find(([n]) => n.toLowerCase() === name)?.[1];

/** The body after undoing its content encoding (raw when there is none, or it cannot be undone). */
export function decodedBody(data: Uint8Array, headers: RawHeaders | null | undefined, path?: string): Uint8Array | undefined {
  try {
    const q = path?.indexOf("?") ?? -1;
    const query = new URLSearchParams(q === -1 || path === undefined ? "" : path.slice(q + 1));
    const r = decodeContentEncoding(data, effectiveContentEncoding(headers ?? [], query), { maxBytes: MAX_DECODED, maxRatio: 10_000 });
    return r.applied.length ? r.body : undefined;
  } catch {
    return undefined;
  }
}

/** Every form is at least this long (secrets.ts holds minValueLength to it), so an 8-byte window indexes them all. */
const WINDOW = MIN_SECRET_VALUE_LENGTH;

/** A hash of the 8 bytes at `i`: the index key (collisions only cost a comparison). */
const windowKey = (b: Buffer, i: number) => (b.readUInt32LE(i) ^ Math.imul(b.readUInt32LE(i + 4), 0x9e3779b1)) >>> 0;

export class SecretValues {
  /** form → the credential value it is a form of. */
  private readonly forms = new Map<string, string>();
  /** first-8-bytes key → the forms (as bytes) that start with those bytes. */
  private index: Map<number, Array<{ form: string; bytes: Buffer }>> | undefined;

  get size(): number {
    return this.forms.size;
  }

  /**
   * Whether every form is printable ASCII without a quote or a backslash: then a form inside a string value
   * is found unchanged inside that value's JSON quoting (one search over a JSON array of values).
   */
  formsSurviveJson(): boolean {
    for (const f of this.forms.keys()) if (!/^[\x20-\x21\x23-\x5b\x5d-\x7e]*$/.test(f)) return false;
    return true;
  }

  /** Every credential value learned (not its forms). */
  values(): Set<string> {
    return new Set(this.forms.values());
  }

  add(value: string): void {
    if (value.length < minSecretValueLength()) return;
    for (const f of credentialForms(value)) {
      if (!this.forms.has(f) && Buffer.byteLength(f) >= WINDOW) {
        this.forms.set(f, value);
        this.index = undefined;
      }
    }
  }

  /** Values of credential headers (request, response, trailers) and query parameters. */
  learnRequest(x: {
    path: string;
    requestHeaders: RawHeaders;
    responseHeaders?: RawHeaders | null;
    responseTrailers?: RawHeaders | null;
  }): void {
    for (const h of [x.requestHeaders, x.responseHeaders, x.responseTrailers]) {
      for (const [n, v] of h ?? []) if (isSecretHeaderName(n) || isSecretParam(n)) this.add(v);
    }
    const q = x.path.indexOf("?");
    if (q !== -1) this.learnForm(x.path.slice(q + 1));
  }

  private learnForm(text: string): void {
    for (const [n, v] of new URLSearchParams(text)) if (isSecretParam(n) || isSecretHeaderName(n)) this.add(v);
  }

  private learnJson(node: unknown, depth = 0): void {
    if (depth > 64 || node === null || typeof node !== "object") return;
    for (const [k, v] of Object.entries(node as Record<string, unknown>)) {
      if (isSecretJsonKey(k) && (typeof v === "string" || typeof v === "number")) this.add(String(v));
      else this.learnJson(v, depth + 1);
    }
  }

  /** Credential keys inside a JSON or form body (raw or content-decoded), e.g. a token endpoint's answer. */
  learnBody(data: Uint8Array, headers: RawHeaders | null | undefined, path?: string): void {
    const body = decodedBody(data, headers, path) ?? data;
    if (body.length === 0 || body.length > MAX_DECODED) return;
    const type = (headerValue(headers, "content-type") ?? "").toLowerCase();
    const first = body.find((c) => c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09);
    const form = type.includes("x-www-form-urlencoded");
    if (first !== 0x7b && first !== 0x5b && !form) return; // neither JSON nor a form: nothing keyed to learn
    const text = Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString("utf8");
    if (form) return this.learnForm(text);
    if (!mayHoldSecretJsonKey(text)) return;
    for (const line of /json-stream|x-ndjson|jsonl/.test(type) ? text.split("\n") : [text]) {
      try {
        this.learnJson(JSON.parse(line));
      } catch {
        // not JSON after all
      }
    }
  }

  /** A decoded field under a credential key, or a URL field whose query carries a credential parameter (`…&key=AIza…`). */
  learnField(path: string, value: unknown): void {
    if (value === null || value === undefined) return;
    if (isSecretJsonKey(path)) this.add(typeof value === "string" ? value : JSON.stringify(value));
    else if (typeof value === "string") for (const v of secretQueryValues(value)) this.add(v);
  }

  private buildIndex(): NonNullable<typeof this.index> {
    if (this.index) return this.index;
    const index = new Map<number, Array<{ form: string; bytes: Buffer }>>();
    for (const form of this.forms.keys()) {
      const bytes = Buffer.from(form, "utf8");
      const k = windowKey(bytes, 0);
      (index.get(k) ?? index.set(k, []).get(k)!).push({ form, bytes });
    }
    this.index = index;
    return index;
  }

  /**
   * The forms found in the bytes (all of them, or the first with `first`): one pass over 8-byte
   * windows against an index of the forms' first 8 bytes, so the cost does not grow with the number
   * of credentials.
   */
  private find(buf: Buffer, first: boolean): string[] {
    const found: string[] = [];
    if (this.forms.size === 0 || buf.length < WINDOW) return found;
    const index = this.buildIndex();
    for (let i = 0; i + WINDOW <= buf.length; i++) {
      const list = index.get(windowKey(buf, i));
      if (!list) continue;
      for (const f of list) {
        if (i + f.bytes.length <= buf.length && buf.compare(f.bytes, 0, f.bytes.length, i, i + f.bytes.length) === 0) {
          found.push(f.form);
          if (first) return found;
        }
      }
    }
    return found;
  }

  /** Whether the bytes contain any form of any credential value. */
  inBytes(data: Uint8Array): boolean {
    return this.find(Buffer.from(data.buffer, data.byteOffset, data.byteLength), true).length > 0;
  }

  /** Whether a body holds a credential, as stored or after undoing its content encoding. */
  inBody(data: Uint8Array, headers: RawHeaders | null | undefined, path?: string): boolean {
    if (this.forms.size === 0) return false;
    if (this.inBytes(data)) return true;
    const decoded = decodedBody(data, headers, path);
    return decoded !== undefined && this.inBytes(decoded);
  }

  /** The credential value the text contains a form of, if any. */
  inText(text: string): string | undefined {
    if (this.forms.size === 0 || text.length < WINDOW / 4) return undefined;
    const [form] = this.find(Buffer.from(text, "utf8"), true);
    return form === undefined ? undefined : this.forms.get(form);
  }

  /** The text with every form of a credential replaced by `replace(value, form)`. */
  scrub(text: string, replace: (value: string, form: string) => string): string {
    if (this.forms.size === 0 || text.length < WINDOW / 4) return text;
    const found = this.find(Buffer.from(text, "utf8"), false);
    if (found.length === 0) return text;
    let out = text;
    for (const f of [...new Set(found)].sort((a, b) => b.length - a.length)) {
      if (out.includes(f)) out = out.split(f).join(replace(this.forms.get(f)!, f));
    }
    return out;
  }
}
