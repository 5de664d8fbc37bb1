import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { CLASSIFIERS_DIR } from "../paths.js";

/**
 * What classification reads: the rule packs and the endpoint catalogue (an endpoint's purpose is
 * part of an event's context). Verification profiles (profiles/) are not: editing one must not make
 * every stored exchange stale.
 */
const CLASSIFICATION_INPUTS = ["detectors", "endpoints.yaml", "events", "fields"];

/**
 * A short fingerprint of the classification inputs under classifiers/ (paths and contents). Stored
 * with each classified exchange, so `exhaust reprocess` knows which ones an edited rule pack makes
 * stale.
 */
export function rulePacksFingerprint(dir: string = CLASSIFIERS_DIR): string {
  const hash = createHash("sha256");
  const walk = (d: string): string[] =>
    readdirSync(d)
      .sort()
      .flatMap((name) => {
        const full = join(d, name);
        return statSync(full).isDirectory() ? walk(full) : /\.(ya?ml|tsv)$/.test(name) ? [full] : [];
      });
  const inputs = CLASSIFICATION_INPUTS.map((name) => join(dir, name)).filter((p) => existsSync(p));
  const files = inputs.flatMap((p) => (statSync(p).isDirectory() ? walk(p) : [p]));
  for (const file of files) {
    hash.update(relative(dir, file)).update("\0").update(readFileSync(file)).update("\0");
  }
  return `rules:${hash.digest("hex").slice(0, 16)}`;
}
