import { createHash, generateKeyPair, randomBytes, sign, type KeyObject } from "node:crypto";
import { isIP } from "node:net";
import { promisify } from "node:util";
import forge from "node-forge";
import { exhaustError } from "../errors.js";

/**
 * Certificate plumbing shared by the CA and the leaf issuer. forge builds the ASN.1; node:crypto
 * generates the keys and signs, because forge's pure-JS RSA is two orders of magnitude slower.
 */

const { asn1, pki } = forge;

export const NAME_CONSTRAINTS_OID = "2.5.29.30";
const SHA256_WITH_RSA_OID = pki.oids.sha256WithRSAEncryption;
/** ecdsa-with-SHA256 (RFC 5758 §3.2): its AlgorithmIdentifier has no parameters. */
const ECDSA_WITH_SHA256_OID = "1.2.840.10045.4.3.2";
const SUBJECT_KEY_IDENTIFIER_OID = "2.5.29.14";
const RSA_OID = pki.oids.rsaEncryption;
const RSA_MODULUS_BITS = 2048;

/** The CA's key: ECDSA P-256 for new CAs (a leaf's signature costs ~1/20 of RSA-2048's), RSA-2048 on request. */
export type CaKeyType = "ecdsa" | "rsa";
export const CA_KEY_TYPES: readonly CaKeyType[] = ["ecdsa", "rsa"];
export const DEFAULT_CA_KEY_TYPE: CaKeyType = "ecdsa";

/** A --ca-key value as given, checked: one of CA_KEY_TYPES, else EXH_OPT_INVALID naming the option. */
export function parseCaKeyType(value: string, option = "--ca-key"): CaKeyType {
  if ((CA_KEY_TYPES as readonly string[]).includes(value)) return value as CaKeyType;
  throw exhaustError("EXH_OPT_INVALID", { option, reason: `expected ${CA_KEY_TYPES.join(" or ")}, got "${value}"` });
}

/** Loose DNS name: lower-case labels of letters, digits, `-` and `_` (seen in real Microsoft hosts). */
export const DNS_NAME_PATTERN = /^(?=.{1,253}$)[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?(?:\.[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?)*$/;

/** GeneralName CHOICE tags (RFC 5280 §4.2.1.6), all IMPLICIT. */
const GENERAL_NAME_DNS = 2;
const GENERAL_NAME_IP = 7;

// Present at runtime (forge's own certificateToAsn1 uses it) but missing from @types/node-forge.
// eslint-disable-next-line @typescript-eslint/unbound-method -- a plain function on forge's pki namespace, no `this`
const getTBSCertificate = (pki as unknown as { getTBSCertificate(cert: forge.pki.Certificate): forge.asn1.Asn1 }).getTBSCertificate;

export interface KeyPair {
  privateKey: KeyObject;
  publicKey: KeyObject;
}

const generateKeyPairAsync = promisify(generateKeyPair);

/** RSA-2048 on libuv's thread pool, so a key never stalls the event loop. */
export async function generateRsaKeyPair(): Promise<KeyPair> {
  return generateKeyPairAsync("rsa", { modulusLength: RSA_MODULUS_BITS, publicExponent: 0x10001 });
}

/** A CA's (or the evidence signing identity's) key pair, on libuv's thread pool. */
export async function generateKeyPairOfType(type: CaKeyType): Promise<KeyPair> {
  return type === "rsa" ? generateRsaKeyPair() : generateLeafKeyPair();
}

/** "ecdsa" or "rsa" for a key exhaust can sign certificates with; undefined for any other key. */
export function caKeyTypeOf(key: KeyObject): CaKeyType | undefined {
  if (key.asymmetricKeyType === "rsa") return "rsa";
  if (key.asymmetricKeyType === "ec" && key.asymmetricKeyDetails?.namedCurve === "prime256v1") return "ecdsa";
  return undefined;
}

/**
 * Stands in forge's RSA-only key slot for a key forge cannot represent (ECDSA): the certificate
 * carries the real key's SubjectPublicKeyInfo instead (CertificateTemplate.subjectPublicKeyInfoDer).
 */
export const PLACEHOLDER_PUBLIC_KEY: forge.pki.rsa.PublicKey = pki.setRsaPublicKey(
  new forge.jsbn.BigInteger("3"),
  new forge.jsbn.BigInteger("3"),
);
const PLACEHOLDER_SPKI_DER = asn1.toDer(pki.publicKeyToAsn1(PLACEHOLDER_PUBLIC_KEY)).getBytes();

export function toForgePublicKey(publicKey: KeyObject): forge.pki.rsa.PublicKey {
  return pki.publicKeyFromPem(publicKey.export({ type: "spki", format: "pem" }) as string);
}

/** A subject key for a CertificateTemplate: an RSA key in forge's slot, any other spliced as DER. */
export function templateKeyOf(publicKey: KeyObject): Pick<CertificateTemplate, "publicKey" | "subjectPublicKeyInfoDer"> {
  if (publicKey.asymmetricKeyType === "rsa") return { publicKey: toForgePublicKey(publicKey) };
  return { publicKey: PLACEHOLDER_PUBLIC_KEY, subjectPublicKeyInfoDer: publicKey.export({ type: "spki", format: "der" }) };
}

/**
 * A subjectKeyIdentifier extension for `publicKey` (RFC 5280 §4.2.1.2 method 1: SHA-1 of the
 * subjectPublicKey bits), built here because forge derives it from its RSA key slot only.
 */
export function subjectKeyIdentifierExtension(publicKey: KeyObject): { id: string; value: string } {
  let subjectPublicKey: Buffer;
  if (publicKey.asymmetricKeyType === "rsa") subjectPublicKey = publicKey.export({ type: "pkcs1", format: "der" });
  else {
    // An uncompressed EC point: 0x04 || x || y.
    const jwk = publicKey.export({ format: "jwk" });
    subjectPublicKey = Buffer.concat([Buffer.from([4]), Buffer.from(jwk.x ?? "", "base64url"), Buffer.from(jwk.y ?? "", "base64url")]);
  }
  const keyIdentifier = createHash("sha1").update(subjectPublicKey).digest().toString("binary");
  return {
    id: SUBJECT_KEY_IDENTIFIER_OID,
    value: asn1.toDer(asn1.create(asn1.Class.UNIVERSAL, asn1.Type.OCTETSTRING, false, keyIdentifier)).getBytes(),
  };
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

/** A certificate's TBS part (DER), ready to be signed by the issuer. */
export interface UnsignedCertificate {
  tbsDer: Buffer;
  /** The issuer's signature algorithm (sha256WithRSAEncryption or ecdsa-with-SHA256). */
  signatureOid: string;
}

/** The AlgorithmIdentifier of a signature: RSA's carries NULL parameters, ECDSA's none. */
function signatureAlgorithm(oid: string): forge.asn1.Asn1 {
  const parts = [asn1.create(asn1.Class.UNIVERSAL, asn1.Type.OID, false, asn1.oidToDer(oid).getBytes())];
  if (oid === SHA256_WITH_RSA_OID) parts.push(asn1.create(asn1.Class.UNIVERSAL, asn1.Type.NULL, false, ""));
  return asn1.create(asn1.Class.UNIVERSAL, asn1.Type.SEQUENCE, true, parts);
}

/** The signature algorithm an issuer's key signs certificates with. */
function signatureOidFor(issuerKey: KeyObject): string {
  return issuerKey.asymmetricKeyType === "ec" ? ECDSA_WITH_SHA256_OID : SHA256_WITH_RSA_OID;
}

/** Builds the TBS part of the certificate with forge, for the algorithm `issuerKey` signs with. */
export function buildCertificate(template: CertificateTemplate, issuerKey: KeyObject): UnsignedCertificate {
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
  // TBSCertificate: [0] version, serialNumber, signature, issuer, validity, subject, subjectPublicKeyInfo, ...
  const fields = tbs.value as forge.asn1.Asn1[];
  if (template.subjectPublicKeyInfoDer) fields[6] = asn1.fromDer(template.subjectPublicKeyInfoDer.toString("binary"));
  const signatureOid = signatureOidFor(issuerKey);
  if (signatureOid !== SHA256_WITH_RSA_OID) fields[2] = signatureAlgorithm(signatureOid);
  return { tbsDer: Buffer.from(asn1.toDer(tbs).getBytes(), "binary"), signatureOid };
}

/** The signed certificate from its TBS part and the issuer's signature of it (node:crypto's, DER for ECDSA). */
export function assembleCertificate(unsigned: UnsignedCertificate, signature: Buffer): SignedCertificate {
  // Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signatureValue BIT STRING }
  // (built here rather than by forge, which would derive the TBS again from its RSA key slot).
  const der = derTlv(
    DER_SEQUENCE,
    unsigned.tbsDer,
    signatureAlgorithmDer(unsigned.signatureOid),
    derTlv(DER_BIT_STRING, BIT_STRING_NO_UNUSED_BITS, signature),
  );
  return { pem: derToPem(der), der };
}

const DER_INTEGER = 0x02;
const DER_BIT_STRING = 0x03;
const DER_OCTET_STRING = 0x04;
const DER_OID = 0x06;
const DER_PRINTABLE_STRING = 0x13;
const DER_UTC_TIME = 0x17;
const DER_GENERALIZED_TIME = 0x18;
const DER_SEQUENCE = 0x30;
const DER_SET = 0x31;
const DER_EXPLICIT_3 = 0xa3;
const BIT_STRING_NO_UNUSED_BITS = Buffer.from([0]);
const signatureAlgorithmDers = new Map<string, Buffer>();

function signatureAlgorithmDer(oid: string): Buffer {
  let der = signatureAlgorithmDers.get(oid);
  if (!der) signatureAlgorithmDers.set(oid, (der = Buffer.from(asn1.toDer(signatureAlgorithm(oid)).getBytes(), "binary")));
  return der;
}

/** One DER TLV: `tag`, the definite length, then `parts` (one allocation). */
function derTlv(tag: number, ...parts: Buffer[]): Buffer {
  let length = 0;
  for (const part of parts) length += part.length;
  const lengthBytes = length < 0x80 ? 1 : length < 0x100 ? 2 : length < 0x10000 ? 3 : 4;
  const out = Buffer.allocUnsafe(1 + lengthBytes + length);
  out[0] = tag;
  if (lengthBytes === 1) out[1] = length;
  else {
    out[1] = 0x80 | (lengthBytes - 1);
    for (let i = lengthBytes - 1, n = length; i >= 1; i--, n >>>= 8) out[1 + i] = n & 0xff;
  }
  let at = 1 + lengthBytes;
  for (const part of parts) at += part.copy(out, at);
  return out;
}

const JAN_1_1950 = Date.UTC(1950, 0, 1);
const JAN_1_2050 = Date.UTC(2050, 0, 1);

/** X.509 Time as forge writes it: UTCTime from 1950 to 2049, GeneralizedTime otherwise (RFC 5280 §4.1.2.5). */
function derTime(date: Date): Buffer {
  const iso = date.toISOString(); // YYYY-MM-DDTHH:MM:SS.sssZ
  const digits = `${iso.slice(0, 4)}${iso.slice(5, 7)}${iso.slice(8, 10)}${iso.slice(11, 13)}${iso.slice(14, 16)}${iso.slice(17, 19)}Z`;
  const t = date.getTime();
  return t >= JAN_1_1950 && t < JAN_1_2050
    ? derTlv(DER_UTC_TIME, Buffer.from(digits.slice(2), "latin1"))
    : derTlv(DER_GENERALIZED_TIME, Buffer.from(digits, "latin1"));
}

function derOf(node: forge.asn1.Asn1): Buffer {
  return Buffer.from(asn1.toDer(node).getBytes(), "binary");
}

const COMMON_NAME_OID_DER = derTlv(DER_OID, Buffer.from(asn1.oidToDer("2.5.4.3").getBytes(), "binary"));
/** The subject of a leaf whose name is too long for a CN (ub-common-name): O=exhaust, as forge writes it. */
const FALLBACK_SUBJECT_DER = derTlv(
  DER_SEQUENCE,
  derTlv(
    DER_SET,
    derTlv(
      DER_SEQUENCE,
      derTlv(DER_OID, Buffer.from(asn1.oidToDer("2.5.4.10").getBytes(), "binary")),
      derTlv(DER_PRINTABLE_STRING, Buffer.from("exhaust", "latin1")),
    ),
  ),
);
const SUBJECT_ALT_NAME_OID_DER = derTlv(DER_OID, Buffer.from(asn1.oidToDer("2.5.29.17").getBytes(), "binary"));

/**
 * A leaf's TBSCertificate without forge, for one issuer and one leaf key: everything but the
 * serial number, the validity, the subject and the subjectAltName is encoded once, from a
 * certificate forge built (`reference`, whose subject is a CN and whose subjectAltName is its
 * fourth extension), and reused for every host. The bytes are those forge would write (a test
 * compares them); a new host then costs a few small buffers instead of forge's object tree.
 */
export class LeafTbsEncoder {
  private constructor(
    private readonly version: Buffer,
    private readonly signature: Buffer,
    private readonly issuer: Buffer,
    private readonly subjectPublicKeyInfo: Buffer,
    private readonly extensionsBefore: Buffer[],
    private readonly extensionsAfter: Buffer[],
    private readonly signatureOid: string,
  ) {}

  static fromReference(template: CertificateTemplate, issuerKey: KeyObject, subjectAltNameIndex: number): LeafTbsEncoder {
    const { tbsDer, signatureOid } = buildCertificate(template, issuerKey);
    const fields = asn1.fromDer(tbsDer.toString("binary")).value as forge.asn1.Asn1[];
    const extensions = ((fields[7].value as forge.asn1.Asn1[])[0].value as forge.asn1.Asn1[]).map(derOf);
    return new LeafTbsEncoder(
      derOf(fields[0]),
      derOf(fields[2]),
      derOf(fields[3]),
      derOf(fields[6]),
      extensions.slice(0, subjectAltNameIndex),
      extensions.slice(subjectAltNameIndex + 1),
      signatureOid,
    );
  }

  /**
   * The TBS for `name` (a normalised DNS name or IP address), whose subject is CN=name when
   * `commonName`, otherwise O=exhaust (a name too long for a CN).
   */
  encode(serialNumberHex: string, notBefore: Date, notAfter: Date, name: string, ip: boolean, commonName: boolean): UnsignedCertificate {
    const generalName = ip
      ? derTlv(0x87, ipAddressBytes(name)) // [7] IMPLICIT OCTET STRING
      : derTlv(0x82, Buffer.from(name, "latin1")); // [2] IMPLICIT IA5String
    const subjectAltName = derTlv(DER_SEQUENCE, SUBJECT_ALT_NAME_OID_DER, derTlv(DER_OCTET_STRING, derTlv(DER_SEQUENCE, generalName)));
    const subjectDer = commonName
      ? derTlv(
          DER_SEQUENCE,
          derTlv(DER_SET, derTlv(DER_SEQUENCE, COMMON_NAME_OID_DER, derTlv(DER_PRINTABLE_STRING, Buffer.from(name, "latin1")))),
        )
      : FALLBACK_SUBJECT_DER;
    const tbsDer = derTlv(
      DER_SEQUENCE,
      this.version,
      derTlv(DER_INTEGER, Buffer.from(serialNumberHex, "hex")),
      this.signature,
      this.issuer,
      derTlv(DER_SEQUENCE, derTime(notBefore), derTime(notAfter)),
      subjectDer,
      this.subjectPublicKeyInfo,
      derTlv(DER_EXPLICIT_3, derTlv(DER_SEQUENCE, ...this.extensionsBefore, subjectAltName, ...this.extensionsAfter)),
    );
    return { tbsDer, signatureOid: this.signatureOid };
  }
}

// Present at runtime (forge's subjectAltName `ip` uses it) but missing from @types/node-forge.
const { bytesFromIP } = forge.util as unknown as { bytesFromIP: (ip: string) => string | null };

/** The 4 or 16 bytes of an IPv4 or IPv6 address (as forge's subjectAltName `ip`). */
function ipAddressBytes(ip: string): Buffer {
  return Buffer.from(bytesFromIP(ip) ?? "", "binary");
}

/** Signs `unsigned` with the issuer's key on this thread (ECDSA P-256: about 0.03 ms). */
export function signUnsigned(unsigned: UnsignedCertificate, issuerKey: KeyObject): SignedCertificate {
  return assembleCertificate(unsigned, sign("sha256", unsigned.tbsDer, issuerKey));
}

/** The same on libuv's thread pool (an RSA-2048 signature: about 0.3–0.65 ms). */
export function signUnsignedAsync(unsigned: UnsignedCertificate, issuerKey: KeyObject): Promise<SignedCertificate> {
  return new Promise((resolve, reject) =>
    sign("sha256", unsigned.tbsDer, issuerKey, (err, signature) => {
      if (err) reject(err);
      else resolve(assembleCertificate(unsigned, signature));
    }),
  );
}

/** Builds the certificate with forge, signs its TBS part with node:crypto (RSA or ECDSA, SHA-256). */
export function signCertificate(template: CertificateTemplate, issuerKey: KeyObject): SignedCertificate {
  return signUnsigned(buildCertificate(template, issuerKey), issuerKey);
}

const generateEcKeyPairAsync = promisify(generateKeyPair);

/**
 * ECDSA P-256 on libuv's thread pool: the leaf key. A server handshake signs with it, and an
 * ECDSA signature costs a small fraction of an RSA-2048 one on the proxy's event loop.
 */
export async function generateLeafKeyPair(): Promise<KeyPair> {
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

/**
 * forge's view of a certificate (subject, issuer, extensions). forge reads RSA keys only: another
 * key (an ECDSA CA's) is replaced by PLACEHOLDER_PUBLIC_KEY in what it sees.
 */
export function certificateFromDer(der: Buffer): forge.pki.Certificate {
  const certificate = asn1.fromDer(der.toString("binary"));
  const tbsFields = ((certificate.value as forge.asn1.Asn1[])[0]?.value ?? []) as forge.asn1.Asn1[];
  // TBSCertificate's fields: [0] version (explicit, v3), serialNumber, signature, issuer, validity, subject, subjectPublicKeyInfo.
  const spkiIndex = tbsFields[0]?.tagClass === asn1.Class.CONTEXT_SPECIFIC ? 6 : 5;
  const spki = tbsFields[spkiIndex];
  const algorithm = ((spki?.value as forge.asn1.Asn1[] | undefined)?.[0]?.value as forge.asn1.Asn1[] | undefined)?.[0];
  if (spki && algorithm?.type === asn1.Type.OID && asn1.derToOid(algorithm.value as string) !== RSA_OID) {
    tbsFields[spkiIndex] = asn1.fromDer(PLACEHOLDER_SPKI_DER);
  }
  return pki.certificateFromAsn1(certificate);
}

/** subjectKeyIdentifier bytes (binary string) as the certificate states them, for authorityKeyIdentifier. */
export function subjectKeyIdentifierOf(cert: forge.pki.Certificate): string {
  // eslint-disable-next-line @typescript-eslint/no-unnecessary-type-assertion -- @types/node-forge types it as {}
  const extension = cert.getExtension("subjectKeyIdentifier") as { subjectKeyIdentifier?: string } | undefined;
  if (extension?.subjectKeyIdentifier) return forge.util.hexToBytes(extension.subjectKeyIdentifier);
  if ((cert.publicKey as forge.pki.rsa.PublicKey).n.equals(PLACEHOLDER_PUBLIC_KEY.n)) {
    throw new Error("the certificate has no subjectKeyIdentifier and a key forge cannot read");
  }
  return pki.getPublicKeyFingerprint(cert.publicKey, { type: "RSAPublicKey" }).getBytes();
}
