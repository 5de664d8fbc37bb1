/**
 * The bundle-signing identity: a key of the CA's type (ECDSA P-256 or RSA) and a certificate issued by exhaust's CA, kept in certs/
 * beside it (key 0600). `exhaust ca init` creates it; a CA made before it existed gets one on first
 * use, and a CA replaced with --force gets a fresh one (the old certificate no longer chains to it).
 */
import { createPrivateKey, X509Certificate, type KeyObject } from "node:crypto";
import { chmod, readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { exhaustError } from "../errors.js";
import { writeFileAtomically, type CertificateAuthority } from "./authority.js";
import {
  certificateFromDer,
  generateKeyPairOfType,
  randomSerialNumberHex,
  signCertificate,
  subjectKeyIdentifierExtension,
  subjectKeyIdentifierOf,
  templateKeyOf,
  toWholeSeconds,
} from "./x509.js";

export const SIGNING_CERT_FILE = "exhaust-signing.pem";
export const SIGNING_KEY_FILE = "exhaust-signing.key";
const SIGNING_VALIDITY_YEARS = 5;

export interface SigningIdentity {
  certPem: string;
  key: KeyObject;
  /** The issuing CA's certificate (PEM), bundled beside the signing certificate. */
  caCertPem: string;
  subject: string;
  fingerprint256: string;
  caFingerprint256: string;
}

async function readIdentity(ca: CertificateAuthority): Promise<SigningIdentity | undefined> {
  const certFile = join(ca.dir, SIGNING_CERT_FILE);
  const keyFile = join(ca.dir, SIGNING_KEY_FILE);
  let certPem: string;
  let key: KeyObject;
  try {
    if (process.platform !== "win32" && ((await stat(keyFile)).mode & 0o777) !== 0o600) await chmod(keyFile, 0o600);
    certPem = await readFile(certFile, "utf8");
    key = createPrivateKey(await readFile(keyFile));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw exhaustError("EXH_CA_INVALID", { dir: ca.dir, reason: `signing key or certificate unreadable: ${(e as Error).message}` }, e);
  }
  const cert = new X509Certificate(certPem);
  const caCert = new X509Certificate(ca.certPem);
  // Issued by another (replaced) CA, expired, or not matching its key: issue a new one.
  if (!cert.checkIssued(caCert) || !cert.verify(caCert.publicKey) || !cert.checkPrivateKey(key)) return undefined;
  if (new Date(cert.validTo).getTime() <= Date.now()) return undefined;
  return {
    certPem,
    key,
    caCertPem: ca.certPem,
    subject: cert.subject.split("\n").join(", "),
    fingerprint256: cert.fingerprint256,
    caFingerprint256: ca.fingerprint256,
  };
}

/** Loads the signing identity in the CA's directory, issuing it (or re-issuing it for a new CA) when needed. */
export async function loadOrCreateSigningIdentity(ca: CertificateAuthority): Promise<SigningIdentity> {
  const existing = await readIdentity(ca);
  if (existing) return existing;
  const { privateKey, publicKey } = await generateKeyPairOfType(ca.keyType);
  const caCert = certificateFromDer(ca.certDer);
  const now = Date.now();
  const notBefore = toWholeSeconds(new Date(now - 60_000));
  const notAfter = toWholeSeconds(new Date(now));
  notAfter.setUTCFullYear(Math.min(notAfter.getUTCFullYear() + SIGNING_VALIDITY_YEARS, ca.notAfter.getUTCFullYear()));
  if (notAfter > ca.notAfter) notAfter.setTime(ca.notAfter.getTime());
  const { pem } = signCertificate(
    {
      serialNumberHex: randomSerialNumberHex(),
      subject: [
        { shortName: "CN", value: "exhaust evidence signing" },
        { shortName: "O", value: "exhaust" },
      ],
      issuer: caCert.subject.attributes,
      ...templateKeyOf(publicKey),
      notBefore,
      notAfter,
      extensions: [
        { name: "basicConstraints", critical: true, cA: false },
        { name: "keyUsage", critical: true, digitalSignature: true, nonRepudiation: true },
        subjectKeyIdentifierExtension(publicKey),
        { name: "authorityKeyIdentifier", keyIdentifier: subjectKeyIdentifierOf(caCert) },
      ],
    },
    ca.key,
  );
  await writeFileAtomically(join(ca.dir, SIGNING_KEY_FILE), privateKey.export({ type: "pkcs8", format: "pem" }) as string, 0o600);
  await writeFileAtomically(join(ca.dir, SIGNING_CERT_FILE), pem, 0o644);
  const created = await readIdentity(ca);
  if (!created) throw exhaustError("EXH_CA_INVALID", { dir: ca.dir, reason: "the new signing certificate does not verify against the CA" });
  return created;
}
