/**
 * `exhaust bundle verify`: checks a bundle with nothing but the bundle. Every file against the
 * manifest (present, same size and SHA-256, nothing extra), each blob's name against its content,
 * each session's hash chain recomputed from exchanges.jsonl up to the head the manifest states, the
 * signature over manifest.json, that the signing certificate was issued by the bundled CA whose
 * fingerprint the manifest names, that every session was captured under that CA, and that every
 * bundled checkpoint is signed by it and names a head of the chain.
 *
 * All of that only shows the bundle agrees with itself: anyone can make a CA and sign a forged
 * bundle. A trust anchor (the lab's CA certificate, or its SHA-256 fingerprint, obtained from the lab
 * by another channel) turns it into evidence: the signer must chain to the anchor and every session
 * must have been captured under it. Heads from the lab notebook (`--head HASH@SEQ`) prove the chain
 * was not cut. Without an anchor the status is "consistent-unanchored", never "verified".
 */
import { createHash, verify, X509Certificate } from "node:crypto";
import { CHAIN_GENESIS, exchangeChainHash } from "../store/chain.js";
import { checkpointSignatureValid, type Checkpoint } from "../capture/checkpoint.js";
import { exhaustError } from "../errors.js";
import type { ExchangeRecord } from "../store/exchanges.js";
import { openBundle, type BundleSource } from "./source.js";
import { BUNDLE_FORMAT, CHECKPOINTS_FILE, EXCHANGES_FILE, MANIFEST_FILE, SIGNATURE_FILE, type Manifest } from "./format.js";

/** What the bundle is checked against: the lab's CA (certificate and/or fingerprint) and notebook heads. */
export interface TrustAnchor {
  /** The lab CA's certificate, PEM or DER bytes. */
  caCert?: Buffer;
  /** The lab CA's SHA-256 fingerprint, colon-separated or plain hex, any case. */
  fingerprint?: string;
}

export interface ExpectedHead {
  hash: string;
  seq?: number;
}

export interface VerifyOptions {
  anchor?: TrustAnchor;
  heads?: ExpectedHead[];
}

/** verified: consistent AND checked against a trust anchor; consistent-unanchored: consistent, signer not checked. */
export type VerifyStatus = "verified" | "consistent-unanchored" | "failed";

export const UNANCHORED_WARNING = "consistent, signer not anchored (signer not checked against a trusted CA)";

/** Exit codes of `exhaust bundle verify`: 0 verified, 1 failed, 4 consistent but not anchored (2: usage/unreadable). */
export const VERIFY_EXIT: Record<VerifyStatus, number> = { verified: 0, failed: 1, "consistent-unanchored": 4 };

/** `AA:BB:..` upper case from colon-separated or plain hex; EXH_OPT_INVALID when it is not 32 bytes of hex. */
export function normaliseFingerprint(text: string): string {
  const hex = text
    .replace(/^sha-?256[:= ]?/i, "")
    .replace(/[:\s]/g, "")
    .toUpperCase();
  if (!/^[0-9A-F]{64}$/.test(hex)) {
    throw exhaustError("EXH_OPT_INVALID", {
      option: "--fingerprint",
      reason: `expected a SHA-256 fingerprint (64 hex digits, colons allowed), got "${text}"`,
    });
  }
  return hex.match(/../g)!.join(":");
}

/** `HASH` or `HASH@SEQ`; EXH_OPT_INVALID otherwise. */
export function parseHead(text: string): ExpectedHead {
  const m = /^([0-9a-fA-F]{64})(?:@(\d+))?$/.exec(text.trim());
  if (!m)
    throw exhaustError("EXH_OPT_INVALID", {
      option: "--head",
      reason: `expected HASH or HASH@SEQ (64 hex digits, then @ and the sequence number), got "${text}"`,
    });
  return { hash: m[1].toLowerCase(), ...(m[2] !== undefined ? { seq: Number(m[2]) } : {}) };
}

/** The anchor's certificate and fingerprint; EXH_OPT_INVALID when the certificate is unreadable or the two disagree. */
export function resolveAnchor(anchor: TrustAnchor): { cert?: X509Certificate; fingerprint256: string } {
  let cert: X509Certificate | undefined;
  if (anchor.caCert) {
    try {
      cert = new X509Certificate(anchor.caCert);
    } catch (e) {
      throw exhaustError("EXH_OPT_INVALID", { option: "--ca", reason: `not a PEM or DER certificate: ${(e as Error).message}` });
    }
  }
  const given = anchor.fingerprint === undefined ? undefined : normaliseFingerprint(anchor.fingerprint);
  if (cert && given && cert.fingerprint256 !== given) {
    throw exhaustError("EXH_OPT_INVALID", {
      option: "--fingerprint",
      reason: `${given} is not the fingerprint of the --ca certificate (${cert.fingerprint256})`,
    });
  }
  const fingerprint256 = cert?.fingerprint256 ?? given;
  if (!fingerprint256)
    throw exhaustError("EXH_OPT_INVALID", { option: "--ca", reason: "an anchor needs --ca FILE or --fingerprint SHA256" });
  return { cert, fingerprint256 };
}

export interface VerifyCheck {
  check: string;
  ok: boolean;
  detail: string;
  /** The file a failure is about. */
  file?: string;
}

export interface VerifyResult {
  /** No check failed (with or without an anchor). */
  ok: boolean;
  status: VerifyStatus;
  /** The signing CA the bundle names (bundled certs/ca.pem) and the signing certificate. */
  signer?: { caFingerprint256: string; fingerprint256: string; subject: string };
  /** The trusted CA the bundle was checked against, when one was given. */
  anchor?: { fingerprint256: string };
  checks: VerifyCheck[];
  /** Set when status is consistent-unanchored. */
  warning?: string;
}

type BundledExchange = ExchangeRecord & { chainInputsRedacted?: boolean };

async function sha256Of(source: BundleSource, name: string): Promise<{ sha256: string; size: number }> {
  const hash = createHash("sha256");
  let size = 0;
  for await (const chunk of await source.stream(name)) {
    hash.update(chunk as Buffer);
    size += (chunk as Buffer).length;
  }
  return { sha256: hash.digest("hex"), size };
}

export async function verifyBundle(path: string, options: VerifyOptions = {}): Promise<VerifyResult> {
  const anchor = options.anchor && (options.anchor.caCert || options.anchor.fingerprint) ? resolveAnchor(options.anchor) : undefined;
  const heads = options.heads ?? [];
  const checks: VerifyCheck[] = [];
  const fail = (check: string, detail: string, file?: string) => checks.push({ check, ok: false, detail, file });
  const pass = (check: string, detail: string) => checks.push({ check, ok: true, detail });
  let signerInfo: VerifyResult["signer"];
  let bundledCa: X509Certificate | undefined;
  const result = (): VerifyResult => {
    const ok = checks.every((c) => c.ok);
    const status: VerifyStatus = !ok ? "failed" : anchor ? "verified" : "consistent-unanchored";
    return {
      ok,
      status,
      ...(signerInfo ? { signer: signerInfo } : {}),
      ...(anchor ? { anchor: { fingerprint256: anchor.fingerprint256 } } : {}),
      checks,
      ...(status === "consistent-unanchored" ? { warning: UNANCHORED_WARNING } : {}),
    };
  };
  const source = await openBundle(path);
  try {
    if (!source.has(MANIFEST_FILE)) {
      fail("manifest", `${MANIFEST_FILE} is missing`, MANIFEST_FILE);
      return result();
    }
    const manifestBytes = await source.read(MANIFEST_FILE);
    let manifest: Manifest;
    try {
      manifest = JSON.parse(manifestBytes.toString("utf8")) as Manifest;
      if (manifest.format !== BUNDLE_FORMAT || !Array.isArray(manifest.files)) throw new Error(`not an ${BUNDLE_FORMAT} manifest`);
    } catch (e) {
      fail("manifest", `${MANIFEST_FILE} is not a readable manifest: ${(e as Error).message}`, MANIFEST_FILE);
      return result();
    }

    // 1. Files against the manifest.
    const listed = new Set(manifest.files.map((f) => f.path));
    let good = 0;
    for (const f of manifest.files) {
      if (!source.has(f.path)) {
        fail("file", `${f.path} is listed in the manifest but missing`, f.path);
        continue;
      }
      const actual = await sha256Of(source, f.path);
      if (actual.sha256 !== f.sha256 || actual.size !== f.size) {
        fail("file", `${f.path}: SHA-256 ${actual.sha256} (${actual.size} bytes), manifest says ${f.sha256} (${f.size} bytes)`, f.path);
        continue;
      }
      if (f.path.startsWith("blobs/") && f.path.slice(6) !== f.sha256) {
        fail("file", `${f.path}: content hash ${f.sha256} does not match its name`, f.path);
        continue;
      }
      good++;
    }
    for (const name of source.files()) {
      if (name !== MANIFEST_FILE && name !== SIGNATURE_FILE && !listed.has(name))
        fail("file", `${name} is not listed in the manifest`, name);
    }
    if (good === manifest.files.length) pass("files", `${good} files match their SHA-256 and size in the manifest`);

    // 2. Signature and certificates.
    const signer = manifest.signer;
    try {
      if (!source.has(SIGNATURE_FILE)) throw Object.assign(new Error(`${SIGNATURE_FILE} is missing`), { file: SIGNATURE_FILE });
      const certFile = signer.certificate;
      const caFile = signer.caCertificate;
      if (!source.has(certFile)) throw Object.assign(new Error(`${certFile} is missing`), { file: certFile });
      if (!source.has(caFile)) throw Object.assign(new Error(`${caFile} is missing`), { file: caFile });
      const cert = new X509Certificate(await source.read(certFile));
      const ca = new X509Certificate(await source.read(caFile));
      bundledCa = ca;
      signerInfo = {
        caFingerprint256: ca.fingerprint256,
        fingerprint256: cert.fingerprint256,
        subject: cert.subject.split("\n").join(", "),
      };
      const signature = Buffer.from((await source.read(SIGNATURE_FILE)).toString("utf8").trim(), "base64");
      if (!verify("sha256", manifestBytes, cert.publicKey, signature)) {
        fail("signature", `${SIGNATURE_FILE} is not a valid signature over ${MANIFEST_FILE} by ${certFile}`, SIGNATURE_FILE);
      } else {
        pass("signature", `${MANIFEST_FILE} is signed by ${cert.subject.split("\n").join(", ")} (SHA-256 ${cert.fingerprint256})`);
      }
      if (!cert.checkIssued(ca) || !cert.verify(ca.publicKey)) {
        fail("certificate", `${certFile} was not issued by ${caFile}`, certFile);
      } else if (ca.fingerprint256 !== signer.caFingerprint256 || cert.fingerprint256 !== signer.fingerprint256) {
        fail("certificate", `the bundled certificates are not the ones the manifest names (CA ${ca.fingerprint256})`, caFile);
      } else {
        pass("certificate", `${certFile} was issued by the bundled CA ${ca.subject.split("\n").join(", ")} (SHA-256 ${ca.fingerprint256})`);
      }
      // 2b. The trust anchor: the signer must chain to the lab's CA.
      if (anchor) {
        if (ca.fingerprint256 !== anchor.fingerprint256) {
          fail(
            "anchor",
            `the bundle is signed by ${signerInfo.subject} (SHA-256 ${cert.fingerprint256}) under CA SHA-256 ${ca.fingerprint256}, not under the trusted CA SHA-256 ${anchor.fingerprint256}`,
            caFile,
          );
        } else if (anchor.cert && (!cert.checkIssued(anchor.cert) || !cert.verify(anchor.cert.publicKey))) {
          fail(
            "anchor",
            `the signing certificate (SHA-256 ${cert.fingerprint256}) does not chain to the trusted CA SHA-256 ${anchor.fingerprint256}`,
            certFile,
          );
        } else {
          pass("anchor", `the signer (SHA-256 ${cert.fingerprint256}) chains to the trusted CA SHA-256 ${anchor.fingerprint256}`);
        }
      }
    } catch (e) {
      fail("signature", (e as Error).message, (e as { file?: string }).file);
    }
    if (anchor && !signerInfo) fail("anchor", `no signer to check against the trusted CA SHA-256 ${anchor.fingerprint256}`, MANIFEST_FILE);

    // 2c. The capture CA of every session: the CA that signed the leaves is the CA that signs the bundle (and the anchor).
    {
      const expected = anchor?.fingerprint256 ?? signer?.caFingerprint256;
      let bad = 0;
      for (const s of manifest.sessions ?? []) {
        if (s.caFingerprint === null || s.caFingerprint === undefined) {
          if (anchor) {
            bad++;
            fail(
              "capture-ca",
              `session ${s.name} records no capture CA (it was imported), so it cannot be checked against the trusted CA SHA-256 ${anchor.fingerprint256}`,
              MANIFEST_FILE,
            );
          }
        } else if (s.caFingerprint !== expected) {
          bad++;
          fail(
            "capture-ca",
            `session ${s.name} was captured under CA SHA-256 ${s.caFingerprint}, but the bundle is signed under CA SHA-256 ${signer?.caFingerprint256}` +
              (anchor ? ` and the trusted CA is SHA-256 ${anchor.fingerprint256}` : ""),
            MANIFEST_FILE,
          );
        }
      }
      if (bad === 0)
        pass("capture-ca", `every captured session names the ${anchor ? "trusted" : "signing"} CA SHA-256 ${expected} as its capture CA`);
    }

    // 3. Hash chains, recomputed from the exchange records.
    /** session → seq → hash, of every chain that links up. */
    const chains = new Map<string, Map<number, string>>();
    if (!source.has(EXCHANGES_FILE)) {
      fail("chain", `${EXCHANGES_FILE} is missing`, EXCHANGES_FILE);
    } else {
      const bySession = new Map<string, BundledExchange[]>();
      const text = (await source.read(EXCHANGES_FILE)).toString("utf8");
      let parsed = true;
      for (const [i, line] of text.split("\n").entries()) {
        if (!line) continue;
        try {
          const x = JSON.parse(line) as BundledExchange;
          (bySession.get(x.session) ?? bySession.set(x.session, []).get(x.session)!).push(x);
        } catch {
          fail("chain", `${EXCHANGES_FILE} line ${i + 1} is not JSON`, EXCHANGES_FILE);
          parsed = false;
        }
      }
      if (parsed) {
        for (const s of manifest.sessions) {
          const list = bySession.get(s.name) ?? [];
          bySession.delete(s.name);
          let prev = CHAIN_GENESIS;
          let recomputed = 0;
          let linkedOnly = 0;
          let broken: string | undefined;
          const seqs = new Map<number, string>([[0, CHAIN_GENESIS]]);
          chains.set(s.name, seqs);
          for (const x of list) {
            if (x.prevHash !== prev) {
              broken = `exchange seq ${x.seq} (${x.id}) links to ${x.prevHash}, expected ${prev}`;
              break;
            }
            if (x.chainInputsRedacted) {
              linkedOnly++;
            } else {
              // The record carries the chain inputs under their ChainedExchange names.
              const h = exchangeChainHash(prev, x);
              if (h !== x.hash) {
                broken = `exchange seq ${x.seq} (${x.id}) hashes to ${h}, the record says ${x.hash}`;
                break;
              }
              recomputed++;
            }
            prev = x.hash;
            seqs.set(x.seq, x.hash);
          }
          if (broken) fail("chain", `session ${s.name}: ${broken}`, EXCHANGES_FILE);
          else if (list.length !== s.exchanges || prev !== s.chain.head) {
            fail(
              "chain",
              `session ${s.name}: ${list.length} exchanges ending at ${prev}, the manifest says ${s.exchanges} ending at ${s.chain.head}`,
              EXCHANGES_FILE,
            );
          } else {
            pass(
              "chain",
              `session ${s.name}: ${list.length} exchanges, head ${prev}; ${recomputed} hashes recomputed` +
                (linkedOnly ? `, ${linkedOnly} with redacted credentials checked by their links only (the signature covers them)` : ""),
            );
          }
        }
        for (const name of bySession.keys())
          fail("chain", `${EXCHANGES_FILE} holds exchanges of session ${name}, which the manifest does not list`, EXCHANGES_FILE);
      }
    }

    // 4. Bodies the exchanges point to are present, or listed as left out.
    if (source.has(EXCHANGES_FILE)) {
      const omittedBlobs = new Set((manifest.omitted ?? []).map((o) => o.sha256).filter(Boolean));
      let missing = 0;
      for (const line of (await source.read(EXCHANGES_FILE)).toString("utf8").split("\n")) {
        if (!line) continue;
        let x: BundledExchange;
        try {
          x = JSON.parse(line) as BundledExchange;
        } catch {
          continue;
        }
        for (const sha of [x.requestBodySha256, x.responseBodySha256]) {
          if (sha && !listed.has(`blobs/${sha}`) && !omittedBlobs.has(sha)) {
            missing++;
            fail("bodies", `blobs/${sha} (exchange ${x.id}) is neither in the bundle nor listed as left out`, `blobs/${sha}`);
          }
        }
      }
      if (missing === 0)
        pass(
          "bodies",
          `every body the exchanges refer to is in blobs/ or listed as left out (${manifest.omitted?.length ?? 0} items left out)`,
        );
    }
    // 5. Checkpoints in the bundle: signed by the bundle's CA (the anchor) and naming a head of the chain.
    if (source.has(CHECKPOINTS_FILE)) {
      const key = anchor?.cert ?? bundledCa;
      let n = 0;
      let bad = 0;
      for (const line of (await source.read(CHECKPOINTS_FILE)).toString("utf8").split("\n")) {
        if (!line) continue;
        n++;
        let c: Checkpoint;
        try {
          c = JSON.parse(line) as Checkpoint;
        } catch {
          bad++;
          fail("checkpoints", `${CHECKPOINTS_FILE} line ${n} is not JSON`, CHECKPOINTS_FILE);
          continue;
        }
        const where = `checkpoint of session ${c.session} at seq ${c.seq} (${c.time})`;
        if (!key || !checkpointSignatureValid(c, key) || (anchor && c.caFingerprint256 !== anchor.fingerprint256)) {
          bad++;
          fail(
            "checkpoints",
            `${where} is not signed by the ${anchor ? "trusted" : "bundle's"} CA (it names CA SHA-256 ${c.caFingerprint256})`,
            CHECKPOINTS_FILE,
          );
        } else if (chains.get(c.session)?.get(c.seq) !== c.head) {
          bad++;
          fail(
            "checkpoints",
            `${where} names head ${c.head}, which the bundle's chain does not hold at that seq: exchanges were removed or changed`,
            CHECKPOINTS_FILE,
          );
        }
      }
      if (bad === 0) pass("checkpoints", `${n} signed checkpoint(s), each a head of the bundle's chain`);
    }

    // 6. Heads from the lab notebook.
    for (const want of heads) {
      const label = `${want.hash}${want.seq !== undefined ? `@${want.seq}` : ""}`;
      let found: string | undefined;
      for (const [session, seqs] of chains) {
        for (const [seq, hash] of seqs) {
          if (hash === want.hash && (want.seq === undefined || want.seq === seq)) found = `session ${session} seq ${seq}`;
        }
      }
      if (found) pass("head", `head ${label} is in the chain (${found})`);
      else {
        const held = [...chains].map(([session, seqs]) => `session ${session} ends at seq ${Math.max(...seqs.keys())}`).join("; ");
        fail(
          "head",
          `head ${label} is not in the bundle's chain (${held || "no chain"}): exchanges were removed, added or changed since that checkpoint`,
          EXCHANGES_FILE,
        );
      }
    }

    pass(
      "secrets",
      manifest.secrets.included
        ? "the manifest states that credentials are INCLUDED"
        : "the manifest states that credentials are redacted (keyed hashes)",
    );
    return result();
  } finally {
    source.close();
  }
}
