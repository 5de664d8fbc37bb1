/**
 * `exhaust demo` (docs/demo.md): a sinkhole on a free loopback port with its own CA and database
 * in a fresh directory, the built-in corpus sent through it (and a pinned client imitated), then
 * the zero-exhaust verdict and the HTML report, and where everything is. `--write DIR` writes the
 * corpus as files with a curl line each instead.
 */
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import type { Command } from "commander";
import { CA_CERT_FILE } from "../ca/authority.js";
import { EndpointCatalog } from "../catalog/endpoints.js";
import { httpsThroughProxy, rejectLeafWithAlert } from "../demo/client.js";
import { curlLine, demoCorpus, PINNED_HOST } from "../demo/corpus.js";
import { exhaustError } from "../errors.js";
import { writePrivateFile } from "../export/private-files.js";
import { renderReport } from "../export/report.js";
import { createLogger } from "../log.js";
import { startCapture } from "../pipeline/start-capture.js";
import { saveVerdict } from "../store/verdicts.js";
import { sessionByName } from "../store/sessions.js";
import { formatVerdict } from "../verify/format.js";
import { loadProfile } from "../verify/profile.js";
import { verifySession } from "../verify/verify.js";
import { decodePendingWithProgress } from "./complete.js";
import { humanLogStream } from "./console.js";
import { parseProxyFlags } from "./proxy.js";
import { runCommand } from "./run.js";

const SESSION = "demo";
const PROFILE = "zero-exhaust";

export function registerDemoCommand(program: Command): void {
  program
    .command("demo")
    .description("capture a built-in set of telemetry uploads in a sinkhole, verify zero-exhaust and write the report")
    .option("--dir <dir>", "where the demo's database, CA, verdict and report go (default: a new temporary directory)")
    .option("--write <dir>", "only write the corpus as files (with curl lines in curl.sh) to this directory")
    .action((opts: { dir?: string; write?: string }) =>
      runCommand(async () => {
        if (opts.write !== undefined) return writeCorpus(opts.write);
        return runDemo(opts.dir);
      }),
    );
}

function writeCorpus(dir: string): void {
  mkdirSync(dir, { recursive: true });
  const corpus = demoCorpus();
  const lines = [
    "#!/bin/sh",
    "set -e",
    "# Sends the exhaust demo corpus through a running proxy. PROXY and CA may be overridden.",
    'PROXY="${PROXY:-http://127.0.0.1:8080}"',
    'CA="${CA:-certs/exhaust-ca.pem}"',
    'DIR="$(dirname "$0")"',
  ];
  for (const u of corpus) {
    writeFileSync(join(dir, u.file), u.body);
    lines.push(`# ${u.what}`, curlLine(u, "$PROXY", "$CA", "$DIR"));
  }
  writeFileSync(join(dir, "curl.sh"), `${lines.join("\n")}\n`, { mode: 0o755 });
  process.stdout.write(`exhaust demo: ${corpus.length} uploads written to ${dir}\n`);
  for (const u of corpus) process.stdout.write(`  ${u.file.padEnd(28)} ${u.what}\n`);
  process.stdout.write(
    `send them through a running proxy: PROXY=http://127.0.0.1:8080 CA=certs/exhaust-ca.pem sh ${join(dir, "curl.sh")}\n`,
  );
}

async function runDemo(dirFlag: string | undefined): Promise<number> {
  const dir = resolve(dirFlag ?? mkdtempSync(join(tmpdir(), "exhaust-demo-")));
  mkdirSync(dir, { recursive: true });
  const dbFile = join(dir, "demo.db");
  const certsDir = join(dir, "certs");
  // Everything else at the proxy's defaults (addon flags included), as `exhaust proxy` would have them.
  const options = parseProxyFlags({ listen: "127.0.0.1:0", db: dbFile, session: SESSION, mode: "sinkhole", certs: certsDir });
  const log = createLogger({ level: process.env.EXHAUST_LOG_LEVEL ?? "warn", destination: humanLogStream(process.stderr) });
  const out = (s: string) => process.stdout.write(`${s}\n`);
  const capture = await startCapture({ options, log });
  const proxy = `http://127.0.0.1:${capture.address.port}`;
  out(`exhaust demo: sinkhole on ${proxy} (nothing leaves this machine), session "${SESSION}" in ${dbFile}`);
  const corpus = demoCorpus();
  let failed = 0;
  try {
    for (const u of corpus) {
      const r = await httpsThroughProxy({
        proxyPort: capture.address.port,
        host: u.host,
        path: u.path,
        headers: u.headers,
        body: u.body,
        ca: [capture.ca.certPem],
      });
      if (r.status !== 200) failed++;
      out(`  sent ${u.file.padEnd(28)} → ${r.status}  ${u.what}`);
    }
    // A pinned client (DiagTrack trusts only Microsoft's root): refuses the leaf with unknown_ca.
    await rejectLeafWithAlert(capture.address.port, PINNED_HOST);
    out(`  pinned client imitated for ${PINNED_HOST} (refuses exhaust's certificate)`);
  } finally {
    await capture.close({ decodeBacklog: (db, s) => decodePendingWithProgress(db, { sessionIds: [s.id] }, { busySessions: new Set() }) });
  }
  if (failed > 0) throw exhaustError("EXH_DEMO_FAILED", { reason: `${failed} of ${corpus.length} uploads were not answered 200` });
  // The verdict and the report, as `exhaust verify` and `exhaust report` would write them.
  const { openDatabase } = await import("../store/database.js");
  const db = openDatabase(dbFile, { mustExist: true });
  const verdictFiles = { text: join(dir, `verdict-${PROFILE}.txt`), json: join(dir, `verdict-${PROFILE}.json`) };
  const reportFile = join(dir, "report.html");
  let status: string;
  let failing: string[];
  try {
    const catalog = EndpointCatalog.load();
    const session = sessionByName(db, SESSION);
    if (!session) throw exhaustError("EXH_DB_SESSION_UNKNOWN", { session: SESSION, file: dbFile });
    const report = verifySession(db, loadProfile(PROFILE, catalog), session, { catalog });
    saveVerdict(db, report);
    writeFileSync(verdictFiles.text, formatVerdict(report, "text"));
    writeFileSync(verdictFiles.json, formatVerdict(report, "json"));
    writePrivateFile(reportFile, [renderReport(db, session.id)], true);
    status = report.status;
    failing = report.rules.filter((r) => r.status === "fail").map((r) => r.id);
  } finally {
    db.close();
  }
  const q = (p: string) => (/^[\w./-]+$/.test(p) ? p : `'${p.replace(/'/g, "'\\''")}'`);
  out("");
  out(`verdict ${PROFILE}: ${status.toUpperCase()}${failing.length ? ` (failed: ${failing.join(", ")})` : ""}`);
  out("  as it should: the corpus plants content, identifiers, Required events and a pinned client.");
  out("");
  out(`  database  ${dbFile}`);
  out(`  CA        ${join(certsDir, CA_CERT_FILE)}`);
  out(`  verdict   ${verdictFiles.text}`);
  out(`            ${verdictFiles.json}`);
  out(`  report    ${reportFile}`);
  out("");
  out("next:");
  const next: Array<[string, string]> = [
    [`exhaust events --db ${q(dbFile)}`, "the decoded events"],
    [`exhaust verify --db ${q(dbFile)} --profile no-content`, "one profile's rules and evidence"],
    [`exhaust ui --db ${q(dbFile)}`, "browse it in the web UI (Fields: which carried content)"],
    [`exhaust demo --write corpus/`, "the same uploads as files, with curl lines"],
  ];
  const width = Math.max(...next.map(([c]) => c.length));
  for (const [c, what] of next) out(`  ${c.padEnd(width)}  ${what}`);
  return 0;
}
