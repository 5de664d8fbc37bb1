import { createPrivateKey, randomBytes, X509Certificate, type KeyObject } from "node:crypto";
import { chmod, mkdir, readFile, rename, stat, unlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { exhaustError, isExhaustError } from "../errors.js";
import {
  caKeyTypeOf,
  certificateFromDer,
  DEFAULT_CA_KEY_TYPE,
  DNS_NAME_PATTERN,
  generateKeyPairOfType,
  nameConstraintsExtension,
  randomSerialNumberHex,
  readPermittedDomains,
  signCertificate,
  subjectKeyIdentifierExtension,
  templateKeyOf,
  toWholeSeconds,
  type CaKeyType,
} from "./x509.js";

export { CA_KEY_TYPES, DEFAULT_CA_KEY_TYPE, parseCaKeyType, type CaKeyType } from "./x509.js";

export const CA_CERT_FILE = "exhaust-ca.pem";
export const CA_KEY_FILE = "exhaust-ca.key";

const DAY_MS = 24 * 60 * 60 * 1000;
const CA_VALIDITY_YEARS = 10;
const KEY_FILE_MODE = 0o600;

export interface CertificateAuthority {
  dir: string;
  certPem: string;
  certDer: Buffer;
  key: KeyObject;
  /** ECDSA P-256 (new CAs) or RSA-2048 (CAs made before, or `ca init --ca-key rsa`). */
  keyType: CaKeyType;
  /** Colon-separated upper-case SHA-256 hex, as node's X509Certificate.fingerprint256. */
  fingerprint256: string;
  /** Whether the certificate carries X.509 name constraints (read back from the certificate). */
  constrained: boolean;
  /** The permitted dNSName subtrees; empty when unconstrained. */
  permittedDomains: string[];
  notAfter: Date;
  /** e.g. "CN=exhaust lab CA 3fa2c1, O=exhaust". */
  subject: string;
  /** Set by loadAuthority when it had to tighten the key file's mode; the previous mode (e.g. 0o644). */
  keyFileModeRepairedFrom?: number;
}

export interface InitAuthorityOptions {
  /** DNS subtrees the CA may sign for (EndpointCatalog.constraintDomains()). */
  permittedDomains: string[];
  /** Omit name constraints: the CA can sign for any host (needed by `--intercept all`). */
  unconstrained?: boolean;
  /** Replace an existing CA. */
  force?: boolean;
  /** The new CA's key; default DEFAULT_CA_KEY_TYPE (ecdsa). */
  keyType?: CaKeyType;
}

function certFileOf(dir: string): string {
  return join(dir, CA_CERT_FILE);
}

function keyFileOf(dir: string): string {
  return join(dir, CA_KEY_FILE);
}

async function exists(file: string): Promise<boolean> {
  try {
    await stat(file);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return false;
    throw e;
  }
}

/** Either file present counts: a lone key must not be silently replaced. */
async function anyAuthorityFileExists(dir: string): Promise<boolean> {
  return (await exists(certFileOf(dir))) || (await exists(keyFileOf(dir)));
}

function validatePermittedDomains(domains: readonly string[]): string[] {
  const normalised = [...new Set(domains.map((d) => d.toLowerCase()))];
  if (normalised.length === 0) {
    throw exhaustError("EXH_OPT_INVALID", {
      option: "permittedDomains",
      reason: "a constrained CA needs at least one domain (or pass unconstrained)",
    });
  }
  for (const domain of normalised) {
    if (!DNS_NAME_PATTERN.test(domain)) {
      throw exhaustError("EXH_OPT_INVALID", { option: "permittedDomains", reason: `${JSON.stringify(domain)} is not a DNS name` });
    }
  }
  return normalised;
}

/**
 * Writes through a temporary file created 0600 and renamed into place, so the key is never
 * readable by others, not even for a moment, and a crash never leaves half a file.
 */
export async function writeFileAtomically(file: string, contents: string, mode: number): Promise<void> {
  const temporary = `${file}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`;
  try {
    await writeFile(temporary, contents, { mode, flag: "wx" });
    await chmod(temporary, mode); // the umask may have removed bits; on an overwrite mode is not applied
    await rename(temporary, file);
    await chmod(file, mode);
  } catch (e) {
    await unlink(temporary).catch(() => undefined);
    throw e;
  }
}

export async function initAuthority(dir: string, options: InitAuthorityOptions): Promise<CertificateAuthority> {
  const unconstrained = options.unconstrained ?? false;
  const permittedDomains = unconstrained ? [] : validatePermittedDomains(options.permittedDomains);
  if (!options.force && (await anyAuthorityFileExists(dir))) throw exhaustError("EXH_CA_EXISTS", { dir });

  await mkdir(dir, { recursive: true, mode: 0o700 });
  const { privateKey, publicKey } = await generateKeyPairOfType(options.keyType ?? DEFAULT_CA_KEY_TYPE);

  const now = Date.now();
  const notBefore = toWholeSeconds(new Date(now - DAY_MS)); // tolerate clients whose clocks run late
  const notAfter = toWholeSeconds(new Date(now));
  notAfter.setUTCFullYear(notAfter.getUTCFullYear() + CA_VALIDITY_YEARS);
  const subject = [
    { shortName: "CN", value: `exhaust lab CA ${randomBytes(3).toString("hex")}` },
    { shortName: "O", value: "exhaust" },
  ];
  const extensions: object[] = [
    { name: "basicConstraints", critical: true, cA: true, pathLenConstraint: 0 },
    { name: "keyUsage", critical: true, keyCertSign: true, cRLSign: true },
    subjectKeyIdentifierExtension(publicKey),
  ];
  if (!unconstrained) extensions.push(nameConstraintsExtension(permittedDomains));

  const { pem: certPem } = signCertificate(
    {
      serialNumberHex: randomSerialNumberHex(),
      subject,
      issuer: subject,
      ...templateKeyOf(publicKey),
      notBefore,
      notAfter,
      extensions,
    },
    privateKey,
  );

  // Key generation took a while: re-check so two concurrent inits cannot both "create" silently.
  if (!options.force && (await anyAuthorityFileExists(dir))) throw exhaustError("EXH_CA_EXISTS", { dir });
  await writeFileAtomically(keyFileOf(dir), privateKey.export({ type: "pkcs8", format: "pem" }) as string, KEY_FILE_MODE);
  await writeFileAtomically(certFileOf(dir), certPem, 0o644);

  return loadAuthority(dir);
}

export async function loadAuthority(dir: string): Promise<CertificateAuthority> {
  const certFile = certFileOf(dir);
  const keyFile = keyFileOf(dir);
  const [haveCert, haveKey] = await Promise.all([exists(certFile), exists(keyFile)]);
  if (!haveCert && !haveKey) throw exhaustError("EXH_CA_MISSING", { dir });
  if (!haveCert) throw exhaustError("EXH_CA_INVALID", { dir, reason: `${CA_CERT_FILE} is missing` });
  if (!haveKey) throw exhaustError("EXH_CA_INVALID", { dir, reason: `${CA_KEY_FILE} is missing` });

  const invalid = (reason: string, cause?: unknown) => exhaustError("EXH_CA_INVALID", { dir, reason }, cause);

  let keyFileModeRepairedFrom: number | undefined;
  if (process.platform !== "win32") {
    const mode = (await stat(keyFile)).mode & 0o777;
    if (mode !== KEY_FILE_MODE) {
      await chmod(keyFile, KEY_FILE_MODE);
      keyFileModeRepairedFrom = mode;
    }
  }

  let certPem: string;
  let x509: X509Certificate;
  try {
    certPem = await readFile(certFile, "utf8");
    x509 = new X509Certificate(certPem);
  } catch (e) {
    throw invalid(`${CA_CERT_FILE} is not a readable PEM certificate: ${(e as Error).message}`, e);
  }

  let key: KeyObject;
  try {
    key = createPrivateKey(await readFile(keyFile));
  } catch (e) {
    throw invalid(`${CA_KEY_FILE} is not a readable private key: ${(e as Error).message}`, e);
  }
  const keyType = caKeyTypeOf(key);
  if (!keyType) {
    const curve = key.asymmetricKeyDetails?.namedCurve;
    throw invalid(
      `${CA_KEY_FILE} holds a ${key.asymmetricKeyType ?? "secret"}${curve ? ` ${curve}` : ""} key; exhaust signs with ECDSA P-256 or RSA`,
    );
  }
  if (!x509.checkPrivateKey(key)) throw invalid(`${CA_KEY_FILE} does not belong to the certificate in ${CA_CERT_FILE}`);
  if (!x509.ca) throw invalid(`${CA_CERT_FILE} is not a CA certificate`);
  const notAfter = new Date(x509.validTo);
  if (notAfter.getTime() <= Date.now()) throw invalid(`the CA certificate expired on ${notAfter.toISOString()}`);

  const certDer = Buffer.from(x509.raw);
  let permittedDomains: string[] | null;
  try {
    permittedDomains = readPermittedDomains(certificateFromDer(certDer));
  } catch (e) {
    throw invalid(`cannot read the certificate's extensions: ${(e as Error).message}`, e);
  }

  const authority: CertificateAuthority = {
    dir,
    certPem,
    certDer,
    key,
    keyType,
    fingerprint256: x509.fingerprint256,
    constrained: permittedDomains !== null,
    permittedDomains: permittedDomains ?? [],
    notAfter,
    subject: x509.subject.split("\n").join(", "),
  };
  if (keyFileModeRepairedFrom !== undefined) authority.keyFileModeRepairedFrom = keyFileModeRepairedFrom;
  return authority;
}

/**
 * Loads the CA in `dir`, creating it on first use. An existing CA is returned as it is, whatever
 * `options` ask for: callers check `constrained` (EXH_CA_CONSTRAINED) rather than replace a CA the
 * user may already trust.
 */
export async function loadOrCreateAuthority(dir: string, options: InitAuthorityOptions): Promise<CertificateAuthority> {
  try {
    return await loadAuthority(dir);
  } catch (e) {
    if (!isExhaustError(e) || e.code !== "EXH_CA_MISSING") throw e;
  }
  try {
    return await initAuthority(dir, { ...options, force: false });
  } catch (e) {
    // Lost a race with another process creating the same CA: use theirs.
    if (isExhaustError(e) && e.code === "EXH_CA_EXISTS") return loadAuthority(dir);
    throw e;
  }
}

export function exportAuthority(ca: CertificateAuthority, format: "pem" | "der"): Buffer {
  return format === "pem" ? Buffer.from(ca.certPem, "utf8") : Buffer.from(ca.certDer);
}
