/**
 * The elements of one array inside a JSON document (HAR's `log.entries`), parsed one at a time
 * from a byte stream. A byte scanner finds where each element starts and ends (strings are
 * skipped with `indexOf`, not byte by byte) and hands its bytes to `JSON.parse`, which validates
 * them and builds the value in native code: no token stream, no per-token objects (stream-json's
 * token stream was a third of an import's time). What the scanner holds at once is bounded: one
 * string longer than jsonStringLimit(maxBody), or one element of more than jsonItemLimit(maxBody)
 * bytes, ends the import while it is still coming in (strings and elements are counted in bytes
 * as written, an escape sequence as one character).
 */
import type { Readable } from "node:stream";
import { jsonItemLimit, jsonStringLimit, tooLarge } from "./limits.js";

/** Containers nested deeper than this are refused (the scanner keeps one entry per level): HAR needs seven. */
const MAX_DEPTH = 1024;
/** Keys longer than this are never one of the path's names, so they are not gathered. */
const MAX_KEY_BYTES = 1024;

const QUOTE = 0x22;
const BACKSLASH = 0x5c;

/**
 * Parsed elements of the array at `path` (object keys from the root: ["log", "entries"]; [] for
 * a top-level array), in order. Throws an Error for input that is not JSON (the caller words
 * it), with `missing` as its message when the document has no array at `path`, and
 * EXH_IMPORT_FORMAT (tooLarge) past the bounds.
 */
export async function* jsonArrayItems(
  input: Readable,
  path: readonly string[],
  maxBody: number,
  file: string,
  missing?: string,
): AsyncGenerator<unknown> {
  const maxChars = jsonStringLimit(maxBody);
  const maxItem = jsonItemLimit(maxBody);
  // Containers open (true: array), and how many of the outermost lie on `path`.
  const arrays: boolean[] = [];
  let pathDepth = 0;
  /** Depth of the array whose elements are wanted, 0 while outside it. */
  let itemsDepth = 0;
  /** The last key of the object at pathDepth (only kept while that object is on the path). */
  let key: string | undefined;
  let expectKey = false;
  // Inside a string: its length so far, an escape in progress (-1: after the backslash; n > 0:
  // hex digits of \uXXXX still to skip), and the key's raw bytes when it is one worth reading.
  let inString = false;
  let chars = 0;
  let escape = 0;
  let keyParts: Buffer[] | undefined;
  let keyBytes = 0;
  // The element being gathered: its bytes in earlier chunks, and where it starts in this one.
  let item = false;
  let itemParts: Buffer[] = [];
  let itemBytes = 0;
  let itemStart = 0;
  let count = 0;
  let found = false;

  const stringTooLong = () => tooLarge(file, `a JSON string is longer than ${maxChars} characters`, maxBody);
  const itemTooLarge = () => tooLarge(file, `one item holds more than ${maxItem} bytes of JSON`, maxBody);

  for await (const chunk of input as AsyncIterable<Buffer>) {
    const buf = chunk;
    const n = buf.length;
    let nextQuote = -1;
    let nextBackslash = -1;
    let keyStart = 0;
    let i = 0;
    while (i < n) {
      if (inString) {
        if (escape !== 0) {
          escape = escape === -1 ? (buf[i] === 0x75 ? 4 : 0) : escape - 1;
          i++;
          continue;
        }
        if (nextQuote < i) nextQuote = buf.indexOf(QUOTE, i);
        if (nextQuote === -1) nextQuote = n;
        if (nextBackslash < i && nextBackslash !== n) nextBackslash = buf.indexOf(BACKSLASH, i);
        if (nextBackslash === -1) nextBackslash = n;
        const end = nextQuote < nextBackslash ? nextQuote : nextBackslash;
        chars += end - i;
        if (end < n && end === nextBackslash) {
          chars++;
          escape = -1;
        }
        if (chars > maxChars) throw stringTooLong();
        if (end === nextQuote && end < n) {
          inString = false;
          if (keyParts) {
            keyParts.push(buf.subarray(keyStart, end));
            key = readKey(keyParts, keyBytes + end - keyStart);
            keyParts = undefined;
          }
        }
        i = end + 1;
        if (end === n) i = n;
        continue;
      }
      const c = buf[i];
      const depth = arrays.length;
      if (depth === itemsDepth && itemsDepth !== 0) {
        // Between or at the end of the wanted array's elements.
        if (c === 0x2c || c === 0x5d) {
          if (item) {
            yield parseItem(itemParts, buf.subarray(itemStart, i), ++count);
            item = false;
            itemParts = [];
            itemBytes = 0;
          }
          if (c === 0x5d) {
            arrays.pop();
            if (pathDepth > arrays.length) pathDepth = arrays.length;
            itemsDepth = 0;
          }
          i++;
          continue;
        }
        if (!item && !isSpace(c)) {
          item = true;
          itemStart = i;
        }
      }
      switch (c) {
        case QUOTE:
          inString = true;
          chars = 0;
          if (expectKey) {
            expectKey = false;
            if (depth === pathDepth && depth <= path.length && itemsDepth === 0) {
              key = undefined;
              keyParts = [];
              keyBytes = 0;
              keyStart = i + 1;
            }
          }
          break;
        case 0x7b: // {
        case 0x5b: {
          // [
          if (depth >= MAX_DEPTH) throw new Error(`containers nested more than ${MAX_DEPTH} deep`);
          const isArray = c === 0x5b;
          if (!item && pathDepth === depth && (depth === 0 || (!arrays[depth - 1] && depth - 1 < path.length && key === path[depth - 1]))) {
            pathDepth = depth + 1;
            if (isArray && depth === path.length) {
              itemsDepth = depth + 1;
              found = true;
            }
          }
          arrays.push(isArray);
          expectKey = !isArray;
          break;
        }
        case 0x7d: // }
        case 0x5d: // ]
          if (depth === 0) throw new Error(`unexpected "${String.fromCharCode(c)}"`);
          arrays.pop();
          if (pathDepth > depth - 1) pathDepth = depth - 1;
          expectKey = false;
          break;
        case 0x2c: // ,
          expectKey = depth > 0 && !arrays[depth - 1];
          break;
      }
      i++;
      if (item && i - itemStart + itemBytes > maxItem) throw itemTooLarge();
    }
    // The chunk ends inside a key or an element: keep their bytes so far.
    if (keyParts) {
      const part = buf.subarray(keyStart);
      keyBytes += part.length;
      if (keyBytes > MAX_KEY_BYTES) keyParts = undefined;
      else keyParts.push(part);
    }
    if (item) {
      const part = buf.subarray(itemStart);
      itemBytes += part.length;
      if (itemBytes > maxItem) throw itemTooLarge();
      itemParts.push(part);
      itemStart = 0;
    }
  }
  if (inString || arrays.length > 0 || item) throw new Error("unexpected end of the file");
  if (!found && missing !== undefined) throw new Error(missing);
}

function isSpace(c: number): boolean {
  return c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;
}

function readKey(parts: Buffer[], bytes: number): string | undefined {
  if (bytes > MAX_KEY_BYTES) return undefined;
  try {
    return JSON.parse(`"${Buffer.concat(parts).toString("utf8")}"`) as string;
  } catch {
    return undefined;
  }
}

/** One element's bytes parsed; a JSON error names the element (its source text left out). */
function parseItem(parts: Buffer[], tail: Buffer, n: number): unknown {
  const bytes = parts.length ? Buffer.concat([...parts, tail]) : tail;
  try {
    return JSON.parse(bytes.toString("utf8"));
  } catch (e) {
    const message = (e as Error).message.replace(/\s+/g, " ").replace(/, ".*" is not valid JSON$/, " (not valid JSON)");
    throw new Error(`element ${n}: ${message}`, { cause: e });
  }
}
