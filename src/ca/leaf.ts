import { createSecureContext, type SecureContext } from "node:tls";
import { LRUCache } from "lru-cache";
import type forge from "node-forge";
import type { CertificateAuthority } from "./authority.js";
import {
  certificateFromDer,
  DNS_NAME_PATTERN,
  generateLeafKeyPair,
  isIpAddress,
  randomSerialNumberHex,
  signCertificate,
  subjectKeyIdentifierOf,
  toWholeSeconds,
} from "./x509.js";

export { isIpAddress } from "./x509.js";

const DAY_MS = 24 * 60 * 60 * 1000;
/** ub-common-name (RFC 5280): longer host names go in the SAN only. */
const MAX_COMMON_NAME_LENGTH = 64;

export interface LeafIssuerOptions {
  /** Secure contexts kept (LRU). Default 1000. */
  maxEntries?: number;
  /** Leaf lifetime in days; fractions allowed. Default 30. */
  validityDays?: number;
  /** Re-issue a cached leaf this close to its notAfter. Default 1 day. */
  renewBeforeMs?: number;
}

export interface IssuedLeaf {
  certPem: string;
  notAfter: Date;
}

interface CachedContext {
  secureContext: SecureContext;
  notAfter: Date;
}

/**
 * `[::1]` → `::1`, `Example.COM.` → `example.com`; throws RangeError for anything that is
 * neither an IP address nor a DNS name, so a hostile SNI cannot shape the certificate.
 */
export function normaliseHost(host: string): string {
  let name = host.trim().toLowerCase();
  if (name.startsWith("[") && name.endsWith("]")) name = name.slice(1, -1);
  if (isIpAddress(name)) return name;
  if (name.endsWith(".")) name = name.slice(0, -1);
  if (!DNS_NAME_PATTERN.test(name))
    throw new RangeError(`cannot issue a certificate for ${JSON.stringify(host)}: not a DNS name or IP address`);
  return name;
}

/**
 * Issues leaf certificates on the fly, signed by the CA. Every leaf shares one key made at
 * creation: generating a key per host would cost milliseconds each, and the key never leaves this
 * process. The key is ECDSA P-256 (the CA stays RSA and signs with sha256WithRSAEncryption): each
 * TLS handshake signs with the leaf key on the proxy's event loop, and a P-256 signature costs
 * about a tenth of an RSA-2048 one (docs/performance.md).
 */
export class LeafIssuer {
  private readonly cache: LRUCache<string, CachedContext>;
  private readonly caSubject: forge.pki.CertificateField[];
  private readonly caKeyIdentifier: string;
  private readonly placeholderKey: forge.pki.rsa.PublicKey;

  private constructor(
    private readonly ca: CertificateAuthority,
    private readonly leafKeyPem: string,
    private readonly leafPublicKeyDer: Buffer,
    private readonly validityMs: number,
    private readonly renewBeforeMs: number,
    maxEntries: number,
  ) {
    const caCert = certificateFromDer(ca.certDer);
    this.caSubject = caCert.subject.attributes;
    this.caKeyIdentifier = subjectKeyIdentifierOf(caCert);
    // forge's key slot must hold an RSA key; the certificate carries the leaf's ECDSA key (spliced).
    this.placeholderKey = caCert.publicKey as forge.pki.rsa.PublicKey;
    this.cache = new LRUCache({ max: maxEntries });
  }

  static async create(ca: CertificateAuthority, options: LeafIssuerOptions = {}): Promise<LeafIssuer> {
    const validityDays = options.validityDays ?? 30;
    const renewBeforeMs = options.renewBeforeMs ?? DAY_MS;
    const maxEntries = options.maxEntries ?? 1000;
    if (!(validityDays > 0)) throw new RangeError(`validityDays must be positive, got ${validityDays}`);
    if (!(renewBeforeMs >= 0)) throw new RangeError(`renewBeforeMs must not be negative, got ${renewBeforeMs}`);
    if (!Number.isInteger(maxEntries) || maxEntries < 1) throw new RangeError(`maxEntries must be a positive integer, got ${maxEntries}`);

    const { privateKey, publicKey } = await generateLeafKeyPair();
    const issuer = new LeafIssuer(
      ca,
      // PEM once: createSecureContext takes PEM, and exporting per context would be wasted work.
      privateKey.export({ type: "pkcs8", format: "pem" }) as string,
      publicKey.export({ type: "spki", format: "der" }),
      validityDays * DAY_MS,
      renewBeforeMs,
      maxEntries,
    );
    // Pay forge's and OpenSSL's one-off warm-up (~6 ms) now rather than in the first handshake;
    // it also proves the CA key can sign. `.invalid` is reserved and never served.
    createSecureContext({ key: issuer.leafKeyPem, cert: issuer.issueLeafCertificate("warm-up.invalid").certPem });
    return issuer;
  }

  /** A fresh leaf for `host` (DNS name or IP address), without touching the cache. */
  issueLeafCertificate(host: string): IssuedLeaf {
    const name = normaliseHost(host);
    const now = Date.now();
    const notBefore = toWholeSeconds(new Date(now - DAY_MS)); // tolerate clients whose clocks run late
    // Never outlive the CA: chains with a leaf valid past its issuer are rejected by some clients.
    const notAfter = toWholeSeconds(new Date(Math.min(now + this.validityMs, this.ca.notAfter.getTime())));
    const altName = isIpAddress(name) ? { type: 7, ip: name } : { type: 2, value: name };

    const { pem } = signCertificate(
      {
        serialNumberHex: randomSerialNumberHex(),
        subject: name.length <= MAX_COMMON_NAME_LENGTH ? [{ shortName: "CN", value: name }] : [{ shortName: "O", value: "exhaust" }],
        issuer: this.caSubject,
        publicKey: this.placeholderKey,
        subjectPublicKeyInfoDer: this.leafPublicKeyDer,
        notBefore,
        notAfter,
        extensions: [
          { name: "basicConstraints", cA: false },
          // ECDSA: signatures only (keyEncipherment is for RSA key transport).
          { name: "keyUsage", critical: true, digitalSignature: true },
          { name: "extKeyUsage", serverAuth: true },
          { name: "subjectAltName", altNames: [altName] },
          { name: "authorityKeyIdentifier", keyIdentifier: this.caKeyIdentifier },
        ],
      },
      this.ca.key,
    );
    return { certPem: pem, notAfter };
  }

  /** A TLS server context presenting a leaf for `host` plus the CA; cached, renewed near expiry. */
  secureContextFor(host: string): SecureContext {
    const name = normaliseHost(host);
    const cached = this.cache.get(name);
    if (cached && cached.notAfter.getTime() - Date.now() > this.renewBeforeMs) return cached.secureContext;

    const leaf = this.issueLeafCertificate(name);
    const secureContext = createSecureContext({ key: this.leafKeyPem, cert: leaf.certPem + this.ca.certPem });
    this.cache.set(name, { secureContext, notAfter: leaf.notAfter });
    return secureContext;
  }

  /** Number of cached contexts (for stats and tests). */
  get cachedContexts(): number {
    return this.cache.size;
  }
}
