/**
 * Verification speed: a session of 100,000 Bond events of ~40 fields (1,000 stored uploads of 100,
 * through the real ExchangeProcessor into a SQLite file) checked against zero-exhaust, with one
 * recorded canary planted in a few events. Reports events/s verified, in total and per rule, and
 * the time `exhaust diff` takes for the session against itself.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { EndpointCatalog } from "../src/catalog/endpoints.js";
import { ExchangeProcessor } from "../src/pipeline/process.js";
import { CaptureStore } from "../src/store/capture-store.js";
import { openDatabase } from "../src/store/database.js";
import { sessionByName } from "../src/store/sessions.js";
import { insertCanaries } from "../src/store/canaries.js";
import { newCanaryToken } from "../src/verify/canary.js";
import { diffSessions } from "../src/verify/diff.js";
import { loadProfile } from "../src/verify/profile.js";
import { verifySession } from "../src/verify/verify.js";
import { encodeCsRecords, makeCsRecord, V } from "../test/helpers/bond-writer.js";
import { makeExchange } from "../test/helpers/exchange.js";
import { round } from "./load.js";

export async function verifyThroughput(say: (msg: string) => void, uploads = 1000, eventsPerUpload = 100): Promise<object> {
  const dir = mkdtempSync(join(tmpdir(), "exhaust-bench-verify-"));
  try {
    const db = openDatabase(join(dir, "bench.db"));
    const store = new CaptureStore(db);
    const session = store.openSession("bench", { toolVersion: "bench" });
    const token = newCanaryToken();
    insertCanaries(db, [token], "bench", Date.now());
    const ids: string[] = [];
    for (let u = 0; u < uploads; u++) {
      const records = Array.from({ length: eventsPerUpload }, (_, e) => makeCsRecord(u * eventsPerUpload + e, 17));
      if (u % 100 === 0) records[0].data = { ...records[0].data, "Data.Typed": V.str(`note ${token} end`) };
      const x = makeExchange(Buffer.from(encodeCsRecords(records)), {
        requestHeaders: [["Content-Type", "application/bond-compact-binary"]],
      });
      await store.commitExchange(session, x);
      ids.push(x.id);
    }
    say(`verify: building ${uploads * eventsPerUpload} events`);
    const processor = new ExchangeProcessor(db);
    for (const id of ids) processor.process(id);
    const counts = db.prepare("SELECT (SELECT COUNT(*) FROM events) AS events, (SELECT COUNT(*) FROM field_values) AS fields").get() as {
      events: number;
      fields: number;
    };
    const catalog = EndpointCatalog.load();
    const ref = sessionByName(db, "bench")!;
    say("verify: zero-exhaust over the session");
    const t0 = performance.now();
    const report = verifySession(db, loadProfile("zero-exhaust", catalog), ref, { catalog });
    const seconds = (performance.now() - t0) / 1000;
    const perRule: Record<string, number> = {};
    for (const rule of loadProfile("zero-exhaust", catalog).rules) {
      const single = { ...loadProfile("zero-exhaust", catalog), rules: [rule] };
      const t = performance.now();
      verifySession(db, single, ref, { catalog });
      perRule[rule.id] = round((performance.now() - t) / 1000);
    }
    const td = performance.now();
    diffSessions(db, ref, ref);
    const diffSeconds = (performance.now() - td) / 1000;
    const canaryHits = report.rules.find((r) => r.kind === "canary-forbidden")?.count ?? 0;
    await store.close();
    db.close();
    return {
      events: counts.events,
      fields: counts.fields,
      seconds: round(seconds),
      eventsPerSec: Math.round(counts.events / seconds),
      verdict: report.status,
      canaryHits,
      perRuleSeconds: perRule,
      diffSeconds: round(diffSeconds),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
