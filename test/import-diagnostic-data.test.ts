/**
 * Get-DiagnosticData output as users have it: `| Export-Csv` (the form Microsoft documents; a real
 * excerpt is read from shared/data/real-world at run time) and the current module's JSON
 * (IsRequired, DiagnosticDataCategories), imported with their data categories kept.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterAll, describe, expect, it } from "vitest";
import { REAL_WORLD_SAMPLES } from "./helpers/real-world.js";
import { runCli } from "./helpers/cli.js";

const README = join(REAL_WORLD_SAMPLES, "rathbun", "README.md");
const dir = mkdtempSync(join(tmpdir(), "exhaust-ddv-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A CSV cell as Export-Csv writes it: always quoted, quotes doubled. */
const cell = (v: string) => `"${v.replace(/"/g, '""')}"`;

function payload(name: string, data: object): string {
  return JSON.stringify({
    ver: "4.0",
    name,
    time: "2021-05-18T15:31:42.5337494Z",
    iKey: "o:0a89d516ae714e01ae89c96d185e9ae3",
    ext: { device: { localId: "s:8FA50876-DF77-42F6-B2A1-CA2D1D6229F7" } },
    data,
  });
}

function imported(db: string): Array<{ name: string; headers: Array<[string, string]>; fields: Record<string, string> }> {
  const conn = new Database(db, { readonly: true });
  try {
    const xs = conn.prepare("SELECT id, request_headers FROM exchanges ORDER BY seq").all() as Array<{
      id: string;
      request_headers: string;
    }>;
    return xs.map((x) => {
      const ev = conn.prepare("SELECT id, name FROM events WHERE exchange_id = ?").get(x.id) as { id: number; name: string };
      const fields = Object.fromEntries(
        (conn.prepare("SELECT path, value FROM fields WHERE event_id = ?").all(ev.id) as Array<{ path: string; value: string }>).map(
          (f) => [f.path, f.value],
        ),
      );
      return { name: ev.name, headers: JSON.parse(x.request_headers) as Array<[string, string]>, fields };
    });
  } finally {
    conn.close();
  }
}

const header = (hs: Array<[string, string]>, name: string) => hs.find(([n]) => n.toLowerCase() === name.toLowerCase())?.[1];

describe("Get-DiagnosticData imports", () => {
  it.runIf(existsSync(README))("imports the real Export-Csv excerpt of a Windows 10 machine", () => {
    // The three lines `head -n 3 .\\tmp.csv` printed in the research notes, byte for byte.
    const lines = readFileSync(README, "utf8").split("\n");
    const at = lines.findIndex((l) => l.startsWith("#TYPE DDVCmdlets.Containers.EventRecord"));
    expect(at).toBeGreaterThan(0);
    const csv = join(dir, "real.csv");
    writeFileSync(csv, lines.slice(at, at + 3).join("\r\n") + "\r\n");
    const db = join(dir, "real.db");
    const r = runCli(["import", csv, "--db", db]);
    expect(r.status, r.stderr).toBe(0);
    const [e] = imported(db);
    expect(e.name).toBe("Microsoft.Windows.StoreAgent.Telemetry.InstallOperationRequest");
    expect(e.fields.ProductId).toBe("9N8WTRRSQ8F7");
    expect(e.fields.SkuId).toBe("0010");
    expect(header(e.headers, "X-Exhaust-Ddv-Required")).toBe("True");
    expect(header(e.headers, "X-Exhaust-Source")).toBe("Get-DiagnosticData CSV");
    // Export-Csv wrote the categories' .NET type name, not the numbers: nothing to keep.
    expect(header(e.headers, "X-Exhaust-Ddv-Categories")).toBeUndefined();
  });

  it("imports Export-Csv rows with quotes, commas and line breaks in payloads, categories kept", () => {
    const rows = [
      [
        "Microsoft.Windows.App.Browser.HJ_BeforeNavigateExtended",
        "5/18/2021 5:08:46 PM",
        payload("Microsoft.Windows.App.Browser.HJ_BeforeNavigateExtended", {
          navigationUrlBytes: "0x647777772E6D736E2E636F6D",
          note: 'a "quoted", comma\nand a line break',
        }),
        "False",
        "1, 24",
      ],
      ["Census.Battery", "5/21/2021 3:20:23 PM", payload("Census.Battery", { InternalBatteryCapacityCurrent: 4294967295 }), "True", "11"],
    ];
    const csv = join(dir, "rows.csv");
    writeFileSync(
      csv,
      [
        "#TYPE DDVCmdlets.Containers.EventRecord",
        '"Name","Timestamp","Payload","IsRequired","DiagnosticDataCategories"',
        ...rows.map((r) => r.map(cell).join(",")),
      ].join("\r\n") + "\r\n",
    );
    const db = join(dir, "rows.db");
    const r = runCli(["import", csv, "--db", db, "--json"]);
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout.trim().split("\n")[0])).toMatchObject({ format: "diagnostic-data-csv", exchanges: 2, events: 2 });
    const [nav, battery] = imported(db);
    expect(nav.fields.note).toBe('a "quoted", comma\nand a line break');
    expect(nav.fields.navigationUrlBytes).toBe("0x647777772E6D736E2E636F6D");
    expect(header(nav.headers, "X-Exhaust-Ddv-Categories")).toBe("1, 24");
    expect(header(nav.headers, "X-Exhaust-Ddv-Required")).toBe("False");
    expect(battery.fields.InternalBatteryCapacityCurrent).toBe("4294967295");
    expect(header(battery.headers, "X-Exhaust-Ddv-Categories")).toBe("11");
  });

  it("keeps the current module's IsRequired and DiagnosticDataCategories from JSON", () => {
    const file = join(dir, "current.json");
    writeFileSync(
      file,
      JSON.stringify([
        {
          Name: "Census.Battery",
          Timestamp: "2021-05-21T15:20:23Z",
          Payload: payload("Census.Battery", { IsAlwaysOnAlwaysConnectedCapable: "0" }),
          IsRequired: true,
          DiagnosticDataCategories: [11, 24],
        },
      ]),
    );
    const db = join(dir, "current.db");
    const r = runCli(["import", file, "--db", db]);
    expect(r.status, r.stderr).toBe(0);
    const [e] = imported(db);
    expect(header(e.headers, "X-Exhaust-Ddv-Categories")).toBe("11, 24");
    expect(header(e.headers, "X-Exhaust-Ddv-Required")).toBe("true");
  });

  it("refuses a CSV row whose payload is over --max-body, and a CSV that is not Get-DiagnosticData's", () => {
    const big = join(dir, "big.csv");
    writeFileSync(
      big,
      ['"Name","Payload"', [cell("Big"), cell(payload("Big", { blob: "x".repeat(300_000) }))].join(",")].join("\n") + "\n",
    );
    const r = runCli(["import", big, "--db", join(dir, "big.db"), "--max-body", "100000"]);
    expect(r.status).toBe(2);
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
    expect(r.stderr).toMatch(/EXH_IMPORT_FORMAT/);
    const other = join(dir, "other.csv");
    writeFileSync(other, '"Name","Size"\n"a","1"\n');
    const o = runCli(["import", other, "--db", join(dir, "other.db")]);
    expect(o.status).toBe(2);
    expect(o.stderr).toMatch(/EXH_IMPORT_FORMAT/);
  });
});
