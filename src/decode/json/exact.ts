/**
 * Exact JSON: JSON.parse, unless the text holds an integer literal too long to be a safe number
 * (then a small parser keeps it as its decimal text). Shared by every JSON decoder.
 */

/** An integer literal outside ±(2^53 − 1), kept as its decimal text. */
export class BigIntLiteral {
  constructor(readonly text: string) {}
}

export type JsonValue = string | number | boolean | null | BigIntLiteral | JsonValue[] | { [key: string]: JsonValue };
export type JsonObject = { [key: string]: JsonValue };

/** A syntax error with the character position in the parsed text. */
export class JsonSyntaxError extends Error {
  constructor(
    message: string,
    readonly position: number,
  ) {
    super(message);
    this.name = "JsonSyntaxError";
  }
}

/** An integer literal of 16+ digits right after `:`, `,` or `[` (may also hit inside a string: then we are merely slower). */
const LONG_INTEGER = /[:,[]\s*-?\d{16}/;
/** Nesting cap of the exact parser (its recursion); flattening applies the smaller DecodeLimits.maxDepth. */
const EXACT_PARSER_MAX_DEPTH = 1000;

/**
 * Parses JSON text like JSON.parse, but integers beyond 2^53 come back as BigIntLiteral. The common
 * case (no 16-digit integer literal in the text) is plain JSON.parse. Throws JsonSyntaxError.
 */
export function parseJsonExact(text: string): JsonValue {
  if (!LONG_INTEGER.test(text)) {
    try {
      return JSON.parse(text) as JsonValue;
    } catch (e) {
      // V8 does not always say where: the exact parser does (error path only, so its cost is fine).
      try {
        new ExactParser(text).parseDocument();
      } catch (located) {
        if (located instanceof JsonSyntaxError) throw located;
      }
      const m = /position (\d+)/.exec((e as Error).message);
      throw new JsonSyntaxError((e as Error).message, m ? Number(m[1]) : 0);
    }
  }
  return new ExactParser(text).parseDocument();
}

const NUMBER = /-?(?:0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/y;
/** A string without escapes or control characters (the common case), as one native match. */
const SIMPLE_STRING = /"[^"\\\u0000-\u001f]*"/y;

class ExactParser {
  private pos = 0;
  constructor(private readonly s: string) {}

  parseDocument(): JsonValue {
    const v = this.value(0);
    this.ws();
    if (this.pos < this.s.length) this.fail("unexpected data after JSON value");
    return v;
  }

  private fail(what: string): never {
    throw new JsonSyntaxError(`${what} in JSON at position ${this.pos}`, this.pos);
  }

  private ws(): void {
    const s = this.s;
    let p = this.pos;
    for (;;) {
      const c = s.charCodeAt(p);
      if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) p++;
      else break;
    }
    this.pos = p;
  }

  private value(depth: number): JsonValue {
    this.ws();
    const c = this.s.charCodeAt(this.pos);
    if (c === 0x7b /* { */) return this.object(depth + 1);
    if (c === 0x5b /* [ */) return this.array(depth + 1);
    if (c === 0x22 /* " */) return this.string();
    if (c === 0x2d || (c >= 0x30 && c <= 0x39)) return this.number();
    if (this.s.startsWith("true", this.pos)) return ((this.pos += 4), true);
    if (this.s.startsWith("false", this.pos)) return ((this.pos += 5), false);
    if (this.s.startsWith("null", this.pos)) return ((this.pos += 4), null);
    return this.fail(this.pos >= this.s.length ? "unexpected end" : "unexpected token");
  }

  private object(depth: number): JsonObject {
    if (depth > EXACT_PARSER_MAX_DEPTH) this.fail("nesting too deep");
    this.pos++;
    const out: JsonObject = {};
    this.ws();
    if (this.s.charCodeAt(this.pos) === 0x7d) return (this.pos++, out);
    for (;;) {
      this.ws();
      if (this.s.charCodeAt(this.pos) !== 0x22) this.fail("expected property name");
      const key = this.string();
      this.ws();
      if (this.s.charCodeAt(this.pos) !== 0x3a) this.fail("expected ':'");
      this.pos++;
      const v = this.value(depth);
      // Like JSON.parse: an own property even for "__proto__"; the last duplicate wins.
      if (key === "__proto__") Object.defineProperty(out, key, { value: v, enumerable: true, writable: true, configurable: true });
      else out[key] = v;
      if (!this.more(0x7d, "expected ',' or '}'")) return out;
    }
  }

  /** After a member: true at `,` (another follows), false at the closing bracket, which it consumes. */
  private more(close: number, expected: string): boolean {
    this.ws();
    const c = this.s.charCodeAt(this.pos);
    if (c !== 0x2c && c !== close) this.fail(expected);
    this.pos++;
    return c === 0x2c;
  }

  private array(depth: number): JsonValue[] {
    if (depth > EXACT_PARSER_MAX_DEPTH) this.fail("nesting too deep");
    this.pos++;
    const out: JsonValue[] = [];
    this.ws();
    if (this.s.charCodeAt(this.pos) === 0x5d) return (this.pos++, out);
    for (;;) {
      out.push(this.value(depth));
      if (!this.more(0x5d, "expected ',' or ']'")) return out;
    }
  }

  private string(): string {
    const s = this.s;
    const start = this.pos;
    SIMPLE_STRING.lastIndex = start;
    if (SIMPLE_STRING.test(s)) {
      this.pos = SIMPLE_STRING.lastIndex;
      return s.slice(start + 1, this.pos - 1);
    }
    let p = start + 1;
    let escaped = false;
    for (;;) {
      if (p >= s.length) {
        this.pos = p;
        this.fail("unterminated string");
      }
      const c = s.charCodeAt(p);
      if (c === 0x22) break;
      if (c < 0x20) {
        this.pos = p;
        this.fail("control character in string");
      }
      if (c === 0x5c) {
        escaped = true;
        p += 2;
      } else p++;
    }
    this.pos = p + 1;
    if (!escaped) return s.slice(start + 1, p);
    try {
      return JSON.parse(s.slice(start, p + 1)) as string;
    } catch {
      this.pos = start;
      return this.fail("bad escape in string");
    }
  }

  private number(): number | BigIntLiteral {
    NUMBER.lastIndex = this.pos;
    const m = NUMBER.exec(this.s);
    if (!m) return this.fail("bad number");
    this.pos += m[0].length;
    const n = Number(m[0]);
    if (m[1] === undefined && m[2] === undefined && !Number.isSafeInteger(n)) return new BigIntLiteral(m[0]);
    return n;
  }
}

/**
 * The byte offset in `buf` (from `start`) of UTF-16 position `position` in `buf.toString("utf8",
 * start, end)`. Walks the bytes as the WHATWG UTF-8 decoder does, so invalid sequences, each
 * decoded to one U+FFFD, map back to the bytes they came from: re-encoding the text would not.
 */
export function utf8ByteOffset(buf: Uint8Array, start: number, end: number, position: number): number {
  let units = 0;
  let i = start;
  while (i < end && units < position) {
    const b = buf[i];
    let need: number;
    let lower = 0x80;
    let upper = 0xbf;
    if (b < 0x80) need = 0;
    else if (b >= 0xc2 && b <= 0xdf) need = 1;
    else if (b >= 0xe0 && b <= 0xef) {
      need = 2;
      if (b === 0xe0) lower = 0xa0;
      if (b === 0xed) upper = 0x9f;
    } else if (b >= 0xf0 && b <= 0xf4) {
      need = 3;
      if (b === 0xf0) lower = 0x90;
      if (b === 0xf4) upper = 0x8f;
    } else {
      // Not a lead byte: one U+FFFD.
      units++;
      i++;
      continue;
    }
    let j = i + 1;
    let got = 0;
    while (got < need && j < end && buf[j] >= lower && buf[j] <= upper) {
      lower = 0x80;
      upper = 0xbf;
      got++;
      j++;
    }
    // A complete sequence is one character (two units above U+FFFF); a cut one is one U+FFFD and
    // the byte that broke it starts over.
    units += got === need && need === 3 ? 2 : 1;
    i = j;
  }
  return i;
}

export const isJsonObject = (v: unknown): v is JsonObject =>
  v !== null && typeof v === "object" && !Array.isArray(v) && !(v instanceof BigIntLiteral);

/** Own property only: JSON keys such as `constructor` or `__proto__` must not reach Object.prototype. */
export function own(o: JsonObject, key: string): JsonValue | undefined {
  return Object.hasOwn(o, key) ? o[key] : undefined;
}

export function asBuffer(body: Uint8Array): Buffer {
  return Buffer.isBuffer(body) ? body : Buffer.from(body.buffer, body.byteOffset, body.byteLength);
}
