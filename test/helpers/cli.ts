import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { createServer, type AddressInfo } from "node:net";
import { join } from "node:path";
import { PACKAGE_ROOT } from "../../src/paths.js";

export const EXHAUST_BIN = join(PACKAGE_ROOT, "bin", "exhaust.js");

/** Runs the built CLI (dist/, made by `npm test`'s pretest build) to completion. */
export function runCli(args: string[], cwd?: string, timeoutMs = 30_000): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [EXHAUST_BIN, ...args], { cwd, encoding: "utf8", timeout: timeoutMs });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

export interface ProxyProcess {
  child: ChildProcess;
  port: number;
  stderr: () => string;
}

/**
 * Starts `exhaust proxy` as a child process and resolves once it logs its listening address.
 * `maxFiles` runs it under `ulimit -n` (through sh, which then execs node: the pid is the proxy's).
 */
export function spawnProxy(args: string[], cwd?: string, opts: { maxFiles?: number; initCa?: boolean } = {}): Promise<ProxyProcess> {
  // Every test lab is a fresh directory: let the proxy create its CA there (--init-ca).
  const argv = [EXHAUST_BIN, "proxy", "--listen", "127.0.0.1:0", ...(opts.initCa === false ? [] : ["--init-ca"]), ...args];
  const quote = (a: string) => `'${a.replace(/'/g, "'\\''")}'`;
  const child = opts.maxFiles
    ? spawn("sh", ["-c", `ulimit -n ${opts.maxFiles} && exec ${[process.execPath, ...argv].map(quote).join(" ")}`], {
        cwd,
        stdio: ["ignore", "pipe", "pipe"],
      })
    : spawn(process.execPath, argv, { cwd, stdio: ["ignore", "pipe", "pipe"] });
  let err = "";
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`proxy did not start: ${err}`)), 20_000);
    let started = false;
    child.stderr.on("data", (d: Buffer) => {
      err += d.toString();
      if (started) return;
      const m = /"listen":"[^"]*:(\d+)"/.exec(err);
      if (m) {
        started = true;
        clearTimeout(timer);
        resolve({ child, port: Number(m[1]), stderr: () => err });
      }
    });
    child.once("exit", (code) => {
      clearTimeout(timer);
      if (!started) reject(new Error(`proxy exited with ${code}: ${err}`));
    });
  });
}

export function waitExit(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once("exit", () => resolve()));
}

/** A loopback port free a moment ago (for a child that must be told its port before it starts). */
export async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
  const port = (s.address() as AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}
