/**
 * The demo corpus (docs/demo.md): a small, realistic set of telemetry uploads in every format
 * exhaust decodes, with content and identifiers planted where a careless client would put them.
 * `exhaust demo` sends it through a sinkhole; `exhaust demo --write DIR` writes it as files with a
 * curl line each. Everything is synthetic: no value comes from a real user or machine.
 */
import { deflateRawSync, gzipSync } from "node:zlib";
import { encodeAriaRequest, encodeCsRecords, V } from "./bond-writer.js";
import { jsonLines, renderJsonEvent } from "./json-events.js";

export interface DemoUpload {
  /** File name under `demo --write DIR`. */
  file: string;
  /** What it shows, one line. */
  what: string;
  host: string;
  path: string;
  headers: Record<string, string>;
  body: Buffer;
}

/** A client that refuses the proxy's certificate (pinning), imitated by `exhaust demo`. */
export const PINNED_HOST = "v10c.events.data.microsoft.com";

const IKEY = "o:0a89d516ae714e01ae89c96d185e9ae3";
const TIME = "2026-11-24T08:00:00.000Z";
const TIME_MS = Date.parse(TIME);
/** Planted identifiers (synthetic): a device id, a user's SID, an e-mail address. */
const DEVICE_ID = "s:5C4F1A2B-3D6E-4F70-8A9B-0C1D2E3F4A5B";
const USER_SID = "S-1-5-21-1004336348-1177238915-682003330-1001";
const EMAIL = "alice.jansen@example.org";
/** Planted content: a document path and a sentence typed by a user. */
const FILE_PATH = "C:\\Users\\alice\\Documents\\Budget 2027 draft.docx";
const SENTENCE = "Please review the attached budget before Friday because the March numbers look wrong again";

const JSON_STREAM = "application/x-json-stream";
const BOND = "application/bond-compact-binary";
const ONECOLLECTOR = "/OneCollector/1.0/";

const office = (name: string, data: Record<string, string | number | boolean>, ext: Record<string, Record<string, unknown>> = {}): string =>
  renderJsonEvent({ name, time: TIME, iKey: IKEY, ext: { app: { name: "Word", ver: "16.0.18129.20000" }, ...ext }, data });

export function demoCorpus(): DemoUpload[] {
  const essential = jsonLines([
    office("Office.Identity.SignOutEvent", { "Activity.Success": true, "Activity.Duration": 12 }),
    office("Office.Identity.FbaPromptWin32", { "Activity.Success": true }),
  ]);
  const required = jsonLines([
    office(
      "Office.Word.Accessibility.LearningTools.ReadAloud.PlayReadAloud",
      { "Activity.Success": true, "Data.Voice": "default" },
      { device: { localId: DEVICE_ID } },
    ),
  ]);
  const content = jsonLines([
    office(
      "Office.Word.FileIO.Save",
      { "Data.FilePath": FILE_PATH, "Data.Comment": SENTENCE, "Data.UserEmail": EMAIL },
      { user: { localId: USER_SID } },
    ),
  ]);
  const bond = Buffer.from(
    encodeCsRecords([
      {
        ver: "4.0",
        name: "Office.Excel.Workbook.Open",
        time: TIME_MS,
        iKey: IKEY,
        ext: { app: { name: "Excel" }, device: { localId: DEVICE_ID } },
        data: { "Data.Title": V.str("Q3 salary review (confidential)"), "Data.CellCount": V.i64(4096) },
      },
    ]),
  );
  const aria = Buffer.from(
    encodeAriaRequest([
      {
        token: "0123456789abcdef0123456789abcdef-01234567-89ab-cdef-0123-456789abcdef-0123",
        source: "act_default_source",
        timestamp: TIME_MS,
        records: [
          {
            id: "5a0f9d3e-1b2c-4d5e-8f90-a1b2c3d4e5f6",
            timestamp: TIME_MS,
            eventType: "Office.Outlook.Mail.Compose",
            extension: { "App.Name": "Outlook", "EventInfo.Source": "AWT-Web-JS" },
            pii: { "UserInfo.Id": { kind: 10, raw: EMAIL } },
            customerContent: { "Mail.Subject": { raw: "Re: layoffs in the Utrecht office" } },
            bools: { "Activity.Success": true },
          },
        ],
      },
    ]),
  );
  const appInsights = Buffer.from(
    JSON.stringify([
      {
        name: "Microsoft.ApplicationInsights.0a89d516ae714e01ae89c96d185e9ae3.Event",
        time: TIME,
        iKey: "0a89d516-ae71-4e01-ae89-c96d185e9ae3",
        tags: { "ai.user.id": "u7Qk2", "ai.device.id": DEVICE_ID, "ai.cloud.roleInstance": "ALICE-LAPTOP" },
        data: {
          baseType: "EventData",
          baseData: { ver: 2, name: "DocumentOpened", properties: { documentName: "Budget 2027 draft.docx", ok: "true" } },
        },
      },
    ]),
  );
  // Random-looking bytes no decoder knows: kept raw, counted as opaque.
  const opaque = Buffer.alloc(512);
  let x = 0x2545f491;
  for (let i = 0; i < opaque.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    opaque[i] = x & 0xff;
  }
  return [
    {
      file: "01-essential.jsonl",
      what: "1DS JSON lines: two essential-services events",
      host: "self.events.data.microsoft.com",
      path: ONECOLLECTOR,
      headers: { "content-type": JSON_STREAM },
      body: essential,
    },
    {
      file: "02-required-gzip.jsonl.gz",
      what: "1DS JSON lines, gzip: a Required diagnostic event with a device id",
      host: "self.events.data.microsoft.com",
      path: ONECOLLECTOR,
      headers: { "content-type": JSON_STREAM, "content-encoding": "gzip" },
      body: gzipSync(required),
    },
    {
      file: "03-content.jsonl",
      what: "1DS JSON lines: planted content (a file path, a typed sentence) and identifiers (SID, e-mail)",
      host: "browser.events.data.microsoft.com",
      path: ONECOLLECTOR,
      headers: { "content-type": JSON_STREAM },
      body: content,
    },
    {
      file: "04-bond-deflate.bin",
      what: "1DS Common Schema Bond, raw deflate: a document title",
      host: "mobile.events.data.microsoft.com",
      path: ONECOLLECTOR,
      headers: { "content-type": BOND, "content-encoding": "deflate" },
      body: deflateRawSync(bond),
    },
    {
      file: "05-aria.bin",
      what: "Aria (Collector 3.0) Bond: a PII-tagged e-mail and customer content",
      host: "self.pipe.aria.microsoft.com",
      path: "/Collector/3.0/",
      headers: { "content-type": BOND },
      body: aria,
    },
    {
      file: "06-appinsights.json",
      what: "Application Insights track: a document name in a custom property",
      host: "dc.services.visualstudio.com",
      path: "/v2/track",
      headers: { "content-type": "application/json" },
      body: appInsights,
    },
    {
      file: "07-opaque.bin",
      what: "an opaque upload no decoder reads (kept raw)",
      host: "self.events.data.microsoft.com",
      path: ONECOLLECTOR,
      headers: { "content-type": "application/octet-stream" },
      body: opaque,
    },
  ];
}

/** The curl line that sends one corpus file through a running proxy (docs/demo.md): prints the status. */
export function curlLine(u: DemoUpload, proxy = "http://127.0.0.1:8080", caFile = "certs/exhaust-ca.pem", dir = "."): string {
  const headers = Object.entries(u.headers)
    .map(([k, v]) => `-H '${k}: ${v}'`)
    .join(" ");
  const url = `https://${u.host}${u.path}`;
  return `curl -sS --fail --proxy "${proxy}" --cacert "${caFile}" ${headers} --data-binary "@${dir}/${u.file}" -o /dev/null -w '%{http_code} ${u.file}\\n' ${url}`;
}
