import { createSecureContext, type SecureContext } from "node:tls";
import { LRUCache } from "lru-cache";
import type forge from "node-forge";
import type { CertificateAuthority } from "./authority.js";
import {
  certificateFromDer,
  DNS_NAME_PATTERN,
  generateLeafKeyPair,
  isIpAddress,
  LeafTbsEncoder,
  PLACEHOLDER_PUBLIC_KEY,
  randomSerialNumberHex,
  signUnsigned,
  signUnsignedAsync,
  subjectKeyIdentifierOf,
  type CertificateTemplate,
  toWholeSeconds,
  type UnsignedCertificate,
} from "./x509.js";

export { isIpAddress } from "./x509.js";

const DAY_MS = 24 * 60 * 60 * 1000;
/** The subjectAltName's place among leafTemplate's extensions (LeafTbsEncoder splices it). */
export const SUBJECT_ALT_NAME_INDEX = 3;
/** ub-common-name (RFC 5280): longer host names go in the SAN only. */
export const MAX_COMMON_NAME_LENGTH = 64;
/**
 * Secure contexts made ahead with the leaf key already loaded: making one (OpenSSL's SSL_CTX plus
 * parsing the key) is about a millisecond, paid in a lull rather than in a new host's handshake.
 */
const KEYED_CONTEXTS_AHEAD = 8;

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
 * process. The key is ECDSA P-256 (the CA signs with ecdsa-with-SHA256, or sha256WithRSAEncryption
 * for an RSA CA): each TLS handshake signs with the leaf key on the proxy's event loop, and a P-256
 * signature costs about a tenth of an RSA-2048 one (docs/performance.md).
 */
export class LeafIssuer {
  private readonly cache: LRUCache<string, CachedContext>;
  private readonly caSubject: forge.pki.CertificateField[];
  private readonly caKeyIdentifier: string;
  /** Encodes a new host's TBS from parts made once (x509.ts), without forge. */
  private readonly encoder: LeafTbsEncoder;
  /**
   * An ECDSA CA's signature (~0.03 ms) is made on the event loop, so a new host's context is ready
   * in the turn that asks for it; an RSA CA's (~0.3–0.65 ms) goes to libuv's thread pool.
   */
  private readonly signsInline: boolean;
  /** Contexts holding the leaf key and no certificate yet (see KEYED_CONTEXTS_AHEAD). */
  private readonly keyedContexts: SecureContext[] = [];
  private refillScheduled = false;
  /** Leaves being issued off the event loop, by host: concurrent first contacts share one. */
  private readonly issuing = new Map<string, Promise<SecureContext>>();

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
    this.encoder = LeafTbsEncoder.fromReference(this.leafTemplate("reference.invalid"), ca.key, SUBJECT_ALT_NAME_INDEX);
    this.signsInline = ca.keyType === "ecdsa";
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
    issuer.refillKeyedContexts();
    return issuer;
  }

  /** A fresh leaf for `host` (DNS name or IP address), without touching the cache. */
  issueLeafCertificate(host: string): IssuedLeaf {
    const leaf = this.unsignedLeaf(normaliseHost(host));
    return { certPem: signUnsigned(leaf.unsigned, this.ca.key).pem, notAfter: leaf.notAfter };
  }

  /** A leaf's validity from now: a day back (clients whose clocks run late), never past the CA's. */
  private validity(): { notBefore: Date; notAfter: Date } {
    const now = Date.now();
    return {
      notBefore: toWholeSeconds(new Date(now - DAY_MS)),
      // Never outlive the CA: chains with a leaf valid past its issuer are rejected by some clients.
      notAfter: toWholeSeconds(new Date(Math.min(now + this.validityMs, this.ca.notAfter.getTime()))),
    };
  }

  /** The TBS of a leaf for an already normalised name: the bytes leafTemplate's would give (x509.ts). */
  private unsignedLeaf(name: string): { unsigned: UnsignedCertificate; notAfter: Date } {
    const { notBefore, notAfter } = this.validity();
    const unsigned = this.encoder.encode(
      randomSerialNumberHex(),
      notBefore,
      notAfter,
      name,
      isIpAddress(name),
      name.length <= MAX_COMMON_NAME_LENGTH,
    );
    return { unsigned, notAfter };
  }

  /** The leaf as forge builds it; LeafTbsEncoder takes its fixed parts from this one (and a test compares them). */
  leafTemplate(name: string): CertificateTemplate {
    const { notBefore, notAfter } = this.validity();
    const altName = isIpAddress(name) ? { type: 7, ip: name } : { type: 2, value: name };
    return {
      serialNumberHex: randomSerialNumberHex(),
      subject: name.length <= MAX_COMMON_NAME_LENGTH ? [{ shortName: "CN", value: name }] : [{ shortName: "O", value: "exhaust" }],
      issuer: this.caSubject,
      // forge's key slot must hold an RSA key; the certificate carries the leaf's ECDSA key (spliced).
      publicKey: PLACEHOLDER_PUBLIC_KEY,
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
    };
  }

  /** The cached, still fresh context for an already normalised host name. */
  private cachedContext(name: string): SecureContext | undefined {
    const cached = this.cache.get(name);
    return cached && cached.notAfter.getTime() - Date.now() > this.renewBeforeMs ? cached.secureContext : undefined;
  }

  /**
   * A context presenting the leaf `certPem`, from the keyed contexts made ahead when there is one.
   * The CA is not sent: a client that trusts it holds it already (a trust anchor may be left out
   * of the chain, RFC 8446 §4.4.2), and parsing it into every new host's context cost the event
   * loop ~0.15 ms (RSA) to ~0.4 ms (ECDSA, whose public key OpenSSL 3 decodes slowly).
   */
  private contextWith(name: string, certPem: string, notAfter: Date): SecureContext {
    const ahead = this.keyedContexts.pop();
    let secureContext: SecureContext;
    if (ahead) {
      // The key is in already; the certificate goes in as createSecureContext's `cert` option would.
      (ahead.context as { setCert(pem: string): void }).setCert(certPem);
      secureContext = ahead;
    } else secureContext = createSecureContext({ key: this.leafKeyPem, cert: certPem });
    this.refillKeyedContexts();
    this.cache.set(name, { secureContext, notAfter });
    return secureContext;
  }

  /** Makes keyed contexts, one per turn of the event loop, until KEYED_CONTEXTS_AHEAD are ready. */
  private refillKeyedContexts(): void {
    if (this.refillScheduled || this.keyedContexts.length >= KEYED_CONTEXTS_AHEAD) return;
    this.refillScheduled = true;
    setImmediate(() => {
      this.refillScheduled = false;
      this.keyedContexts.push(createSecureContext({ key: this.leafKeyPem }));
      this.refillKeyedContexts();
    }).unref();
  }

  /** A TLS server context presenting a leaf for `host` (not the CA); cached, renewed near expiry. */
  secureContextFor(host: string): SecureContext {
    const name = normaliseHost(host);
    const cached = this.cachedContext(name);
    if (cached) return cached;
    return this.issueNow(name);
  }

  /**
   * The cached context for `host`, or undefined when a leaf must be issued first
   * (secureContextForAsync). Throws RangeError for a host that is no DNS name or IP address.
   */
  cachedSecureContextFor(host: string): SecureContext | undefined {
    return this.cachedContext(normaliseHost(host));
  }

  /**
   * As secureContextFor, with the CA's signature of a new leaf made on libuv's thread pool: the
   * event loop keeps serving other connections meanwhile. Concurrent calls for one host share
   * one issuance. Rejects with RangeError for a host that is no DNS name or IP address.
   */
  secureContextForAsync(host: string): Promise<SecureContext> {
    let name: string;
    try {
      name = normaliseHost(host);
    } catch (e) {
      return Promise.reject(e instanceof Error ? e : new Error(String(e)));
    }
    const ready = this.cachedContext(name) ?? this.issueInline(name);
    if (ready) return Promise.resolve(ready);
    let pending = this.issuing.get(name);
    if (!pending) {
      const leaf = this.unsignedLeaf(name);
      pending = signUnsignedAsync(leaf.unsigned, this.ca.key)
        .then((cert) => this.contextWith(name, cert.pem, leaf.notAfter))
        .finally(() => this.issuing.delete(name));
      this.issuing.set(name, pending);
    }
    return pending;
  }

  /**
   * The context for `host` if it can be had in this turn of the event loop: cached, or issued now
   * under an ECDSA CA. Undefined when an RSA CA must sign a new leaf first (secureContextForAsync).
   * Throws RangeError for a host that is no DNS name or IP address.
   */
  secureContextNow(host: string): SecureContext | undefined {
    const name = normaliseHost(host);
    return this.cachedContext(name) ?? this.issueInline(name);
  }

  /** A new context for `name` signed on this thread (ECDSA CA), unless an issuance is under way. */
  private issueInline(name: string): SecureContext | undefined {
    if (!this.signsInline || this.issuing.has(name)) return undefined;
    return this.issueNow(name);
  }

  /** A new context for `name` (already normalised), its leaf signed on this thread. */
  private issueNow(name: string): SecureContext {
    const leaf = this.unsignedLeaf(name);
    return this.contextWith(name, signUnsigned(leaf.unsigned, this.ca.key).pem, leaf.notAfter);
  }

  /** Number of cached contexts (for stats and tests). */
  get cachedContexts(): number {
    return this.cache.size;
  }
}
