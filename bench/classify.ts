/**
 * Classifier throughput on Office-like events of ~40 fields (not a test: no timing assertions).
 * Run after a build: `node dist/bench/classify.js [seconds]`, or call measureClassifyThroughput
 * from bench/run.ts. Reports fields/s and events/s for three mixes:
 *   realistic  — per-event unique times, ids and correlation vectors; everything else repeats;
 *                1 % of events carry a file path, an e-mail address or a sentence;
 *   unique     — every string value is new (the value cache never hits);
 *   declared   — like realistic, with ext.metadata-style PII/customer-content tags on 4 fields.
 */
import { randomUUID } from "node:crypto";
import { pathToFileURL } from "node:url";
import type { DecodedEvent, DecodedField, FieldAnnotations, FieldValue } from "../src/decode/types.js";
import { classifyEvent, loadRulePacks } from "../src/classify/engine.js";
import { makeField } from "../test/helpers/decode.js";

export type BenchMix = "realistic" | "unique" | "declared";

const f = (path: string, value: FieldValue, part: DecodedField["part"] = "C", annotations?: FieldAnnotations): DecodedField =>
  makeField(path, value, annotations, part);

const NAMES = [
  "Office.Word.FileOpen.UserInitiatedOpen",
  "Office.Excel.PerfData.ApplicationBoot",
  "Office.Licensing.Nul.Fetcher.RenewLicense",
  "Office.Identity.SilentWamTokenRequestMsa",
  "Office.PowerPoint.PPT.Shared.SlideShow.Performance",
  "Office.Outlook.Desktop.AddIns.AddInLoaded",
  "Office.System.SystemHealthErrorsWithTag",
  "Office.Experimental.NotInAnyCatalogue",
];

/** Builds `count` events of 40 fields each; `offset` shifts the per-event values (times, sequence numbers, ids). */
export function benchEvents(count: number, mix: BenchMix = "realistic", offset = 0): DecodedEvent[] {
  const session = randomUUID();
  const device = `s:${randomUUID()}`;
  const user = `w:${randomUUID().toUpperCase()}`;
  const hash = "3a5f0c2e9b7d41e88c6a1f0e2d3b4c5a";
  const tenant = randomUUID();
  const events: DecodedEvent[] = [];
  for (let n = 0; n < count; n++) {
    const i = n + offset;
    const u = (s: string) => (mix === "unique" ? `${s}-${i}` : s);
    const name = NAMES[i % NAMES.length];
    const time = new Date(1_700_000_000_000 + i * 37).toISOString();
    const cv = `Ab3+xYz0QkOq1LmN.${i}`;
    const declared = mix === "declared";
    const fields: DecodedField[] = [
      f("ver", "4.0", "envelope"),
      f("name", name, "envelope"),
      f("time", time, "envelope"),
      f("iKey", "o:0123456789abcdef0123456789abcdef", "envelope"),
      f("data.baseType", "custom.office_system_activity", "envelope"),
      f("ext.sdk.ver", u("1DS-Web-JS-3.2.6"), "A"),
      f("ext.sdk.seq", i, "A"),
      f("ext.sdk.epoch", u("1234567890"), "A"),
      f("ext.app.name", u("Word"), "A"),
      f("ext.app.ver", u("16.0.17029.20108"), "A"),
      f("ext.device.localId", mix === "unique" ? `s:${randomUUID()}` : device, "A"),
      f("ext.device.deviceClass", u("Windows.Desktop"), "A"),
      f("ext.os.name", u("Windows"), "A"),
      f("ext.os.ver", u("10.0.19043.985"), "A"),
      f("ext.user.localId", mix === "unique" ? `w:${randomUUID()}` : user, "A"),
      f("ext.loc.tz", "+01:00", "A"),
      f("ext.protocol.devMake", u("LENOVO"), "A"),
      f("ext.protocol.devModel", u("ThinkPad T14"), "A"),
      f("ext.utc.flags", 503317040, "A"),
      f("ext.mscv.cV", cv, "A"),
      f("Event.Name", name),
      f("Event.Source", u("OTelJS")),
      f("Event.Time", time),
      f("Event.Sequence", i),
      f("Event.Id", `${mix === "unique" ? randomUUID() : session}.${i}`),
      f("Session.Id", mix === "unique" ? randomUUID() : session),
      f("App.Platform", u("Win32")),
      f("App.Name", u("Word")),
      f("App.Version", u("16.0.17029.20108")),
      f("Release.AudienceGroup", u("Production")),
      f("User.PrimaryIdentityHash", mix === "unique" ? randomUUID().replace(/-/g, "") : hash),
      f("User.TenantId", mix === "unique" ? randomUUID() : tenant),
      f("Activity.CV", cv),
      f("Activity.Duration", (i * 7919) % 100_000),
      f("Activity.Success", i % 13 !== 0),
      f("zC.Activity", "Office.System.Activity"),
      f("Data.Doc.Ext", u("docx")),
      f(
        "Data.Doc.FqdnHash",
        mix === "unique" ? randomUUID().replace(/-/g, "") : hash,
        "C",
        declared ? { piiKind: 2, wireType: 65 } : undefined,
      ),
      f("Data.Doc.SizeInBytes", (i * 104_729) % 5_000_000),
      // 1 % of events carry content or personal data
      i % 100 === 0
        ? f("Data.Doc.FileName", `C:\\Users\\jdoe\\Documents\\Report ${i}.docx`, "C", declared ? { customerContent: true } : undefined)
        : i % 100 === 50
          ? f("Data.Reviewer", `user${i}@contoso.com`, "C", declared ? { piiKind: 9 } : undefined)
          : i % 100 === 75
            ? f("Data.Text", `Please look at the numbers for quarter ${i} before we send them to the board`)
            : f("Data.Doc.IsIncrementalOpen", i % 2 === 0),
    ];
    events.push({ index: n, name, fields });
  }
  return events;
}

export interface BenchResult {
  mix: BenchMix;
  events: number;
  fields: number;
  seconds: number;
  fieldsPerSecond: number;
  eventsPerSecond: number;
}

/** Classifies a pool of events repeatedly for about `seconds` (after a warm-up) on this thread. */
export function measureClassifyThroughput(mix: BenchMix = "realistic", seconds = 3, poolSize = 20_000): BenchResult {
  const packs = loadRulePacks();
  const warm = benchEvents(2_000, mix);
  for (const e of warm) classifyEvent(e, packs);
  let events = 0;
  let fields = 0;
  let elapsed = 0;
  // A fresh pool each round, so per-event values (times, ids, correlation vectors) really are new.
  while (elapsed < seconds) {
    const pool = benchEvents(poolSize, mix, 2_000 + events);
    const start = process.hrtime.bigint();
    for (const e of pool) {
      classifyEvent(e, packs);
      fields += e.fields.length;
    }
    elapsed += Number(process.hrtime.bigint() - start) / 1e9;
    events += pool.length;
  }
  return { mix, events, fields, seconds: elapsed, fieldsPerSecond: fields / elapsed, eventsPerSecond: events / elapsed };
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const seconds = Number(process.argv[2] ?? 3);
  for (const mix of ["realistic", "unique", "declared"] as const) {
    const r = measureClassifyThroughput(mix, seconds);
    process.stdout.write(
      `classify ${mix.padEnd(9)} ${Math.round(r.fieldsPerSecond).toLocaleString("en")} fields/s  ${Math.round(r.eventsPerSecond).toLocaleString("en")} events/s  (${r.events.toLocaleString("en")} events of ${r.fields / r.events} fields in ${r.seconds.toFixed(2)} s)\n`,
    );
  }
}
