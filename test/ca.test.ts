import { X509Certificate } from "node:crypto";
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createServer, type AddressInfo, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect, TLSSocket, type SecureContext } from "node:tls";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  CA_CERT_FILE,
  CA_KEY_FILE,
  exportAuthority,
  initAuthority,
  loadAuthority,
  loadOrCreateAuthority,
  type CertificateAuthority,
} from "../src/ca/authority.js";
import { LeafIssuer, normaliseHost } from "../src/ca/leaf.js";
import { EndpointCatalog } from "../src/catalog/endpoints.js";
import { isExhaustError, type ErrorCode } from "../src/errors.js";

const TELEMETRY_HOST = "mobile.events.data.microsoft.com";
const FOREIGN_HOST = "www.bank.example";
const DAY_MS = 24 * 60 * 60 * 1000;

const scratch = mkdtempSync(join(tmpdir(), "exhaust-ca-test-"));
let dirCounter = 0;
function freshDir(): string {
  return join(scratch, `ca-${++dirCounter}`);
}

afterAll(() => rmSync(scratch, { recursive: true, force: true }));

async function expectExhaustError(promise: Promise<unknown>, code: ErrorCode): Promise<void> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(isExhaustError(error), `expected ${code}, got ${String(error)}`).toBe(true);
  expect((error as { code: string }).code).toBe(code);
}

interface HandshakeResult {
  authorized: boolean;
  /** The client's error code and message when it refused the certificate. */
  errorCode?: string;
  errorMessage?: string;
  peerSubjectAltName?: string;
}

/**
 * A real TLS handshake on 127.0.0.1: the server side is a TLSSocket presenting `secureContext`
 * (as the proxy does after CONNECT), the client trusts only `caPem`.
 */
async function handshake(secureContext: SecureContext, caPem: string, servername?: string): Promise<HandshakeResult> {
  const server: Server = createServer((raw) => {
    const tlsSocket = new TLSSocket(raw, { isServer: true, secureContext });
    tlsSocket.on("error", () => undefined); // the client hanging up on a rejected certificate
    tlsSocket.on("data", () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  try {
    return await new Promise<HandshakeResult>((resolve) => {
      const client = connect({ host: "127.0.0.1", port, ca: [caPem], ...(servername ? { servername } : {}) });
      client.once("secureConnect", () => {
        resolve({ authorized: client.authorized, peerSubjectAltName: client.getPeerCertificate().subjectaltname });
        client.destroy();
      });
      client.once("error", (e: NodeJS.ErrnoException) => {
        resolve({ authorized: false, errorCode: e.code, errorMessage: e.message });
        client.destroy();
      });
    });
  } finally {
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

describe("certificate authority on disk", () => {
  const catalogDomains = EndpointCatalog.load().constraintDomains();
  let dir: string;
  let ca: CertificateAuthority;

  beforeAll(async () => {
    dir = freshDir();
    ca = await initAuthority(dir, { permittedDomains: catalogDomains });
  });

  it("writes the certificate and a key file readable by its owner only", () => {
    expect(existsSync(join(dir, CA_CERT_FILE))).toBe(true);
    const keyFile = join(dir, CA_KEY_FILE);
    if (process.platform !== "win32") {
      expect(statSync(keyFile).mode & 0o777).toBe(0o600);
      expect(statSync(dir).mode & 0o077).toBe(0);
    }
    expect(readFileSync(keyFile, "utf8")).toMatch(/^-----BEGIN PRIVATE KEY-----\n/);
    expect(readFileSync(join(dir, CA_CERT_FILE), "utf8")).toBe(ca.certPem);
    expect(ca.keyFileModeRepairedFrom).toBeUndefined(); // written 0600, not fixed up afterwards
  });

  it("is a CA certificate with the promised extensions and validity", () => {
    const x509 = new X509Certificate(ca.certPem);
    expect(x509.ca).toBe(true);
    expect(x509.checkPrivateKey(ca.key)).toBe(true);
    expect(x509.verify(x509.publicKey)).toBe(true); // self-signed with the key node:crypto generated
    expect(ca.subject).toMatch(/^CN=exhaust lab CA [0-9a-f]{6}, O=exhaust$/);
    expect(ca.fingerprint256).toBe(x509.fingerprint256);
    expect(ca.fingerprint256).toMatch(/^([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
    const validFrom = new Date(x509.validFrom).getTime();
    expect(Date.now() - validFrom).toBeGreaterThan(DAY_MS - 60_000);
    expect(ca.notAfter.getTime() - validFrom).toBeGreaterThan(3650 * DAY_MS);
    expect(BigInt(`0x${x509.serialNumber}`) > 0n).toBe(true);
  });

  it("reads its name constraints back from the certificate", () => {
    expect(ca.constrained).toBe(true);
    expect(ca.permittedDomains).toEqual(catalogDomains);
    expect(ca.permittedDomains).toContain("data.microsoft.com");
  });

  it("round-trips through loadAuthority", async () => {
    const loaded = await loadAuthority(dir);
    expect(loaded.certPem).toBe(ca.certPem);
    expect(loaded.certDer.equals(ca.certDer)).toBe(true);
    expect(loaded.fingerprint256).toBe(new X509Certificate(loaded.certPem).fingerprint256);
    expect(loaded.fingerprint256).toBe(ca.fingerprint256);
    expect(loaded.key.export({ type: "pkcs8", format: "der" }).equals(ca.key.export({ type: "pkcs8", format: "der" }))).toBe(true);
    expect(loaded.constrained).toBe(true);
    expect(loaded.permittedDomains).toEqual(catalogDomains);
    expect(loaded.notAfter.getTime()).toBe(ca.notAfter.getTime());
    expect(loaded.keyFileModeRepairedFrom).toBeUndefined();
  });

  it("exports PEM and DER", () => {
    expect(exportAuthority(ca, "pem").toString("utf8")).toBe(ca.certPem);
    const der = exportAuthority(ca, "der");
    expect(new X509Certificate(der).fingerprint256).toBe(ca.fingerprint256);
  });

  it("refuses to overwrite an existing CA without force, and replaces it with force", async () => {
    await expectExhaustError(initAuthority(dir, { permittedDomains: catalogDomains }), "EXH_CA_EXISTS");
    expect((await loadAuthority(dir)).fingerprint256).toBe(ca.fingerprint256);

    const otherDir = freshDir();
    const first = await initAuthority(otherDir, { permittedDomains: catalogDomains });
    const replaced = await initAuthority(otherDir, { permittedDomains: [], unconstrained: true, force: true });
    expect(replaced.fingerprint256).not.toBe(first.fingerprint256);
    expect(replaced.constrained).toBe(false);
    expect(replaced.permittedDomains).toEqual([]);
    expect((await loadAuthority(otherDir)).fingerprint256).toBe(replaced.fingerprint256);
    if (process.platform !== "win32") expect(statSync(join(otherDir, CA_KEY_FILE)).mode & 0o777).toBe(0o600);
  });

  it("reports a missing CA, a lone certificate and a key that does not match", async () => {
    await expectExhaustError(loadAuthority(freshDir()), "EXH_CA_MISSING");

    const mismatched = freshDir();
    await initAuthority(mismatched, { permittedDomains: catalogDomains });
    writeFileSync(join(mismatched, CA_KEY_FILE), readFileSync(join(dir, CA_KEY_FILE)));
    await expectExhaustError(loadAuthority(mismatched), "EXH_CA_INVALID");

    rmSync(join(mismatched, CA_KEY_FILE));
    await expectExhaustError(loadAuthority(mismatched), "EXH_CA_INVALID");
    // A lone certificate is not "missing": loadOrCreate must not replace it.
    await expectExhaustError(loadOrCreateAuthority(mismatched, { permittedDomains: catalogDomains }), "EXH_CA_INVALID");

    const garbage = freshDir();
    await initAuthority(garbage, { permittedDomains: catalogDomains });
    writeFileSync(join(garbage, CA_CERT_FILE), "not a certificate");
    await expectExhaustError(loadAuthority(garbage), "EXH_CA_INVALID");
  });

  it.skipIf(process.platform === "win32")("tightens a key file left readable by others", async () => {
    const loose = freshDir();
    await initAuthority(loose, { permittedDomains: catalogDomains });
    chmodSync(join(loose, CA_KEY_FILE), 0o644);
    const loaded = await loadAuthority(loose);
    expect(statSync(join(loose, CA_KEY_FILE)).mode & 0o777).toBe(0o600);
    expect(loaded.keyFileModeRepairedFrom).toBe(0o644);
  });

  it("loadOrCreateAuthority creates on first use and reuses afterwards", async () => {
    const lazy = freshDir();
    const created = await loadOrCreateAuthority(lazy, { permittedDomains: catalogDomains });
    const reused = await loadOrCreateAuthority(lazy, { permittedDomains: [], unconstrained: true });
    expect(reused.fingerprint256).toBe(created.fingerprint256);
    expect(reused.constrained).toBe(true);
  });

  it("rejects an empty or malformed domain list for a constrained CA", async () => {
    await expectExhaustError(initAuthority(freshDir(), { permittedDomains: [] }), "EXH_OPT_INVALID");
    await expectExhaustError(initAuthority(freshDir(), { permittedDomains: ["bad domain"] }), "EXH_OPT_INVALID");
  });
});

describe("leaf certificates over real TLS", () => {
  let constrainedCa: CertificateAuthority;
  let unconstrainedCa: CertificateAuthority;
  let constrainedIssuer: LeafIssuer;
  let unconstrainedIssuer: LeafIssuer;

  beforeAll(async () => {
    [constrainedCa, unconstrainedCa] = await Promise.all([
      initAuthority(freshDir(), { permittedDomains: EndpointCatalog.load().constraintDomains() }),
      initAuthority(freshDir(), { permittedDomains: [], unconstrained: true }),
    ]);
    [constrainedIssuer, unconstrainedIssuer] = await Promise.all([LeafIssuer.create(constrainedCa), LeafIssuer.create(unconstrainedCa)]);
  });

  it("issues a leaf with the expected fields, chaining to the CA", () => {
    const before = Date.now();
    const leaf = constrainedIssuer.issueLeafCertificate(TELEMETRY_HOST);
    const x509 = new X509Certificate(leaf.certPem);
    const caX509 = new X509Certificate(constrainedCa.certPem);
    expect(x509.checkIssued(caX509)).toBe(true);
    expect(x509.verify(caX509.publicKey)).toBe(true);
    expect(x509.ca).toBe(false);
    expect(x509.subject).toBe(`CN=${TELEMETRY_HOST}`);
    expect(x509.subjectAltName).toBe(`DNS:${TELEMETRY_HOST}`);
    expect(x509.keyUsage).toEqual(["1.3.6.1.5.5.7.3.1"]); // serverAuth
    expect(x509.checkHost(TELEMETRY_HOST)).toBe(TELEMETRY_HOST);
    expect(leaf.notAfter.getTime()).toBe(new Date(x509.validTo).getTime());
    expect(leaf.notAfter.getTime() - before).toBeGreaterThan(30 * DAY_MS - 5_000);
    expect(leaf.notAfter.getTime() - before).toBeLessThanOrEqual(30 * DAY_MS);
    expect(before - new Date(x509.validFrom).getTime()).toBeGreaterThan(DAY_MS - 5_000);
  });

  it("a client trusting the constrained CA accepts a telemetry host", async () => {
    const result = await handshake(constrainedIssuer.secureContextFor(TELEMETRY_HOST), constrainedCa.certPem, TELEMETRY_HOST);
    expect(result).toEqual({ authorized: true, peerSubjectAltName: `DNS:${TELEMETRY_HOST}` });
  });

  it("a client trusting the constrained CA rejects a host outside its name constraints", async () => {
    const result = await handshake(constrainedIssuer.secureContextFor(FOREIGN_HOST), constrainedCa.certPem, FOREIGN_HOST);
    // OpenSSL reports X509_V_ERR_PERMITTED_VIOLATION; node has no code of its own for it and says
    // UNSPECIFIED, but keeps OpenSSL's text. Not a host-name mismatch: the SAN does match.
    expect(result).toEqual({ authorized: false, errorCode: "UNSPECIFIED", errorMessage: "permitted subtree violation" });
  });

  it("a client trusting the unconstrained CA accepts the same host", async () => {
    const result = await handshake(unconstrainedIssuer.secureContextFor(FOREIGN_HOST), unconstrainedCa.certPem, FOREIGN_HOST);
    expect(result).toEqual({ authorized: true, peerSubjectAltName: `DNS:${FOREIGN_HOST}` });
  });

  it("an IP-address leaf validates under the unconstrained CA", async () => {
    const x509 = new X509Certificate(unconstrainedIssuer.issueLeafCertificate("127.0.0.1").certPem);
    expect(x509.subjectAltName).toBe("IP Address:127.0.0.1");
    const result = await handshake(unconstrainedIssuer.secureContextFor("127.0.0.1"), unconstrainedCa.certPem);
    expect(result).toEqual({ authorized: true, peerSubjectAltName: "IP Address:127.0.0.1" });
  });

  it("an IP-address leaf is rejected under the constrained CA (IP ranges are excluded)", async () => {
    const result = await handshake(constrainedIssuer.secureContextFor("127.0.0.1"), constrainedCa.certPem);
    expect(result).toEqual({ authorized: false, errorCode: "UNSPECIFIED", errorMessage: "excluded subtree violation" });
  });

  it("issues a leaf asynchronously (an RSA CA's on the thread pool): concurrent first contacts share one context, and clients accept it", async () => {
    const rsaCa = await initAuthority(freshDir(), { permittedDomains: [], unconstrained: true, keyType: "rsa" });
    const rsaIssuer = await LeafIssuer.create(rsaCa);
    for (const [issuer, caPem] of [
      [unconstrainedIssuer, unconstrainedCa.certPem],
      [rsaIssuer, rsaCa.certPem],
    ] as const) {
      const host = "async.events.data.microsoft.com";
      expect(issuer.cachedSecureContextFor(host)).toBeUndefined();
      const [a, b] = await Promise.all([issuer.secureContextForAsync(host), issuer.secureContextForAsync(host)]);
      expect(b).toBe(a);
      expect(issuer.cachedSecureContextFor(host.toUpperCase())).toBe(a);
      expect(issuer.secureContextFor(host)).toBe(a);
      // Several new hosts in a row use the contexts made ahead with the key loaded, and each presents its own leaf.
      const hosts = Array.from({ length: 12 }, (_, i) => `async${i}.events.data.microsoft.com`);
      const contexts = await Promise.all(hosts.map((h) => issuer.secureContextForAsync(h)));
      for (const [i, h] of hosts.entries()) {
        expect(await handshake(contexts[i], caPem, h)).toEqual({ authorized: true, peerSubjectAltName: `DNS:${h}` });
      }
      await expect(issuer.secureContextForAsync("evil host\n")).rejects.toThrow(RangeError);
    }
  });

  it("caches the secure context per host", () => {
    const first = unconstrainedIssuer.secureContextFor("cache.events.data.microsoft.com");
    expect(unconstrainedIssuer.secureContextFor("cache.events.data.microsoft.com")).toBe(first);
    expect(unconstrainedIssuer.secureContextFor("CACHE.events.data.microsoft.com.")).toBe(first);
    expect(unconstrainedIssuer.secureContextFor("other.events.data.microsoft.com")).not.toBe(first);
  });

  it("re-issues a cached leaf that is within the renewal window", async () => {
    // Leaves live one day but are renewed two days before expiry: every lookup is "near expiry".
    const shortLived = await LeafIssuer.create(unconstrainedCa, { validityDays: 1, renewBeforeMs: 2 * DAY_MS });
    const first = shortLived.secureContextFor(TELEMETRY_HOST);
    const second = shortLived.secureContextFor(TELEMETRY_HOST);
    expect(second).not.toBe(first);
    expect(shortLived.cachedContexts).toBe(1);
    const result = await handshake(second, unconstrainedCa.certPem, TELEMETRY_HOST);
    expect(result.authorized).toBe(true);

    // Same validity, but renewal only in the last hour: the cached context is kept.
    const longLived = await LeafIssuer.create(unconstrainedCa, { validityDays: 1, renewBeforeMs: 60 * 60 * 1000 });
    expect(longLived.secureContextFor(TELEMETRY_HOST)).toBe(longLived.secureContextFor(TELEMETRY_HOST));
  });

  it("evicts the least recently used context beyond maxEntries", async () => {
    const small = await LeafIssuer.create(unconstrainedCa, { maxEntries: 2 });
    const a = small.secureContextFor("a.example");
    small.secureContextFor("b.example");
    small.secureContextFor("c.example"); // evicts a.example
    expect(small.cachedContexts).toBe(2);
    expect(small.secureContextFor("a.example")).not.toBe(a);
  });

  it("refuses host names that are neither DNS names nor IP addresses", () => {
    expect(normaliseHost("[::1]")).toBe("::1");
    expect(normaliseHost("Host.Example.")).toBe("host.example");
    expect(() => unconstrainedIssuer.secureContextFor("evil host\n")).toThrow(RangeError);
    expect(() => unconstrainedIssuer.issueLeafCertificate("")).toThrow(RangeError);
  });
});

describe("endpoint catalogue lookup", () => {
  it("gives a host the most specific entry, wherever it sits in the file", () => {
    const catalog = EndpointCatalog.load();
    expect(catalog.match("v10c.events.data.microsoft.com")?.id).toBe("windows-utc");
    expect(catalog.match("eu-v20.events.data.microsoft.com")?.id).toBe("windows-utc");
    expect(catalog.match("umwatsonc.events.data.microsoft.com")?.id).toBe("windows-error-reporting-events");
    expect(catalog.match("self.events.data.microsoft.com")?.id).toBe("onecollector");
    expect(catalog.match("mobile.events.data.microsoft.com")?.id).toBe("onecollector");
    // A catch-all listed after a specific entry does not take its host either.
    const reordered = new EndpointCatalog([...catalog.endpoints].reverse());
    expect(reordered.match("v10c.events.data.microsoft.com")?.id).toBe("windows-utc");
    expect(reordered.match("www.bank.example")).toBeUndefined();
  });
});
