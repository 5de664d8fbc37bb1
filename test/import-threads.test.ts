/**
 * `exhaust import` decodes and classifies on separate threads (EXHAUST_IMPORT_THREADS, default the
 * cores but one) while its own thread parses, stores the capture rows and writes the events in
 * order. The result must be the one the import thread gives alone (EXHAUST_IMPORT_THREADS=0): the
 * same exchanges chained in file order, the same events, fields and classes, every exchange decoded.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createHash } from "node:crypto";
import { rmSync } from "node:fs";
import { join } from "node:path";
import { CHAIN_GENESIS } from "../src/store/chain.js";
import { openDatabase } from "../src/store/database.js";
import { rowChainHash, type ChainedRow } from "./helpers/chain.js";
import { runCli } from "./helpers/cli.js";
import { generateHar } from "./helpers/har.js";
import { tempDir } from "./helpers/proxy.js";

let dir: string;
beforeAll(() => {
  dir = tempDir("exhaust-import-threads-");
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** About 140 uploads of 10 events (test/helpers/har.ts, the import bench's generator). */
const HAR_BYTES = 2 * 1024 * 1024;

function importWith(threads: string, har: string, db: string): { exchanges: number; events: number } {
  const before = process.env.EXHAUST_IMPORT_THREADS;
  process.env.EXHAUST_IMPORT_THREADS = threads;
  try {
    const r = runCli(["import", har, "--db", db, "--session", "s", "--json"], undefined, 120_000);
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
    return JSON.parse(r.stdout.trim()) as { exchanges: number; events: number };
  } finally {
    if (before === undefined) delete process.env.EXHAUST_IMPORT_THREADS;
    else process.env.EXHAUST_IMPORT_THREADS = before;
  }
}

/** What the import stored, without the random exchange ids: a digest and the counts behind it. */
function snapshot(file: string): { digest: string; exchanges: number; decoded: number; fields: number; chainOk: boolean } {
  const db = openDatabase(file, { readonly: true });
  try {
    const hash = createHash("sha256");
    let fields = 0;
    const rows = db.prepare(
      `SELECT x.seq, x.path, x.request_body_sha256, x.response_body_sha256, x.decoder, x.classified_with, e.idx, e.name, e.category,
              e.ms_group, e.content_fields, e.personal_fields, f.idx AS fidx, f.path AS fpath, f.value, f.type, f.category AS fcat,
              f.personal, f.rule, f.reasons
         FROM exchanges x JOIN events e ON e.exchange_id = x.id JOIN fields f ON f.event_id = e.id
        ORDER BY x.seq, e.idx, f.idx`,
    );
    for (const r of rows.iterate()) {
      hash.update(JSON.stringify(r));
      fields++;
    }
    const chain = db.prepare("SELECT * FROM exchanges ORDER BY seq").all() as Array<ChainedRow & { prev_hash: string; hash: string }>;
    let prev = CHAIN_GENESIS;
    let chainOk = true;
    for (const r of chain) {
      if (r.prev_hash !== prev || rowChainHash("s", prev, r) !== r.hash) chainOk = false;
      prev = r.hash;
    }
    const { exchanges, decoded } = db.prepare("SELECT COUNT(*) AS exchanges, COUNT(decoder) AS decoded FROM exchanges").get() as {
      exchanges: number;
      decoded: number;
    };
    return { digest: hash.digest("hex"), exchanges, decoded, fields, chainOk };
  } finally {
    db.close();
  }
}

describe("import on decode threads", () => {
  it("stores the same exchanges, chain, events, fields and classes as the import thread alone", () => {
    const har = join(dir, "t.har");
    const { entries, events } = generateHar(har, HAR_BYTES);
    const alone = importWith("0", har, join(dir, "alone.db"));
    const threaded = importWith("2", har, join(dir, "threads.db"));
    expect(alone).toMatchObject({ exchanges: entries, events });
    expect(threaded).toEqual(alone);
    const a = snapshot(join(dir, "alone.db"));
    const t = snapshot(join(dir, "threads.db"));
    expect(a).toMatchObject({ exchanges: entries, decoded: entries, chainOk: true });
    expect(a.fields).toBeGreaterThan(events * 30);
    expect(t).toEqual(a);
    // Classification ran on the threads: the device id is personal there too.
    const db = openDatabase(join(dir, "threads.db"), { readonly: true });
    try {
      const id = db.prepare("SELECT personal FROM fields WHERE path = 'ext.device.localId' LIMIT 1").get() as
        { personal: string } | undefined;
      expect(id?.personal).toBeDefined();
      expect(id?.personal).not.toBe("none");
    } finally {
      db.close();
    }
  }, 240_000);
});
