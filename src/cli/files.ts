/**
 * Two policies every command shares: what `--out` does when the file exists, and what an explicit
 * `--certs` directory without a CA means.
 */
import { existsSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import type { Command } from "commander";
import { CA_CERT_FILE, CA_KEY_FILE } from "../ca/authority.js";
import { exhaustError } from "../errors.js";

/**
 * One overwrite policy for every `--out`: an existing file is refused (EXH_EXPORT_OUT_EXISTS)
 * unless `--force` is given; an existing directory is never replaced (remove it yourself), except
 * that an empty one may receive a bundle (`emptyDirectoryOk`).
 * Returns whether the caller may write over an existing file.
 */
export function checkOut(path: string, force: boolean | undefined, options: { emptyDirectoryOk?: boolean } = {}): boolean {
  if (!existsSync(path)) return false;
  const isDir = statSync(path).isDirectory();
  if (isDir ? !options.emptyDirectoryOk || readdirSync(path).length > 0 : !force) throw exhaustError("EXH_EXPORT_OUT_EXISTS", { path });
  return !isDir;
}

/**
 * `--certs DIR` given on the command line must hold a CA: a typo would otherwise create a new,
 * untrusted CA (or redaction key) there. The default directory (`./certs`) is still created on
 * first use, and `allowCreate` (`proxy --init-ca`) creates one where asked.
 */
export function requireCaIfExplicit(command: Command, dir: string, allowCreate = false): void {
  if (allowCreate || command.getOptionValueSource("certs") !== "cli") return;
  if (existsSync(join(dir, CA_CERT_FILE)) || existsSync(join(dir, CA_KEY_FILE))) return;
  throw exhaustError("EXH_CERTS_NO_CA", { dir });
}
