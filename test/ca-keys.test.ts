/**
 * The CA's key type (issue 19, first contact): new CAs are ECDSA P-256, `ca init --ca-key rsa`
 * makes an RSA-2048 one, and an RSA CA made before (here: by openssl) keeps working. For each, real
 * TLS clients (node and curl) go through the real proxy to a local origin and validate the chain;
 * the evidence bundle signed under that CA verifies against it, and a changed one fails.
 */
import { execFile, spawnSync } from "node:child_process";
import { createPrivateKey, generateKeyPairSync, X509Certificate } from "node:crypto";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CA_CERT_FILE, CA_KEY_FILE, initAuthority, loadAuthority } from "../src/ca/authority.js";
import { LeafIssuer, MAX_COMMON_NAME_LENGTH, SUBJECT_ALT_NAME_INDEX } from "../src/ca/leaf.js";
import { buildCertificate, isIpAddress, LeafTbsEncoder } from "../src/ca/x509.js";
import { loadOrCreateSigningIdentity } from "../src/ca/signing.js";
import { EndpointCatalog } from "../src/catalog/endpoints.js";
import { isExhaustError } from "../src/errors.js";
import { httpsThroughProxy } from "./helpers/client.js";
import { runCli } from "./helpers/cli.js";
import { startTestProxy, useLocalOrigin, tempDir, type TestProxy } from "./helpers/proxy.js";

const COLLECTOR = "mobile.events.data.microsoft.com";
const hasCurl = spawnSync("curl", ["--version"]).status === 0;
const hasOpenssl = spawnSync("openssl", ["version"]).status === 0;

const scratch = tempDir("exhaust-ca-keys-");
const local = useLocalOrigin();

afterAll(async () => {
  rmSync(scratch, { recursive: true, force: true });
});

/** An RSA CA as another tool (or an exhaust of before ECDSA) would have left it: openssl's. */
function opensslRsaCa(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const r = spawnSync(
    "openssl",
    [
      "req",
      "-x509",
      "-newkey",
      "rsa:2048",
      "-nodes",
      "-sha256",
      "-days",
      "30",
      "-subj",
      "/CN=an older RSA lab CA/O=exhaust",
      "-addext",
      "basicConstraints=critical,CA:TRUE,pathlen:0",
      "-addext",
      "keyUsage=critical,keyCertSign,cRLSign",
      "-keyout",
      join(dir, CA_KEY_FILE),
      "-out",
      join(dir, CA_CERT_FILE),
    ],
    { encoding: "utf8" },
  );
  expect(r.status, r.stderr).toBe(0);
}

interface Case {
  label: string;
  make(dir: string): Promise<void> | void;
  keyType: "ecdsa" | "rsa";
  skip?: boolean;
}

const cases: Case[] = [
  {
    label: "ECDSA P-256, the default of `ca init`",
    make: (dir) => {
      const r = runCli(["ca", "init", "--certs", dir]);
      expect(r.status, r.stderr).toBe(0);
      expect(r.stdout).toMatch(/^key {10}ECDSA P-256$/m);
    },
    keyType: "ecdsa",
  },
  {
    label: "RSA-2048, `ca init --ca-key rsa`",
    make: (dir) => {
      const r = runCli(["ca", "init", "--certs", dir, "--ca-key", "rsa"]);
      expect(r.status, r.stderr).toBe(0);
      expect(r.stdout).toMatch(/^key {10}RSA-2048$/m);
    },
    keyType: "rsa",
  },
  { label: "RSA, made before by openssl", make: opensslRsaCa, keyType: "rsa", skip: !hasOpenssl },
];

describe.each(cases)("a CA with $label", (c) => {
  const certs = join(scratch, c.label.replace(/\W+/g, "-"));
  let p: TestProxy;
  let caPem: string;

  beforeAll(async () => {
    if (c.skip) return;
    await c.make(certs);
    caPem = readFileSync(join(certs, CA_CERT_FILE), "utf8");
    p = await startTestProxy({ certs, mapHost: [`${COLLECTOR}=127.0.0.1:${local.origin.port}`], originCaPem: local.ca.certPem });
  });
  afterAll(() => p?.close());

  it.skipIf(c.skip)("loads with its key type, and the CA certificate carries that key", async () => {
    const ca = await loadAuthority(certs);
    expect(ca.keyType).toBe(c.keyType);
    expect(new X509Certificate(caPem).publicKey.asymmetricKeyType).toBe(c.keyType === "ecdsa" ? "ec" : "rsa");
    expect(p.caPem).toBe(caPem); // the proxy used it as it was, and did not replace it
  });

  it.skipIf(c.skip)("node's TLS client validates the chain through the proxy", async () => {
    const res = await httpsThroughProxy({ proxyPort: p.port, host: COLLECTOR, path: "/OneCollector/1.0/", body: "{}\n", ca: [caPem] });
    expect(res.status).toBe(200);
    const leaf = new X509Certificate(res.peer!.raw);
    const ca = new X509Certificate(caPem);
    expect(leaf.checkIssued(ca)).toBe(true);
    expect(leaf.verify(ca.publicKey)).toBe(true);
    expect(leaf.publicKey.asymmetricKeyType).toBe("ec"); // the leaf key is P-256 whatever the CA's
    expect(leaf.subjectAltName).toBe(`DNS:${COLLECTOR}`);
    // A client that does not trust this CA refuses the same proxy.
    await expect(
      httpsThroughProxy({ proxyPort: p.port, host: COLLECTOR, path: "/OneCollector/1.0/", body: "{}\n", ca: [local.ca.certPem] }),
    ).rejects.toThrow(/self[- ]signed|unable to (get|verify)/i);
  });

  it.skipIf(c.skip || !hasCurl)("curl validates the chain through the proxy", async () => {
    const caFile = join(certs, CA_CERT_FILE);
    // Asynchronously: the proxy runs in this process and must keep serving while curl waits.
    const r = await new Promise<{ stdout: string; stderr: string }>((resolve) =>
      execFile(
        "curl",
        [
          "-sS",
          "--noproxy",
          "",
          "--proxy",
          `http://127.0.0.1:${p.port}`,
          "--cacert",
          caFile,
          "-o",
          "/dev/null",
          "-w",
          "%{http_code}",
        ].concat(["-H", "Content-Type: application/x-json-stream", "--data-binary", "{}", `https://${COLLECTOR}/OneCollector/1.0/`]),
        { encoding: "utf8", timeout: 20_000, env: { ...process.env, https_proxy: "", HTTPS_PROXY: "", all_proxy: "", ALL_PROXY: "" } },
        (_error, stdout, stderr) => resolve({ stdout, stderr }),
      ),
    );
    expect(r.stderr).toBe("");
    expect(r.stdout).toBe("200");
  });

  it.skipIf(c.skip)("an evidence bundle signed under it verifies against it; a changed signature fails", () => {
    const bundle = join(scratch, `${c.keyType}-${Math.random().toString(16).slice(2)}`);
    const made = runCli(["export", "--format", "bundle", "--db", p.dbFile, "--certs", certs, "--session", "test", "--out", bundle]);
    expect(made.status, made.stderr).toBe(0);
    const signing = new X509Certificate(readFileSync(join(bundle, "certs", "signing.pem")));
    expect(signing.publicKey.asymmetricKeyType).toBe(c.keyType === "ecdsa" ? "ec" : "rsa");
    const ok = runCli(["bundle", "verify", bundle, "--ca", join(certs, CA_CERT_FILE)]);
    expect(ok.status, ok.stdout + ok.stderr).toBe(0);
    expect(ok.stdout).toMatch(/manifest\.json is signed by/);

    const sigFile = join(bundle, "manifest.sig");
    const sig = Buffer.from(readFileSync(sigFile, "utf8").trim(), "base64");
    sig[sig.length - 3] ^= 0x01;
    writeFileSync(sigFile, `${sig.toString("base64")}\n`);
    const bad = runCli(["bundle", "verify", bundle, "--ca", join(certs, CA_CERT_FILE)]);
    expect(bad.status).not.toBe(0);
    expect(bad.stdout + bad.stderr).toMatch(/manifest\.sig is not a valid signature/);
  });
});

describe("CA keys exhaust does not sign with", () => {
  it("refuses a P-384 or Ed25519 CA key with EXH_CA_INVALID, and `ca init --ca-key` other than ecdsa|rsa", async () => {
    for (const [type, options] of [
      ["ec", { namedCurve: "secp384r1" }],
      ["ed25519", {}],
    ] as const) {
      const dir = join(scratch, `odd-${type}`);
      const ca = await initAuthority(dir, { permittedDomains: [], unconstrained: true });
      // A key of another kind beside the certificate: refused for its kind before anything else.
      const { privateKey } = generateKeyPairSync(type as "ec", options as { namedCurve: string });
      writeFileSync(join(dir, CA_KEY_FILE), privateKey.export({ type: "pkcs8", format: "pem" }));
      const error = await loadAuthority(dir).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(isExhaustError(error) && error.code).toBe("EXH_CA_INVALID");
      expect(String((error as Error).message)).toMatch(/exhaust signs with ECDSA P-256 or RSA/);
      expect(ca.keyType).toBe("ecdsa");
    }
    const r = runCli(["ca", "init", "--certs", join(scratch, "dsa"), "--ca-key", "dsa"]);
    expect(r.status).toBe(2);
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
    expect(r.stderr).toMatch(/--ca-key.*expected ecdsa or rsa.*EXH_OPT_INVALID/);
  });

  it("an ECDSA CA's leaf, signing certificate and name constraints are those of an RSA one", async () => {
    const domains = EndpointCatalog.load().constraintDomains();
    const [ec, rsa] = await Promise.all([
      initAuthority(join(scratch, "cmp-ec"), { permittedDomains: domains }),
      initAuthority(join(scratch, "cmp-rsa"), { permittedDomains: domains, keyType: "rsa" }),
    ]);
    expect([ec.keyType, rsa.keyType]).toEqual(["ecdsa", "rsa"]);
    expect(ec.permittedDomains).toEqual(rsa.permittedDomains);
    for (const ca of [ec, rsa]) {
      const caX509 = new X509Certificate(ca.certPem);
      expect(caX509.verify(caX509.publicKey)).toBe(true);
      const leaf = new X509Certificate((await LeafIssuer.create(ca)).issueLeafCertificate(COLLECTOR).certPem);
      expect(leaf.verify(caX509.publicKey)).toBe(true);
      expect(leaf.checkIssued(caX509)).toBe(true); // authorityKeyIdentifier = the CA's subjectKeyIdentifier
      const signing = await loadOrCreateSigningIdentity(ca);
      const signingX509 = new X509Certificate(signing.certPem);
      expect(signingX509.verify(caX509.publicKey)).toBe(true);
      expect(signingX509.checkPrivateKey(createPrivateKey(signing.key.export({ type: "pkcs8", format: "pem" })))).toBe(true);
    }
  });
});

describe("a new host's leaf without forge", () => {
  it("LeafTbsEncoder writes the bytes forge writes, for DNS names, long names, IPv4, IPv6 and dates past 2049", async () => {
    for (const keyType of ["ecdsa", "rsa"] as const) {
      const ca = await initAuthority(join(scratch, `enc-${keyType}`), { permittedDomains: [], unconstrained: true, keyType });
      const issuer = await LeafIssuer.create(ca);
      const encoder = LeafTbsEncoder.fromReference(issuer.leafTemplate("reference.invalid"), ca.key, SUBJECT_ALT_NAME_INDEX);
      const names = [COLLECTOR, `${"a".repeat(60)}.events.data.microsoft.com`, "127.0.0.1", "::1", "fe80::1:2", "x_y.example"];
      for (const name of names) {
        for (const notAfter of [undefined, new Date("2051-06-01T12:34:56Z")]) {
          const template = issuer.leafTemplate(name);
          if (notAfter) template.notAfter = notAfter;
          const byForge = buildCertificate(template, ca.key);
          const byEncoder = encoder.encode(
            template.serialNumberHex,
            template.notBefore,
            template.notAfter,
            name,
            isIpAddress(name),
            name.length <= MAX_COMMON_NAME_LENGTH,
          );
          expect(byEncoder.signatureOid).toBe(byForge.signatureOid);
          expect(byEncoder.tbsDer.toString("hex"), `${keyType} ${name} ${String(notAfter)}`).toBe(byForge.tbsDer.toString("hex"));
        }
      }
      // And what the issuer hands out chains to the CA, for each kind of name.
      const caX509 = new X509Certificate(ca.certPem);
      for (const name of names) {
        const leaf = new X509Certificate(issuer.issueLeafCertificate(name).certPem);
        expect(leaf.verify(caX509.publicKey)).toBe(true);
        if (isIpAddress(name)) expect(leaf.checkIP(name)).toBe(name);
        else expect(leaf.subjectAltName).toBe(`DNS:${name}`);
      }
    }
  });

  it("an ECDSA CA's new host gets its context in the same turn; an RSA CA's is signed on the thread pool", async () => {
    const [ec, rsa] = await Promise.all([
      initAuthority(join(scratch, "now-ec"), { permittedDomains: [], unconstrained: true }),
      initAuthority(join(scratch, "now-rsa"), { permittedDomains: [], unconstrained: true, keyType: "rsa" }),
    ]);
    const [ecIssuer, rsaIssuer] = await Promise.all([LeafIssuer.create(ec), LeafIssuer.create(rsa)]);
    const now = ecIssuer.secureContextNow("now.example");
    expect(now).toBeDefined();
    expect(ecIssuer.secureContextNow("NOW.example.")).toBe(now);
    expect(rsaIssuer.secureContextNow("now.example")).toBeUndefined();
    const later = await rsaIssuer.secureContextForAsync("now.example");
    expect(rsaIssuer.secureContextNow("now.example")).toBe(later);
    expect(() => ecIssuer.secureContextNow("evil host\n")).toThrow(RangeError);
  });
});
