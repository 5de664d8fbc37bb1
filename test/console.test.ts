import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { CONSOLE_LINE, formatSize, stripAnsi } from "../src/cli/console.js";
import { demoCorpus, type DemoUpload } from "../src/demo/corpus.js";
import { PACKAGE_ROOT } from "../src/paths.js";
import { EXHAUST_BIN, freePort, runCli, spawnProxy, waitExit } from "./helpers/cli.js";
import { httpsThroughProxy } from "./helpers/client.js";
import { eventually, tempDir } from "./helpers/proxy.js";

const DOC = readFileSync(join(PACKAGE_ROOT, "docs", "console.md"), "utf8");

/** The regex docs/console.md documents (the code block after its marker). */
function documentedLine(): RegExp {
  const m = /<!-- console-line-regex -->\s*```\n(.*)\n```/.exec(DOC);
  if (!m) throw new Error("docs/console.md has no console-line-regex block");
  return new RegExp(m[1]);
}

/** The JSON fields docs/console.md marks with `*`, per line (by msg or module). */
function documentedJsonFields(): Map<string, string[]> {
  const table = DOC.slice(DOC.indexOf("<!-- json-fields -->"));
  const rows = new Map<string, string[]>();
  for (const line of table.split("\n")) {
    const m = /^\| `(?:module: )?([^`]+)` \| (.*) \|$/.exec(line);
    if (!m) continue;
    rows.set(
      m[1],
      [...m[2].matchAll(/`(\w+)`\*/g)].map((x) => x[1]),
    );
  }
  return rows;
}

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function startHuman(
  dir: string,
  extra: string[] = [],
  listen = "127.0.0.1:0",
): { child: ChildProcess; out: () => string; err: () => string } {
  const child = spawn(
    process.execPath,
    [
      EXHAUST_BIN,
      "proxy",
      "--listen",
      listen,
      "--mode",
      "sinkhole",
      "--db",
      join(dir, "c.db"),
      "--certs",
      join(dir, "certs"),
      "--init-ca",
      "--session",
      "console",
      ...extra,
    ],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  let out = "";
  let err = "";
  child.stdout.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr.on("data", (d: Buffer) => (err += d.toString()));
  return { child, out: () => out, err: () => err };
}

const send = (port: number, caPem: string, u: DemoUpload) =>
  httpsThroughProxy({
    proxyPort: port,
    host: u.host,
    path: `${u.path}?cors=true&client-id=NO_AUTH`,
    headers: u.headers,
    body: u.body,
    ca: [caPem],
  });

describe("the proxy's console", () => {
  it("documents the pattern the code prints", () => {
    expect(documentedLine().source).toBe(CONSOLE_LINE.source);
  });

  it("prints a banner with the bound address, CA file and fingerprint, then one documented line per decoded exchange", async () => {
    const dir = tempDir("exhaust-console-");
    dirs.push(dir);
    const p = startHuman(dir, ["--log-format", "human"]);
    try {
      const port = Number((await eventually(() => /proxy listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(p.out()), 20_000))[1]);
      expect(port).toBeGreaterThan(0);
      const certFile = join(dir, "certs", "exhaust-ca.pem");
      const shown = JSON.parse(runCli(["ca", "show", "--json", "--certs", join(dir, "certs")]).stdout) as { fingerprint256: string };
      expect(p.out()).toContain(`CA        ${certFile}`);
      expect(p.out()).toContain(`SHA-256   ${shown.fingerprint256}`);
      expect(p.out()).toMatch(/Windows: certutil .*\n.*macOS: .*\n.*Linux: .*\n.*exhaust ca trust-help/);
      expect(p.out()).toContain(`database  ${join(dir, "c.db")}, session console`);
      expect(p.out()).toContain("mode      sinkhole (intercept catalog)");
      const caPem = readFileSync(certFile, "utf8");
      const corpus = demoCorpus();
      const byFile = new Map(corpus.map((u) => [u.file, u]));
      const sent = ["01-essential.jsonl", "03-content.jsonl", "04-bond-deflate.bin"].map((f) => byFile.get(f)!);
      for (const u of sent) expect((await send(port, caPem, u)).status).toBe(200);
      const regex = documentedLine();
      const lines = () =>
        stripAnsi(p.out())
          .split("\n")
          .map((l) => regex.exec(l))
          .filter((m): m is RegExpExecArray => m !== null);
      await eventually(() => lines().length >= sent.length, 20_000);
      p.child.kill("SIGTERM");
      await waitExit(p.child);
      expect(p.child.exitCode).toBe(0);
      const found = lines();
      expect(found).toHaveLength(sent.length);
      // No query string, ever; the client, status and size as sent.
      for (const m of found) {
        expect(m[2]).toBe("127.0.0.1");
        expect(m[3]).toBe("POST");
        expect(m[5]).toBe("/OneCollector/1.0/");
        expect(m[6]).toBe("200");
      }
      const line = (u: DemoUpload) => found.find((m) => m[4] === u.host && m[7] === formatSize(u.body.length))!;
      expect(line(sent[0])).toBeDefined();
      expect([line(sent[0])[8], line(sent[0])[9]]).toEqual(["2", "0"]);
      expect(line(sent[1])[8]).toBe("1");
      expect(Number(line(sent[1])[9])).toBeGreaterThan(0);
      expect(line(sent[2])[8]).toBe("1");
      expect(Number(line(sent[2])[9])).toBeGreaterThan(0);
      // Human form: no JSON on stderr.
      expect(p.err()).not.toMatch(/^\{"level"/m);
    } finally {
      if (p.child.exitCode === null) p.child.kill("SIGKILL");
    }
  }, 60_000);

  it("--log-format json keeps pino lines carrying the fields the docs list", async () => {
    const dir = tempDir("exhaust-console-json-");
    dirs.push(dir);
    const p = await spawnProxy(["--mode", "sinkhole", "--db", join(dir, "c.db"), "--certs", join(dir, "certs"), "--log-format", "json"]);
    const caPem = readFileSync(join(dir, "certs", "exhaust-ca.pem"), "utf8");
    expect((await send(p.port, caPem, demoCorpus()[0])).status).toBe(200);
    await eventually(() => p.stderr().includes('"module":"exchange"'), 10_000);
    p.child.kill("SIGTERM");
    await waitExit(p.child);
    const objects = p
      .stderr()
      .split("\n")
      .filter((l) => l.startsWith("{"))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    const documented = documentedJsonFields();
    expect([...documented.keys()]).toEqual(expect.arrayContaining(["proxy listening", "capturing", "exchange"]));
    for (const [key, fields] of documented) {
      if (fields.length === 0) continue;
      const line = objects.find((o) => o.msg === key || o.module === key);
      expect(line, `a "${key}" line`).toBeDefined();
      for (const f of fields) expect(line, `${key}.${f}`).toHaveProperty(f);
    }
    // The bound port, not the asked-for 0.
    expect(objects.find((o) => o.msg === "proxy listening")!.listen).toBe(`127.0.0.1:${p.port}`);
  }, 60_000);

  it("--quiet prints no banner and no exchange lines", async () => {
    const dir = tempDir("exhaust-console-quiet-");
    dirs.push(dir);
    const port = await freePort();
    const p = startHuman(dir, ["--log-format", "human", "--quiet"], `127.0.0.1:${port}`);
    try {
      const caFile = join(dir, "certs", "exhaust-ca.pem");
      const u = demoCorpus()[0];
      // No banner says when it listens: try until it answers.
      let status: number | undefined;
      for (const until = Date.now() + 20_000; status === undefined;) {
        try {
          status = (await send(port, readFileSync(caFile, "utf8"), u)).status;
        } catch (e) {
          if (Date.now() > until) throw e;
          await new Promise((r) => setTimeout(r, 100));
        }
      }
      expect(status).toBe(200);
      p.child.kill("SIGTERM");
      await waitExit(p.child);
      expect(p.out()).toBe("");
    } finally {
      if (p.child.exitCode === null) p.child.kill("SIGKILL");
    }
  }, 60_000);
});

describe("exhaust ui's log", () => {
  it("names the address actually bound (0.0.0.0), never only 127.0.0.1", async () => {
    const dir = tempDir("exhaust-ui-listen-");
    dirs.push(dir);
    const dbFile = join(dir, "ui.db");
    const { openDatabase } = await import("../src/store/database.js");
    openDatabase(dbFile).close();
    const child = spawn(process.execPath, [EXHAUST_BIN, "ui", "--db", dbFile, "--listen", "0.0.0.0:0"], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    let err = "";
    child.stderr.on("data", (d: Buffer) => (err += d.toString()));
    try {
      const line = await eventually(() => err.split("\n").find((l) => l.includes('"ui listening"')), 20_000);
      expect((JSON.parse(line) as { listen: string }).listen).toMatch(/^0\.0\.0\.0:\d+$/);
      expect(err).not.toMatch(/"msg":"Server listening at http:\/\/127\.0\.0\.1/);
    } finally {
      child.kill("SIGTERM");
      await waitExit(child);
    }
  }, 30_000);
});

describe("exhaust ca trust-help", () => {
  it("prints per-OS instructions for the CA in --certs with its fingerprint, and refuses a directory without a CA", () => {
    const dir = tempDir("exhaust-trust-help-");
    dirs.push(dir);
    const certs = join(dir, "certs");
    expect(runCli(["ca", "init", "--certs", certs]).status).toBe(0);
    const shown = JSON.parse(runCli(["ca", "show", "--json", "--certs", certs]).stdout) as { fingerprint256: string };
    const r = runCli(["ca", "trust-help", "--certs", certs]);
    expect(r.status).toBe(0);
    const file = join(certs, "exhaust-ca.pem");
    expect(r.stdout).toContain(`certutil -addstore -f Root ${file}`);
    expect(r.stdout).toContain(`add-trusted-cert -d -r trustRoot -k /Library/Keychains/System.keychain ${file}`);
    expect(r.stdout).toContain(`sudo cp ${file} /usr/local/share/ca-certificates/exhaust.crt`);
    expect(r.stdout).toContain(`fingerprint SHA-256 ${shown.fingerprint256}`);
    const missing = runCli(["ca", "trust-help", "--certs", join(dir, "typo")]);
    expect(missing.status).toBe(2);
    expect(missing.stderr).toMatch(/EXH_CA_MISSING/);
  });
});
