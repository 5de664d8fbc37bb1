/**
 * `exhaust bundle verify`: checks a bundle with nothing but the bundle. Every file against the
 * manifest (present, same size and SHA-256, nothing extra), each blob's name against its content,
 * each session's hash chain recomputed from exchanges.jsonl up to the head the manifest states, the
 * signature over manifest.json, and that the signing certificate was issued by the bundled CA whose
 * fingerprint the manifest names.
 */
import { createHash, verify, X509Certificate } from "node:crypto";
import { CHAIN_GENESIS, exchangeChainHash } from "../capture/chain.js";
import type { ExchangeRecord } from "../store/export-queries.js";
import { openBundle, type BundleSource } from "./bundle-source.js";
import { BUNDLE_FORMAT, EXCHANGES_FILE, MANIFEST_FILE, SIGNATURE_FILE, type Manifest } from "./bundle.js";

export interface VerifyCheck {
  check: string;
  ok: boolean;
  detail: string;
  /** The file a failure is about. */
  file?: string;
}

export interface VerifyResult {
  ok: boolean;
  checks: VerifyCheck[];
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

export async function verifyBundle(path: string): Promise<VerifyResult> {
  const checks: VerifyCheck[] = [];
  const fail = (check: string, detail: string, file?: string) => checks.push({ check, ok: false, detail, file });
  const pass = (check: string, detail: string) => checks.push({ check, ok: true, detail });
  const source = await openBundle(path);
  try {
    if (!source.has(MANIFEST_FILE)) {
      fail("manifest", `${MANIFEST_FILE} is missing`, MANIFEST_FILE);
      return { ok: false, checks };
    }
    const manifestBytes = await source.read(MANIFEST_FILE);
    let manifest: Manifest;
    try {
      manifest = JSON.parse(manifestBytes.toString("utf8")) as Manifest;
      if (manifest.format !== BUNDLE_FORMAT || !Array.isArray(manifest.files)) throw new Error(`not an ${BUNDLE_FORMAT} manifest`);
    } catch (e) {
      fail("manifest", `${MANIFEST_FILE} is not a readable manifest: ${(e as Error).message}`, MANIFEST_FILE);
      return { ok: false, checks };
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
      if (name !== MANIFEST_FILE && name !== SIGNATURE_FILE && !listed.has(name)) fail("file", `${name} is not listed in the manifest`, name);
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
    } catch (e) {
      fail("signature", (e as Error).message, (e as { file?: string }).file);
    }

    // 3. Hash chains, recomputed from the exchange records.
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
          }
          if (broken) fail("chain", `session ${s.name}: ${broken}`, EXCHANGES_FILE);
          else if (list.length !== s.exchanges || prev !== s.chain.head) {
            fail("chain", `session ${s.name}: ${list.length} exchanges ending at ${prev}, the manifest says ${s.exchanges} ending at ${s.chain.head}`, EXCHANGES_FILE);
          } else {
            pass(
              "chain",
              `session ${s.name}: ${list.length} exchanges, head ${prev}; ${recomputed} hashes recomputed` +
                (linkedOnly ? `, ${linkedOnly} with redacted credentials checked by their links only (the signature covers them)` : ""),
            );
          }
        }
        for (const name of bySession.keys()) fail("chain", `${EXCHANGES_FILE} holds exchanges of session ${name}, which the manifest does not list`, EXCHANGES_FILE);
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
      if (missing === 0) pass("bodies", `every body the exchanges refer to is in blobs/ or listed as left out (${manifest.omitted?.length ?? 0} items left out)`);
    }
    pass("secrets", manifest.secrets.included ? "the manifest states that credentials are INCLUDED" : "the manifest states that credentials are redacted (keyed hashes)");
    return { ok: checks.every((c) => c.ok), checks };
  } finally {
    source.close();
  }
}
