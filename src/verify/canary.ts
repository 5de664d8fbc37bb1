/**
 * Canary tokens: unique strings a tester plants in documents, file names, mail subjects and typed
 * text, and the search for them in every form a client might send them in. Known-value search is
 * the reliable leak test (The Markup's Blacklight searches planted values in plain, base64, MD5
 * and SHA forms; docs/categories.md).
 */
import { createHash, randomBytes } from "node:crypto";
import { escapeRegExp } from "../glob.js";

/** RFC 4648 base32 alphabet, lower case: no 0/1/8/9, so a token never reads as a number or hex. */
const BASE32 = "abcdefghijklmnopqrstuvwxyz234567";
export const CANARY_PREFIX = "exh";
/** 20 base32 characters = 100 random bits: two tokens colliding by chance is not a concern. */
const RANDOM_CHARS = 20;

export function newCanaryToken(): string {
  const bytes = randomBytes(RANDOM_CHARS);
  let out = CANARY_PREFIX;
  for (let i = 0; i < RANDOM_CHARS; i++) out += BASE32[bytes[i] & 31];
  return out;
}

export interface CanaryHit {
  token: string;
  /** plain, lower-case, upper-case, mixed-case, url-encoded, base64, base64url, utf-16le, md5, sha1, sha256 (+ "-hex", "(of upper-case)"). */
  form: string;
  /** Offset of the match in the searched text. */
  index: number;
  /** The matched text. */
  match: string;
}

interface FormOf {
  token: string;
  form: string;
}

/**
 * The base64 text of `bytes` wherever they start inside longer data: for each alignment (offset
 * mod 3) the characters that depend only on `bytes`, without the ones shared with the bytes
 * before (1 or 2 bytes of prefix touch 2 or 3 characters) or after (a partial last group).
 */
export function base64Alignments(bytes: Buffer): string[] {
  const out: string[] = [];
  for (let k = 0; k < 3; k++) {
    const text = Buffer.concat([Buffer.alloc(k), bytes])
      .toString("base64")
      .replace(/=+$/, "");
    const skip = k === 0 ? 0 : k + 1;
    const total = k + bytes.length;
    const end = total % 3 === 0 ? text.length : text.length - 1;
    out.push(text.slice(skip, end));
  }
  return out;
}

/**
 * Compiled search for a set of tokens in all their forms. Case-insensitive forms (the token
 * itself, percent-encoding, UTF-16, hex digests) share one regular expression; base64 forms,
 * where case matters, another. Texts are searched as JavaScript strings: bodies as latin1 (one
 * character per byte), so UTF-8 and UTF-16 encodings of the ASCII tokens are found as bytes.
 */
export class CanaryMatcher {
  readonly tokens: readonly string[];
  private readonly insensitive: RegExp | undefined;
  private readonly sensitive: RegExp | undefined;
  private readonly insensitiveForms = new Map<string, FormOf>();
  private readonly sensitiveForms = new Map<string, FormOf>();

  constructor(tokens: readonly string[]) {
    this.tokens = [...new Set(tokens)];
    for (const token of this.tokens) {
      const lower = token.toLowerCase();
      const addCi = (needle: string, form: string) => {
        if (!this.insensitiveForms.has(needle.toLowerCase())) this.insensitiveForms.set(needle.toLowerCase(), { token, form });
      };
      const addCs = (needle: string, form: string) => {
        if (needle.length >= 8 && !this.sensitiveForms.has(needle)) this.sensitiveForms.set(needle, { token, form });
      };
      addCi(token, "plain");
      addCi([...Buffer.from(token, "utf8")].map((b) => `%${b.toString(16).padStart(2, "0")}`).join(""), "url-encoded");
      addCi([...token].join("\0"), "utf-16le");
      for (const variant of new Set([token, lower, token.toUpperCase()])) {
        const of = variant === token ? "" : variant === lower ? " (of lower-case)" : " (of upper-case)";
        for (const algorithm of ["md5", "sha1", "sha256"]) {
          addCi(createHash(algorithm).update(variant, "utf8").digest("hex"), `${algorithm}-hex${of}`);
        }
        for (const b64 of base64Alignments(Buffer.from(variant, "utf8"))) {
          addCs(b64, `base64${of}`);
          addCs(b64.replace(/\+/g, "-").replace(/\//g, "_"), `base64url${of}`);
        }
      }
    }
    const alternation = (keys: Iterable<string>) =>
      [...keys]
        .sort((a, b) => b.length - a.length)
        .map(escapeRegExp)
        .join("|");
    if (this.insensitiveForms.size) this.insensitive = new RegExp(alternation(this.insensitiveForms.keys()), "gi");
    if (this.sensitiveForms.size) this.sensitive = new RegExp(alternation(this.sensitiveForms.keys()), "g");
  }

  get empty(): boolean {
    return this.tokens.length === 0;
  }

  /** Whether any form of any token is in `text` (cheaper than search: stops at the first). */
  test(text: string): boolean {
    for (const re of [this.insensitive, this.sensitive]) {
      if (!re) continue;
      re.lastIndex = 0;
      if (re.test(text)) return true;
    }
    return false;
  }

  /** Every form of every token in `text` (one hit per token and form). */
  search(text: string): CanaryHit[] {
    const hits: CanaryHit[] = [];
    const seen = new Set<string>();
    const run = (re: RegExp | undefined, forms: Map<string, FormOf>, fold: boolean) => {
      if (!re) return;
      re.lastIndex = 0;
      for (let m = re.exec(text); m; m = re.exec(text)) {
        const of = forms.get(fold ? m[0].toLowerCase() : m[0])!;
        const form = of.form === "plain" ? caseForm(m[0], of.token) : of.form;
        const key = `${of.token}\0${form}`;
        if (!seen.has(key)) {
          seen.add(key);
          hits.push({ token: of.token, form, index: m.index, match: m[0] });
        }
      }
    };
    run(this.insensitive, this.insensitiveForms, true);
    run(this.sensitive, this.sensitiveForms, false);
    return hits;
  }
}

function caseForm(matched: string, token: string): string {
  if (matched === token) return "plain";
  if (matched === token.toLowerCase()) return "lower-case";
  if (matched === token.toUpperCase()) return "upper-case";
  return "mixed-case";
}

/** A short, printable excerpt around a match: control bytes shown as `.`. */
export function excerptAround(text: string, index: number, length: number, context = 24): string {
  const start = Math.max(0, index - context);
  const end = Math.min(text.length, index + length + context);
  const printable = text.slice(start, end).replace(/[\u0000-\u001f\u007f-\u009f]/g, ".");
  return `${start > 0 ? "…" : ""}${printable}${end < text.length ? "…" : ""}`;
}
