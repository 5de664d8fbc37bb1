/**
 * Decode throughput (events/s on this one thread) for batches of 100 events × 40 fields, Bond
 * Common Schema and 1DS JSON lines, through the same entry point the pipeline uses; and a
 * mutation run over every decoder (default 100,000 bodies each) counting escapes and slow cases.
 */
import { performance } from "node:perf_hooks";
import { gzipSync, deflateRawSync } from "node:zlib";
import { DECODERS, decodeUpload } from "../src/decode/registry.js";
import { DEFAULT_DECODE_LIMITS, DecodeError, type DecodeContext } from "../src/decode/types.js";
import { encodeAriaRequest, makeCsBatch } from "../test/helpers/bond-writer.js";
import { makeJsonLinesBatch } from "../test/helpers/json-events.js";
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

export function decodeThroughput(ms = 3000): Record<string, Throughput & { fieldsPerEvent: number }> {
  const bond = makeCsBatch(100, 40);
  const json = makeJsonLinesBatch(100, 40);
  const fieldsOf = (body: Uint8Array, headers: Array<[string, string]>) => {
    const r = decodeUpload({ method: "POST", path: "/OneCollector/1.0/", headers, body });
    return Math.round(r.events.reduce((n, e) => n + e.fields.length, 0) / Math.max(1, r.events.length));
  };
  const bondHeaders: Array<[string, string]> = [["Content-Type", "application/bond-compact-binary"]];
  const jsonHeaders: Array<[string, string]> = [["Content-Type", "application/x-json-stream"]];
  const deflated = deflateRawSync(bond);
  const gzipped = gzipSync(json);
  return {
    bond: { ...measure(bond, bondHeaders, "/OneCollector/1.0/", ms), fieldsPerEvent: fieldsOf(bond, bondHeaders) },
    bondRawDeflate: {
      ...measure(deflated, [...bondHeaders, ["Content-Encoding", "deflate"]], "/OneCollector/1.0/", ms),
      fieldsPerEvent: fieldsOf(bond, bondHeaders),
    },
    json: { ...measure(json, jsonHeaders, "/OneCollector/1.0/", ms), fieldsPerEvent: fieldsOf(json, jsonHeaders) },
    jsonGzip: {
      ...measure(gzipped, [...jsonHeaders, ["Content-Encoding", "gzip"]], "/OneCollector/1.0/", ms),
      fieldsPerEvent: fieldsOf(json, jsonHeaders),
    },
  };
}

/** A small deterministic PRNG (mulberry32) so a failing case can be replayed from its seed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function mutate(base: Uint8Array, rnd: () => number): Uint8Array {
  const kind = Math.floor(rnd() * 4);
  if (kind === 0) return base.subarray(0, Math.floor(rnd() * base.length));
  const out = Uint8Array.from(base);
  const flips = 1 + Math.floor(rnd() * 8);
  for (let i = 0; i < flips; i++) {
    const at = Math.floor(rnd() * out.length);
    if (kind === 1) out[at] ^= 1 << Math.floor(rnd() * 8);
    else if (kind === 2) out[at] = Math.floor(rnd() * 256);
  }
  if (kind === 3) {
    const at = Math.floor(rnd() * out.length);
    const junk = Uint8Array.from({ length: 1 + Math.floor(rnd() * 16) }, () => Math.floor(rnd() * 256));
    return new Uint8Array([...out.subarray(0, at), ...junk, ...out.subarray(at)]);
  }
  return out;
}

export function fuzzDecoders(runs = 100_000): Record<string, { runs: number; decodeErrors: number; escapes: number; slowestMs: number; firstEscape?: string }> {
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
      const body = mutate(seed, rnd);
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
