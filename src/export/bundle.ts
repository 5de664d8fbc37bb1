/**
 * Evidence bundle: a directory (or the same tree zipped) that anyone can check offline with
 * `exhaust bundle verify`. Layout:
 *
 *   manifest.json       what is in the bundle: tool, sessions (metadata, capture time range, chain
 *                       head), verdicts, redaction, every file with its SHA-256 and size, and
 *                       everything left out
 *   manifest.sig        base64 RSA-SHA256 signature over the exact bytes of manifest.json
 *   certs/signing.pem   the certificate of the key that signed, issued by certs/ca.pem
 *   certs/ca.pem        exhaust's CA certificate
 *   exchanges.jsonl     one exchange record per line, in chain order: the inputs of the hash chain
 *   blobs/<sha256>      every request and response body, byte for byte
 *   events.jsonl        decoded and classified events (design.md §4)
 *   verdicts.json       latest verdict per profile and session
 *   checkpoints.jsonl   signed chain checkpoints of the sessions (src/capture/checkpoint.ts)
 *   report.html         the HTML report, when the report module is available
 */
import { sign } from "node:crypto";
import { closeSync, createWriteStream, existsSync, mkdtempSync, openSync, readdirSync, rmSync, writeSync } from "node:fs";
import { createHash } from "node:crypto";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import yazl from "yazl";
import type { SigningIdentity } from "../ca/signing.js";
import { CHAIN_GENESIS } from "../store/chain.js";
import { exhaustError } from "../errors.js";
import type { Db } from "../store/database.js";
import { blobData } from "../store/blobs.js";
import { exchangesOfSession } from "../store/exchanges.js";
import { chainSummary } from "../store/export-queries.js";
import type { SessionRecord } from "../store/sessions.js";
import { latestVerdicts } from "../store/verdicts.js";
import { TOOL_VERSION } from "../version.js";
import { checkpointsOfSession } from "../store/checkpoints.js";
import { CREDENTIAL_BODY_REASON, learnCredentials, redactedRecord } from "./har.js";
import {
  BUNDLE_FORMAT,
  BUNDLE_FORMAT_VERSION,
  CA_CERT_PATH,
  CHAIN_DEFINITION,
  CHECKPOINTS_FILE,
  EVENTS_FILE,
  EXCHANGES_FILE,
  MANIFEST_FILE,
  SIGNATURE_FILE,
  SIGNING_CERT_PATH,
  VERDICTS_FILE,
  type Manifest,
  type ManifestFile,
  type ManifestSession,
  type OmittedItem,
} from "../evidence/format.js";
import { sessionEventLines } from "./jsonl.js";
import type { Redactor } from "./redaction.js";
import type { RawHeaders } from "../types.js";
import { chmodPrivate, mkdirPrivate, privateDir } from "./private-files.js";
import { loadOrCreateAuthority } from "../ca/authority.js";
import { loadOrCreateSigningIdentity } from "../ca/signing.js";
import { EndpointCatalog } from "../catalog/endpoints.js";
import type { ExportFormat } from "./export-format.js";
import { renderReport } from "./report.js";

/** Writes files into a directory and remembers the SHA-256 and size of each. */
class FileTree {
  readonly files: ManifestFile[] = [];
  constructor(readonly root: string) {}

  write(path: string, data: Uint8Array | string): void {
    const buf = typeof data === "string" ? Buffer.from(data, "utf8") : data;
    const full = join(this.root, path);
    mkdirPrivate(dirname(full));
    const fd = openSync(full, "wx", 0o600);
    try {
      chmodPrivate(fd);
      writeSync(fd, buf);
    } finally {
      closeSync(fd);
    }
    this.files.push({ path, sha256: createHash("sha256").update(buf).digest("hex"), size: buf.length });
  }

  /** Writes a file from chunks of text, hashing as it goes (events and exchanges can be large). */
  writeLines(path: string, lines: Iterable<string>): number {
    const full = join(this.root, path);
    mkdirPrivate(dirname(full));
    const fd = openSync(full, "wx", 0o600);
    const hash = createHash("sha256");
    let size = 0;
    let count = 0;
    try {
      chmodPrivate(fd);
      for (const line of lines) {
        const buf = Buffer.from(line, "utf8");
        writeSync(fd, buf);
        hash.update(buf);
        size += buf.length;
        count++;
      }
    } finally {
      closeSync(fd);
    }
    this.files.push({ path, sha256: hash.digest("hex"), size });
    return count;
  }
}

export interface BundleOptions {
  out: string;
  sessions: readonly SessionRecord[];
  redactor: Redactor;
  signer: SigningIdentity;
  /** renderReport(db, sessionId, options) from src/export/report.ts, when it exists. */
  renderReport?: (db: Db, sessionId: number, options?: { includeSecrets?: boolean }) => string;
}

export interface BundleResult {
  out: string;
  files: number;
  exchanges: number;
  events: number;
  omitted: OmittedItem[];
}

export async function writeBundle(db: Db, o: BundleOptions): Promise<BundleResult> {
  const zip = o.out.toLowerCase().endsWith(".zip");
  if (existsSync(o.out) && (zip || readdirSync(o.out).length > 0)) {
    throw exhaustError("EXH_EXPORT_OUT_EXISTS", { path: o.out });
  }
  const root = zip ? mkdtempSync(join(tmpdir(), "exhaust-bundle-")) : o.out;
  privateDir(root);
  try {
    const tree = new FileTree(root);
    const omitted: OmittedItem[] = [];
    learnCredentials(db, o.sessions, o.redactor);

    const written = new Set<string>();
    const addBlob = (sha: string | null, what: string, exchange: string, headers: RawHeaders | null, path?: string) => {
      if (sha === null || written.has(sha)) return;
      const data = blobData(db, sha);
      if (!data) return void omitted.push({ what, exchange, sha256: sha, reason: "blob missing from the database" });
      if (o.redactor.bodyHasSecret(data, headers, path)) {
        written.add(sha);
        return void omitted.push({ what, exchange, sha256: sha, reason: CREDENTIAL_BODY_REASON });
      }
      written.add(sha);
      tree.write(`blobs/${sha}`, data);
    };
    let exchanges = 0;
    function* exchangeLines(): Generator<string> {
      for (const s of o.sessions) {
        for (const x of exchangesOfSession(db, s.id)) {
          addBlob(x.requestBodySha256, "request body", x.id, x.requestHeaders, x.path);
          addBlob(x.responseBodySha256, "response body", x.id, x.responseHeaders);
          exchanges++;
          yield `${JSON.stringify(o.redactor.deep(redactedRecord(x, o.redactor)))}\n`;
        }
      }
    }
    tree.writeLines(EXCHANGES_FILE, exchangeLines());
    const events = tree.writeLines(
      EVENTS_FILE,
      sessionEventLines(
        db,
        o.sessions.map((s) => s.id),
        o.redactor,
      ),
    );
    const checkpoints = o.sessions.flatMap((s) => checkpointsOfSession(db, s.id));
    if (checkpoints.length) tree.write(CHECKPOINTS_FILE, checkpoints.map((c) => `${JSON.stringify(c)}\n`).join(""));

    const verdicts = o.sessions.map((s) => ({ session: s.name, verdicts: latestVerdicts(db, s.id) }));
    tree.write(VERDICTS_FILE, `${JSON.stringify(verdicts, null, 2)}\n`);
    if (o.renderReport) {
      for (const s of o.sessions) {
        const name = o.sessions.length === 1 ? "report.html" : `reports/${encodeURIComponent(s.name)}.html`;
        tree.write(name, o.renderReport(db, s.id, { includeSecrets: !o.redactor.redacting }));
      }
    } else {
      omitted.push({ what: "report.html", reason: "the HTML report module is not available in this build" });
    }
    tree.write(SIGNING_CERT_PATH, o.signer.certPem);
    tree.write(CA_CERT_PATH, o.signer.caCertPem);

    const sessions: ManifestSession[] = o.sessions.map((s) => {
      const c = chainSummary(db, s.id);
      const eventCount = db.prepare("SELECT COUNT(*) FROM events WHERE session_id = ?").pluck().get(s.id) as number;
      return {
        name: s.name,
        startedAt: s.startedAt,
        endedAt: s.endedAt,
        toolVersion: s.toolVersion,
        caFingerprint: s.caFingerprint,
        options: s.options,
        captureTimeRange: {
          first: c.firstStartedAt === null ? null : new Date(c.firstStartedAt).toISOString(),
          last: c.lastActivityAt === null ? null : new Date(c.lastActivityAt).toISOString(),
        },
        exchanges: c.exchanges,
        events: eventCount,
        chain: { genesis: CHAIN_GENESIS, head: c.head ?? CHAIN_GENESIS, lastSeq: c.lastSeq },
      };
    });
    const manifest: Manifest = {
      format: BUNDLE_FORMAT,
      formatVersion: BUNDLE_FORMAT_VERSION,
      tool: { name: "exhaust", version: TOOL_VERSION },
      createdAt: new Date().toISOString(),
      secrets: o.redactor.redacting
        ? {
            included: false,
            note: "credential values (headers, query parameters and JSON keys named in classifiers/secrets.yaml: Authorization, Tickets, Auth*, Aad-*, cookies, MSFPC, X-Auth-Token, X-API-Key, access_token, ...) are replaced by hmac-sha256 keyed hashes wherever they occur, including decoded fields; bodies holding one (as stored or after content decoding) are left out and listed in omitted; exchanges marked chainInputsRedacted cannot have their chain hash recomputed, only their links",
          }
        : {
            included: true,
            note: "SECRETS INCLUDED: credential headers, query parameters, bodies and decoded fields are exported as captured",
          },
      signer: {
        subject: o.signer.subject,
        fingerprint256: o.signer.fingerprint256,
        caFingerprint256: o.signer.caFingerprint256,
        certificate: SIGNING_CERT_PATH,
        caCertificate: CA_CERT_PATH,
      },
      chainDefinition: CHAIN_DEFINITION,
      sessions,
      verdicts: verdicts.flatMap((v) =>
        v.verdicts.map((r) => ({ session: v.session, profile: r.profile.name, status: r.status, counts: r.counts })),
      ),
      files: [...tree.files].sort((a, b) => a.path.localeCompare(b.path)),
      omitted,
    };
    const manifestBytes = Buffer.from(`${JSON.stringify(manifest, null, 2)}\n`, "utf8");
    writeRaw(root, MANIFEST_FILE, manifestBytes);
    writeRaw(root, SIGNATURE_FILE, Buffer.from(`${sign("sha256", manifestBytes, o.signer.key).toString("base64")}\n`));
    if (zip) await zipTree(root, [MANIFEST_FILE, SIGNATURE_FILE, ...manifest.files.map((f) => f.path)], o.out);
    return { out: o.out, files: manifest.files.length + 2, exchanges, events, omitted };
  } catch (e) {
    if (!zip) rmSync(root, { recursive: true, force: true });
    throw e;
  } finally {
    if (zip) rmSync(root, { recursive: true, force: true });
  }
}

function writeRaw(root: string, name: string, data: Buffer): void {
  const fd = openSync(join(root, name), "wx", 0o600);
  try {
    chmodPrivate(fd);
    writeSync(fd, data);
  } finally {
    closeSync(fd);
  }
}

/** Zips the tree; yazl reads each file only when its turn comes, so blobs never pile up in memory. */
async function zipTree(root: string, paths: string[], out: string): Promise<void> {
  const zip = new yazl.ZipFile();
  const done = new Promise<void>((resolve, reject) => {
    const stream = createWriteStream(out, { mode: 0o600, flags: "wx" });
    stream.once("open", (fd) => chmodPrivate(fd));
    stream.once("close", () => resolve());
    stream.once("error", reject);
    zip.outputStream.once("error", reject).pipe(stream);
  });
  for (const p of paths) zip.addFile(join(root, p), p, { compress: !p.startsWith("blobs/") });
  zip.end();
  await done;
}

/** `--format bundle`: a signed evidence bundle, a directory or a `.zip` file; items left out listed in its manifest. */
export const bundleFormat: ExportFormat = {
  name: "bundle",
  out: (path) => (path.toLowerCase().endsWith(".zip") ? "file" : "directory"),
  outHelp: "for bundle a directory, or a file ending in .zip",
  omittedListedIn: "manifest",
  async write(ctx) {
    const ca = await loadOrCreateAuthority(ctx.certs, { permittedDomains: EndpointCatalog.load().constraintDomains() });
    const signer = await loadOrCreateSigningIdentity(ca);
    if (ctx.overwrite) rmSync(ctx.out);
    return { ...(await writeBundle(ctx.db, { out: ctx.out, sessions: ctx.sessions, redactor: ctx.redactor(), signer, renderReport })) };
  },
};
