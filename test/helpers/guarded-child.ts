/**
 * Runs a third-party SDK script in a child process under the loopback guard
 * (test/helpers/loopback-guard.cjs, loaded with `--require` before anything else): every
 * connection or name lookup to a non-loopback target is refused and recorded. The result carries
 * what the guard recorded, so a test can fail when the SDK tried to reach anything but loopback.
 */
import { spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { tempDir } from "./proxy.js";

export const LOOPBACK_GUARD = fileURLToPath(new URL("./loopback-guard.cjs", import.meta.url));

export interface GuardedRun {
  code: number | null;
  stdout: string;
  stderr: string;
  /** One line per refused attempt: `{"what":"connect","target":"169.254.169.254:80",...}`. */
  refused: string[];
}

export function runGuarded(
  script: string,
  env: Record<string, string>,
  options: { timeoutMs?: number; extraRequire?: string[] } = {},
): Promise<GuardedRun> {
  const guardLog = join(tempDir("exhaust-guard-"), "refused.jsonl");
  // Proxy variables of the developer's shell must not leak in; the test sets its own.
  const base: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env))
    if (v !== undefined && !/^(https?|no|all)_proxy$/i.test(k) && !/^(NODE_OPTIONS|NODE_EXTRA_CA_CERTS)$/.test(k)) base[k] = v;
  const requires = [LOOPBACK_GUARD, ...(options.extraRequire ?? [])].flatMap((r) => ["--require", r]);
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [...requires, "-e", script], {
      env: { ...base, ...env, EXHAUST_GUARD_LOG: guardLog },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill("SIGKILL"), options.timeoutMs ?? 45_000);
    child.on("exit", (code) => {
      clearTimeout(timer);
      const refused = existsSync(guardLog) ? readFileSync(guardLog, "utf8").split("\n").filter(Boolean) : [];
      resolve({ code, stdout, stderr, refused });
    });
  });
}
