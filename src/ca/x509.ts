import { generateKeyPair, randomBytes, sign, type KeyObject } from "node:crypto";
import { isIP } from "node:net";
import { promisify } from "node:util";
import forge from "node-forge";

/**
 * Certificate plumbing shared by the CA and the leaf issuer. forge builds the ASN.1; node:crypto
 * generates the keys and signs, because forge's pure-JS RSA is two orders of magnitude slower.
 */

const { asn1, pki } = forge;

export const NAME_CONSTRAINTS_OID = "2.5.29.30";
const SHA256_WITH_RSA_OID = pki.oids.sha256WithRSAEncryption;
const RSA_MODULUS_BITS = 2048;

/** Loose DNS name: lower-case labels of letters, digits, `-` and `_` (seen in real Microsoft hosts). */
export const DNS_NAME_PATTERN = /^(?=.{1,253}$)[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?(?:\.[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?)*$/;

/** GeneralName CHOICE tags (RFC 5280 §4.2.1.6), all IMPLICIT. */
const GENERAL_NAME_DNS = 2;
const GENERAL_NAME_IP = 7;

// Present at runtime (forge's own certificateToAsn1 uses it) but missing from @types/node-forge.
// eslint-disable-next-line @typescript-eslint/unbound-method -- a plain function on forge's pki namespace, no `this`
const getTBSCertificate = (pki as unknown as { getTBSCertificate(cert: forge.pki.Certificate): forge.asn1.Asn1 }).getTBSCertificate;

export interface RsaKeyPair {
  privateKey: KeyObject;
  publicKey: KeyObject;
}

const generateKeyPairAsync = promisify(generateKeyPair);

/** RSA-2048 on libuv's thread pool, so a key never stalls the event loop. */
export async function generateRsaKeyPair(): Promise<RsaKeyPair> {
  return generateKeyPairAsync("rsa", { modulusLength: RSA_MODULUS_BITS, publicExponent: 0x10001 });
}

export function toForgePublicKey(publicKey: KeyObject): forge.pki.rsa.PublicKey {
  return pki.publicKeyFromPem(publicKey.export({ type: "spki", format: "pem" }) as string);
}

/** 16 random bytes as a positive, minimally encoded DER INTEGER (no sign bit, no leading zero octet). */
export function randomSerialNumberHex(): string {
  const bytes = randomBytes(16);
  bytes[0] &= 0x7f;
  if (bytes[0] === 0) bytes[0] = 0x01;
  return bytes.toString("hex");
}

/** X.509 times carry whole seconds; round down so the Date we report is the one in the certificate. */
export function toWholeSeconds(date: Date): Date {
  return new Date(Math.floor(date.getTime() / 1000) * 1000);
}

export function isIpAddress(host: string): boolean {
  return isIP(host) !== 0;
}

export interface CertificateTemplate {
  serialNumberHex: string;
  subject: forge.pki.CertificateField[];
  issuer: forge.pki.CertificateField[];
  publicKey: forge.pki.rsa.PublicKey;
  notBefore: Date;
  notAfter: Date;
  /** forge extension descriptors; forge fills in `value` on these objects, so pass fresh ones. */
  extensions: object[];
  /**
   * The subject's key as SubjectPublicKeyInfo DER, for a key forge cannot represent (ECDSA): it
   * replaces `publicKey`'s in the certificate (`publicKey` then only fills forge's slot, and no
   * subjectKeyIdentifier may be derived from it).
   */
  subjectPublicKeyInfoDer?: Buffer;
}

export interface SignedCertificate {
  pem: string;
  der: Buffer;
}

/** A certificate's TBS part, built by forge, ready to be signed by the issuer. */
export interface UnsignedCertificate {
  tbs: forge.asn1.Asn1;
  tbsDer: Buffer;
}

/** Builds the TBS part of the certificate with forge (sha256WithRSAEncryption as its signature algorithm). */
export function buildCertificate(template: CertificateTemplate): UnsignedCertificate {
  const cert = pki.createCertificate();
  cert.version = 2; // X.509 v3
  cert.serialNumber = template.serialNumberHex;
  cert.publicKey = template.publicKey; // before setExtensions: subjectKeyIdentifier is derived from it
  cert.validity.notBefore = template.notBefore;
  cert.validity.notAfter = template.notAfter;
  cert.setSubject(template.subject);
  cert.setIssuer(template.issuer);
  cert.setExtensions(template.extensions);
  cert.siginfo.algorithmOid = cert.signatureOid = SHA256_WITH_RSA_OID;

  const tbs = getTBSCertificate(cert);
  if (template.subjectPublicKeyInfoDer) {
    // TBSCertificate: [0] version, serialNumber, signature, issuer, validity, subject, subjectPublicKeyInfo, ...
    (tbs.value as forge.asn1.Asn1[])[6] = asn1.fromDer(template.subjectPublicKeyInfoDer.toString("binary"));
  }
  return { tbs, tbsDer: Buffer.from(asn1.toDer(tbs).getBytes(), "binary") };
}

/** The signed certificate from its TBS part and the issuer's sha256WithRSAEncryption signature of it. */
export function assembleCertificate(unsigned: UnsignedCertificate, signature: Buffer): SignedCertificate {
  // Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signatureValue BIT STRING }
  // (built here rather than by forge, which would derive the TBS again from its RSA key slot).
  const certificate = asn1.create(asn1.Class.UNIVERSAL, asn1.Type.SEQUENCE, true, [
    unsigned.tbs,
    asn1.create(asn1.Class.UNIVERSAL, asn1.Type.SEQUENCE, true, [
      asn1.create(asn1.Class.UNIVERSAL, asn1.Type.OID, false, asn1.oidToDer(SHA256_WITH_RSA_OID).getBytes()),
      asn1.create(asn1.Class.UNIVERSAL, asn1.Type.NULL, false, ""),
    ]),
    asn1.create(asn1.Class.UNIVERSAL, asn1.Type.BITSTRING, false, `\0${signature.toString("binary")}`),
  ]);
  const der = Buffer.from(asn1.toDer(certificate).getBytes(), "binary");
  return { pem: derToPem(der), der };
}

/** Builds the certificate with forge, signs its TBS part with node:crypto (sha256WithRSAEncryption). */
export function signCertificate(template: CertificateTemplate, issuerKey: KeyObject): SignedCertificate {
  const unsigned = buildCertificate(template);
  return assembleCertificate(unsigned, sign("sha256", unsigned.tbsDer, issuerKey));
}

/**
 * The same, with the issuer's signature made on libuv's thread pool (node:crypto's callback form),
 * so a leaf issued while the proxy is busy costs its event loop only the ASN.1 work.
 */
export function signCertificateAsync(template: CertificateTemplate, issuerKey: KeyObject): Promise<SignedCertificate> {
  const unsigned = buildCertificate(template);
  return new Promise((resolve, reject) =>
    sign("sha256", unsigned.tbsDer, issuerKey, (err, signature) => {
      if (err) reject(err);
      else resolve(assembleCertificate(unsigned, signature));
    }),
  );
}

const generateEcKeyPairAsync = promisify(generateKeyPair);

/**
 * ECDSA P-256 on libuv's thread pool: the leaf key. A server handshake signs with it, and an
 * ECDSA signature costs a small fraction of an RSA-2048 one on the proxy's event loop.
 */
export async function generateLeafKeyPair(): Promise<RsaKeyPair> {
  return generateEcKeyPairAsync("ec", { namedCurve: "prime256v1" });
}

/** forge.pki.certificateToPem writes CRLF; files and logs read better with LF. */
export function derToPem(der: Buffer): string {
  const lines = der.toString("base64").match(/.{1,64}/g) ?? [];
  return `-----BEGIN CERTIFICATE-----\n${lines.join("\n")}\n-----END CERTIFICATE-----\n`;
}

function contextTag(tag: number, constructed: boolean, value: string | forge.asn1.Asn1[]): forge.asn1.Asn1 {
  return asn1.create(asn1.Class.CONTEXT_SPECIFIC, tag, constructed, value);
}

function generalSubtree(base: forge.asn1.Asn1): forge.asn1.Asn1 {
  return asn1.create(asn1.Class.UNIVERSAL, asn1.Type.SEQUENCE, true, [base]);
}

/**
 * A critical NameConstraints extension (RFC 5280 §4.2.1.10) that forge cannot build itself; forge
 * copies a string `value` into extnValue verbatim, so we hand it the DER.
 *
 * permittedSubtrees holds one dNSName per domain. dNSName constraints say nothing about IP
 * addresses, so without more a constrained CA could still mint a certificate for any IP; the
 * excludedSubtrees (all of IPv4 and IPv6) close that hole.
 */
export function nameConstraintsExtension(permittedDomains: readonly string[]): {
  id: string;
  critical: true;
  value: string;
} {
  const permitted = permittedDomains.map((domain) => generalSubtree(contextTag(GENERAL_NAME_DNS, false, domain)));
  const everyIpv4 = "\0".repeat(8); // address 0.0.0.0, mask 0.0.0.0
  const everyIpv6 = "\0".repeat(32);
  const excluded = [everyIpv4, everyIpv6].map((range) => generalSubtree(contextTag(GENERAL_NAME_IP, false, range)));
  const nameConstraints = asn1.create(asn1.Class.UNIVERSAL, asn1.Type.SEQUENCE, true, [
    contextTag(0, true, permitted), // permittedSubtrees [0] IMPLICIT GeneralSubtrees
    contextTag(1, true, excluded), // excludedSubtrees [1] IMPLICIT GeneralSubtrees
  ]);
  return { id: NAME_CONSTRAINTS_OID, critical: true, value: asn1.toDer(nameConstraints).getBytes() };
}

/**
 * The dNSName entries of a certificate's permittedSubtrees, or null when it has no NameConstraints
 * extension. node's X509Certificate does not expose the extension, so read it with forge.
 */
export function readPermittedDomains(cert: forge.pki.Certificate): string[] | null {
  const extension = (cert.extensions as Array<{ id: string; value: string }>).find((e) => e.id === NAME_CONSTRAINTS_OID);
  if (!extension) return null;
  const nameConstraints = asn1.fromDer(extension.value);
  const domains: string[] = [];
  for (const part of nameConstraints.value as forge.asn1.Asn1[]) {
    if (part.tagClass !== asn1.Class.CONTEXT_SPECIFIC || part.type !== 0) continue;
    for (const subtree of part.value as forge.asn1.Asn1[]) {
      const base = (subtree.value as forge.asn1.Asn1[])[0];
      if (base?.tagClass === asn1.Class.CONTEXT_SPECIFIC && base.type === GENERAL_NAME_DNS) {
        domains.push(base.value as string);
      }
    }
  }
  return domains;
}

export function certificateFromDer(der: Buffer): forge.pki.Certificate {
  return pki.certificateFromAsn1(asn1.fromDer(der.toString("binary")));
}

/** subjectKeyIdentifier bytes (binary string) as the certificate states them, for authorityKeyIdentifier. */
export function subjectKeyIdentifierOf(cert: forge.pki.Certificate): string {
  // eslint-disable-next-line @typescript-eslint/no-unnecessary-type-assertion -- @types/node-forge types it as {}
  const extension = cert.getExtension("subjectKeyIdentifier") as { subjectKeyIdentifier?: string } | undefined;
  if (extension?.subjectKeyIdentifier) return forge.util.hexToBytes(extension.subjectKeyIdentifier);
  return pki.getPublicKeyFingerprint(cert.publicKey, { type: "RSAPublicKey" }).getBytes();
}
