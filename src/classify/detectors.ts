/**
 * Value detectors: compiled once from classifiers/detectors/*.yaml, run on string values.
 *
 * Hot path: one pass over the characters computes a bitmask of the punctuation present and counts
 * of digits, letters and spaces (`scan`); each detector's prefilter is a few integer comparisons
 * against that, so most detectors are rejected without running a regex. Identifier shapes (GUID,
 * hash, version, locale, number, date) run first; when one matches the whole value, the content
 * and info detectors are skipped (ids and versions are never content). Results are cached per value.
 */
import { isIPv6 } from "node:net";
import { secretQueryValues } from "../secrets.js";
import type { PersonalKind } from "./types.js";
import type { DetectorDef, DetectorMatchDef } from "./schema.js";

export type DetectorClass = DetectorDef["class"];

// ---------------------------------------------------------------------------------------------
// Character scan

/** The characters a prefilter may name, each one bit. */
const PREFILTER_CHARS = "@\\/:.=,?-+()_%~{}&#!;'\"*[]| \t";
const CHAR_BIT = new Int32Array(128);
for (let i = 0; i < PREFILTER_CHARS.length; i++) CHAR_BIT[PREFILTER_CHARS.charCodeAt(i)] = 1 << i;
// A tab counts as a space for the `' '` bit.
CHAR_BIT[9] |= CHAR_BIT[32];

/** The bitmask of a prefilter string; throws on a character that has no bit. */
export function charMask(chars: string): number {
  let mask = 0;
  for (const ch of chars) {
    const code = ch.charCodeAt(0);
    const bit = code < 128 ? CHAR_BIT[code] : 0;
    if (bit === 0) throw new Error(`prefilter character ${JSON.stringify(ch)} is not one of ${JSON.stringify(PREFILTER_CHARS)}`);
    mask |= bit;
  }
  return mask;
}

/** Values longer than this are scanned and matched on their first MAX_SCAN characters only. */
export const MAX_SCAN = 16_384;

/** What one pass over a value found. Reused: read it right after `scan`. */
export interface Scan {
  length: number;
  mask: number;
  digits: number;
  letters: number;
  spaces: number;
}

const SCAN: Scan = { length: 0, mask: 0, digits: 0, letters: 0, spaces: 0 };

export function scan(s: string): Scan {
  const n = s.length < MAX_SCAN ? s.length : MAX_SCAN;
  let mask = 0;
  let digits = 0;
  let letters = 0;
  let spaces = 0;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c < 128) {
      mask |= CHAR_BIT[c];
      if (c >= 97 ? c <= 122 : c >= 65 ? c <= 90 : false) letters++;
      else if (c >= 48 && c <= 57) digits++;
      else if (c === 32 || c === 9) spaces++;
    } else if (isLetterish(c)) letters++;
  }
  SCAN.length = n;
  SCAN.mask = mask;
  SCAN.digits = digits;
  SCAN.letters = letters;
  SCAN.spaces = spaces;
  return SCAN;
}

/** Non-ASCII code units that are (probably) letters: Latin-1 letters and up, minus punctuation blocks. */
function isLetterish(c: number): boolean {
  if (c < 0xc0) return c === 0xaa || c === 0xb5 || c === 0xba;
  if (c === 0xd7 || c === 0xf7) return false;
  if (c >= 0x2000 && c <= 0x2bff) return false; // general punctuation, symbols, arrows, boxes
  if (c >= 0x3000 && c <= 0x303f) return false; // CJK punctuation
  if (c >= 0xfe30 && c <= 0xfe4f) return false;
  if (c >= 0xff00 && c <= 0xff20) return false;
  return true;
}

// ---------------------------------------------------------------------------------------------
// Compiled detectors

export interface Detector {
  index: number;
  id: string;
  cls: DetectorClass;
  personal: PersonalKind;
  confidence: number;
  why: string;
  source: string;
  file: string;
  skipPaths?: RegExp;
  onlyPaths?: RegExp;
  personalIfPath?: RegExp;
  /** wrapped-text detectors: the printable text the value decodes to, if any. */
  unwrap?(value: string): string | undefined;
  // prefilter
  all: number;
  any: number;
  none: number;
  minLength: number;
  maxLength: number;
  minDigits: number;
  minSpaces: number;
  /** The match itself, on the (possibly truncated) value. */
  test(value: string): boolean;
  explain(): string;
}

type Tester = (value: string) => boolean;

/** Match types of detectors: `type` → compiler. */
export const DETECTOR_MATCH_TYPES: { [K in DetectorMatchDef["type"]]: (def: Extract<DetectorMatchDef, { type: K }>) => Tester } = {
  regex(def) {
    const re = new RegExp(def.pattern, `g${def.flags ?? ""}`);
    const exclude = def.exclude === undefined ? undefined : new RegExp(def.exclude, def.excludeFlags ?? "");
    const digits = def.digits;
    if (!exclude && !digits) {
      const plain = new RegExp(def.pattern, def.flags ?? "");
      return (v) => plain.test(v);
    }
    return (v) => {
      re.lastIndex = 0;
      let m: RegExpExecArray | null;
      while ((m = re.exec(v)) !== null) {
        if (m[0].length === 0) {
          re.lastIndex++;
          continue;
        }
        if (exclude && exclude.test(m[0])) continue;
        if (digits) {
          const d = countDigits(m[0]);
          if (d < digits.min || d > digits.max) continue;
        }
        return true;
      }
      return false;
    };
  },

  ipv6() {
    // Candidates: hex groups and colons, not glued to other word characters; node:net decides.
    const re = /(?<![0-9A-Za-z:.])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![0-9A-Za-z:])/g;
    return (v) => {
      re.lastIndex = 0;
      let m: RegExpExecArray | null;
      while ((m = re.exec(v)) !== null) {
        const c = m[0];
        if (c === "::" || c === "::1" || c.length < 3) continue;
        if (isIPv6(c)) return true;
      }
      return false;
    };
  },

  "url-secret-query"() {
    return (v) => secretQueryValues(v).length > 0;
  },

  "free-text"(def) {
    return (v) => isFreeText(v, def);
  },

  "wrapped-text"(def) {
    return (v) => unwrapText(v, def.minChars) !== undefined;
  },
};

const ALL_DIGITS = /^[0-9]+$/;
const HEX_WRAPPED = /^(?:0[xX])?((?:[0-9A-Fa-f]{2})+)$/;
const BASE64_WRAPPED = /^[A-Za-z0-9+/_-]+={0,2}$/;

/**
 * The text a hex- or base64-wrapped value stands for (DiagTrack's `navigationUrlBytes =
 * 0x647777772E6D736E2E636F6D` is "dwww.msn.com"), when it decodes to at least `minChars` printable
 * characters of valid UTF-8 with a letter among them; otherwise undefined. Random ids and hashes
 * decode to bytes that are not all printable, so they stay what they are.
 */
export function unwrapText(v: string, minChars: number): string | undefined {
  // Digits alone are a number, whatever else they could spell.
  if (ALL_DIGITS.test(v)) return undefined;
  let bytes: Buffer;
  const hex = HEX_WRAPPED.exec(v);
  if (hex) bytes = Buffer.from(hex[1], "hex");
  else if (v.length >= 12 && BASE64_WRAPPED.test(v) && v.length % 4 !== 1)
    bytes = Buffer.from(v, v.includes("-") || v.includes("_") ? "base64url" : "base64");
  else return undefined;
  if (bytes.length < minChars) return undefined;
  let letters = 0;
  for (const b of bytes) {
    // Printable ASCII, tab/CR/LF, or UTF-8 multi-byte units (checked as a whole below).
    if (b < 0x20 ? b !== 9 && b !== 10 && b !== 13 : b === 0x7f) return undefined;
    if ((b >= 65 && b <= 90) || (b >= 97 && b <= 122)) letters++;
  }
  if (letters === 0) return undefined;
  const text = bytes.toString("utf8");
  return text.includes("\ufffd") ? undefined : text;
}

function countDigits(s: string): number {
  let d = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 48 && c <= 57) d++;
  }
  return d;
}

/**
 * Several words, mostly letters and spaces, enough of them starting in lower case (so Title Case
 * product names and lists of place names do not count), and words of ordinary length.
 */
export function isFreeText(
  v: string,
  p: { minWords: number; minLetterRatio: number; minLowercaseWordRatio: number; maxAvgWordLength: number },
): boolean {
  const n = v.length < MAX_SCAN ? v.length : MAX_SCAN;
  let letters = 0;
  let spaces = 0;
  let words = 0;
  let lowerWords = 0;
  let inWord = false;
  for (let i = 0; i < n; i++) {
    const c = v.charCodeAt(i);
    const isLetter = c < 128 ? (c >= 97 && c <= 122) || (c >= 65 && c <= 90) : isLetterish(c);
    if (isLetter) {
      letters++;
      if (!inWord) {
        inWord = true;
        words++;
        if ((c >= 97 && c <= 122) || (c >= 0xdf && c <= 0xff && c !== 0xf7)) lowerWords++;
      }
    } else {
      inWord = false;
      if (c === 32 || c === 9 || c === 10 || c === 13) spaces++;
    }
  }
  if (words < p.minWords) return false;
  if ((letters + spaces) / n < p.minLetterRatio) return false;
  if (lowerWords / words < p.minLowercaseWordRatio) return false;
  return letters / words <= p.maxAvgWordLength;
}

// ---------------------------------------------------------------------------------------------
// Detection of one value

/** The detectors that fired on a value. Interned: equal hit sets share one object. */
export interface Detection {
  hits: readonly Detector[];
}

export const NO_DETECTION: Detection = Object.freeze({ hits: Object.freeze([]) });

/** Values longer than this are not cached (they rarely repeat and would pin memory). */
const CACHE_VALUE_MAX = 512;
/**
 * Entries per generation of the cache (two generations are kept). Values that repeat (versions,
 * enums, device and session ids) are found in a small table; a large one (200,000 entries before)
 * only grew with values seen once (sequence numbers, times, generated ids), and looking up and
 * inserting into a table of that size missed the processor's caches: about 5 % of an import's CPU
 * (docs/performance.md, sixth round of the import).
 */
export const CACHE_GENERATION_ENTRIES = 16_384;

export class DetectorSet {
  readonly detectors: readonly Detector[];
  private readonly identifiers: readonly Detector[];
  private readonly others: readonly Detector[];
  /** Detections by value: the current generation, and the one before it (dropped when the current fills). */
  private cache = new Map<string, Detection>();
  private previous = new Map<string, Detection>();
  private readonly interned = new Map<string, Detection>();
  /** Shortest length any detector accepts: shorter values are not looked at. */
  readonly minLength: number;

  constructor(detectors: Detector[]) {
    this.detectors = detectors;
    this.identifiers = detectors.filter((d) => d.cls === "identifier");
    // personal first, then secret, content, info: the order reasons are listed in.
    const order: Record<DetectorClass, number> = { identifier: 0, personal: 1, secret: 2, content: 3, info: 4 };
    this.others = detectors.filter((d) => d.cls !== "identifier").sort((a, b) => order[a.cls] - order[b.cls] || a.index - b.index);
    this.minLength = Math.max(3, Math.min(...detectors.map((d) => d.minLength)));
  }

  /** Detectors firing on a string value (cached). */
  detect(value: string): Detection {
    if (value.length < this.minLength) return NO_DETECTION;
    if (value.length > CACHE_VALUE_MAX) return this.run(value);
    const hit = this.cache.get(value);
    if (hit !== undefined) return hit;
    // Found in the generation before: moved into the current one, so a value seen once per generation stays.
    const result = this.previous.get(value) ?? this.run(value);
    if (this.cache.size >= CACHE_GENERATION_ENTRIES) {
      this.previous = this.cache;
      this.cache = new Map();
    }
    this.cache.set(value, result);
    return result;
  }

  /** Union of the detections of the string elements of an array (nested arrays flattened, bounded). */
  detectArray(values: readonly unknown[]): Detection {
    const seen: Detector[] = [];
    let budget = 64;
    const walk = (arr: readonly unknown[], depth: number): void => {
      for (const v of arr) {
        if (budget <= 0) return;
        if (typeof v === "string") {
          budget--;
          for (const d of this.detect(v).hits) if (!seen.includes(d)) seen.push(d);
        } else if (Array.isArray(v) && depth < 4) walk(v, depth + 1);
      }
    };
    walk(values, 0);
    if (seen.length === 0) return NO_DETECTION;
    seen.sort((a, b) => this.detectors.indexOf(a) - this.detectors.indexOf(b));
    return this.intern(seen);
  }

  /** The detection for a value the wire already typed as a GUID. */
  guidDetection(): Detection {
    const guid = this.detectors.find((d) => d.id === "detector.guid");
    return guid ? this.intern([guid]) : NO_DETECTION;
  }

  private run(value: string, depth = 0): Detection {
    const s = value.length > MAX_SCAN ? value.slice(0, MAX_SCAN) : value;
    const sc = scan(s);
    let hits: Detector[] | undefined;
    let identifier = false;
    for (const d of this.identifiers) {
      if (passes(d, sc) && d.test(s)) {
        (hits ??= []).push(d);
        identifier = true;
        break;
      }
    }
    let inner: string | undefined;
    for (const d of this.others) {
      // A wrapped text is looked at whatever shape the wrapping has (hex looks like a hash).
      if (identifier && d.cls !== "personal" && d.unwrap === undefined) continue;
      if (!passes(d, sc)) continue;
      if (d.unwrap !== undefined) {
        // The text is decoded once: it is both the match and what the detectors look at next.
        const text = d.unwrap(s);
        if (text === undefined) continue;
        (hits ??= []).push(d);
        inner ??= text;
      } else if (d.test(s)) (hits ??= []).push(d);
    }
    if (inner !== undefined && depth < 2) {
      // What the wrapped text is (a URL, a path, an e-mail address) counts for the field; the raw value is kept.
      for (const d of this.run(inner, depth + 1).hits) if (!hits!.includes(d) && d.cls !== "identifier") hits!.push(d);
    }
    return hits === undefined ? NO_DETECTION : this.intern(hits);
  }

  private intern(hits: Detector[]): Detection {
    const key = hits.map((h) => h.index).join(",");
    let d = this.interned.get(key);
    if (d === undefined) {
      d = Object.freeze({ hits: Object.freeze(hits.slice()) });
      this.interned.set(key, d);
    }
    return d;
  }
}

function passes(d: Detector, sc: Scan): boolean {
  return (
    sc.length >= d.minLength &&
    sc.length <= d.maxLength &&
    (sc.mask & d.all) === d.all &&
    (d.any === 0 || (sc.mask & d.any) !== 0) &&
    (sc.mask & d.none) === 0 &&
    sc.digits >= d.minDigits &&
    sc.spaces >= d.minSpaces
  );
}

/** Compiles one validated definition; throws (plain Error) on a bad regex or prefilter character. */
export function compileDetector(def: DetectorDef, index: number, file: string, packSource: string): Detector {
  const p = def.prefilter;
  const test = (DETECTOR_MATCH_TYPES[def.match.type] as (m: DetectorMatchDef) => Tester)(def.match);
  const source = def.source ?? packSource;
  return {
    index,
    id: def.id,
    cls: def.class,
    personal: def.personal,
    confidence: def.confidence,
    why: def.why,
    source,
    file,
    skipPaths: def.skipPaths === undefined ? undefined : new RegExp(def.skipPaths, "i"),
    onlyPaths: def.onlyPaths === undefined ? undefined : new RegExp(def.onlyPaths, "i"),
    unwrap:
      def.match.type === "wrapped-text"
        ? (
            (m) => (v: string) =>
              unwrapText(v, m.minChars)
          )(def.match)
        : undefined,
    personalIfPath: def.personalIfPath === undefined ? undefined : new RegExp(def.personalIfPath, "i"),
    all: p.all ? charMask(p.all) : 0,
    any: p.any ? charMask(p.any) : 0,
    none: p.none ? charMask(p.none) : 0,
    minLength: p.minLength ?? 0,
    maxLength: p.maxLength ?? Number.MAX_SAFE_INTEGER,
    minDigits: p.minDigits ?? 0,
    minSpaces: p.minSpaces ?? 0,
    test,
    explain: () => `${def.id} (${def.class}${def.personal !== "none" ? `, ${def.personal}` : ""}): ${def.why} [${source}]`,
  };
}
