/**
 * `exhaust import`: recognises a file by its first bytes (and, for JSON, its shape), hashes it for
 * the session's provenance, and hands it to the importer for its format. Each file (each session
 * of a bundle) becomes a new session, decoded and classified like live traffic.
 */
import { createHash } from "node:crypto";
import { closeSync, createReadStream, openSync, readSync, statSync } from "node:fs";
import { basename } from "node:path";
import { Transform, type Readable } from "node:stream";
import { EntryTooLargeError, openBundle, type BundleSource } from "../evidence/source.js";
import { UNANCHORED_WARNING, verifyBundle, type VerifyOptions } from "../evidence/verify.js";
import { exhaustError, isExhaustError } from "../errors.js";
import type { Db } from "../store/database.js";
import { sessionByName } from "../store/sessions.js";
import { importEventTranscript, importDiagnosticDataCsv, importDiagnosticDataJson } from "./diagnostic-data.js";
import { bundleManifest, importBundleSession, importExhaustJsonl } from "./exhaust-formats.js";
import { importHar } from "./har.js";
import { BUNDLE_INDEX_MAX, IMPORT_MAX_BODY_DEFAULT, tooLarge } from "./limits.js";
import { importSaz } from "./saz.js";
import { ImportSession, type ImportSummary } from "./session.js";

export type ImportFormat = "har" | "saz" | "event-transcript" | "diagnostic-data-json" | "diagnostic-data-csv" | "exhaust-jsonl" | "bundle";

export interface ImportOptions {
  db: Db;
  dbFile: string;
  /** Session name; several files (or bundle sessions) get `NAME-2`, `NAME-3`, ... */
  session?: string;
  /** Payload limit (bytes; default IMPORT_MAX_BODY_DEFAULT): see src/import/limits.ts. */
  maxBodyBytes?: number;
  /** Told how far through the file the import is (bytes); the CLI draws a progress bar from it. */
  progress?: ImportProgress;
  /** What a bundle is verified against (trust anchor, notebook heads). */
  verify?: VerifyOptions;
}

export interface ImportProgress {
  start(label: string, totalBytes: number): void;
  update(doneBytes: number): void;
  stop(): void;
}

function head(file: string, bytes: number): Buffer {
  const fd = openSync(file, "r");
  try {
    const buf = Buffer.alloc(bytes);
    return buf.subarray(0, readSync(fd, buf, 0, bytes, 0));
  } finally {
    closeSync(fd);
  }
}

export async function detectFormat(file: string): Promise<ImportFormat> {
  let stat;
  try {
    stat = statSync(file);
  } catch (e) {
    throw exhaustError("EXH_IMPORT_FORMAT", { file, reason: (e as Error).message }, e);
  }
  if (stat.isDirectory()) {
    const b = await openBundle(file);
    const isBundle = b.has("manifest.json");
    b.close();
    if (isBundle) return "bundle";
    throw exhaustError("EXH_IMPORT_FORMAT", { file, reason: "a directory without manifest.json (not an exhaust bundle)" });
  }
  const start = head(file, 64 * 1024);
  if (start.subarray(0, 16).toString("latin1") === "SQLite format 3\0") return "event-transcript";
  if (start.subarray(0, 4).toString("latin1") === "PK\x03\x04") {
    const zip = await openBundle(file);
    try {
      if (zip.has("manifest.json")) return "bundle";
      if (zip.files().some((n) => /^raw\/\d+_c\.txt$/i.test(n))) return "saz";
    } finally {
      zip.close();
    }
    throw exhaustError("EXH_IMPORT_FORMAT", {
      file,
      reason: "a zip that is neither a Fiddler SAZ (raw/N_c.txt) nor an exhaust bundle (manifest.json)",
    });
  }
  const text = start.toString("utf8").replace(/^\uFEFF/, "");
  const first = text.trimStart()[0];
  if (first === "[") return "diagnostic-data-json";
  // Export-Csv: `#TYPE DDVCmdlets.Containers.EventRecord`, then the header row.
  if (
    /^(#TYPE [^\n]*\n)?"?Name"?,/.test(text.trimStart()) &&
    /(^|,)"?Payload"?(,|\r?\n)/.test(
      text
        .trimStart()
        .split("\n")
        .find((l) => !l.startsWith("#")) ?? "",
    )
  ) {
    return "diagnostic-data-csv";
  }
  if (first === "{") {
    const line = text.trimStart().split("\n")[0];
    try {
      const o = JSON.parse(line) as Record<string, unknown>;
      if (o && typeof o === "object" && "fields" in o && "event" in o) return "exhaust-jsonl";
    } catch {
      // Not one JSON object per line: a (pretty-printed) HAR.
    }
    return "har";
  }
  throw exhaustError("EXH_IMPORT_FORMAT", {
    file,
    reason:
      "unrecognised format (expected HAR, SAZ, EventTranscript.db, Get-DiagnosticData JSON or CSV, exhaust JSONL or an exhaust bundle)",
  });
}

async function sha256File(file: string): Promise<string> {
  if (statSync(file).isDirectory()) {
    // A bundle directory: its manifest (which holds every file's hash) stands for it.
    return createHash("sha256")
      .update(head(`${file}/manifest.json`, 64 * 1024 * 1024))
      .digest("hex");
  }
  const hash = createHash("sha256");
  // Large reads: with the default 64 KB, a 1 GB file took thousands of thread-pool round trips.
  for await (const chunk of createReadStream(file, { highWaterMark: 1024 * 1024 })) hash.update(chunk as Buffer);
  return hash.digest("hex");
}

function freeName(db: Db, wanted: string, explicit: boolean, dbFile: string): string {
  if (sessionByName(db, wanted) === undefined) return wanted;
  if (explicit) throw exhaustError("EXH_IMPORT_SESSION_EXISTS", { session: wanted, file: dbFile });
  for (let n = 2; ; n++) if (sessionByName(db, `${wanted}-${n}`) === undefined) return `${wanted}-${n}`;
}

/** A read stream of the file that moves the progress bar as bytes go by. */
function trackedStream(file: string, bar: ImportProgress | undefined): Readable {
  const input = createReadStream(file, { highWaterMark: 1024 * 1024 });
  if (!bar) return input;
  let done = 0;
  return input.pipe(
    new Transform({
      transform(chunk: Buffer, _enc, cb) {
        done += chunk.length;
        bar.update(done);
        cb(null, chunk);
      },
    }),
  );
}

/**
 * A bundle is verified (which reads its index files whole) before it is imported: refuse one whose
 * entries declare more than they may hold, before anything is read.
 */
function checkBundleSizes(bundle: BundleSource, file: string, maxBody: number): void {
  for (const name of bundle.files()) {
    const limit = name.startsWith("blobs/") ? maxBody : BUNDLE_INDEX_MAX;
    const size = bundle.size(name) ?? 0;
    if (size > limit) throw tooLarge(file, `bundle file ${name} declares ${size} bytes`, limit);
  }
}

export async function importFile(file: string, o: ImportOptions, index = 0): Promise<ImportSummary[]> {
  const maxBody = o.maxBodyBytes ?? IMPORT_MAX_BODY_DEFAULT;
  const format = await detectFormat(file);
  const sha256 = await sha256File(file);
  const base = o.session ? (index === 0 ? o.session : `${o.session}-${index + 1}`) : `import-${basename(file).replace(/\.[^.]*$/, "")}`;
  const provenance: { file: string; format: string; sha256: string; verification?: object } = { file: basename(file), format, sha256 };
  const size = statSync(file).isDirectory() ? 0 : statSync(file).size;
  const bar = size > 0 ? o.progress : undefined;

  const run = async (name: string, body: (s: ImportSession) => Promise<void>): Promise<ImportSummary> => {
    const sink = new ImportSession(o.db, freeName(o.db, name, o.session !== undefined, o.dbFile), o.dbFile, provenance);
    try {
      bar?.start(basename(file), size);
      await body(sink);
      bar?.update(size);
      bar?.stop();
      return { file, format, ...(await sink.finish()) };
    } catch (e) {
      bar?.stop();
      await sink.abandon((e as Error)?.message);
      if (isExhaustError(e)) throw e;
      if (e instanceof EntryTooLargeError) throw tooLarge(file, `archive entry ${e.entry} ${e.detail}`, e.limit);
      throw exhaustError("EXH_IMPORT_FORMAT", { file, reason: (e as Error).message }, e);
    }
  };

  switch (format) {
    case "har":
      return [await run(base, (s) => importHar(trackedStream(file, bar), file, s, maxBody))];
    case "diagnostic-data-json":
      return [await run(base, (s) => importDiagnosticDataJson(trackedStream(file, bar), file, s, maxBody))];
    case "diagnostic-data-csv":
      return [await run(base, (s) => importDiagnosticDataCsv(trackedStream(file, bar), file, s, maxBody))];
    case "exhaust-jsonl":
      return [await run(base, (s) => importExhaustJsonl(trackedStream(file, bar), file, s, maxBody))];
    case "event-transcript":
      return [await run(base, (s) => importEventTranscript(file, s, maxBody))];
    case "saz": {
      const zip = await openBundle(file);
      try {
        return [await run(base, (s) => importSaz(zip, s, maxBody))];
      } finally {
        zip.close();
      }
    }
    case "bundle": {
      const sized = await openBundle(file);
      try {
        checkBundleSizes(sized, file, maxBody);
      } finally {
        sized.close();
      }
      const verified = await verifyBundle(file, o.verify);
      if (!verified.ok) {
        const bad = verified.checks.find((c) => !c.ok)!;
        throw exhaustError("EXH_IMPORT_FORMAT", {
          file,
          reason: `the bundle does not verify (${bad.detail}); run \`exhaust bundle verify\``,
        });
      }
      // Whether the bundle was checked against a trust anchor is part of the imported session's provenance.
      provenance.verification = {
        status: verified.status,
        anchored: verified.status === "verified",
        anchor: verified.anchor?.fingerprint256 ?? null,
        signerCa: verified.signer?.caFingerprint256 ?? null,
        heads: (o.verify?.heads ?? []).map((h) => `${h.hash}${h.seq !== undefined ? `@${h.seq}` : ""}`),
      };
      const bundle = await openBundle(file);
      try {
        const manifest = await bundleManifest(bundle);
        const out: ImportSummary[] = [];
        for (const [i, s] of manifest.sessions.entries()) {
          const name = manifest.sessions.length === 1 ? base : `${base}-${s.name}`;
          const summary = await run(i === 0 || !o.session ? name : `${name}`, (sink) => importBundleSession(bundle, s.name, sink, maxBody));
          if (!manifest.secrets.included)
            summary.notes.push("credential headers were redacted in the bundle: the imported values are keyed hashes");
          if (verified.status !== "verified")
            summary.notes.push(`bundle ${UNANCHORED_WARNING}: pass --ca or --fingerprint to check it against the lab's CA`);
          summary.verification = verified.status;
          out.push(summary);
        }
        return out;
      } finally {
        bundle.close();
      }
    }
  }
}
