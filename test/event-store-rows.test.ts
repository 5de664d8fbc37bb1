/**
 * The field rows EventStore writes (multi-row INSERTs whose event id and positions come from shared
 * parameters) hold exactly what the decoder and classifier produced: every field at its position,
 * its value as text (strings as they are, other types as JSON), its path and class, also for events
 * whose fields span several INSERTs, and again after reprocessing.
 */
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { classifyEvent, loadRulePacks } from "../src/classify/engine.js";
import { decodeUpload } from "../src/decode/registry.js";
import { ExchangeProcessor } from "../src/pipeline/process.js";
import { CaptureStore } from "../src/store/capture-store.js";
import { openDatabase } from "../src/store/database.js";
import { encodeCsRecords, makeCsRecord } from "./helpers/bond-writer.js";
import { makeExchange } from "./helpers/exchange.js";
import { tempDir } from "./helpers/proxy.js";

/** One 1DS JSON line with values of every JSON type, nested arrays, non-ASCII text and a NUL. */
const JSON_LINE = JSON.stringify({
  ver: "4.0",
  name: "Test.Values",
  time: "2026-12-03T10:00:00.000Z",
  iKey: "o:0123456789abcdef0123456789abcdef",
  data: {
    list: [1, "two", [3, null], { k: true }],
    nothing: null,
    no: false,
    yes: true,
    half: 1.5,
    big: Number("12345678901234567890"), // beyond 2^53: stored as JSON writes the double
    negative: -7,
    text: "h\u00e9llo \u2713 \u{1F600} a\u0000b",
    empty: "",
    path: "C:\\Users\\jdoe\\Documents\\Merger plan.docx",
  },
});

describe("field rows as stored", () => {
  it("hold every decoded field at its position with its value, path and class, across INSERT boundaries", async () => {
    const db = openDatabase(join(tempDir(), "rows.db"));
    const store = new CaptureStore(db);
    const session = store.openSession("s", { toolVersion: "test" });
    // Part C counts giving events of about 24, 64, 65, 128, 129 and 200 fields (64 rows per INSERT).
    const bond = makeExchange(Buffer.from(encodeCsRecords([0, 41, 42, 105, 106, 177].map((c, i) => makeCsRecord(i, c)))), {
      requestHeaders: [["Content-Type", "application/bond-compact-binary"]],
    });
    const json = makeExchange(`${JSON_LINE}\n${JSON_LINE}`, { requestHeaders: [["Content-Type", "application/x-json-stream"]] });
    const packs = loadRulePacks();
    const processor = new ExchangeProcessor(db, { packs });
    for (const x of [bond, json]) {
      await store.commitExchange(session, x);
      processor.process(x.id);
    }
    const rowsOf = db.prepare(
      "SELECT idx, part, path, type, value, typeof(value) AS t, category, personal, rule, reasons FROM fields WHERE event_id = ? ORDER BY idx",
    );
    const check = () => {
      let fields = 0;
      for (const x of [bond, json]) {
        const upload = processor["store"].loadUpload(x.id)!;
        const decoded = decodeUpload(upload);
        const events = db
          .prepare(
            `SELECT id, idx, field_count AS n, exchange_id, session_id, format, name, time, ikey, byte_start, byte_end, ms_group,
                    group_rule, category, catalog_category, subtype, content_fields, personal_fields
               FROM events WHERE exchange_id = ? ORDER BY idx`,
          )
          .all(x.id) as Array<{ id: number; idx: number; n: number } & Record<string, unknown>>;
        expect(events.map((e) => e.idx)).toEqual(decoded.events.map((e) => e.index));
        events.forEach((row, n) => {
          const e = decoded.events[n];
          const c = classifyEvent(e, packs, { facts: decoded.facts });
          const expected = e.fields.map((f, i) => ({
            idx: i,
            part: f.part,
            path: f.path,
            type: f.type,
            // The stored text as the schema defines it (strings as they are, the rest as JSON),
            // written out here rather than through the store's own fieldValueText.
            value: f.value === null ? null : typeof f.value === "string" ? f.value : JSON.stringify(f.value),
            t: f.value === null ? "null" : "text",
            category: c.fields[i].category,
            personal: c.fields[i].personal,
            rule: c.fields[i].rule,
            reasons:
              c.fields[i].reasons.length === 1 && c.fields[i].reasons[0] === c.fields[i].rule ? null : JSON.stringify(c.fields[i].reasons),
          }));
          expect(row.n).toBe(e.fields.length);
          // The event row itself, column by column, from the decoder and the classifier.
          const { id: _id, idx: _idx, n: _n, ...columns } = row;
          expect(columns).toEqual({
            exchange_id: x.id,
            session_id: upload.sessionId,
            format: decoded.decoder.split("@")[0],
            name: e.name,
            time: e.time ?? null,
            ikey: e.iKey ?? null,
            byte_start: e.byteRange?.[0] ?? null,
            byte_end: e.byteRange?.[1] ?? null,
            ms_group: c.group,
            group_rule: c.groupRule,
            category: c.eventCategory,
            catalog_category: c.catalogCategory ?? null,
            subtype: c.subtype ?? null,
            content_fields: c.fields.filter((f) => f.category === "content").length,
            personal_fields: c.fields.filter((f) => f.personal !== "none").length,
          });
          expect(rowsOf.all(row.id)).toEqual(expected);
          fields += expected.length;
        });
      }
      return fields;
    };
    const stored = check();
    // Events of both sides of every INSERT boundary were written, and no row is anywhere else.
    const counts = (db.prepare("SELECT field_count AS n FROM events").all() as Array<{ n: number }>).map((r) => r.n);
    for (const n of [64, 65, 128, 129]) expect(counts).toContain(n);
    expect(Math.max(...counts)).toBeGreaterThan(192);
    expect((db.prepare("SELECT COUNT(*) AS n FROM field_values").get() as { n: number }).n).toBe(stored);
    // The JSON values came back as the decoder gave them (a nested array as JSON, the NUL kept).
    const values = (
      db
        .prepare("SELECT f.path, f.value FROM fields f JOIN events e ON e.id = f.event_id WHERE e.exchange_id = ? AND e.idx = 0")
        .all(json.id) as Array<{ path: string; value: string | null }>
    ).map((r) => [r.path, r.value]);
    expect(values).toContainEqual(["list[2]", "[3,null]"]);
    expect(values).toContainEqual(["text", "h\u00e9llo \u2713 \u{1F600} a\u0000b"]);
    expect(values).toContainEqual(["nothing", null]);
    expect(values).toContainEqual(["half", "1.5"]);
    expect(values).toContainEqual(["yes", "true"]);
    expect(values).toContainEqual(["no", "false"]);
    expect(values).toContainEqual(["negative", "-7"]);
    expect(values).toContainEqual(["big", "12345678901234567000"]);
    expect(values).toContainEqual(["empty", ""]);

    // Reprocessing updates the events in place and writes the same rows again.
    for (const x of [bond, json]) processor.process(x.id);
    expect(check()).toBe(stored);
    expect((db.prepare("SELECT COUNT(*) AS n FROM field_values").get() as { n: number }).n).toBe(stored);
    db.close();
  });
});
