import { readFileSync } from "node:fs";
import type { Command } from "commander";
import { exhaustError } from "../errors.js";
import { parseHead, resolveAnchor, UNANCHORED_WARNING, VERIFY_EXIT, verifyBundle, type VerifyOptions } from "../evidence/verify.js";
import { collect, runCommand } from "./run.js";
import { escapeControls, jsonSafe } from "./terminal.js";

export interface AnchorFlags {
  ca?: string;
  fingerprint?: string;
  head: string[];
}

/** --ca / --fingerprint / --head as verify options (shared with `exhaust import`); EXH_OPT_INVALID on bad values. */
export function anchorOptions(flags: AnchorFlags): VerifyOptions {
  let caCert: Buffer | undefined;
  if (flags.ca !== undefined) {
    try {
      caCert = readFileSync(flags.ca);
    } catch (e) {
      throw exhaustError("EXH_OPT_INVALID", { option: "--ca", reason: `cannot read ${flags.ca}: ${(e as Error).message}` });
    }
  }
  const anchor = caCert || flags.fingerprint ? { caCert, fingerprint: flags.fingerprint } : undefined;
  if (anchor) resolveAnchor(anchor); // usage errors before any work
  return { anchor, heads: flags.head.map(parseHead) };
}

/** Adds the trust-anchor options to a command. */
export function withAnchorOptions(c: Command): Command {
  return c
    .option(
      "--ca <file>",
      "trusted lab CA certificate (PEM or DER): the signer must chain to it and every session must have been captured under it",
    )
    .option("--fingerprint <sha256>", "trusted lab CA's SHA-256 fingerprint (from `exhaust ca show`; colons optional, any case)")
    .option("--head <hash[@seq]>", "a chain head from a checkpoint (lab notebook) that the bundle must hold (repeatable)", collect, []);
}

export function registerBundleCommand(program: Command): void {
  const bundle = program.command("bundle").description("evidence bundles");
  withAnchorOptions(
    bundle
      .command("verify")
      .description(
        "check every file hash, the hash chains, the signature and checkpoints of a bundle (directory or .zip), and with --ca/--fingerprint that it was signed and captured under the lab's CA. Exit 0 verified against the anchor, 1 failed, 4 consistent but not anchored, 2 unreadable",
      )
      .argument("<path>", "bundle directory or .zip"),
  )
    .option("--json", "print the result as JSON (status: verified | consistent-unanchored | failed)")
    .action((path: string, opts: AnchorFlags & { json?: boolean }) =>
      runCommand(async () => {
        const result = await verifyBundle(path, anchorOptions(opts));
        if (opts.json) process.stdout.write(`${jsonSafe(JSON.stringify(result, null, 2))}\n`);
        else {
          // Details name files of the bundle, which may be hostile: escaped like captured values.
          for (const c of result.checks)
            process.stdout.write(`${c.ok ? "ok  " : "FAIL"}  ${c.check.padEnd(11)} ${escapeControls(c.detail)}\n`);
          if (result.status === "verified") {
            process.stdout.write(`bundle ${path} verified against the trusted CA SHA-256 ${result.anchor!.fingerprint256}\n`);
          } else if (result.status === "consistent-unanchored") {
            process.stdout.write(
              `WARNING: bundle ${path} is ${UNANCHORED_WARNING}.\n` +
                `It agrees with itself, but anyone can make a CA and sign a bundle. It names signing CA SHA-256 ${result.signer?.caFingerprint256 ?? "(none)"}: ` +
                `compare that with the fingerprint the lab gives you (\`exhaust ca show\` on the lab machine), then run again with --ca FILE or --fingerprint SHA256.\n`,
            );
          } else {
            process.stdout.write(`bundle ${path} does NOT verify\n`);
          }
        }
        return VERIFY_EXIT[result.status];
      }),
    );
}
