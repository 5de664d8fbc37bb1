import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { deflateRawSync } from "node:zlib";
import { httpsThroughProxy } from "./helpers/client.js";
import { runCli } from "./helpers/cli.js";
import { encodeCsRecords, V } from "./helpers/bond-writer.js";
import { eventually, startTestProxy, type TestProxy } from "./helpers/proxy.js";

const SENTENCE = "Please review the attached budget before Friday because the March numbers look wrong again";

describe("classification of a captured Office event, end to end", () => {
  let p: TestProxy;
  beforeAll(async () => {
    p = await startTestProxy({ mode: "sinkhole" });
  });
  afterAll(() => p.close());

  it("gives each field its category, personal kind and rule in `exhaust show` and the JSON output", async () => {
    const body = encodeCsRecords([
      {
        ver: "4.0",
        name: "Office.Word.FileIO.Save",
        time: Date.UTC(2026, 10, 24, 8, 0, 0),
        iKey: "o:0123456789abcdef0123456789abcdef",
        ext: { device: { localId: "s:6C4E3D2A-1111-4000-8000-000000000000" }, app: { name: "Word" } },
        data: {
          "Data.Doc.FileName": V.str("C:\\Users\\jdoe\\Documents\\Salaries 2019.xlsx"),
          "Data.Doc.Comment": V.str(SENTENCE),
          "Data.Contact": V.str("jan.doe@example.nl"),
          "App.Version": V.str("16.0.17029.20108"),
          "Activity.Success": V.bool(true),
        },
      },
    ]);
    expect(SENTENCE.split(" ")).toHaveLength(14);
    const res = await httpsThroughProxy({
      proxyPort: p.port,
      host: "mobile.events.data.microsoft.com",
      path: "/OneCollector/1.0/",
      headers: {
        "Content-Type": "application/bond-compact-binary",
        "Content-Encoding": "deflate",
        APIKey: "0123456789abcdef0123456789abcdef-aaaa-7000",
        Tickets: '"1"="p:secret-ticket"',
      },
      body: deflateRawSync(body),
      ca: [p.caPem],
    });
    expect(res.status).toBe(200);

    const line = await eventually(() => {
      const out = runCli(["events", "--db", p.dbFile, "--json", "--name", "Office.Word.FileIO.Save"]).stdout.trim();
      return out ? JSON.parse(out.split("\n")[0]) : undefined;
    });
    const f = new Map<string, { category: string; personal: string; rule: string; reasons: string[] }>(
      line.fields.map((x: { path: string }) => [x.path, x]),
    );
    expect(f.get("Data.Doc.FileName")).toMatchObject({ category: "content", rule: "detector.windows-path" });
    expect(f.get("Data.Doc.Comment")).toMatchObject({ category: "content", rule: "detector.free-text" });
    expect(f.get("Data.Contact")).toMatchObject({ personal: "direct-identifier", rule: "detector.email" });
    expect(f.get("ext.device.localId")).toMatchObject({
      category: "diagnostic",
      personal: "pseudonymous-id",
      rule: "field.part-a.device-localid",
    });
    expect(f.get("App.Version")).toMatchObject({ category: "diagnostic", rule: "field.office.app" });
    expect(f.get("Activity.Success")).toMatchObject({ category: "diagnostic", rule: "field.office.activity" });
    for (const path of f.keys()) expect(f.get(path)!.rule).toBeTruthy();
    expect(line.event.category).toBe("content");
    expect(line.findings).toEqual(
      expect.arrayContaining([expect.objectContaining({ code: "declared.untagged-pii", fieldPath: "Data.Contact" })]),
    );

    const shown = runCli(["show", String(line.event.id), "--db", p.dbFile]);
    expect(shown.stdout).toMatch(/Data\.Doc\.FileName\s+content\s+\S+\s+detector\.windows-path/);
    expect(shown.stdout).toMatch(/ext\.device\.localId\s+diagnostic\s+pseudonymous-id\s+field\.part-a\.device-localid/);
    expect(shown.stdout).toMatch(/declared\.untagged-pii\s+Data\.Contact/);
    expect(runCli(["events", "--db", p.dbFile, "--category", "content"]).stdout).toMatch(/Office\.Word\.FileIO\.Save/);

    // The request side: headers classified by name, values never copied.
    const items = p.db.prepare("SELECT name, category, secret, rule FROM request_items ORDER BY idx").all() as Array<{
      name: string;
      category: string;
      secret: number;
    }>;
    expect(items).toEqual(expect.arrayContaining([expect.objectContaining({ name: "Tickets", category: "functional", secret: 1 })]));
    expect(items).toEqual(expect.arrayContaining([expect.objectContaining({ name: "client-ip", category: "functional" })]));
  });

  it("re-classifies stored events whose rule-pack fingerprint is not the current one, and only those", async () => {
    // Events become visible as they are written; the exchange is marked done in the last transaction.
    await eventually(
      () => (p.db.prepare("SELECT COUNT(*) AS n FROM exchanges WHERE classified_with IS NULL").get() as { n: number }).n === 0 || undefined,
    );
    expect(JSON.parse(runCli(["reprocess", "--db", p.dbFile, "--json"]).stdout).exchanges).toBe(0);
    // Only `reprocess` may decode from here: the proxy's processing thread would also (rightly) take
    // up an exchange that turned stale if its end, committed late while the CLI readers above held
    // the write lock, were told to it after the edit below.
    await eventually(
      () => (p.db.prepare("SELECT COUNT(*) AS n FROM exchanges WHERE ended_at IS NULL").get() as { n: number }).n === 0 || undefined,
    );
    await p.processing.stop();
    // As if the exchange had been classified with an older version of classifiers/.
    const { openDatabase } = await import("../src/store/database.js");
    const rw = openDatabase(p.dbFile);
    rw.prepare("UPDATE exchanges SET classified_with = 'rules:0000000000000000'").run();
    rw.close();
    const again = JSON.parse(runCli(["reprocess", "--db", p.dbFile, "--json"]).stdout);
    expect(again.exchanges).toBe(1);
    const fp = p.db.prepare("SELECT DISTINCT classified_with AS fp FROM exchanges").all() as Array<{ fp: string }>;
    expect(fp).toHaveLength(1);
    expect(fp[0].fp).toMatch(/^rules:[0-9a-f]{16}$/);
    expect(fp[0].fp).not.toBe("rules:0000000000000000");
  });
});
