import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cpSync, readdirSync, readFileSync, rmSync, statSync, unlinkSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";
import { verifyBundle } from "../src/evidence/verify.js";
import { openBundle } from "../src/evidence/source.js";
import { runCli } from "./helpers/cli.js";
import { captureEvidenceSession, SECRETS, type EvidenceSession } from "./helpers/evidence-session.js";
import { tempDir } from "./helpers/proxy.js";
import { sessionSnapshot } from "./helpers/session-snapshot.js";
import yazl from "yazl";
import { createWriteStream } from "node:fs";

let s: EvidenceSession;
let out: string;
let redacted: string;
let withSecrets: string;

const exportBundle = (name: string, ...extra: string[]) => {
  const path = join(out, name);
  const r = runCli([
    "export",
    "--format",
    "bundle",
    "--db",
    s.dbFile,
    "--certs",
    join(s.proxy.dir, "certs"),
    "--session",
    "test",
    "--out",
    path,
    ...extra,
  ]);
  expect(r.stderr).toBe("");
  expect(r.status).toBe(0);
  return path;
};

const filesOf = (dir: string, d = dir): string[] =>
  readdirSync(d, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? filesOf(dir, join(d, e.name)) : [relative(dir, join(d, e.name))],
  );

beforeAll(async () => {
  s = await captureEvidenceSession();
  out = tempDir("exhaust-bundle-");
  redacted = exportBundle("redacted");
  withSecrets = exportBundle("secrets.zip", "--include-secrets");
}, 90_000);
afterAll(async () => {
  await s.proxy.close();
  rmSync(out, { recursive: true, force: true });
});

describe("evidence bundle", () => {
  it("holds manifest, signature, certificates, exchanges, blobs, events, verdicts and the report", () => {
    const files = filesOf(redacted);
    for (const f of [
      "manifest.json",
      "manifest.sig",
      "certs/signing.pem",
      "certs/ca.pem",
      "exchanges.jsonl",
      "events.jsonl",
      "verdicts.json",
      "report.html",
    ]) {
      expect(files).toContain(f);
    }
    const manifest = JSON.parse(readFileSync(join(redacted, "manifest.json"), "utf8"));
    expect(manifest.tool.name).toBe("exhaust");
    expect(manifest.secrets.included).toBe(false);
    expect(manifest.sessions[0]).toMatchObject({ name: "test", exchanges: s.exchanges, events: s.events });
    expect(manifest.sessions[0].chain.head).toMatch(/^[0-9a-f]{64}$/);
    expect(manifest.sessions[0].captureTimeRange.first).toMatch(/^\d{4}-/);
    expect(manifest.signer.caFingerprint256).toBe(
      s.proxy.db.prepare("SELECT ca_fingerprint FROM sessions WHERE name = 'test'").pluck().get(),
    );
    // Every file but the manifest and its signature is listed with its hash.
    expect(manifest.files.map((f: { path: string }) => f.path).sort()).toEqual(files.filter((f) => !f.startsWith("manifest.")).sort());
    const blobs = files.filter((f) => f.startsWith("blobs/"));
    expect(blobs.length).toBeGreaterThanOrEqual(s.exchanges);
  });

  it("verifies on a machine with only the bundle and exhaust (no database, no certs/)", () => {
    const empty = tempDir("exhaust-nothing-");
    try {
      for (const b of [redacted, withSecrets]) {
        const r = runCli(["bundle", "verify", b, "--ca", join(s.proxy.dir, "certs", "exhaust-ca.pem")], empty);
        expect(r.status).toBe(0);
        expect(r.stdout).toMatch(/ok\s+files\s+\d+ files match/);
        expect(r.stdout).toMatch(/ok\s+signature/);
        expect(r.stdout).toMatch(/ok\s+certificate/);
        expect(r.stdout).toMatch(/ok\s+chain\s+session test: 3 exchanges/);
        expect(r.stdout).toContain("verified against the trusted CA");
        // Without an anchor: consistent, but never a bare "verifies" (exit 4).
        const u = runCli(["bundle", "verify", b], empty);
        expect(u.status).toBe(4);
        expect(u.stdout).toContain("consistent, signer not anchored (signer not checked against a trusted CA)");
      }
      expect(readdirSync(empty)).toEqual([]);
      // Redacted: chain hashes of exchanges with credentials are checked by their links; with secrets every hash is recomputed.
      expect(runCli(["bundle", "verify", redacted], empty).stdout).toMatch(/0 hashes recomputed, 3 with redacted credentials/);
      expect(runCli(["bundle", "verify", withSecrets], empty).stdout).toMatch(/3 hashes recomputed/);
    } finally {
      rmSync(empty, { recursive: true, force: true });
    }
  });

  it("fails and names the file when any single byte of any file changes, or a file is removed", async () => {
    const files = filesOf(redacted);
    expect(files.length).toBeGreaterThan(8);
    for (const f of files) {
      for (const mode of ["flip", "remove"] as const) {
        const copy = join(out, `tamper-${mode}`);
        rmSync(copy, { recursive: true, force: true });
        cpSync(redacted, copy, { recursive: true });
        const target = join(copy, f);
        if (mode === "flip") {
          const bytes = readFileSync(target);
          const at = Math.floor(bytes.length / 2);
          bytes[at] ^= 0x01;
          writeFileSync(target, bytes);
        } else {
          unlinkSync(target);
        }
        const result = await verifyBundle(copy);
        expect(result.ok, `${mode} ${f}`).toBe(false);
        const named = result.checks
          .filter((c) => !c.ok)
          .map((c) => `${c.file} ${c.detail}`)
          .join("\n");
        expect(named, `${mode} ${f}`).toContain(f === "manifest.json" && mode === "flip" ? "manifest" : f);
      }
    }
    // Through the CLI: exit 1 and the file named.
    const copy = join(out, "tamper-cli");
    cpSync(redacted, copy, { recursive: true });
    const blob = filesOf(copy).find((f) => f.startsWith("blobs/"))!;
    writeFileSync(join(copy, blob), Buffer.concat([readFileSync(join(copy, blob)), Buffer.from([0])]));
    const r = runCli(["bundle", "verify", copy]);
    expect(r.status).toBe(1);
    expect(r.stdout).toContain(`FAIL  file        ${blob}`);
    expect(r.stdout).toContain("does NOT verify");
  });

  it("detects a changed or added file inside a zip bundle", async () => {
    const source = await openBundle(withSecrets);
    const names = source.files();
    const contents = new Map<string, Buffer>();
    for (const n of names) contents.set(n, await source.read(n));
    source.close();
    const events = contents.get("events.jsonl")!;
    events[10] ^= 0x20;
    const rezip = join(out, "tampered.zip");
    const zip = new yazl.ZipFile();
    for (const [n, data] of contents) zip.addBuffer(data, n);
    zip.addBuffer(Buffer.from("extra"), "blobs/extra");
    zip.end();
    await new Promise<void>((resolve) => zip.outputStream.pipe(createWriteStream(rezip)).on("close", () => resolve()));
    const r = runCli(["bundle", "verify", rezip]);
    expect(r.status).toBe(1);
    expect(r.stdout).toMatch(/FAIL\s+file\s+events\.jsonl/);
    expect(r.stdout).toMatch(/FAIL\s+file\s+blobs\/extra is not listed/);
  });

  it("keeps credentials out of every file by default; --include-secrets keeps them and the manifest says so", async () => {
    for (const f of filesOf(redacted)) {
      const text = readFileSync(join(redacted, f)).toString("latin1");
      for (const v of Object.values(SECRETS)) expect(text, f).not.toContain(v);
    }
    const zip = await openBundle(withSecrets);
    const manifest = JSON.parse((await zip.read("manifest.json")).toString("utf8"));
    const exchanges = (await zip.read("exchanges.jsonl")).toString("utf8");
    zip.close();
    expect(manifest.secrets.included).toBe(true);
    expect(manifest.secrets.note).toMatch(/SECRETS INCLUDED/);
    expect(exchanges).toContain(JSON.stringify(SECRETS.tickets).slice(1, -1));
    expect(exchanges).toContain(SECRETS.authorization);
  });

  it("round-trips through `exhaust import`: every body byte for byte, the same events and fields", () => {
    const db2 = join(out, "from-bundle.db");
    const r = runCli(["import", withSecrets, "--db", db2, "--session", "back", "--json"]);
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ format: "bundle", session: "back", exchanges: s.exchanges, events: s.events });
    expect(sessionSnapshot(db2, "back")).toEqual(sessionSnapshot(s.dbFile, "test"));
    // A bundle that does not verify is refused.
    const r2 = runCli(["import", join(out, "tampered.zip"), "--db", db2]);
    expect(r2.status).toBe(2);
    expect(r2.stderr).toContain("does not verify");
  });

  it("`exhaust ca init` creates the signing key (0600) and certificate beside the CA", () => {
    const dir = tempDir("exhaust-ca-");
    try {
      const r = runCli(["ca", "init", "--certs", join(dir, "certs")]);
      expect(r.status).toBe(0);
      expect(r.stdout).toContain("exhaust-signing.pem");
      expect(statSync(join(dir, "certs", "exhaust-signing.key")).mode & 0o777).toBe(0o600);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
