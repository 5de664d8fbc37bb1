/**
 * A capture for the inspection tests (UI, report, CLI queries), made the real way: uploads through
 * the real proxy (sinkhole mode) with real TLS, decoded and classified by the processing thread.
 */
import { deflateRawSync } from "node:zlib";
import { expect } from "vitest";
import { saveVerdict } from "../src/store/verdicts.js";
import type { VerdictReport } from "../src/verdict.js";
import { encodeCsRecords, V } from "./helpers/bond-writer.js";
import { httpsThroughProxy } from "./helpers/client.js";
import { eventually, type TestProxy } from "./helpers/proxy.js";

/** The planted document path: the detector makes it content. */
export const PLANTED = "C:\\Users\\jdoe\\Documents\\Merger plan Zephyr-4471.docx";
/** Hostile captured text: markup and a remote URL that must stay inert text everywhere. */
export const HOSTILE =
  'Please read <script>alert("owned")</script> and look at <img src="https://evil.example/p.png"> before the Friday meeting with everyone in finance';
export const TICKET_SECRET = "p:secret-ticket-7731";
export const AUTH_SECRET = "Bearer super-secret-token-9912";
export const CANARY = "canary-QX7W-4471";

export interface FilledCapture {
  sessionId: number;
  plantedEventId: number;
  verdict: VerdictReport;
}

export async function fillCapture(p: TestProxy): Promise<FilledCapture> {
  const t = Date.UTC(2026, 10, 24, 8, 0, 0);
  const save = encodeCsRecords([
    {
      ver: "4.0",
      name: "Office.Word.FileIO.Save",
      time: t,
      iKey: "o:0123456789abcdef0123456789abcdef",
      ext: { device: { localId: "s:6C4E3D2A-1111-4000-8000-000000000000" }, app: { name: "Word" } },
      data: {
        "Data.Doc.FileName": V.str(PLANTED),
        "Data.Doc.Comment": V.str(HOSTILE),
        "App.Version": V.str("16.0.17029.20108"),
        "Activity.Success": V.bool(true),
      },
    },
    ...Array.from({ length: 30 }, (_, i) => ({
      ver: "4.0",
      name: `Office.Excel.Calc.Recalc${i % 3}`,
      time: t + i * 1000,
      iKey: "o:0123456789abcdef0123456789abcdef",
      ext: { app: { name: "Excel" } },
      data: { "App.Version": V.str("16.0.17029.20108"), "Activity.Duration": V.i32(100 + i), "Activity.Success": V.bool(i % 2 === 0) },
    })),
  ]);
  const res = await httpsThroughProxy({
    proxyPort: p.port,
    host: "mobile.events.data.microsoft.com",
    path: "/OneCollector/1.0/",
    headers: {
      "Content-Type": "application/bond-compact-binary",
      "Content-Encoding": "deflate",
      APIKey: "0123456789abcdef0123456789abcdef-aaaa-7000",
      Tickets: `"1"="${TICKET_SECRET}"`,
      Authorization: AUTH_SECRET,
    },
    body: deflateRawSync(save),
    ca: [p.caPem],
  });
  expect(res.status).toBe(200);
  const jsonLines = Array.from({ length: 5 }, (_, i) =>
    JSON.stringify({
      name: `Office.Outlook.Sync.Poll${i}`,
      time: new Date(t + i * 500).toISOString(),
      ver: "4.0",
      data: { "Activity.Success": true },
    }),
  ).join("\n");
  const res2 = await httpsThroughProxy({
    proxyPort: p.port,
    host: "browser.events.data.microsoft.com",
    path: "/OneCollector/1.0/",
    headers: { "Content-Type": "application/x-json-stream" },
    body: `${jsonLines}\n`,
    ca: [p.caPem],
  });
  expect(res2.status).toBe(200);
  // Both uploads decoded and classified (the exchange row is marked in the last write).
  await eventually(
    () => (p.db.prepare("SELECT COUNT(*) AS n FROM exchanges WHERE classified_with IS NOT NULL").get() as { n: number }).n === 2,
    15_000,
  );
  // The processing thread may process an upload a second time (its events get new ids): wait
  // until the ids stay put, and let callers read the id afresh (plantedEventId is a getter).
  const plantedId = () =>
    (p.db.prepare("SELECT id FROM events WHERE name = 'Office.Word.FileIO.Save'").get() as { id: number } | undefined)?.id;
  let last = -1;
  let since = Date.now();
  await eventually(() => {
    const now = plantedId() ?? -1;
    if (now !== last) [last, since] = [now, Date.now()];
    return Date.now() - since > 750 && (p.db.prepare("SELECT COUNT(*) AS n FROM events").get() as { n: number }).n === 36;
  }, 15_000);
  const plantedEventId = plantedId()!;
  const sessionId = (p.db.prepare("SELECT id FROM sessions WHERE name = 'test'").get() as { id: number }).id;
  const exchangeId = (p.db.prepare("SELECT exchange_id AS x FROM events WHERE id = ?").get(plantedEventId) as { x: string }).x;
  const verdict: VerdictReport = {
    profile: { name: "zero-exhaust-test", description: "No content and no canary may leave the machine", sha256: "ab".repeat(32) },
    session: { id: sessionId, name: "test" },
    status: "fail",
    counts: { pass: 1, fail: 2, warn: 0 },
    rules: [
      {
        id: "no-content",
        kind: "category-forbidden",
        description: "No field of category content is sent",
        source: "test profile",
        status: "fail",
        count: 2,
        evidence: [
          { exchangeId, eventId: plantedEventId, eventName: "Office.Word.FileIO.Save", fieldPath: "Data.Doc.FileName", excerpt: PLANTED },
        ],
        evidenceOmitted: 1,
      },
      {
        id: "no-canary",
        kind: "canary-forbidden",
        description: "Planted canaries never leave",
        source: "test profile",
        status: "fail",
        count: 1,
        evidence: [{ exchangeId, host: "mobile.events.data.microsoft.com", excerpt: CANARY, form: "base64", location: "request body" }],
        evidenceOmitted: 0,
      },
      {
        id: "no-pinning",
        kind: "endpoint-forbidden",
        description: "No forbidden endpoint",
        source: "test profile",
        status: "pass",
        count: 0,
        evidence: [],
        evidenceOmitted: 0,
      },
    ],
    createdAt: Date.UTC(2026, 10, 24, 9, 0, 0),
    toolVersion: "test",
    rulesFingerprint: "rules:0000000000000000",
  };
  saveVerdict(p.db, verdict);
  return {
    sessionId,
    get plantedEventId() {
      return plantedId()!;
    },
    verdict,
  };
}
