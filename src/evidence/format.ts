/**
 * The evidence bundle format, shared by the writer (src/export/bundle.ts), the verifier
 * (src/evidence/verify.ts) and the importer (src/import/exhaust-formats.ts). Evidence bundle: a directory (or the same tree zipped) that anyone can check offline with
 * `exhaust bundle verify`. Layout:
 *
 *   manifest.json       what is in the bundle: tool, sessions (metadata, capture time range, chain
 *                       head), verdicts, redaction, every file with its SHA-256 and size, and
 *                       everything left out
 *   manifest.sig        base64 ECDSA-SHA256 (DER) or RSA-SHA256 signature, as the CA's key, over the exact bytes of manifest.json
 *   certs/signing.pem   the certificate of the key that signed, issued by certs/ca.pem
 *   certs/ca.pem        exhaust's CA certificate
 *   exchanges.jsonl     one exchange record per line, in chain order: the inputs of the hash chain
 *   blobs/<sha256>      every request and response body, byte for byte
 *   events.jsonl        decoded and classified events (design.md §4)
 *   verdicts.json       latest verdict per profile and session
 *   checkpoints.jsonl   signed chain checkpoints of the sessions (src/capture/checkpoint.ts)
 *   report.html         the HTML report, when the report module is available
 */

import type { SessionRecord } from "../store/sessions.js";
import type { EventDetail } from "../store/events.js";

/** Something an export left out, and why; listed in the HAR's `log._exhaust.omitted` and the bundle manifest. */
export interface OmittedItem {
  what: string;
  exchange?: string;
  sha256?: string;
  reason: string;
}

export const BUNDLE_FORMAT = "exhaust-evidence-bundle";
export const BUNDLE_FORMAT_VERSION = 1;
export const MANIFEST_FILE = "manifest.json";
export const SIGNATURE_FILE = "manifest.sig";
export const SIGNING_CERT_PATH = "certs/signing.pem";
export const CA_CERT_PATH = "certs/ca.pem";
export const EXCHANGES_FILE = "exchanges.jsonl";
export const EVENTS_FILE = "events.jsonl";
export const VERDICTS_FILE = "verdicts.json";
export const CHECKPOINTS_FILE = "checkpoints.jsonl";

export interface ManifestFile {
  path: string;
  sha256: string;
  size: number;
}

export interface ManifestSession extends Omit<SessionRecord, "id"> {
  captureTimeRange: { first: string | null; last: string | null };
  exchanges: number;
  events: number;
  chain: { genesis: string; head: string; lastSeq: number };
}

export interface Manifest {
  format: typeof BUNDLE_FORMAT;
  formatVersion: number;
  tool: { name: "exhaust"; version: string };
  createdAt: string;
  secrets: { included: boolean; note: string };
  signer: { subject: string; fingerprint256: string; caFingerprint256: string; certificate: string; caCertificate: string };
  chainDefinition: string;
  sessions: ManifestSession[];
  verdicts: Array<{ session: string; profile: string; status: string; counts: Record<string, number> }>;
  files: ManifestFile[];
  omitted: OmittedItem[];
}

export const CHAIN_DEFINITION =
  'hash = SHA-256(prev_hash + "\\n" + JSON.stringify([session, seq, id, startedAt, method, scheme, host, port, path, requestHeaders, requestBodySha256, requestBodySize, responseStatus])), prev_hash of the first exchange = 64 zeros; fields as in exchanges.jsonl (src/store/chain.ts)';

/** One line of events.jsonl (the bundle and `exhaust export --format jsonl`): a decoded, classified event. */
export interface EventJson {
  session: string;
  exchange: string;
  event: {
    id: number;
    name: string;
    time: string | null;
    format: string;
    iKey: string | null;
    group: string | null;
    category: string | null;
  };
  fields: Array<{
    path: string;
    part: string;
    value: unknown;
    type: string;
    category: string | null;
    personal: string | null;
    declared: { piiKind: string | null; customerContent: boolean | null };
    rule: string | null;
    reasons: string[];
    confidence: number | null;
  }>;
  findings: EventDetail["findings"];
}
