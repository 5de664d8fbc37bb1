/**
 * Importer bounds (issue 13, item 5): a payload, archive entry, JSON string or line beyond the
 * limit ends the import with EXH_IMPORT_FORMAT, one line, exit 2, without reading it into memory.
 * The CLI runs as a real child; its peak RSS is measured by /usr/bin/time (or VmHWM polling).
 */
import { spawn, spawnSync } from "node:child_process";
import { existsSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openDatabase } from "../src/store/database.js";
import { EXHAUST_BIN, runCli } from "./helpers/cli.js";
import { writeEventTranscript } from "./helpers/event-transcript.js";
import { tempDir } from "./helpers/proxy.js";
import { writeSaz } from "./helpers/saz-writer.js";
import { writeZipBomb } from "./helpers/zip-bomb.js";

const MB = 1024 * 1024;
/** The bound the issue sets for a refused import. */
const RSS_BOUND = 300 * MB;

let dir: string;
beforeAll(() => {
  dir = tempDir("exhaust-import-bounds-");
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface Measured {
  status: number | null;
  stdout: string;
  stderr: string;
  /** Peak resident set size of the CLI process, bytes. */
  peakRss: number;
}

/** Runs the CLI to completion and measures its peak RSS. */
async function runMeasured(args: string[]): Promise<Measured> {
  const gnuTime = "/usr/bin/time";
  const useTime = existsSync(gnuTime) && spawnSync(gnuTime, ["-f", "%M", "true"]).status === 0;
  const rssFile = join(dir, `rss-${Date.now()}-${Math.random()}.txt`);
  const child = useTime
    ? spawn(gnuTime, ["-f", "%M", "-o", rssFile, process.execPath, EXHAUST_BIN, ...args], { stdio: ["ignore", "pipe", "pipe"] })
    : spawn(process.execPath, [EXHAUST_BIN, ...args], { stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
  let polled = 0;
  const poll = useTime
    ? undefined
    : setInterval(() => {
        try {
          const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, "utf8"));
          if (m) polled = Math.max(polled, Number(m[1]) * 1024);
        } catch {
          // exited
        }
      }, 20);
  const status = await new Promise<number | null>((resolve) => child.once("close", (code) => resolve(code)));
  if (poll) clearInterval(poll);
  const peakRss = useTime ? Number(readFileSync(rssFile, "utf8").trim().split("\n").pop()) * 1024 : polled;
  expect(peakRss).toBeGreaterThan(10 * MB);
  return { status, stdout, stderr, peakRss };
}

function expectOneLineFormatError(r: { status: number | null; stdout: string; stderr: string }, reason: RegExp): void {
  expect(r.status, r.stderr).toBe(2);
  const lines = r.stderr.split("\n").filter(Boolean);
  expect(lines, r.stderr).toHaveLength(1);
  expect(lines[0]).toMatch(/^exhaust: cannot import .*\[EXH_IMPORT_FORMAT\]$/);
  expect(lines[0]).toMatch(reason);
  expect(r.stderr).not.toMatch(/\n\s+at /);
}

describe("EventTranscript.db payloads", () => {
  it("refuses a 300 MB payload with EXH_IMPORT_FORMAT, one line, exit 2, under 300 MB RSS", async () => {
    const file = join(dir, "EventTranscript.db");
    writeEventTranscript(file, [
      { payload: { ver: "4.0", name: "Small.Event", time: "2026-11-20T10:00:00.000Z", data: { a: 1 } }, time: Date.UTC(2026, 10, 20) },
    ]);
    // The 300 MB row is made by SQLite itself in a child (printf repeats a character), so this
    // process never holds it; a JSON payload, as DiagTrack writes them.
    const made = spawnSync(
      process.execPath,
      [
        "-e",
        `const D = require(${JSON.stringify(createRequire(import.meta.url).resolve("better-sqlite3"))}); const db = new D(${JSON.stringify(file)});
         db.exec("INSERT INTO events_persisted (sid, timestamp, payload, full_event_name) VALUES ('S-1-5-18', 134079552000000000, printf('{\\"ver\\":\\"4.0\\",\\"name\\":\\"Big.Event\\",\\"time\\":\\"2026-11-20T10:00:01.000Z\\",\\"data\\":{\\"blob\\":\\"%.*c\\"}}', 300000000, 'x'), 'Big.Event')");
         db.close();`,
      ],
      { encoding: "utf8" },
    );
    expect(made.status, made.stderr).toBe(0);
    expect(statSync(file).size).toBeGreaterThan(300_000_000);

    const db = join(dir, "transcript.db");
    const r = await runMeasured(["import", file, "--db", db, "--session", "big"]);
    rmSync(file);
    expectOneLineFormatError(r, /the payload of events_persisted row 2 is 3000000\d\d bytes, above the import limit of 33554432 bytes/);
    expect(r.peakRss).toBeLessThan(RSS_BOUND);
    // What came before the refused row is kept as a (partial) session; nothing of the big row is.
    const d = openDatabase(db, { readonly: true });
    try {
      const rows = d
        .prepare("SELECT x.request_body_size AS size FROM exchanges x JOIN sessions s ON s.id = x.session_id WHERE s.name = 'big'")
        .all() as Array<{ size: number }>;
      expect(rows.every((x) => x.size < MB)).toBe(true);
    } finally {
      d.close();
    }
  }, 120_000);

  it("imports a payload within --max-body and refuses the same one below it", () => {
    const file = join(dir, "small-limit.db");
    writeEventTranscript(file, [
      {
        payload: { ver: "4.0", name: "Some.Event", time: "2026-11-20T10:00:00.000Z", data: { text: "y".repeat(5000) } },
        time: Date.UTC(2026, 10, 20),
      },
    ]);
    const ok = runCli(["import", file, "--db", join(dir, "limit-ok.db"), "--max-body", "10000", "--json"]);
    expect(ok.status, ok.stderr).toBe(0);
    expect(JSON.parse(ok.stdout)).toMatchObject({ exchanges: 1, events: 1 });
    expectOneLineFormatError(
      runCli(["import", file, "--db", join(dir, "limit-no.db"), "--max-body", "4000"]),
      /row 1 is \d+ bytes, above the import limit of 4000 bytes/,
    );
    const bad = runCli(["import", file, "--db", join(dir, "limit-no.db"), "--max-body", "0"]);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/^exhaust: invalid option --max-body: .*\[EXH_OPT_INVALID\]\n$/);
  });
});

describe("SAZ archive entries", () => {
  const head =
    "POST https://v10.events.data.microsoft.com/OneCollector/1.0/ HTTP/1.1\r\nHost: v10.events.data.microsoft.com\r\nContent-Type: application/x-json-stream\r\n\r\n";

  it("refuses a zip bomb (2 GiB from ~2 MB) before inflating it: EXH_IMPORT_FORMAT, one line, exit 2, under 300 MB RSS", async () => {
    const file = join(dir, "bomb.saz");
    const bomb = writeZipBomb(file, "raw/01_c.txt", { head, gib: 2 });
    expect(bomb.size).toBeLessThan(4 * MB);
    expect(bomb.inflated).toBeGreaterThan(2 * 1024 * MB);
    const r = await runMeasured(["import", file, "--db", join(dir, "bomb.db")]);
    expectOneLineFormatError(r, /archive entry raw\/01_c\.txt declares 21474837\d\d bytes, above the import limit of \d+ bytes/);
    expect(r.peakRss).toBeLessThan(RSS_BOUND);
  }, 120_000);

  it("cuts off an entry that declares little and inflates to gigabytes at its declared size", async () => {
    const file = join(dir, "liar.saz");
    writeZipBomb(file, "raw/01_c.txt", { head, gib: 2, declare: 4096 });
    const r = await runMeasured(["import", file, "--db", join(dir, "liar.db")]);
    expectOneLineFormatError(r, /raw\/01_c\.txt inflates to more than the 4096 bytes it declares/);
    expect(r.peakRss).toBeLessThan(RSS_BOUND);
  }, 120_000);

  it("still imports a SAZ whose entries are within the bound, and leaves out an oversized response with a note", async () => {
    const file = join(dir, "ok.saz");
    const line = JSON.stringify({ ver: "4.0", name: "Office.Test.Event", time: "2026-11-24T08:00:00.000Z", data: { ok: true } });
    await writeSaz(file, [
      {
        requestLine: "POST https://mobile.events.data.microsoft.com/OneCollector/1.0/ HTTP/1.1",
        requestHeaders: [
          ["Host", "mobile.events.data.microsoft.com"],
          ["Content-Type", "application/x-json-stream"],
        ],
        requestBody: `${line}\n`,
        status: 200,
        responseBody: "z".repeat(3 * MB),
      },
    ]);
    const r = runCli(["import", file, "--db", join(dir, "ok.db"), "--max-body", String(MB), "--json"]);
    expect(r.status, r.stderr).toBe(0);
    const summary = JSON.parse(r.stdout) as { exchanges: number; events: number; notes: string[] };
    expect(summary).toMatchObject({ exchanges: 1, events: 1 });
    expect(summary.notes.join(" ")).toMatch(/session 1: response left out \(raw\/01_s\.txt declares \d+ bytes/);
  });
});

describe("JSON and line formats", () => {
  it("refuses a HAR whose body string is longer than the limit while it streams in", () => {
    const file = join(dir, "big.har");
    writeFileSync(
      file,
      JSON.stringify({
        log: {
          version: "1.2",
          entries: [
            {
              startedDateTime: "2026-11-24T08:00:00.000Z",
              request: {
                method: "POST",
                url: "https://mobile.events.data.microsoft.com/OneCollector/1.0/",
                headers: [],
                postData: { mimeType: "text/plain", text: "q".repeat(3 * MB) },
              },
              response: { status: 200, headers: [], content: { text: "" } },
            },
          ],
        },
      }),
    );
    expectOneLineFormatError(
      runCli(["import", file, "--db", join(dir, "har.db"), "--max-body", String(MB)]),
      /a JSON string is longer than \d+ characters/,
    );

    // No string is long, but one entry is too much to hold: a hundred thousand headers.
    const headers = Array.from({ length: 100_000 }, (_, i) => ({ name: `x-h${i}`, value: "v" }));
    writeFileSync(
      file,
      JSON.stringify({
        log: {
          entries: [
            {
              startedDateTime: "2026-11-24T08:00:00.000Z",
              request: { method: "POST", url: "https://h.example/", headers },
              response: { status: 200 },
            },
          ],
        },
      }),
    );
    expectOneLineFormatError(
      runCli(["import", file, "--db", join(dir, "har.db"), "--max-body", "100000"]),
      /one item holds more than 1448576 bytes of JSON/,
    );
  });

  it("refuses exhaust JSONL with a line longer than the limit, and Get-DiagnosticData JSON with an oversized payload", () => {
    const jsonl = join(dir, "long.jsonl");
    const record = (value: string) =>
      JSON.stringify({ exchange: "x", event: { name: "E", time: "2026-11-24T08:00:00.000Z" }, fields: [{ part: "C", path: "a", value }] });
    writeFileSync(jsonl, `${record("short")}\n${record("v".repeat(3 * MB))}\n`);
    expectOneLineFormatError(
      runCli(["import", jsonl, "--db", join(dir, "jsonl.db"), "--max-body", String(MB)]),
      /a line is longer than \d+ bytes/,
    );

    const gdd = join(dir, "gdd.json");
    writeFileSync(
      gdd,
      JSON.stringify([
        {
          Name: "Huge.Event",
          Timestamp: "2026-11-24T08:00:00Z",
          Payload: { name: "Huge.Event", data: Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`f${i}`, "w".repeat(64 * 1024)])) },
        },
      ]),
    );
    expectOneLineFormatError(
      runCli(["import", gdd, "--db", join(dir, "gdd.db"), "--max-body", String(MB)]),
      /the payload of Huge\.Event is \d+ bytes, above the import limit of 1048576 bytes/,
    );
  });
});
