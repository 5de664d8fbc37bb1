import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { CONSOLE_LINE, stripAnsi } from "../src/cli/console.js";
import { demoCorpus } from "../src/demo/corpus.js";
import { PACKAGE_ROOT } from "../src/paths.js";
import { EXHAUST_BIN, freePort } from "./helpers/cli.js";
import { tempDir } from "./helpers/proxy.js";

/** The README's quick start: the lines of the code block between the quickstart markers. */
function quickStartLines(): string[] {
  const readme = readFileSync(join(PACKAGE_ROOT, "README.md"), "utf8");
  const m = /<!-- quickstart:begin -->\s*```sh\n([\s\S]*?)```\s*<!-- quickstart:end -->/.exec(readme);
  if (!m) throw new Error("README.md has no marked quick start");
  return m[1].split("\n").filter((l) => l.trim() !== "");
}

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/**
 * Turns the quick start into a script, line by line, changing only what a test must:
 * - `npm ci` is skipped: CI ran it already (and the suite runs on its result);
 * - `npm start -- ARGS` runs what it stands for, `exhaust proxy ARGS` on the built CLI (npm start
 *   would rebuild first), on a free port instead of 8080, in the background: the README's second
 *   terminal is the rest of the script; the script stops it with SIGTERM at the end;
 * - `node bin/exhaust.js` is the repository's bin/exhaust.js (the script runs in a temp directory,
 *   so certs/ and the corpus land there), and 8080 in the lines after is that free port;
 * - the database is a temp file through $EXHAUST_DB (the README's default is captures/ in the repository).
 */
function toScript(lines: string[], port: number): string {
  const out = ["set -eu"];
  for (const raw of lines) {
    const line = raw.replace(/\s+#.*$/, "").trim();
    if (line === "" || line.startsWith("#")) continue;
    if (/^npm ci\b/.test(line)) continue;
    const start = /^npm start(?: -- (.*))?$/.exec(line);
    if (start) {
      out.push(
        `node '${EXHAUST_BIN}' proxy --listen 127.0.0.1:${port} --log-format human ${start[1] ?? ""} > proxy.out 2> proxy.err &`,
        "PROXY_PID=$!",
        // Wait for the banner (the README's reader waits for it too).
        'i=0; until grep -q "proxy listening on" proxy.out; do i=$((i+1)); [ $i -lt 200 ] || { cat proxy.err; exit 1; }; sleep 0.1; done',
      );
      continue;
    }
    out.push(line.replace(/^node bin\/exhaust\.js\b/, `node '${EXHAUST_BIN}'`).replace(/127\.0\.0\.1:8080/g, `127.0.0.1:${port}`));
  }
  out.push('kill -TERM "$PROXY_PID"', 'wait "$PROXY_PID"');
  return `${out.join("\n")}\n`;
}

describe("README quick start", () => {
  it("runs green line by line, and the proxy prints one console line per corpus upload", () => {
    // The quick start sends its uploads with curl: without it the README's steps fail too, so
    // this fails (naming the cause) rather than skipping unseen.
    expect(spawnSync("curl", ["--version"]).status, "curl is not installed; the README's quick start needs it").toBe(0);
    const lines = quickStartLines();
    expect(lines.some((l) => l.startsWith("npm start"))).toBe(true);
    expect(lines.some((l) => l.includes("demo --write"))).toBe(true);
    const dir = tempDir("exhaust-quickstart-");
    dirs.push(dir);
    return freePort().then((port) => {
      writeFileSync(join(dir, "quickstart.sh"), toScript(lines, port));
      const r = spawnSync("bash", ["quickstart.sh"], {
        cwd: dir,
        encoding: "utf8",
        timeout: 240_000,
        // TMPDIR: the demo line makes its directory there, so it goes with the test's.
        env: { ...process.env, EXHAUST_DB: join(dir, "quickstart.db"), TMPDIR: dir },
      });
      expect(
        r.status,
        `${r.stdout}\n${r.stderr}\n${existsSync(join(dir, "proxy.err")) ? readFileSync(join(dir, "proxy.err"), "utf8") : ""}`,
      ).toBe(0);
      const corpus = demoCorpus();
      // curl.sh prints the status of each upload.
      for (const u of corpus) expect(r.stdout).toContain(`200 ${u.file}`);
      // The demo line ran too, and the report was written.
      expect(r.stdout).toMatch(/^verdict zero-exhaust: FAIL/m);
      expect(readFileSync(join(dir, "report.html"), "utf8")).toMatch(/^<!doctype html>/i);
      const proxyOut = stripAnsi(readFileSync(join(dir, "proxy.out"), "utf8"));
      expect(proxyOut).toContain(`proxy listening on http://127.0.0.1:${port}`);
      expect(proxyOut.split("\n").filter((l) => CONSOLE_LINE.test(l))).toHaveLength(corpus.length);
      // `events` listed what was sent.
      expect(r.stdout).toContain("Office.Identity.SignOutEvent");
    });
  }, 300_000);
});
