/**
 * The checkpoint a capture writes when it stops: called by runProxy once the session is
 * ended, before the database closes. Prints one line on stderr and stores the signed checkpoint.
 * A failure here never loses the capture: it is reported and the proxy stops as usual.
 */
import type { KeyObject } from "node:crypto";
import type { Db } from "../store/database.js";
import { describeCheckpoint, recordCheckpoint, type Checkpoint } from "./checkpoint.js";

export function checkpointOnStop(
  db: Db,
  session: { id: number; name: string },
  ca: { key: KeyObject; fingerprint256: string },
  out: NodeJS.WritableStream = process.stderr,
): Checkpoint | undefined {
  try {
    const c = recordCheckpoint(db, session, ca);
    out.write(`exhaust: ${describeCheckpoint(c)}\n`);
    return c;
  } catch (e) {
    out.write(`exhaust: could not write the stop checkpoint of session ${session.name}: ${(e as Error).message}\n`);
    return undefined;
  }
}
