import { describe, expect, it } from "vitest";
import { X509Certificate } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import net from "node:net";
import { join } from "node:path";
import { httpsThroughProxy } from "./helpers/client.js";
import { runCli, spawnProxy, waitExit } from "./helpers/cli.js";
import { tempDir } from "./helpers/proxy.js";

describe("exhaust ca", () => {
  const dir = tempDir();
  const certs = join(dir, "certs");

  it("init creates a name-constrained CA with a private key and prints its fingerprint", () => {
    const r = runCli(["ca", "init", "--certs", certs]);
    expect(r.status).toBe(0);
    expect(statSync(join(certs, "exhaust-ca.key")).mode & 0o777).toBe(0o600);
    const cert = new X509Certificate(readFileSync(join(certs, "exhaust-ca.pem")));
    expect(r.stdout).toContain(cert.fingerprint256);
    expect(r.stdout).toMatch(/constraints {2}only .*events\.data\.microsoft\.com|constraints {2}only .*data\.microsoft\.com/);
  });

  it("refuses to overwrite without --force (exit 2), replaces with it", () => {
    const before = readFileSync(join(certs, "exhaust-ca.pem"), "utf8");
    const again = runCli(["ca", "init", "--certs", certs]);
    expect(again.status).toBe(2);
    expect(again.stderr).toMatch(/already exists.*--force/);
    expect(runCli(["ca", "init", "--certs", certs, "--force", "--unconstrained"]).status).toBe(0);
    expect(readFileSync(join(certs, "exhaust-ca.pem"), "utf8")).not.toBe(before);
  });

  it("show --json reports the fingerprint and constraint state", () => {
    const r = runCli(["ca", "show", "--certs", certs, "--json"]);
    expect(r.status).toBe(0);
    const shown = JSON.parse(r.stdout);
    expect(shown.fingerprint256).toBe(new X509Certificate(readFileSync(join(certs, "exhaust-ca.pem"))).fingerprint256);
    expect(shown.constrained).toBe(false);
  });

  it("export writes PEM or DER of the certificate and never the key", () => {
    const pem = runCli(["ca", "export", "--certs", certs]);
    expect(pem.stdout).toMatch(/^-----BEGIN CERTIFICATE-----/);
    expect(pem.stdout).not.toMatch(/PRIVATE KEY/);
    const out = join(dir, "ca.der");
    expect(runCli(["ca", "export", "--certs", certs, "--format", "der", "--out", out]).status).toBe(0);
    expect(new X509Certificate(readFileSync(out)).fingerprint256).toBe(new X509Certificate(pem.stdout).fingerprint256);
    expect(runCli(["ca", "export", "--certs", certs, "--format", "p12"]).status).toBe(2);
  });

  it("ca export refuses an existing --out without --force, and replaces it with --force", () => {
    const out = join(dir, "again.pem");
    writeFileSync(out, "keep me");
    const refused = runCli(["ca", "export", "--certs", certs, "--out", out]);
    expect(refused.status).toBe(2);
    expect(refused.stderr.trim().split("\n")).toHaveLength(1);
    expect(refused.stderr).toMatch(/again\.pem already exists.*--force.*\[EXH_EXPORT_OUT_EXISTS\]/);
    expect(readFileSync(out, "utf8")).toBe("keep me");
    expect(runCli(["ca", "export", "--certs", certs, "--out", out, "--force"]).status).toBe(0);
    expect(readFileSync(out, "utf8")).toMatch(/^-----BEGIN CERTIFICATE-----/);
    // A directory, even an empty one, is not a file to write: refused the same way, no stack trace.
    const emptyDir = join(dir, "empty-dir");
    mkdirSync(emptyDir);
    const onDir = runCli(["ca", "export", "--certs", certs, "--out", emptyDir, "--force"]);
    expect(onDir.status).toBe(2);
    expect(onDir.stderr.trim().split("\n")).toHaveLength(1);
    expect(onDir.stderr).toContain("[EXH_EXPORT_OUT_EXISTS]");
  });

  it("show without a CA says how to make one (exit 2)", () => {
    const r = runCli(["ca", "show", "--certs", join(dir, "nowhere")]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/exhaust ca init/);
  });
});

describe("an explicit --certs without a CA", () => {
  it("is refused by proxy and export (one line, exit 2, nothing created) unless proxy --init-ca", () => {
    const dir = tempDir();
    const typo = join(dir, "cert");
    const proxy = runCli(["proxy", "--db", join(dir, "x.db"), "--certs", typo, "--mode", "sinkhole"]);
    expect(proxy.status).toBe(2);
    expect(proxy.stderr.trim().split("\n")).toHaveLength(1);
    expect(proxy.stderr).toMatch(/--certs .*cert holds no CA .*exhaust ca init --certs .*\[EXH_CERTS_NO_CA\]/);
    const exported = runCli(["export", "--format", "jsonl", "--db", join(dir, "x.db"), "--certs", typo, "--out", join(dir, "x.jsonl")]);
    expect(exported.status).toBe(2);
    expect(exported.stderr).toMatch(/\[EXH_CERTS_NO_CA\]/);
    expect(existsSync(typo)).toBe(false);
    expect(existsSync(join(dir, "x.db"))).toBe(false);
  });

  it("does not stop the default ./certs from being created on first run, nor proxy --init-ca", async () => {
    const dir = tempDir();
    const first = await spawnProxy(["--db", join(dir, "x.db"), "--mode", "sinkhole"], dir, { initCa: false });
    expect(existsSync(join(dir, "certs", "exhaust-ca.pem"))).toBe(true);
    first.child.kill("SIGTERM");
    await waitExit(first.child);
    const asked = await spawnProxy(["--db", join(dir, "y.db"), "--certs", join(dir, "lab-certs"), "--mode", "sinkhole"]);
    expect(existsSync(join(dir, "lab-certs", "exhaust-ca.pem"))).toBe(true);
    asked.child.kill("SIGTERM");
    await waitExit(asked.child);
    // Once the CA exists, the explicit directory needs no flag.
    const again = await spawnProxy(["--db", join(dir, "y.db"), "--certs", join(dir, "lab-certs"), "--mode", "sinkhole"], undefined, {
      initCa: false,
    });
    again.child.kill("SIGTERM");
    await waitExit(again.child);
  }, 60_000);
});

describe("exhaust proxy and sessions", () => {
  it("captures into a private database and lists the session with its counts", async () => {
    const dir = tempDir();
    const db = join(dir, "captures", "lab.db");
    const proxy = await spawnProxy(["--db", db, "--certs", join(dir, "certs"), "--session", "baseline", "--mode", "sinkhole"]);
    const ca = readFileSync(join(dir, "certs", "exhaust-ca.pem"), "utf8");
    for (let i = 0; i < 3; i++) {
      const res = await httpsThroughProxy({
        proxyPort: proxy.port,
        host: "self.events.data.microsoft.com",
        path: "/OneCollector/1.0/",
        body: "{}\n",
        ca: [ca],
      });
      expect(res.status).toBe(200);
    }
    proxy.child.kill("SIGTERM");
    await waitExit(proxy.child);
    expect(proxy.stderr()).toMatch(/"msg":"stopped"/);
    for (const f of [db, `${db}-wal`, `${db}-shm`].filter(existsSync)) expect(statSync(f).mode & 0o777).toBe(0o600);

    const list = runCli(["sessions", "--db", db, "--json"]);
    expect(list.status).toBe(0);
    const [session] = JSON.parse(list.stdout);
    expect(session).toMatchObject({ name: "baseline", exchanges: 3, connections: 3, requestBytes: 9 });
    expect(session.endedAt).toBeGreaterThan(session.startedAt);
    const table = runCli(["sessions", "--db", db]);
    expect(table.stdout.split("\n")[0]).toMatch(/^SESSION\s+STARTED\s+EXCH/);
    expect(table.stdout).toMatch(/baseline .* 3 +3 /);
  });

  it("leaves no empty session behind when the proxy cannot start", async () => {
    const dir = tempDir();
    const db = join(dir, "x.db");
    const busy = net.createServer();
    await new Promise<void>((r) => busy.listen(0, "127.0.0.1", r));
    const port = (busy.address() as net.AddressInfo).port;
    const r = runCli([
      "proxy",
      "--listen",
      `127.0.0.1:${port}`,
      "--db",
      db,
      "--certs",
      join(dir, "certs"),
      "--init-ca",
      "--session",
      "doomed",
    ]);
    busy.close();
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(new RegExp(`cannot listen on 127\\.0\\.0\\.1:${port}`));
    expect(JSON.parse(runCli(["sessions", "--db", db, "--json"]).stdout)).toEqual([]);
  });
});
