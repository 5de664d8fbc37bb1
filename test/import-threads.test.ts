/**
 * `exhaust import` decodes and classifies on separate threads (EXHAUST_IMPORT_THREADS, default the
 * cores but one) while its own thread parses, stores the capture rows and writes the events in
 * order. The result must be the one the import thread gives alone (EXHAUST_IMPORT_THREADS=0): the
 * same exchanges chained in file order, the same events, fields and classes, every exchange decoded.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createHash } from "node:crypto";
import { rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { CHAIN_GENESIS } from "../src/store/chain.js";
import { openDatabase } from "../src/store/database.js";
import { rowChainHash, type ChainedRow } from "./helpers/chain.js";
import { runCli } from "./helpers/cli.js";
import { tempDir } from "./helpers/proxy.js";

let dir: string;
beforeAll(() => {
  dir = tempDir("exhaust-import-threads-");
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const ENTRIES = 240;
const EVENTS_PER_UPLOAD = 5;

/** A HAR of 1DS uploads: every third gzip (base64 in the HAR), some with an e-mail or a GUID in them. */
function writeHar(file: string): void {
  const entries: string[] = [];
  for (let n = 0; n < ENTRIES; n++) {
    const lines: string[] = [];
    for (let e = 0; e < EVENTS_PER_UPLOAD; e++) {
      const data: Record<string, unknown> = { "Event.Sequence": n * EVENTS_PER_UPLOAD + e, "Activity.Success": e % 2 === 0 };
      for (let i = 0; i < 8; i++) data[`Data.Field${i}`] = `value ${n}-${e}-${i}`;
      if (n % 7 === 0) data["Data.Mail"] = `user${n}@contoso.com`;
      if (n % 5 === 0) data["Data.Id"] = `6C4E3D2A-0000-4000-8000-${String(n).padStart(12, "0")}`;
      lines.push(
        JSON.stringify({
          name: `Office.Test.Event${e}`,
          time: new Date(Date.UTC(2026, 10, 24, 8) + n).toISOString(),
          ver: "4.0",
          iKey: "o:0123456789abcdef0123456789abcdef",
          ext: { app: { name: "Word", ver: "16.0.17029" } },
          data,
        }),
      );
    }
    const body = lines.join("\n");
    const gz = n % 3 === 0;
    entries.push(
      JSON.stringify({
        startedDateTime: new Date(Date.UTC(2026, 10, 24, 8) + n * 10).toISOString(),
        time: 5,
        request: {
          method: "POST",
          url: `https://mobile.events.data.microsoft.com/OneCollector/1.0/?n=${n}`,
          httpVersion: "HTTP/1.1",
          headers: [
            { name: "Content-Type", value: "application/x-json-stream" },
            ...(gz ? [{ name: "Content-Encoding", value: "gzip" }] : []),
          ],
          postData: gz
            ? { mimeType: "application/x-json-stream", text: gzipSync(body).toString("base64"), encoding: "base64" }
            : { mimeType: "application/x-json-stream", text: body },
        },
        response: { status: 200, headers: [], content: { size: 10, mimeType: "application/json", text: '{"acc":5}' } },
      }),
    );
  }
  writeFileSync(file, `{"log":{"version":"1.2","creator":{"name":"test","version":"1"},"entries":[${entries.join(",")}]}}`);
}

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
    writeHar(har);
    const alone = importWith("0", har, join(dir, "alone.db"));
    const threaded = importWith("2", har, join(dir, "threads.db"));
    expect(alone).toMatchObject({ exchanges: ENTRIES, events: ENTRIES * EVENTS_PER_UPLOAD });
    expect(threaded).toEqual(alone);
    const a = snapshot(join(dir, "alone.db"));
    const t = snapshot(join(dir, "threads.db"));
    expect(a).toMatchObject({ exchanges: ENTRIES, decoded: ENTRIES, chainOk: true });
    expect(a.fields).toBeGreaterThan(ENTRIES * EVENTS_PER_UPLOAD * 10);
    expect(t).toEqual(a);
    // Classification ran on the threads: the e-mail field is personal there too.
    const db = openDatabase(join(dir, "threads.db"), { readonly: true });
    try {
      const mail = db.prepare("SELECT personal FROM fields WHERE path = 'Data.Mail' LIMIT 1").get() as { personal: string } | undefined;
      expect(mail?.personal).toBeDefined();
      expect(mail?.personal).not.toBe("none");
    } finally {
      db.close();
    }
  }, 240_000);
});
