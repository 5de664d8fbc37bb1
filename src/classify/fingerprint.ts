import { createHash } from "node:crypto";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { CLASSIFIERS_DIR } from "../paths.js";

/**
 * A short fingerprint of every rule file under classifiers/ (paths and contents). Stored with each
 * classified exchange, so `exhaust reprocess` knows which ones an edited rule pack makes stale.
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
  for (const file of walk(dir)) {
    hash.update(relative(dir, file)).update("\0").update(readFileSync(file)).update("\0");
  }
  return `rules:${hash.digest("hex").slice(0, 16)}`;
}
