import { join } from "node:path";
import { PACKAGE_ROOT } from "../../src/paths.js";

/**
 * Public real-world samples (docs/real-traffic.md): not part of exhaust, so they are read from
 * $EXHAUST_REAL_WORLD_SAMPLES, else from the folder CI keeps beside the repository. Tests that need
 * one skip themselves when it is missing.
 */
export const REAL_WORLD_SAMPLES =
  process.env.EXHAUST_REAL_WORLD_SAMPLES ?? join(PACKAGE_ROOT, "..", "shared", "data", "real-world", "samples");
