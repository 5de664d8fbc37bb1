import type { Command } from "commander";
import { verifyBundle } from "../export/bundle-verify.js";
import { runCommand } from "./run.js";
import { escapeControls, jsonSafe } from "./terminal.js";

export function registerBundleCommand(program: Command): void {
  const bundle = program.command("bundle").description("evidence bundles");
  bundle
    .command("verify")
    .description("check every file hash, the hash chains and the signature of a bundle (directory or .zip); needs nothing but the bundle")
    .argument("<path>", "bundle directory or .zip")
    .option("--json", "print the checks as JSON")
    .action((path: string, opts: { json?: boolean }) =>
      runCommand(async () => {
        const result = await verifyBundle(path);
        if (opts.json) process.stdout.write(`${jsonSafe(JSON.stringify(result, null, 2))}\n`);
        else {
          // Details name files of the bundle, which may be hostile: escaped like captured values.
          for (const c of result.checks) process.stdout.write(`${c.ok ? "ok  " : "FAIL"}  ${c.check.padEnd(11)} ${escapeControls(c.detail)}\n`);
          process.stdout.write(result.ok ? `bundle ${path} verifies\n` : `bundle ${path} does NOT verify\n`);
        }
        return result.ok ? 0 : 1;
      }),
    );
}
