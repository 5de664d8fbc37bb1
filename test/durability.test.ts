/**
 * Issue 12: nothing acknowledged is ever lost. Child processes and real SQLite files throughout:
 * the proxy is `exhaust proxy` (bin/exhaust.js), the outside client a stock SQLite library in a
 * process of its own, faults are real (SIGKILL, a full filesystem, a held lock, deleted files).
 */
import { afterAll, describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmSync, statfsSync, unlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { httpsThroughProxy } from "./helpers/client.js";
import { runCli, spawnProxy, waitExit, type ProxyProcess } from "./helpers/cli.js";
import {
  checkStore,
  COLLECTOR,
  lostAcknowledged,
  outsideClient,
  sendUploads,
  sha256,
  uniqueUpload,
  type UploadResult,
} from "./helpers/durability.js";
import { eventually, startTestProxy, tempDir } from "./helpers/proxy.js";

const dirs: string[] = [];
function workDir(): string {
  const d = tempDir("exhaust-durability-");
  dirs.push(d);
  return d;
}
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function proxyArgs(dir: string, dbFile: string, session: string): string[] {
  return ["--db", dbFile, "--certs", join(dir, "certs"), "--session", session, "--mode", "sinkhole"];
}

const acked = (rs: UploadResult[]) => rs.filter((r) => r.status === 200);

describe("an outside SQLite client on the live database", () => {
  for (const hold of [false, true]) {
    it(`costs no capture when the proxy is killed (client ${hold ? "still open during the kill" : "opened and closed before"})`, async () => {
      const dir = workDir();
      const dbFile = join(dir, "exhaust.db");
      const proxy = await spawnProxy(proxyArgs(dir, dbFile, "outside"));
      const ca = readFileSync(join(dir, "certs", "exhaust-ca.pem"), "utf8");
      const first = await sendUploads(proxy.port, ca, 20);
      expect(acked(first)).toHaveLength(20);

      // A researcher opens the live database read-write: writes, reads, and closes (or keeps it open).
      const client = outsideClient(
        dbFile,
        [
          "CREATE TABLE IF NOT EXISTS researcher_notes (id INTEGER PRIMARY KEY, note TEXT)",
          "INSERT INTO researcher_notes (note) VALUES ('looked at the capture')",
          "SELECT COUNT(*) FROM exchanges",
        ],
        hold,
      );
      const [seen] = (await client.result) as [number];
      expect(seen).toBeGreaterThanOrEqual(20);
      if (!hold) await client.close();

      // 200 more; the kill comes while the last ones are in flight.
      let killed = false;
      const second = await sendUploads(proxy.port, ca, 200, {
        onAnswer: (_r, all) => {
          if (!killed && acked(all).length >= 190) {
            killed = true;
            proxy.child.kill("SIGKILL");
          }
        },
      });
      await waitExit(proxy.child);
      expect(killed).toBe(true);

      const all = [...first, ...second];
      const check = checkStore(dbFile, "outside");
      if (hold) await client.close();
      expect(lostAcknowledged(all, check.stored)).toEqual([]);
      expect(acked(all).length).toBeGreaterThanOrEqual(210);
      expect(check.chainProblems).toEqual([]);
      // After the outside client closed too (it may be the last connection: it checkpoints).
      const after = checkStore(dbFile, "outside");
      expect(lostAcknowledged(all, after.stored)).toEqual([]);
      expect(after.chainProblems).toEqual([]);
      expect(after.exchanges).toBe(check.exchanges);
      // The researcher's own write is there too.
      const notes = outsideClient(dbFile, ["SELECT COUNT(*) FROM researcher_notes"], false);
      expect(await notes.result).toEqual([1]);
      await notes.close();
    });
  }
});

describe("the database path is honest", () => {
  it("a read command on a missing database creates nothing and exits 2 with EXH_DB_NOT_FOUND", () => {
    const dir = workDir();
    for (const command of [["sessions"], ["events"], ["verify", "--profile", "no-content"], ["export", "--format", "jsonl", "--out", join(dir, "out.jsonl")]]) {
      const r = runCli([...command, "--db", join(dir, "nowhere", "missing.db")]);
      expect(r.status, command[0]).toBe(2);
      expect(r.stderr).toMatch(/^exhaust: no database at .*missing\.db.*\[EXH_DB_NOT_FOUND\]\n$/);
    }
    const here = runCli(["sessions", "--db", "missing.db"], dir);
    expect(here.status).toBe(2);
    expect(existsSync(join(dir, "nowhere"))).toBe(false);
    expect(existsSync(join(dir, "missing.db"))).toBe(false);
  });

  it("a corrupt or non-SQLite file exits 2 with EXH_DB_OPEN on one line, no stack trace", () => {
    const dir = workDir();
    const bad = join(dir, "bad.db");
    writeFileSync(bad, Buffer.concat([Buffer.from("this is not a database\n"), Buffer.alloc(8192, 0x5a)]));
    for (const command of [["sessions"], ["events"], ["reprocess", "--all"]]) {
      const r = runCli([...command, "--db", bad]);
      expect(r.status, command[0]).toBe(2);
      expect(r.stderr).toMatch(/^exhaust: cannot open database .*bad\.db: file is not a database \[EXH_DB_OPEN\]\n$/);
      expect(r.stderr).not.toMatch(/\n\s+at /);
    }
    // Nothing was made beside it either.
    expect(existsSync(`${bad}-wal`)).toBe(false);
  });

  it("the default database is the same from any working directory (EXHAUST_DB, else captures/ in the package)", () => {
    const dir = workDir();
    const env = { ...process.env, EXHAUST_DB: join(dir, "env.db") };
    const a = spawnSync(process.execPath, [join(process.cwd(), "bin", "exhaust.js"), "sessions"], { cwd: dir, env, encoding: "utf8" });
    expect(a.status).toBe(2);
    expect(a.stderr).toContain(join(dir, "env.db"));
    mkdirSync(join(dir, "sub"));
    const b = spawnSync(process.execPath, [join(process.cwd(), "bin", "exhaust.js"), "sessions"], { cwd: join(dir, "sub"), env, encoding: "utf8" });
    expect(b.stderr).toBe(a.stderr);
    // Without EXHAUST_DB: captures/exhaust.db of the package, whatever the working directory.
    const { EXHAUST_DB: _, ...plain } = process.env;
    const c = spawnSync(process.execPath, [join(process.cwd(), "bin", "exhaust.js"), "sessions", "--json"], { cwd: dir, env: plain, encoding: "utf8" });
    const d = spawnSync(process.execPath, [join(process.cwd(), "bin", "exhaust.js"), "sessions", "--json"], { cwd: join(dir, "sub"), env: plain, encoding: "utf8" });
    expect([c.status, c.stdout, c.stderr]).toEqual([d.status, d.stdout, d.stderr]);
    if (c.status === 2) expect(c.stderr).toContain(join(process.cwd(), "captures", "exhaust.db"));
    expect(existsSync(join(dir, "captures"))).toBe(false);
  });
});
