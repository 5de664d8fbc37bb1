/**
 * Issue 14: evidence an auditor can trust. A real capture through the real proxy (a CLI child,
 * stopped with SIGINT so it writes its stop checkpoint), then bundles checked against the lab's CA
 * (--ca / --fingerprint) and the notebook head (--head), forged and cut bundles, credentials followed
 * into bodies and fields of every output, and private file modes under umask 000.
 */
import { spawnSync } from "node:child_process";
import { createHash, createPrivateKey, sign, X509Certificate } from "node:crypto";
import { cpSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";
import { gunzipSync, gzipSync } from "node:zlib";
import Database from "better-sqlite3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { exchangeChainHash } from "../src/store/chain.js";
import { exchangesOfSession } from "../src/store/exchanges.js";
import { checkpointSignatureValid } from "../src/capture/checkpoint.js";
import { openBundle } from "../src/evidence/source.js";
import { createLogger, isSecretHeader, isSecretJsonKey } from "../src/log.js";
import { secretNames } from "../src/secrets.js";
import { credentialForms } from "../src/export/secret-values.js";
import { normaliseFingerprint, parseHead } from "../src/evidence/verify.js";
import { startUiServer } from "../src/web/server.js";
import { httpsThroughProxy } from "./helpers/client.js";
import { EXHAUST_BIN, runCli, spawnProxy, waitExit } from "./helpers/cli.js";
import { renderJsonEvent } from "./helpers/json-events.js";
import { eventually, tempDir } from "./helpers/proxy.js";
import { Writable } from "node:stream";
import { mkdirSync } from "node:fs";

const BEARER = "eyJhbGciOiJSUzI1NiJ9.bearer-secret-4f3e2d1c0b9a";
const TICKET = "EwBwAe+ticket/secret=value-7a6b5c4d3e2f";
const ACCESS = "ya29.access/token+secret-0011223344556677";
const XAUTH = "xauth-secret-token-8899aabbccddeeff";
const PLANTED = { BEARER, TICKET, ACCESS, XAUTH };
const HOST = "mobile.events.data.microsoft.com";

let dir: string;
let db: string;
let certs: string;
let caPem: string;
let proxyLog: string;
let stop: { seq: number; head: string };
const out = (name: string) => join(dir, "out", name);

const event = (name: string, data: Record<string, string>) => renderJsonEvent({ name, time: "2026-12-03T08:00:00.000Z", data });

async function capture(): Promise<void> {
  const p = await spawnProxy(["--db", db, "--certs", certs, "--session", "lab", "--mode", "sinkhole"]);
  caPem = readFileSync(join(certs, "exhaust-ca.pem"), "utf8");
  const json = { "Content-Type": "application/x-json-stream" };
  const uploads = [
    {
      // Every credential in headers and the query string; the bearer token again inside a decoded JSON field.
      path: `/OneCollector/1.0/?cors=true&access_token=${encodeURIComponent(ACCESS)}`,
      headers: { ...json, Authorization: `Bearer ${BEARER}`, Tickets: `"1":"t=${TICKET}"`, "X-Auth-Token": XAUTH },
      body: Buffer.from(`${event("Office.Test.Plain", { "Data.Note": `seen ${BEARER} here` })}\n`),
    },
    {
      // Gzipped, as the 1DS SDKs send it: the ticket and the X-Auth-Token value inside decoded fields.
      path: "/OneCollector/1.0/",
      headers: { ...json, "Content-Encoding": "gzip" },
      body: gzipSync(`${event("Office.Test.Gzip", { "Data.Ticket": TICKET, "Data.Other": XAUTH })}\n`),
    },
    { path: "/OneCollector/1.0/", headers: { "Content-Type": "text/plain" }, body: Buffer.from(BEARER) },
    {
      path: "/OneCollector/1.0/",
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
      body: Buffer.from(`a=1&t=${encodeURIComponent(ACCESS)}&x=${encodeURIComponent(TICKET)}`),
    },
    {
      path: "/OneCollector/1.0/",
      headers: json,
      body: Buffer.from(`${event("Office.Test.Benign", { "Data.Value": "nothing secret" })}\n`),
    },
  ];
  for (const u of uploads) {
    const r = await httpsThroughProxy({ proxyPort: p.port, host: HOST, method: "POST", ...u, ca: [caPem] });
    expect(r.status).toBeLessThan(500);
  }
  // Decoding runs on its own thread: wait until every upload is decoded before stopping.
  const probe = new Database(db, { readonly: true });
  try {
    await eventually(
      () => (probe.prepare("SELECT COUNT(*) FROM exchanges WHERE decoder IS NOT NULL").pluck().get() as number) === uploads.length,
      20_000,
    );
  } finally {
    probe.close();
  }
  p.child.kill("SIGINT");
  await waitExit(p.child);
  proxyLog = p.stderr();
  const m =
    /checkpoint session lab: seq (\d+) head ([0-9a-f]{64}) at \S+, signed by CA SHA-256 ([0-9A-F:]+); verify a bundle with --head \2@\1/.exec(
      proxyLog,
    );
  expect(m, proxyLog).not.toBeNull();
  stop = { seq: Number(m![1]), head: m![2] };
  expect(stop.seq).toBe(uploads.length);
}

const exportTo = (format: string, name: string, ...extra: string[]) => {
  const r = runCli(["export", "--format", format, "--db", db, "--certs", certs, "--session", "lab", "--out", out(name), ...extra]);
  expect(r.stderr).toBe("");
  expect(r.status).toBe(0);
  return { path: out(name), stdout: r.stdout };
};

/** A copy of the capture database, changed by `tamper` (foreign keys off, as someone editing it by hand). */
function tamperedCopy(name: string, tamper: (d: Database.Database) => void): string {
  const copy = join(dir, name);
  const src = new Database(db, { readonly: true });
  src.prepare("VACUUM INTO ?").run(copy);
  src.close();
  const d = new Database(copy);
  d.pragma("foreign_keys = OFF");
  tamper(d);
  d.close();
  return copy;
}

const filesOf = (root: string, d = root): string[] =>
  readdirSync(d, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? filesOf(root, join(d, e.name)) : [relative(root, join(d, e.name))],
  );

/** Which planted secrets the bytes hold: as they are, URL-encoded, and inside any gzip (whole, or base64 in text). */
function leaks(bytes: Buffer, where: string, found: string[] = []): string[] {
  for (const [name, v] of Object.entries(PLANTED)) {
    for (const form of [v, encodeURIComponent(v)]) if (bytes.includes(form)) found.push(`${name} in ${where}`);
  }
  if (bytes[0] === 0x1f && bytes[1] === 0x8b) leaks(gunzipSync(bytes), `${where} (gunzipped)`, found);
  for (const m of bytes.toString("latin1").matchAll(/H4sI[A-Za-z0-9+/]+={0,2}/g)) {
    leaks(gunzipSync(Buffer.from(m[0], "base64")), `${where} (base64 gzip)`, found);
  }
  return found;
}

beforeAll(async () => {
  dir = tempDir("exhaust-evidence-");
  db = join(dir, "exhaust.db");
  certs = join(dir, "certs");
  mkdirSync(join(dir, "out"));
  await capture();
}, 120_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("trust anchors and checkpoints", () => {
  let genuine: string;
  let genuineSecrets: string;
  beforeAll(() => {
    genuine = exportTo("bundle", "genuine").path;
    genuineSecrets = exportTo("bundle", "genuine-secrets", "--include-secrets").path;
  }, 60_000);

  it("a genuine bundle verifies against the capture CA (--ca PEM or DER, --fingerprint in any spelling) and its stop checkpoint", () => {
    const r = runCli(["bundle", "verify", genuine, "--ca", join(certs, "exhaust-ca.pem"), "--head", `${stop.head}@${stop.seq}`]);
    expect(r.status, r.stdout).toBe(0);
    expect(r.stdout).toMatch(/ok\s+anchor/);
    expect(r.stdout).toMatch(/ok\s+capture-ca/);
    expect(r.stdout).toMatch(/ok\s+checkpoints\s+1 signed checkpoint/);
    expect(r.stdout).toMatch(new RegExp(`ok\\s+head\\s+head ${stop.head}@${stop.seq} is in the chain`));
    const json = JSON.parse(runCli(["bundle", "verify", genuine, "--ca", join(certs, "exhaust-ca.pem"), "--json"]).stdout);
    expect(json.status).toBe("verified");

    const der = join(dir, "ca.der");
    expect(runCli(["ca", "export", "--certs", certs, "--format", "der", "--out", der]).status).toBe(0);
    expect(runCli(["bundle", "verify", genuineSecrets, "--ca", der]).status).toBe(0);
    const fp = JSON.parse(runCli(["ca", "show", "--certs", certs, "--json"]).stdout).fingerprint256 as string;
    expect(runCli(["bundle", "verify", genuine, "--fingerprint", fp.replace(/:/g, "").toLowerCase()]).status).toBe(0);
    expect(runCli(["bundle", "verify", genuine, "--fingerprint", fp]).status).toBe(0);
    expect(runCli(["bundle", "verify", genuine, "--fingerprint", "12:34"]).status).toBe(2);
  });

  it("without an anchor: consistent, signer not anchored; distinct JSON status and exit 4", () => {
    const r = runCli(["bundle", "verify", genuine]);
    expect(r.status).toBe(4);
    expect(r.stdout).toContain("consistent, signer not anchored (signer not checked against a trusted CA)");
    expect(r.stdout).not.toMatch(/\bverifies\b|verified against/);
    const json = JSON.parse(runCli(["bundle", "verify", genuine, "--json"]).stdout);
    expect(json.status).toBe("consistent-unanchored");
    expect(json.warning).toContain("consistent, signer not anchored");
  });

  it("a bundle exported from the same database under another CA fails, naming the signer and the anchor", () => {
    const other = join(dir, "other-certs");
    expect(runCli(["ca", "init", "--certs", other]).status).toBe(0);
    const otherFp = new X509Certificate(readFileSync(join(other, "exhaust-ca.pem"))).fingerprint256;
    const labFp = new X509Certificate(caPem).fingerprint256;
    const bundle = out("other-ca");
    expect(runCli(["export", "--format", "bundle", "--db", db, "--certs", other, "--session", "lab", "--out", bundle]).status).toBe(0);
    const r = runCli(["bundle", "verify", bundle, "--ca", join(certs, "exhaust-ca.pem")]);
    expect(r.status).toBe(1);
    expect(r.stdout).toMatch(/FAIL\s+anchor\s+the bundle is signed by CN=exhaust evidence signing/);
    expect(r.stdout).toContain(`under CA SHA-256 ${otherFp}, not under the trusted CA SHA-256 ${labFp}`);
    // Even without an anchor, the capture CA differing from the signer's is a failure.
    const u = runCli(["bundle", "verify", bundle]);
    expect(u.status).toBe(1);
    expect(u.stdout).toContain(
      `FAIL  capture-ca  session lab was captured under CA SHA-256 ${labFp}, but the bundle is signed under CA SHA-256 ${otherFp}`,
    );
  });

  it("an exchange rewritten, the chain recomputed and re-signed with a new CA: consistent, but fails with --ca", () => {
    const forger = join(dir, "forger-certs");
    expect(runCli(["ca", "init", "--certs", forger]).status).toBe(0);
    const forged = out("forged");
    cpSync(genuineSecrets, forged, { recursive: true });
    const records = readFileSync(join(forged, "exchanges.jsonl"), "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    records[0].host = "forged.example.com";
    records[0].path = "/i-was-never-captured";
    let prev = "0".repeat(64);
    for (const x of records) {
      x.prevHash = prev;
      x.hash = exchangeChainHash(prev, x);
      prev = x.hash;
    }
    writeFileSync(join(forged, "exchanges.jsonl"), records.map((x) => `${JSON.stringify(x)}\n`).join(""));
    rmSync(join(forged, "checkpoints.jsonl"));
    const caCert = readFileSync(join(forger, "exhaust-ca.pem"), "utf8");
    const signingCert = readFileSync(join(forger, "exhaust-signing.pem"), "utf8");
    writeFileSync(join(forged, "certs", "ca.pem"), caCert);
    writeFileSync(join(forged, "certs", "signing.pem"), signingCert);
    const manifest = JSON.parse(readFileSync(join(forged, "manifest.json"), "utf8"));
    const caFp = new X509Certificate(caCert).fingerprint256;
    manifest.signer.caFingerprint256 = caFp;
    manifest.signer.fingerprint256 = new X509Certificate(signingCert).fingerprint256;
    manifest.sessions[0].caFingerprint = caFp;
    manifest.sessions[0].chain.head = prev;
    manifest.files = manifest.files
      .filter((f: { path: string }) => f.path !== "checkpoints.jsonl")
      .map((f: { path: string }) => {
        const data = readFileSync(join(forged, f.path));
        return { path: f.path, sha256: createHash("sha256").update(data).digest("hex"), size: data.length };
      });
    const bytes = Buffer.from(`${JSON.stringify(manifest, null, 2)}\n`);
    writeFileSync(join(forged, "manifest.json"), bytes);
    writeFileSync(
      join(forged, "manifest.sig"),
      `${sign("sha256", bytes, createPrivateKey(readFileSync(join(forger, "exhaust-signing.key")))).toString("base64")}\n`,
    );

    // The forgery agrees with itself (what the issue showed), so only an anchor tells it apart.
    expect(runCli(["bundle", "verify", forged]).status).toBe(4);
    const r = runCli(["bundle", "verify", forged, "--ca", join(certs, "exhaust-ca.pem")]);
    expect(r.status).toBe(1);
    expect(r.stdout).toContain(`under CA SHA-256 ${caFp}, not under the trusted CA`);
    expect(r.stdout).toMatch(/FAIL\s+capture-ca/);
    // And the notebook head is not in it either.
    expect(runCli(["bundle", "verify", forged, "--head", `${stop.head}@${stop.seq}`]).status).toBe(1);
    // `exhaust import` refuses it with the anchor.
    const imp = runCli(["import", forged, "--db", join(dir, "forged-import.db"), "--ca", join(certs, "exhaust-ca.pem")]);
    expect(imp.status).toBe(2);
    expect(imp.stderr).toContain("does not verify");
  });

  it("the last two exchanges deleted and re-exported under the lab's own CA: verifies with --ca, fails with --head", () => {
    const cut = tamperedCopy("cut.db", (d) => {
      d.prepare("DELETE FROM exchanges WHERE seq > ?").run(stop.seq - 2);
      d.prepare("DELETE FROM events WHERE exchange_id NOT IN (SELECT id FROM exchanges)").run();
      d.prepare("DELETE FROM checkpoints").run();
    });
    const bundle = out("cut");
    expect(runCli(["export", "--format", "bundle", "--db", cut, "--certs", certs, "--session", "lab", "--out", bundle]).status).toBe(0);
    expect(runCli(["bundle", "verify", bundle, "--ca", join(certs, "exhaust-ca.pem")]).status).toBe(0);
    const r = runCli(["bundle", "verify", bundle, "--ca", join(certs, "exhaust-ca.pem"), "--head", `${stop.head}@${stop.seq}`]);
    expect(r.status).toBe(1);
    expect(r.stdout).toContain(
      `FAIL  head        head ${stop.head}@${stop.seq} is not in the bundle's chain (session lab ends at seq ${stop.seq - 2})`,
    );
  });

  it("an exchange removed from the middle, the chain recomputed in the database and re-exported under the lab's CA: fails", () => {
    const cut = tamperedCopy("middle.db", (d) => {
      d.prepare("DELETE FROM exchanges WHERE seq = 3").run();
      d.prepare("DELETE FROM events WHERE exchange_id NOT IN (SELECT id FROM exchanges)").run();
      const sessionId = d.prepare("SELECT id FROM sessions WHERE name = 'lab'").pluck().get() as number;
      let prev = "0".repeat(64);
      for (const x of [...exchangesOfSession(d, sessionId)]) {
        const seq = x.seq > 3 ? x.seq - 1 : x.seq;
        const hash = exchangeChainHash(prev, { ...x, seq });
        d.prepare("UPDATE exchanges SET seq = ?, prev_hash = ?, hash = ? WHERE id = ?").run(seq, prev, hash, x.id);
        prev = hash;
      }
    });
    const bundle = out("middle");
    const e = runCli([
      "export",
      "--format",
      "bundle",
      "--db",
      cut,
      "--certs",
      certs,
      "--session",
      "lab",
      "--out",
      bundle,
      "--include-secrets",
    ]);
    expect(e.status, e.stderr).toBe(0);
    // The stop checkpoint stored in the database came along: the bundle's own check already fails.
    const r = runCli(["bundle", "verify", bundle, "--ca", join(certs, "exhaust-ca.pem"), "--head", `${stop.head}@${stop.seq}`]);
    expect(r.status).toBe(1);
    expect(r.stdout).toMatch(/ok\s+chain/);
    expect(r.stdout).toMatch(
      new RegExp(
        `FAIL\\s+checkpoints\\s+checkpoint of session lab at seq ${stop.seq} .* names head ${stop.head}, which the bundle's chain does not hold`,
      ),
    );
    expect(r.stdout).toMatch(/FAIL\s+head/);
  });

  it("`sessions --head` prints, stores and signs a checkpoint that verifies offline with the CA certificate", () => {
    const r = runCli(["sessions", "--head", "--session", "lab", "--db", db, "--certs", certs, "--json"]);
    expect(r.status, r.stderr).toBe(0);
    const c = JSON.parse(r.stdout);
    expect(c).toMatchObject({ session: "lab", seq: stop.seq, head: stop.head, tsa: null });
    expect(c.caFingerprint256).toBe(new X509Certificate(caPem).fingerprint256);
    expect(c.canonical).toBe(
      JSON.stringify({
        format: "exhaust-checkpoint",
        version: 1,
        session: "lab",
        seq: c.seq,
        head: c.head,
        time: c.time,
        caFingerprint256: c.caFingerprint256,
      }),
    );
    expect(checkpointSignatureValid(c, new X509Certificate(caPem))).toBe(true);
    expect(checkpointSignatureValid({ ...c, seq: c.seq - 1 }, new X509Certificate(caPem))).toBe(false);
    const text = runCli(["sessions", "--head", "--session", "lab", "--db", db, "--certs", certs]);
    expect(text.stdout).toContain(`--head ${stop.head}@${stop.seq}`);
    const n = new Database(db, { readonly: true }).prepare("SELECT COUNT(*) FROM checkpoints").pluck().get();
    expect(n).toBe(3); // stop + the two above
  });

  it("`exhaust import` takes --ca/--fingerprint/--head and records whether the bundle was anchored", () => {
    const target = join(dir, "imported.db");
    const a = runCli([
      "import",
      genuine,
      "--db",
      target,
      "--session",
      "anchored",
      "--ca",
      join(certs, "exhaust-ca.pem"),
      "--head",
      `${stop.head}@${stop.seq}`,
      "--json",
    ]);
    expect(a.status, a.stderr).toBe(0);
    expect(JSON.parse(a.stdout).verification).toBe("verified");
    const u = runCli(["import", genuine, "--db", target, "--session", "unanchored", "--json"]);
    expect(u.status, u.stderr).toBe(0);
    expect(JSON.parse(u.stdout).notes.join(" ")).toContain("consistent, signer not anchored");
    const t = new Database(target, { readonly: true });
    const opts = (name: string) =>
      JSON.parse(t.prepare("SELECT options_json FROM sessions WHERE name = ?").pluck().get(name) as string).imported.verification;
    expect(opts("anchored")).toMatchObject({ status: "verified", anchored: true, anchor: new X509Certificate(caPem).fingerprint256 });
    expect(opts("unanchored")).toMatchObject({ status: "consistent-unanchored", anchored: false, anchor: null });
    t.close();
    const wrongHead = runCli(["import", genuine, "--db", target, "--session", "x", "--head", `${"ab".repeat(32)}@1`]);
    expect(wrongHead.status).toBe(2);
  });
});

describe("credentials follow the secret into every output", () => {
  it("no export format, report, UI API view or log holds a planted secret by default", async () => {
    // The planted values really are in the capture: in decoded fields (plain and gzipped bodies) and bodies.
    const d = new Database(db, { readonly: true });
    const inFields = (v: string) => d.prepare("SELECT COUNT(*) FROM fields WHERE instr(value, ?) > 0").pluck().get(v) as number;
    expect([inFields(BEARER), inFields(TICKET), inFields(XAUTH)]).toEqual([1, 1, 1]);
    d.close();
    const found: string[] = [];
    for (const [format, name] of [
      ["har", "x.har"],
      ["jsonl", "x.jsonl"],
      ["csv", "x.csv"],
    ] as const) {
      const { path } = exportTo(format, name);
      leaks(readFileSync(path), format, found);
    }
    // A decoded field holding a credential keeps its place, its value replaced by the keyed hash.
    const jsonl = readFileSync(out("x.jsonl"), "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    const ticketField = jsonl.flatMap((e) => e.fields).find((f: { path: string }) => f.path === "Data.Ticket");
    expect(ticketField.value).toMatch(/^hmac-sha256:[0-9a-f]{64}$/);
    const bundle = exportTo("bundle", "leak-bundle").path;
    for (const f of filesOf(bundle)) leaks(readFileSync(join(bundle, f)), `bundle ${f}`, found);
    const manifest = JSON.parse(readFileSync(join(bundle, "manifest.json"), "utf8"));
    expect(manifest.omitted.filter((o: { what: string }) => o.what === "request body").length).toBe(4); // all but the benign one
    const zip = exportTo("bundle", "leak-bundle.zip").path;
    leaks(readFileSync(zip), "zip", found);
    const z = await openBundle(zip);
    for (const f of z.files()) leaks(await z.read(f), `zip ${f}`, found);
    z.close();
    const report = out("leak-report.html");
    expect(runCli(["report", "--db", db, "--session", "lab", "--out", report]).status).toBe(0);
    leaks(readFileSync(report), "report", found);
    leaks(Buffer.from(proxyLog), "proxy log", found);

    const log = createLogger({ level: "silent", destination: new Writable({ write: (_c, _e, cb) => cb() }) });
    const ui = await startUiServer({ dbFile: db, host: "127.0.0.1", port: 0, log });
    try {
      const get = async (p: string) => {
        const r = await fetch(new URL(p, ui.url));
        const body = Buffer.from(await r.arrayBuffer());
        leaks(body, `ui ${p}`, found);
        return JSON.parse(body.toString("utf8"));
      };
      const sessions = (await get("/api/sessions")) as Array<{ id: number }>;
      const sid = sessions[0].id;
      await get(`/api/sessions/${sid}`);
      const xs = (await get(`/api/sessions/${sid}/exchanges`)) as Array<{ id: string }>;
      expect(xs.length).toBe(5);
      for (const x of xs) {
        await get(`/api/exchanges/${x.id}`);
        await get(`/api/exchanges/${x.id}/body?decompress=1&view=text`);
        await get(`/api/exchanges/${x.id}/body`);
      }
      const events = await get(`/api/events?session=${sid}`);
      for (const e of (events.events ?? events.rows ?? events) as Array<{ id: number }>) await get(`/api/events/${e.id}`);
      await get(`/api/fields?session=${sid}`);
    } finally {
      await ui.close();
    }
    expect(found).toEqual([]);
  });

  it("--include-secrets keeps them and says so", () => {
    const har = exportTo("har", "secrets.har", "--include-secrets");
    expect(har.stdout).toContain("INCLUDED");
    const found = leaks(readFileSync(har.path), "har");
    for (const name of Object.keys(PLANTED)) expect(found.join("\n")).toContain(`${name} in har`);
    expect(JSON.parse(readFileSync(har.path, "utf8")).log._exhaust.secrets).toBe("included");
  });
});

describe("private by default", () => {
  it("report and exports are 0600 (directories 0700) under umask 000", () => {
    const sh = (args: string[]) => {
      const r = spawnSync("sh", ["-c", `umask 000; exec "${process.execPath}" "${EXHAUST_BIN}" "$@"`, "sh", ...args], {
        encoding: "utf8",
        timeout: 60_000,
      });
      expect(r.status, r.stderr).toBe(0);
    };
    sh(["report", "--db", db, "--session", "lab", "--out", out("mode-report.html")]);
    for (const [format, name] of [
      ["har", "mode.har"],
      ["jsonl", "mode.jsonl"],
      ["csv", "mode.csv"],
      ["bundle", "mode.zip"],
      ["bundle", "mode-dir"],
    ]) {
      sh(["export", "--format", format, "--db", db, "--certs", certs, "--session", "lab", "--out", out(name)]);
    }
    const mode = (p: string) => statSync(p).mode & 0o777;
    for (const f of ["mode-report.html", "mode.har", "mode.jsonl", "mode.csv", "mode.zip"]) expect(mode(out(f)), f).toBe(0o600);
    expect(mode(out("mode-dir"))).toBe(0o700);
    for (const f of filesOf(out("mode-dir"))) expect(mode(join(out("mode-dir"), f)), f).toBe(0o600);
    for (const d of ["blobs", "certs"]) expect(mode(join(out("mode-dir"), d)), d).toBe(0o700);
  });
});

describe("the one credential list and its parsers", () => {
  it("names every credential of the issue, each with a source, and keeps the old header names", () => {
    const names = secretNames().map((e) => e.name.toLowerCase());
    for (const n of [
      "authorization",
      "tickets",
      "auth*",
      "aad-*",
      "msfpc",
      "x-auth-token",
      "x-api-key",
      "access_token",
      "refresh_token",
      "id_token",
      "client_secret",
      "cookie",
      "set-cookie",
    ]) {
      expect(names).toContain(n);
    }
    expect(secretNames().every((e) => e.source.length > 10)).toBe(true);
    for (const h of [
      "Tickets",
      "AuthXToken",
      "AuthMsaDeviceTicket",
      "Aad-Device-Ticket",
      "Authorization",
      "Proxy-Authorization",
      "Cookie",
      "Set-Cookie",
      "X-Api-Key",
      "MSFPC",
      "X-Auth-Token",
      "access_token",
    ]) {
      expect(isSecretHeader(h), h).toBe(true);
    }
    for (const h of ["Content-Type", "Client-Id", "Upload-Time", "cors"]) expect(isSecretHeader(h), h).toBe(false);
    expect(isSecretJsonKey("data.creds.refresh_token")).toBe(true);
    expect(isSecretJsonKey("Data.Author")).toBe(false); // Auth* is for headers and parameters, not JSON keys
  });

  it("the log's second fence redacts every exact header name of the list", () => {
    const lines: string[] = [];
    const log = createLogger({ destination: new Writable({ write: (c, _e, cb) => (lines.push(String(c)), cb()) }) });
    log.info({ headers: { "x-auth-token": XAUTH, authorization: `Bearer ${BEARER}` } }, "x");
    log.flush();
    expect(lines.join("")).not.toContain(XAUTH);
    expect(lines.join("")).not.toContain(BEARER);
    expect(lines.join("")).toContain("[redacted]");
  });

  it("credential forms: the token after the scheme, pieces, URL and base64 forms", () => {
    const forms = credentialForms(`Bearer ${BEARER}`);
    expect(forms).toContain(BEARER);
    expect(credentialForms(`"1":"t=${TICKET}"`)).toContain(TICKET);
    expect(credentialForms(TICKET)).toContain(encodeURIComponent(TICKET));
    expect(credentialForms(TICKET)).toContain(Buffer.from(TICKET).toString("base64").replace(/=+$/, ""));
    expect(credentialForms(Buffer.from(XAUTH).toString("base64"))).toContain(XAUTH);
    expect([...credentialForms("short")]).toEqual([]);
  });

  it("fingerprints in any spelling, heads as HASH[@SEQ]", () => {
    const fp = "AB:".repeat(31) + "AB";
    expect(normaliseFingerprint(fp.toLowerCase())).toBe(fp);
    expect(normaliseFingerprint(fp.replace(/:/g, ""))).toBe(fp);
    expect(normaliseFingerprint(`SHA256:${fp}`)).toBe(fp);
    expect(() => normaliseFingerprint("AB:CD")).toThrow(/EXH_OPT_INVALID|fingerprint/);
    expect(parseHead(`${"A".repeat(64)}@7`)).toEqual({ hash: "a".repeat(64), seq: 7 });
    expect(parseHead("b".repeat(64))).toEqual({ hash: "b".repeat(64) });
    expect(() => parseHead("xyz@1")).toThrow();
  });
});
