import { existsSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/**
 * The package root (where package.json and classifiers/ live), found by walking up from this file,
 * so that the same code works from src/ (vitest) and from dist/src/ (the built CLI).
 */
function findPackageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, "package.json")) && existsSync(join(dir, "classifiers"))) return dir;
    const parent = dirname(dir);
    if (parent === dir) throw new Error("exhaust: cannot find the package root (package.json beside classifiers/)");
    dir = parent;
  }
}

export const PACKAGE_ROOT = findPackageRoot();
export const CLASSIFIERS_DIR = join(PACKAGE_ROOT, "classifiers");

/** The CA directory defaults to the working directory's certs/, like mitmproxy's ~/.mitmproxy but per lab folder. */
export const DEFAULT_CERTS_DIR = resolve("certs");
/**
 * The database every command uses without --db, the same from any working directory: $EXHAUST_DB
 * when set (a relative value is taken from the working directory), else captures/exhaust.db in the
 * package root (see docs/durability.md).
 */
export const DEFAULT_DB_FILE = process.env.EXHAUST_DB ? resolve(process.env.EXHAUST_DB) : join(PACKAGE_ROOT, "captures", "exhaust.db");
