/**
 * The robustness harness of the decoder tests: FUZZ_RUNS mutated copies of seed bodies go through
 * a decoder, and a result or a DecodeError are the only acceptable outcomes. Anything else thrown,
 * a malformed result, an error offset outside the body or a decode slower than a second fails the
 * property, and fast-check reports the body that did it.
 */
import fc from "fast-check";
import { DecodeError, type DecodeContext, type DecodeResult, type Decoder, type FieldType } from "../../src/decode/types.js";
import { mutate, type Mutation } from "./bond-writer.js";

/** Bodies per property; EXHAUST_FUZZ_RUNS overrides the default. */
export const FUZZ_RUNS = Math.max(1, Number(process.env.EXHAUST_FUZZ_RUNS) || 10_000);

/** A test timeout that grows with FUZZ_RUNS. */
export const FUZZ_TIMEOUT_MS = Math.max(20_000, FUZZ_RUNS * 3);

/** One decode may take this long; a slower one is a hang in the making. */
const MAX_DECODE_MS = 1000;

/** Binary bodies (Bond): one to six changes, each any bit or byte, a short insert or delete, or a truncation. */
export const binaryMutations: fc.Arbitrary<Mutation[]> = fc.array(
  fc.oneof(
    fc.record({ kind: fc.constant("flip" as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
    fc.record({ kind: fc.constant("set" as const), at: fc.nat(), byte: fc.integer({ min: 0, max: 255 }) }),
    fc.record({ kind: fc.constant("insert" as const), at: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 8 }) }),
    fc.record({ kind: fc.constant("delete" as const), at: fc.nat(), len: fc.integer({ min: 1, max: 8 }) }),
    fc.record({ kind: fc.constant("truncate" as const), at: fc.nat() }),
  ),
  { minLength: 1, maxLength: 6 },
);

/** Bytes that mean something in JSON text (structure, quotes, escapes, digits, line breaks) or break UTF-8. */
const JSON_BYTES = [0x00, 0x0a, 0x0d, 0x22, 0x2c, 0x2d, 0x30, 0x31, 0x39, 0x3a, 0x5b, 0x5c, 0x5d, 0x7b, 0x7d, 0xff, 0x80];
const positions = fc.array(fc.nat(), { minLength: 1, maxLength: 8 });

/**
 * Text bodies (JSON, forms, multipart) and compressed streams: one kind of change per body, a
 * truncation, one bit flipped or one JSON-significant byte set at up to eight places, an insert of
 * up to 16 or a delete of up to 64 bytes, or a body of random bytes instead.
 */
export const textMutations: fc.Arbitrary<Mutation[]> = fc.oneof(
  fc.nat().map((at): Mutation[] => [{ kind: "truncate", at }]),
  fc.tuple(positions, fc.integer({ min: 0, max: 7 })).map(([ats, bit]) => ats.map((at): Mutation => ({ kind: "flip", at, bit }))),
  fc.tuple(positions, fc.constantFrom(...JSON_BYTES)).map(([ats, byte]) => ats.map((at): Mutation => ({ kind: "set", at, byte }))),
  fc.tuple(fc.nat(), fc.uint8Array({ minLength: 1, maxLength: 16 })).map(([at, bytes]): Mutation[] => [{ kind: "insert", at, bytes }]),
  fc.tuple(fc.nat(), fc.integer({ min: 1, max: 64 })).map(([at, len]): Mutation[] => [{ kind: "delete", at, len }]),
  fc.uint8Array({ maxLength: 64 }).map((bytes): Mutation[] => [{ kind: "replace", bytes }]),
);

export interface FuzzOptions {
  /** How bodies are varied: binaryMutations unless given. */
  mutations?: fc.Arbitrary<Mutation[]>;
  /** Also run on every body: must give a score in 0..1 and never throw. */
  sniff?: (body: Uint8Array) => number;
  /** fast-check settings besides numRuns: a fixed seed, endOnFailure. */
  params?: fc.Parameters<[number, Mutation[]]>;
}

/**
 * Feeds FUZZ_RUNS mutated seed bodies to `decode`. Returns how many ended in a DecodeError, so a
 * test can make sure the mutations reached the error paths at all.
 */
export function fuzzDecode(seeds: Uint8Array[], decode: (body: Uint8Array) => unknown, opts: FuzzOptions = {}): { decodeErrors: number } {
  return runFuzz(seeds, decode, opts);
}

/** fuzzDecode for a Decoder: its sniff runs on every body too, and every result must be well-formed. */
export function fuzzDecoder(decoder: Decoder, ctx: DecodeContext, seeds: Uint8Array[], opts: FuzzOptions = {}): { decodeErrors: number } {
  return runFuzz(seeds, (body) => decoder.decode(body, ctx), { sniff: decoder.sniff?.bind(decoder), ...opts }, checkDecodeResult);
}

/** `check` (throwing when a result is wrong) sees what `decode` returned and the partial result of a DecodeError. */
function runFuzz<R>(
  seeds: Uint8Array[],
  decode: (body: Uint8Array) => R,
  opts: FuzzOptions,
  check?: (result: R | DecodeResult, size: number) => void,
): { decodeErrors: number } {
  let decodeErrors = 0;
  fc.assert(
    fc.property(fc.nat({ max: seeds.length - 1 }), opts.mutations ?? binaryMutations, (which, muts) => {
      const body = mutate(seeds[which], muts);
      if (opts.sniff) {
        const score = opts.sniff(body);
        if (!(score >= 0 && score <= 1)) throw new Error(`sniff score ${score} outside 0..1`);
      }
      const t0 = performance.now();
      try {
        const result = decode(body);
        check?.(result, body.length);
      } catch (e) {
        if (!(e instanceof DecodeError)) throw e;
        decodeErrors++;
        if (!(e.offset >= 0 && e.offset <= body.length)) throw new Error(`offset ${e.offset} outside 0..${body.length}`);
        check?.(e.partial, body.length);
      }
      const ms = performance.now() - t0;
      if (ms > MAX_DECODE_MS) throw new Error(`decode took ${Math.round(ms)} ms`);
    }),
    { ...opts.params, numRuns: FUZZ_RUNS },
  );
  return { decodeErrors };
}

/** A decoder's sniff on short arbitrary byte strings: a score in 0..1, never a throw. */
export function fuzzSniff(decoder: Decoder): void {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 16 }), (b) => {
      const s = decoder.sniff!(b);
      return s >= 0 && s <= 1;
    }),
    { numRuns: 2000 },
  );
}

const FIELD_TYPES: ReadonlySet<FieldType> = new Set<FieldType>([
  "string",
  "bool",
  "int32",
  "uint32",
  "int64",
  "uint64",
  "double",
  "datetime",
  "guid",
  "null",
  "array",
  "bytes",
]);

/** What a decode result must be, whatever the body: events of the right shape inside the body, and plain JSON. */
function checkDecodeResult(r: DecodeResult, size: number): void {
  for (const ev of r.events) {
    if (typeof ev.name !== "string" || !Array.isArray(ev.fields)) throw new Error("bad event shape");
    if (ev.byteRange && (ev.byteRange[0] < 0 || ev.byteRange[1] > size)) throw new Error("byteRange out of the body");
    for (const f of ev.fields) if (!FIELD_TYPES.has(f.type)) throw new Error(`bad field type ${f.type}`);
  }
  JSON.stringify(r); // no bigint or cycles escape
}
