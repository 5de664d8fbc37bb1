/**
 * The HAR importer's element scanner (src/import/json-items.ts): the elements of `log.entries`
 * come out equal to JSON.parse's, however the bytes are split into chunks, whatever escapes,
 * multi-byte characters and look-alike keys the document holds; bad or oversized input fails.
 */
import { Readable } from "node:stream";
import { describe, expect, it } from "vitest";
import { isExhaustError } from "../src/errors.js";
import { jsonArrayItems } from "../src/import/json-items.js";

async function items(
  text: string,
  chunkSizes: number[],
  path = ["log", "entries"],
  maxBody = 1024 * 1024,
  missing?: string,
): Promise<unknown[]> {
  const bytes = Buffer.from(text, "utf8");
  const chunks: Buffer[] = [];
  for (let at = 0, k = 0; at < bytes.length; k++) {
    const size = chunkSizes[k % chunkSizes.length];
    chunks.push(bytes.subarray(at, at + size));
    at += size;
  }
  const out: unknown[] = [];
  for await (const v of jsonArrayItems(Readable.from(chunks), path, maxBody, "test.har", missing)) out.push(v);
  return out;
}

const tricky = {
  log: {
    version: "1.2",
    creator: { name: 'a "quoted" \\ name ]}', entries: [1, 2] },
    "entr\\u0069es": ["not this one"],
    pages: [{ entries: ["nor this"] }],
    entries: [
      { request: { url: "https://h.example/\u00e9\u4e2d\ud83d\ude00", headers: [{ name: "x", value: '\\"]},{' }] } },
      "a string element, with [brackets] and {braces}",
      42,
      null,
      [1, [2, [3]]],
      { deep: { deeper: { deepest: ["\u0000\u001f", "\\u0041"] } } },
    ],
  },
};

describe("jsonArrayItems", () => {
  it("yields exactly JSON.parse's elements of log.entries, for every chunking", async () => {
    const expected = tricky.log.entries;
    for (const text of [JSON.stringify(tricky), JSON.stringify(tricky, null, 2)]) {
      for (const sizes of [[1], [2], [3], [7], [64], [1, 5, 2, 11], [1 << 20]]) {
        expect(await items(text, sizes)).toEqual(expected);
      }
    }
  });

  it("takes a top-level array with an empty path, and finds nothing where the path is absent", async () => {
    expect(await items('[1, {"a": [2]}, "x"]', [3], [])).toEqual([1, { a: [2] }, "x"]);
    expect(await items('{"name": "not a har", "entries": [1]}', [4])).toEqual([]);
    expect(await items('[{"log": {"entries": [1]}}]', [4])).toEqual([]);
    expect(await items('{"log": {"entries": []}}', [4])).toEqual([]);
    // A byte-order mark before the document is passed over; a caller can require the array.
    expect(await items('\ufeff[{"Name": "E"}]', [2], [], 1024, "no array")).toEqual([{ Name: "E" }]);
    await expect(items('{"Name": "E"}', [2], [], 1024, "no array")).rejects.toThrow(/^no array$/);
  });

  it("fails on an element that is not JSON, on a truncated file, and on strings or elements past the limits", async () => {
    await expect(items('{"log": {"entries": [{"a": }]}}', [5])).rejects.toThrow(/element 1: /);
    await expect(items('{"log": {"entries": [{"request":', [5])).rejects.toThrow(/unexpected end of the file/);
    const long = JSON.stringify({ log: { entries: [{ text: "q".repeat(300_000) }] } });
    const e1 = await items(long, [4096], ["log", "entries"], 100_000).catch((e: unknown) => e);
    expect(isExhaustError(e1) && e1.message).toMatch(/a JSON string is longer than \d+ characters/);
    // Escapes count as one character each: this string is 150,000 characters in 300,000 bytes.
    expect(await items(JSON.stringify({ log: { entries: ['"'.repeat(150_000)] } }), [4096], ["log", "entries"], 120_000)).toHaveLength(1);
    await expect(items(`{"log": {"entries": [${"[".repeat(5000)}`, [4096])).rejects.toThrow(/nested more than 1024 deep/);
    const many = JSON.stringify({
      log: { entries: [{ headers: Array.from({ length: 50_000 }, (_, i) => ({ name: `x-h${i}`, value: "v" })) }] },
    });
    const e2 = await items(many, [4096], ["log", "entries"], 100_000).catch((e: unknown) => e);
    expect(isExhaustError(e2) && e2.message).toMatch(/one item holds more than 1448576 bytes of JSON/);
  });
});
