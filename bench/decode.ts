/**
 * Decode throughput (events/s on this one thread) for batches of 100 events × 40 fields, Bond
 * Common Schema and 1DS JSON lines, through the same entry point the pipeline uses; and a
 * mutation run over every decoder (default 100,000 bodies each) counting escapes and slow cases.
 */
import { performance } from "node:perf_hooks";
import { gzipSync, deflateRawSync } from "node:zlib";
import { DECODERS, decodeUpload } from "../src/decode/registry.js";
import { DEFAULT_DECODE_LIMITS, DecodeError, type DecodeContext } from "../src/decode/types.js";
import { encodeAriaRequest, makeCsBatch, mutate, type Mutation } from "../test/helpers/bond-writer.js";
import { makeJsonLinesBatch, prng } from "../test/helpers/json-events.js";
import { round } from "./load.js";

interface Throughput {
  events: number;
  seconds: number;
  eventsPerSec: number;
  mbPerSec: number;
}

function measure(body: Uint8Array, headers: Array<[string, string]>, path: string, ms: number): Throughput {
  // Warm up the JIT, then measure whole batches for `ms`.
  for (let i = 0; i < 50; i++) decodeUpload({ method: "POST", path, headers, body });
  let events = 0;
  let bytes = 0;
  const start = performance.now();
  let now = start;
  while (now - start < ms) {
    const r = decodeUpload({ method: "POST", path, headers, body });
    events += r.events.length;
    bytes += body.length;
    now = performance.now();
  }
  const seconds = (now - start) / 1000;
  return { events, seconds: round(seconds), eventsPerSec: Math.round(events / seconds), mbPerSec: round(bytes / seconds / 1e6, 1) };
}

/** Part C properties that, with the envelope and Part A, make events of 40 fields (the target's workload). */
const PART_C_FOR_40 = { bond: 17, json: 19 };

export function decodeThroughput(ms = 3000): Record<string, Throughput & { fieldsPerEvent: number }> {
  const fieldsOf = (body: Uint8Array, headers: Array<[string, string]>) => {
    const r = decodeUpload({ method: "POST", path: "/OneCollector/1.0/", headers, body });
    return Math.round(r.events.reduce((n, e) => n + e.fields.length, 0) / Math.max(1, r.events.length));
  };
  const bondHeaders: Array<[string, string]> = [["Content-Type", "application/bond-compact-binary"]];
  const jsonHeaders: Array<[string, string]> = [["Content-Type", "application/x-json-stream"]];
  const run = (body: Uint8Array, headers: Array<[string, string]>, plainHeaders = headers, plain = body) => ({
    ...measure(body, headers, "/OneCollector/1.0/", ms),
    fieldsPerEvent: fieldsOf(plain, plainHeaders),
  });
  // Batches of 100 events × 40 fields: the workload of the target (≥ 100,000 events/s).
  const bond = makeCsBatch(100, PART_C_FOR_40.bond);
  const json = makeJsonLinesBatch(100, PART_C_FOR_40.json);
  // Heavier events: 40 Part C properties plus envelope and Part A (~60 fields).
  const bondHeavy = makeCsBatch(100, 40);
  const jsonHeavy = makeJsonLinesBatch(100, 40);
  return {
    bond: run(bond, bondHeaders),
    bondRawDeflate: run(deflateRawSync(bond), [...bondHeaders, ["Content-Encoding", "deflate"]], bondHeaders, bond),
    json: run(json, jsonHeaders),
    jsonGzip: run(gzipSync(json), [...jsonHeaders, ["Content-Encoding", "gzip"]], jsonHeaders, json),
    bondHeavy: run(bondHeavy, bondHeaders),
    jsonHeavy: run(jsonHeavy, jsonHeaders),
  };
}

/**
 * 1–8 random mutations of one kind (truncate, flip bits, set bytes, insert junk), drawn from `rnd`
 * so a failing run can be replayed from its seed.
 */
function randomMutations(rnd: () => number, size: number): Mutation[] {
  const at = () => Math.floor(rnd() * size);
  const byte = () => Math.floor(rnd() * 256);
  const kind = Math.floor(rnd() * 4);
  if (kind === 0) return [{ kind: "truncate", at: at() }];
  if (kind === 3) return [{ kind: "insert", at: at(), bytes: Uint8Array.from({ length: 1 + Math.floor(rnd() * 16) }, byte) }];
  const muts: Mutation[] = [];
  const n = 1 + Math.floor(rnd() * 8);
  for (let i = 0; i < n; i++)
    muts.push(kind === 1 ? { kind: "flip", at: at(), bit: Math.floor(rnd() * 8) } : { kind: "set", at: at(), byte: byte() });
  return muts;
}

export function fuzzDecoders(
  runs = 100_000,
): Record<string, { runs: number; decodeErrors: number; escapes: number; slowestMs: number; firstEscape?: string }> {
  const seeds: Record<string, Uint8Array> = {
    "onecollector-bond": makeCsBatch(3, 20),
    "aria-collector": encodeAriaRequest([{ token: "t1", records: [{ eventType: "a" }] }]),
    "onecollector-json": makeJsonLinesBatch(3, 20),
  };
  const results: ReturnType<typeof fuzzDecoders> = {};
  for (const decoder of DECODERS) {
    const seed = seeds[decoder.id] ?? new TextEncoder().encode('{"a":[1,2,{"b":"c"}],"d":"e=f&g=h"}');
    const ctx: DecodeContext = {
      method: "POST",
      path: "/",
      query: new URLSearchParams(),
      contentType: decoder.contentTypes?.[0] ?? "",
      headers: [["Content-Type", `${decoder.contentTypes?.[0] ?? ""}; boundary=xyz`]],
      limits: DEFAULT_DECODE_LIMITS,
    };
    const rnd = prng(0xe1ab5 ^ decoder.id.length);
    const r = { runs, decodeErrors: 0, escapes: 0, slowestMs: 0, firstEscape: undefined as string | undefined };
    for (let i = 0; i < runs; i++) {
      const body = mutate(seed, randomMutations(rnd, seed.length));
      const t0 = performance.now();
      try {
        decoder.decode(body, ctx);
      } catch (e) {
        if (e instanceof DecodeError) r.decodeErrors++;
        else {
          r.escapes++;
          r.firstEscape ??= `${(e as Error).name}: ${(e as Error).message} (run ${i})`;
        }
      }
      r.slowestMs = Math.max(r.slowestMs, performance.now() - t0);
    }
    r.slowestMs = round(r.slowestMs);
    results[decoder.id] = r;
  }
  return results;
}
