import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { runCli } from "./helpers/cli.js";
import { captureEvidenceSession, SECRETS, TRICKY_VALUE, type EvidenceSession } from "./helpers/evidence-session.js";
import { tempDir } from "./helpers/proxy.js";
import { sessionSnapshot } from "./helpers/session-snapshot.js";

let s: EvidenceSession;
let out: string;
const certs = () => join(s.proxy.dir, "certs");

beforeAll(async () => {
  s = await captureEvidenceSession();
  out = tempDir("exhaust-export-");
}, 60_000);
afterAll(async () => {
  await s.proxy.close();
  rmSync(out, { recursive: true, force: true });
});

const exportTo = (format: string, name: string, ...extra: string[]) => {
  const file = join(out, name);
  const r = runCli(["export", "--format", format, "--db", s.dbFile, "--certs", certs(), "--session", "test", "--out", file, ...extra]);
  expect(r.stderr).toBe("");
  expect(r.status).toBe(0);
  return file;
};

interface HarEntry {
  request: { url: string; headers: Array<{ name: string; value: string }>; postData?: { text: string; _exhaust?: { encoding: string } } };
  _exhaust: { id: string; prevHash: string; hash: string; events: Array<{ event: { name: string } }> };
}

describe("HAR export", () => {
  it("redacts every credential by default with a keyed hash that stays equal for equal values", () => {
    const text = readFileSync(exportTo("har", "redacted.har"), "utf8");
    for (const v of Object.values(SECRETS)) {
      expect(text).not.toContain(v);
      expect(text).not.toContain(encodeURIComponent(v));
    }
    const har = JSON.parse(text) as { log: { entries: HarEntry[]; _exhaust: { secrets: string } } };
    expect(har.log._exhaust.secrets).toBe("redacted");
    const tickets = har.log.entries.map((e) => e.request.headers.find((h) => h.name === "Tickets")!.value);
    expect(tickets[0]).toMatch(/^hmac-sha256:[0-9a-f]{64}$/);
    expect(new Set(tickets).size).toBe(1); // the same ticket in every upload: comparable across entries
    expect(har.log.entries[0].request.url).toMatch(/AuthXToken=hmac-sha256%3A[0-9a-f]{64}/);
    // The key is kept, 0600, so a second export hashes the same way.
    const again = JSON.parse(readFileSync(exportTo("har", "redacted-again.har"), "utf8")) as typeof har;
    expect(again.log.entries[0].request.headers.find((h) => h.name === "Tickets")!.value).toBe(tickets[0]);
  });

  it("keeps header order and case, binary bodies as base64, and events and chain links in _exhaust", () => {
    const har = JSON.parse(readFileSync(exportTo("har", "secrets.har", "--include-secrets"), "utf8")) as {
      log: { entries: HarEntry[]; _exhaust: { secrets: string } };
    };
    expect(har.log._exhaust.secrets).toBe("included");
    const [gz, bond, plain] = har.log.entries;
    expect(gz.request.headers.map((h) => h.name).slice(0, 5)).toEqual([
      "Tickets",
      "AuthXToken",
      "Authorization",
      "Cookie",
      "Aad-Device-Ticket",
    ]);
    expect(gz.request.headers.find((h) => h.name === "Tickets")!.value).toBe(SECRETS.tickets);
    expect(gz.request.postData!._exhaust!.encoding).toBe("base64");
    expect(bond.request.postData!._exhaust!.encoding).toBe("base64");
    expect(plain.request.postData!._exhaust).toBeUndefined();
    expect(gz._exhaust.events.map((e) => e.event.name)).toEqual(["Office.Word.FileOpen.UserInitiatedOpen", "Office.Word.FileClose"]);
    expect(bond._exhaust.prevHash).toBe(gz._exhaust.hash);
    expect(plain._exhaust.prevHash).toBe(bond._exhaust.hash);
  });

  it("round-trips through `exhaust import`: every body byte for byte, the same events and fields", () => {
    const har = exportTo("har", "roundtrip.har", "--include-secrets");
    const db2 = join(out, "roundtrip.db");
    const r = runCli(["import", har, "--db", db2, "--session", "back", "--json"]);
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ format: "har", session: "back", exchanges: s.exchanges, events: s.events });
    const original = sessionSnapshot(s.dbFile, "test");
    expect(original.events.length).toBe(s.events);
    expect(sessionSnapshot(db2, "back")).toEqual(original);
  });
});

describe("JSONL and CSV exports", () => {
  it("JSONL is exactly what `exhaust events --json` prints", () => {
    const jsonl = readFileSync(exportTo("jsonl", "events.jsonl"), "utf8");
    const printed = runCli(["events", "--db", s.dbFile, "--session", "test", "--json", "--limit", "100000"]).stdout;
    expect(jsonl).toBe(printed);
    expect(jsonl.trim().split("\n")).toHaveLength(s.events);
  });

  it("CSV has one RFC 4180 record per field, quoting commas, quotes and line breaks", () => {
    const csv = readFileSync(exportTo("csv", "fields.csv"), "utf8");
    const records = parseCsv(csv);
    expect(records[0]).toEqual(["session", "exchange", "event", "name", "path", "value", "type", "category", "personal", "rule"]);
    const fieldCount = sessionSnapshot(s.dbFile, "test").events.reduce((n, e) => n + e.fields.length, 0);
    expect(records.length - 1).toBe(fieldCount);
    const tricky = records.find((r) => r[4] === "Data.Doc.Path")!;
    expect(tricky[5]).toBe(TRICKY_VALUE);
    expect(csv).toContain('"C:\\Users\\alice\\Documents\\Q3 plan, ""draft""\nsecond line.docx"');
    expect(csv.endsWith("\r\n")).toBe(true);
  });

  it("refuses to overwrite and rejects an unknown format with exit 2", () => {
    const file = exportTo("jsonl", "once.jsonl");
    const again = runCli(["export", "--format", "jsonl", "--db", s.dbFile, "--out", file]);
    expect(again.status).toBe(2);
    expect(again.stderr).toContain("EXH_EXPORT_OUT_EXISTS");
    // --force replaces a file (as for report and ca export); a bundle directory is never replaced.
    writeFileSync(file, "old");
    expect(
      runCli(["export", "--format", "jsonl", "--db", s.dbFile, "--certs", certs(), "--session", "test", "--out", file, "--force"]).status,
    ).toBe(0);
    expect(readFileSync(file, "utf8")).toMatch(/^\{"session":"test"/);
    const dirOut = join(out, "a-dir");
    mkdirSync(dirOut);
    writeFileSync(join(dirOut, "mine.txt"), "x");
    const dirForced = runCli(["export", "--format", "bundle", "--db", s.dbFile, "--certs", certs(), "--out", dirOut, "--force"]);
    expect(dirForced.status).toBe(2);
    expect(dirForced.stderr).toContain("EXH_EXPORT_OUT_EXISTS");
    expect(readFileSync(join(dirOut, "mine.txt"), "utf8")).toBe("x");
    const bad = runCli(["export", "--format", "xml", "--db", s.dbFile, "--out", join(out, "x")]);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain("EXH_OPT_INVALID");
  });
});

/** A strict RFC 4180 reader (CRLF records, quoted fields), independent of the writer. */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let i = 0;
  while (i < text.length) {
    let field = "";
    if (text[i] === '"') {
      i++;
      for (;;) {
        if (text[i] === '"' && text[i + 1] === '"') ((field += '"'), (i += 2));
        else if (text[i] === '"') {
          i++;
          break;
        } else field += text[i++];
      }
    } else {
      while (i < text.length && text[i] !== "," && text[i] !== "\r") field += text[i++];
    }
    row.push(field);
    if (text[i] === ",") i++;
    else if (text[i] === "\r" && text[i + 1] === "\n") {
      rows.push(row);
      row = [];
      i += 2;
    } else if (i < text.length) throw new Error(`bad CSV at ${i}`);
  }
  return rows;
}
