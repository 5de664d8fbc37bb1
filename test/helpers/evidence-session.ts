/**
 * A captured session for the evidence tests: real uploads through the real proxy (sinkhole mode),
 * carrying credential headers and a credential query parameter, with bodies that are not valid
 * UTF-8 (gzip, Bond), decoded and classified by the processing thread.
 */
import { gzipSync } from "node:zlib";
import { encodeCsRecords, makeCsRecord } from "./bond-writer.js";
import { httpsThroughProxy } from "./client.js";
import { renderJsonEvent } from "./json-events.js";
import { eventually, startTestProxy, type TestProxy } from "./proxy.js";

/** Credential values sent in the headers; none may appear in a redacted export. */
export const SECRETS = {
  tickets: '"1":"t=EwBwAe+secret-ticket-value-000111222333"',
  authXToken: "XBL3.0 x=1234567890;eyJhbGciOiJSUzI1NiJ9.secret-xtoken",
  authorization: "Bearer eyJ0eXAiOiJKV1QiLCJhbGciOiJub25lIn0.secret-bearer",
  cookie: "MSFPC=GUID=0123456789abcdef0123456789abcdef&HASH=0123&LV=202611&V=4&LU=1700000000000",
  aad: "aad-device-ticket-secret-987654321",
  queryToken: "querytoken-secret-5555666677778888",
};

export const TRICKY_VALUE = 'C:\\Users\\alice\\Documents\\Q3 plan, "draft"\nsecond line.docx';

export interface EvidenceSession {
  proxy: TestProxy;
  dbFile: string;
  exchanges: number;
  events: number;
}

export async function captureEvidenceSession(): Promise<EvidenceSession> {
  const proxy = await startTestProxy({ mode: "sinkhole" });
  const common = {
    Tickets: SECRETS.tickets,
    AuthXToken: SECRETS.authXToken,
    Authorization: SECRETS.authorization,
    Cookie: SECRETS.cookie,
    "Aad-Device-Ticket": SECRETS.aad,
    "Client-Id": "NO_AUTH",
  };
  const lines = [
    renderJsonEvent({
      name: "Office.Word.FileOpen.UserInitiatedOpen",
      time: "2026-11-24T08:00:00.123Z",
      iKey: "o:0123456789abcdef0123456789abcdef",
      ext: { app: { name: "Word", ver: "16.0.17029" }, device: { localId: "s:6C4E3D2A-1111-4000-8000-000000000000" } },
      data: { "Data.Doc.Ext": "docx", "Data.Doc.Path": TRICKY_VALUE, "Activity.Success": true, "Activity.Duration": 1234 },
    }),
    renderJsonEvent({ name: "Office.Word.FileClose", time: "2026-11-24T08:00:01.000Z", data: { "Activity.Count": 2 } }),
  ];
  const uploads = [
    {
      path: `/OneCollector/1.0/?cors=true&AuthXToken=${encodeURIComponent(SECRETS.queryToken)}&content-type=application/x-json-stream`,
      headers: { ...common, "Content-Type": "application/x-json-stream", "Content-Encoding": "gzip" },
      body: gzipSync(lines.join("\n")),
    },
    {
      path: "/OneCollector/1.0/",
      headers: { ...common, "Content-Type": "application/bond-compact-binary" },
      body: Buffer.from(encodeCsRecords([makeCsRecord(1, 6), makeCsRecord(2, 6)])),
    },
    {
      path: "/OneCollector/1.0/",
      headers: { ...common, "Content-Type": "application/x-json-stream" },
      body: Buffer.from(`${lines[1]}\n`),
    },
  ];
  for (const u of uploads) {
    await httpsThroughProxy({ proxyPort: proxy.port, host: "mobile.events.data.microsoft.com", method: "POST", ...u, ca: [proxy.caPem] });
  }
  const counts = await eventually(() => {
    const r = proxy.db
      .prepare("SELECT (SELECT COUNT(*) FROM exchanges WHERE decoder IS NOT NULL) AS x, (SELECT COUNT(*) FROM events) AS e")
      .get() as { x: number; e: number };
    return r.x === uploads.length && r.e >= 5 ? r : undefined;
  }, 15_000);
  return { proxy, dbFile: proxy.dbFile, exchanges: counts.x, events: counts.e };
}
