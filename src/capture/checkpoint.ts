/**
 * Signed chain checkpoints. A checkpoint says "session S had N exchanges ending at head H at time T",
 * signed by the capture CA's key, so a lab tester can write `H@N` in the lab notebook (or mail it to
 * the auditor) the moment a capture stops, and `exhaust bundle verify --head H@N` later proves that
 * a bundle still holds that chain: exchanges removed from the end or the middle fail, even when the
 * bundle is re-signed with the lab's own key.
 *
 * Signed bytes (UTF-8, no trailing newline), fields in this order:
 *   {"format":"exhaust-checkpoint","version":1,"session":S,"seq":N,"head":H,"time":T,"caFingerprint256":F}
 * Signature: ECDSA (DER) or RSA PKCS#1 v1.5, as the CA's key, with SHA-256 by the CA key, base64; verifiable offline with the CA
 * certificate (`openssl dgst -sha256 -verify ca-pubkey.pem -signature sig.bin checkpoint.json`).
 * `tsa` holds an RFC 3161 TimeStampResp over the same bytes when one was obtained (docs/evidence.md).
 */
import { createPublicKey, sign, verify, X509Certificate, type KeyObject } from "node:crypto";
import type { Db } from "../store/database.js";
import { chainHead, insertCheckpoint, type CheckpointRow } from "../store/checkpoints.js";
import { CHAIN_GENESIS } from "../store/chain.js";

export const CHECKPOINT_FORMAT = "exhaust-checkpoint";
export const CHECKPOINT_VERSION = 1;

export type Checkpoint = CheckpointRow;

/** The exact bytes a checkpoint's signature (and an RFC 3161 time stamp) covers. */
export function checkpointCanonical(c: Pick<Checkpoint, "session" | "seq" | "head" | "time" | "caFingerprint256">): Buffer {
  return Buffer.from(
    JSON.stringify({
      format: CHECKPOINT_FORMAT,
      version: CHECKPOINT_VERSION,
      session: c.session,
      seq: c.seq,
      head: c.head,
      time: c.time,
      caFingerprint256: c.caFingerprint256,
    }),
    "utf8",
  );
}

export function signCheckpoint(
  fields: Pick<Checkpoint, "session" | "seq" | "head" | "time">,
  ca: { key: KeyObject; fingerprint256: string },
): Checkpoint {
  const c = { ...fields, caFingerprint256: ca.fingerprint256 };
  return { ...c, signature: sign("sha256", checkpointCanonical(c), ca.key).toString("base64"), tsa: null };
}

/** Whether the checkpoint's signature verifies with the CA certificate (PEM, DER or parsed). */
export function checkpointSignatureValid(c: Checkpoint, caCert: X509Certificate | KeyObject): boolean {
  try {
    const key = caCert instanceof X509Certificate ? caCert.publicKey : createPublicKey(caCert);
    return verify("sha256", checkpointCanonical(c), key, Buffer.from(c.signature, "base64"));
  } catch {
    return false;
  }
}

/** Signs and stores a checkpoint of the session's chain as it stands now. */
export function recordCheckpoint(
  db: Db,
  session: { id: number; name: string },
  ca: { key: KeyObject; fingerprint256: string },
  now = new Date(),
): Checkpoint {
  const head = chainHead(db, session.id);
  const c = signCheckpoint({ session: session.name, seq: head.seq, head: head.hash ?? CHAIN_GENESIS, time: now.toISOString() }, ca);
  insertCheckpoint(db, session.id, c);
  return c;
}

/** One line for a terminal or a lab notebook. */
export function describeCheckpoint(c: Checkpoint): string {
  return `checkpoint session ${c.session}: seq ${c.seq} head ${c.head} at ${c.time}, signed by CA SHA-256 ${c.caFingerprint256}; verify a bundle with --head ${c.head}@${c.seq}`;
}
