/**
 * `npm run bench`: throughput and latency of 20 KB uploads over 8 keep-alive connections, direct
 * to a local HTTPS origin versus through a relay of Node's HTTP alone (node-relay.ts), through
 * exhaust (sinkhole, and forward with capture on) and, when installed, mitmproxy's mitmdump; then
 * first-contact latency for 200 new hosts. Everything runs on 127.0.0.1 in one go, so the ratios
 * compare like with like on this machine. JSON on stdout, progress on stderr.
 *
 * Then decode throughput (events/s) and a mutation run over every decoder.
 *
 * Options: --duration MS (measured time per scenario, default 8000), --hosts N (first contact, 200),
 * --only proxy,first-contact,decode,fuzz,classify,pipeline,queries,verify,parquet (default: all),
 * --fuzz-runs N (default 100,000 per decoder), --ca-key ecdsa|rsa (the proxy's CA, default ecdsa as
 * `exhaust ca init` makes it; rsa for comparing with CAs made before), --background-nice N (passed to
 * every proxy the bench starts; default: the proxy's own).
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { readFileSync, writeFileSync, existsSync, mkdtempSync, rmSync } from "node:fs";
import http from "node:http";
import net from "node:net";
import { tmpdir, cpus } from "node:os";
import { join } from "node:path";
import tls from "node:tls";
import { DEFAULT_CA_KEY_TYPE, initAuthority, parseCaKeyType } from "../src/ca/authority.js";
import { EndpointCatalog } from "../src/catalog/endpoints.js";
import { openDatabase } from "../src/store/database.js";
import { undecodedCount } from "../src/store/completeness.js";
import { PACKAGE_ROOT } from "../src/paths.js";
import { connectTunnel, tlsThroughProxy } from "../test/helpers/client.js";
import { cpuTicks, threadsOf, type ThreadInfo } from "../test/helpers/proc.js";
import { freePort, spawnProxy, waitExit, type ProxyProcess } from "../test/helpers/cli.js";
import { measureClassifyThroughput } from "./classify.js";
import { decodeThroughput, fuzzDecoders } from "./decode.js";
import { pipelineStages, pipelineThroughput } from "./pipeline.js";
import { importThroughput } from "./import.js";
import { verifyThroughput } from "./verify.js";
import { queryLatency } from "./queries.js";
import { captureCommitCost } from "./capture-commit.js";
import { parquetBench } from "./parquet.js";
import { ROWS_PER_TRANSACTION_BESIDE_PROXY } from "../src/store/event-store.js";
import { round, runLoad, summarise, telemetryUploadBody, type CpuTarget, type LoadResult } from "./load.js";
import { lastLoopProbeReport } from "./loop-probe.js";

const HOST = "mobile.events.data.microsoft.com";
const arg = (name: string, fallback: number) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
};
const durationMs = arg("--duration", 8000);
const caKeyArg = process.argv.indexOf("--ca-key");
const caKey = parseCaKeyType(caKeyArg > 0 ? process.argv[caKeyArg + 1] : DEFAULT_CA_KEY_TYPE);
const newHosts = arg("--hosts", 200);
// The nice value of the proxies' background threads, when the run compares one (issue 19: 10 against 19).
const niceArg = process.argv.indexOf("--background-nice");
const niceArgs = niceArg > 0 ? ["--background-nice", process.argv[niceArg + 1]] : [];
const say = (msg: string) => process.stderr.write(`bench: ${msg}\n`);
const onlyArg = process.argv.indexOf("--only");
const only = new Set(
  onlyArg > 0
    ? process.argv[onlyArg + 1].split(",")
    : ["proxy", "first-contact", "capture", "decode", "fuzz", "classify", "pipeline", "queries", "verify", "parquet"],
);

// CPU-only sections first, on a quiet machine.
const decode = only.has("decode") ? (say("decode throughput, 100 events x 40 fields"), decodeThroughput()) : undefined;
const classify = only.has("classify")
  ? (say("classify throughput, ~40-field events"),
    { realistic: measureClassifyThroughput("realistic", 3), unique: measureClassifyThroughput("unique", 3), targetFieldsPerSec: 400_000 })
  : undefined;
const pipeline = only.has("pipeline")
  ? (say("decode + classify + store, end to end"),
    {
      alone: await pipelineThroughput(),
      besideProxy: await pipelineThroughput(300, 100, ROWS_PER_TRANSACTION_BESIDE_PROXY),
      stages: await pipelineStages(),
    })
  : undefined;
// The capture commit's cost on the thread that hands it over: in-process store against the writer thread.
const capture = only.has("capture") ? await captureCommitCost(say) : undefined;
const queries = only.has("queries") ? (say("query latency over 1,000,000 events"), await queryLatency(say)) : undefined;
// Parquet export of the queries database (1 M events x 40 fields) and a study over 100 machines x 100,000 events.
const parquet = only.has("parquet") ? (say("parquet export and fleet study"), await parquetBench(say)) : undefined;
const verify = only.has("verify") ? (say("verification of a 100,000-event session"), await verifyThroughput(say)) : undefined;
// Not in the default set: it writes and imports a 1 GB HAR. `--only import`, size by --import-mb or EXHAUST_BENCH_IMPORT_MB.
const importHar = only.has("import")
  ? await importThroughput(arg("--import-mb", Number(process.env.EXHAUST_BENCH_IMPORT_MB ?? 1024)), say)
  : undefined;
const fuzz = only.has("fuzz") ? (say("mutation run over every decoder"), fuzzDecoders(arg("--fuzz-runs", 100_000))) : undefined;

const dir = mkdtempSync(join(tmpdir(), "exhaust-bench-"));
const originCa = await initAuthority(join(dir, "origin-ca"), { permittedDomains: [], unconstrained: true });
writeFileSync(join(dir, "origin-ca.pem"), originCa.certPem);
// The proxies' CA, of the key type asked for (what `exhaust proxy --init-ca` would make, constrained to the catalogue).
await initAuthority(join(dir, "certs"), { permittedDomains: EndpointCatalog.load().constraintDomains(), keyType: caKey });
// Whatever happens, no origin, relay, proxy or mitmdump outlives the benchmark.
const children: ChildProcess[] = [];
process.on("exit", () => {
  children.forEach((c) => c.exitCode === null && c.kill("SIGKILL"));
  rmSync(dir, { recursive: true, force: true });
});

/** One of the bench's own servers (dist/bench/SCRIPT), a process of its own: it prints its port on stdout. */
async function startBenchServer(script: string, args: string[]): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn(process.execPath, [join(PACKAGE_ROOT, "dist", "bench", script), ...args], { stdio: ["ignore", "pipe", "inherit"] });
  children.push(child);
  const port = await new Promise<number>((resolve) => child.stdout.once("data", (d: Buffer) => resolve(Number(String(d).trim()))));
  return { child, port };
}

const { child: originProc, port: originPort } = await startBenchServer("origin-server.js", [join(dir, "origin-ca")]);

// A 20 KB 1DS JSON-lines upload.
const body = telemetryUploadBody();

// CPU time per request from /proc (steadier than req/s on a shared machine): the origin's whole
// process and, through exhaust, its event-loop thread and its whole process.
const load = (openSocket: () => Promise<tls.TLSSocket>, cpu: CpuTarget[] = []) =>
  runLoad({
    connections: 8,
    durationMs,
    warmupMs: 1000,
    openSocket,
    host: HOST,
    path: "/OneCollector/1.0/",
    body,
    cpu: [{ name: "origin", pid: originProc.pid! }, ...cpu],
  });

interface ProxyRun {
  load: LoadResult;
  proxy: {
    peakRssMb?: number;
    eventLoopBlockedMs?: { p50: number; p99: number; max: number };
    storedExchanges?: number;
    /** The nice values of the background threads, read from /proc (null: not found). */
    backgroundNice?: { decode: number | null; checkpoint: number | null };
    decodeLag?: DecodeLag;
  };
}

/** How far decoding was behind when the load ended, and how long it took to catch up with the proxy idle. */
interface DecodeLag {
  exchangesAtLoadEnd: number;
  undecodedAtLoadEnd: number;
  /** From the load's end until no exchange is undecoded; null when it did not within the limit. */
  catchUpMs: number | null;
  undecodedAfterWait: number;
  /** Exchanges decoded per second while catching up (the decoding thread alone, no traffic). */
  catchUpExchangesPerSec: number | null;
}

/** Time the bench waits for the decoding thread to catch up after a load. */
const CATCH_UP_LIMIT_MS = 180_000;

/** A thread of `pid` by its name (what the background threads name themselves on Linux). */
async function threadNamed(pid: number, comm: string, waitMs = 5000): Promise<ThreadInfo | undefined> {
  const until = Date.now() + waitMs;
  for (;;) {
    let found: ThreadInfo | undefined;
    try {
      found = threadsOf(pid).find((t) => t.comm === comm);
    } catch {
      return undefined;
    }
    if (found) return found;
    if (Date.now() > until) return undefined;
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function decodeCatchUp(dbFile: string): Promise<DecodeLag> {
  const started = Date.now();
  const store = openDatabase(dbFile, { readonly: true });
  try {
    const exchangesAtLoadEnd = store.prepare("SELECT COUNT(*) FROM exchanges").pluck().get() as number;
    const undecodedAtLoadEnd = undecodedCount(store);
    let left = undecodedAtLoadEnd;
    while (left > 0 && Date.now() - started < CATCH_UP_LIMIT_MS) {
      await new Promise((r) => setTimeout(r, 50));
      left = undecodedCount(store);
    }
    const ms = Date.now() - started;
    return {
      exchangesAtLoadEnd,
      undecodedAtLoadEnd,
      catchUpMs: left === 0 ? ms : null,
      undecodedAfterWait: left,
      catchUpExchangesPerSec: left === 0 && ms > 0 ? round(((undecodedAtLoadEnd - left) * 1000) / ms) : null,
    };
  } finally {
    store.close();
  }
}

async function stopProxy(p: ProxyProcess): Promise<ProxyRun["proxy"]> {
  p.child.kill("SIGTERM");
  await waitExit(p.child);
  const stopped = p
    .stderr()
    .split("\n")
    .reverse()
    .find((l) => l.includes('"msg":"stopped"'));
  return stopped ? (({ peakRssMb, eventLoopBlockedMs }) => ({ peakRssMb, eventLoopBlockedMs }))(JSON.parse(stopped)) : {};
}

async function exhaustScenario(name: string, extra: string[], measureDecodeLag = false): Promise<ProxyRun> {
  say(`${name}: ${durationMs} ms through exhaust`);
  const db = join(dir, `${name}.db`);
  const p = await spawnProxy(["--db", db, "--certs", join(dir, "certs"), "--session", name, ...niceArgs, ...extra]);
  children.push(p.child);
  const ca = readFileSync(join(dir, "certs", "exhaust-ca.pem"), "utf8");
  const pid = p.child.pid!;
  // The decoding thread's own CPU (Linux, where it names itself): how much it got beside the loop.
  const decodeThread = await threadNamed(pid, "exhaust-decode");
  const checkpointThread = await threadNamed(pid, "exhaust-ckpt", 0);
  const captureThread = await threadNamed(pid, "exhaust-capture", 0);
  const result = await load(
    () => tlsThroughProxy(p.port, HOST, 443, [ca]),
    [
      { name: "proxyLoop", pid, mainThreadOnly: true },
      { name: "proxyProcess", pid },
      ...(decodeThread ? [{ name: "decodeThread", pid, tid: decodeThread.tid }] : []),
      ...(captureThread ? [{ name: "captureThread", pid, tid: captureThread.tid }] : []),
    ],
  );
  let decodeLag: DecodeLag | undefined;
  if (measureDecodeLag) {
    say(`${name}: waiting for the decoding thread to catch up (at most ${CATCH_UP_LIMIT_MS / 1000} s)`);
    decodeLag = await decodeCatchUp(db);
  }
  const proxy = await stopProxy(p);
  proxy.backgroundNice = { decode: decodeThread?.nice ?? null, checkpoint: checkpointThread?.nice ?? null };
  if (decodeLag) proxy.decodeLag = decodeLag;
  const store = openDatabase(db, { readonly: true });
  proxy.storedExchanges = (store.prepare("SELECT COUNT(*) AS n FROM exchanges").get() as { n: number }).n;
  store.close();
  return { load: result, proxy };
}

/**
 * The same load through a relay of Node's HTTP server and client and nothing else (node-relay.ts):
 * the part of the proxy's loop that is Node's, measured in the same run.
 */
async function nodeRelayScenario(): Promise<LoadResult> {
  say(`node relay: ${durationMs} ms through http.Server + https.request alone`);
  const { child, port } = await startBenchServer("node-relay.js", [join(dir, "origin-ca"), String(originPort)]);
  const result = await load(
    () => tlsThroughProxy(port, HOST, 443, [originCa.certPem]),
    [{ name: "nodeRelayLoop", pid: child.pid!, mainThreadOnly: true }],
  );
  child.kill("SIGTERM");
  await waitExit(child);
  return result;
}

async function mitmdumpScenario(): Promise<{ load: LoadResult; version: string } | { skipped: string }> {
  const which = spawnSync("mitmdump", ["--version"], { encoding: "utf8" });
  if (which.status !== 0) return { skipped: "mitmdump is not installed (Debian: apt-get install mitmproxy)" };
  const version = which.stdout.split("\n")[0];
  say(`mitmdump: ${durationMs} ms (${version}), writing flows like exhaust stores them`);
  const confdir = join(dir, "mitm");
  const port = await freePort();
  const child: ChildProcess = spawn(
    "mitmdump",
    [
      "-q",
      "--listen-host",
      "127.0.0.1",
      "--listen-port",
      String(port),
      "--set",
      `confdir=${confdir}`,
      "--ssl-insecure",
      "-w",
      join(dir, "flows.mitm"),
    ],
    { stdio: "ignore" },
  );
  children.push(child);
  const caFile = join(confdir, "mitmproxy-ca-cert.pem");
  for (let i = 0; i < 200 && !(existsSync(caFile) && (await canConnect(port))); i++) await new Promise((r) => setTimeout(r, 100));
  const ca = readFileSync(caFile, "utf8");
  // mitmdump resolves the CONNECT target itself: name the origin by address, the collector by SNI.
  const result = await load(async () => {
    const raw = await connectTunnel(port, `127.0.0.1:${originPort}`);
    return new Promise<tls.TLSSocket>((resolve, reject) => {
      const s = tls.connect({ socket: raw, servername: HOST, ca: [ca] }, () => resolve(s));
      s.once("error", reject);
    });
  }, [{ name: "mitmdumpProcess", pid: child.pid! }]);
  child.kill("SIGTERM");
  await waitExit(child);
  return { load: result, version };
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, "127.0.0.1");
    s.once("connect", () => (s.destroy(), resolve(true)));
    s.once("error", () => resolve(false));
  });
}

/** Handshake times (ms) and the loop's CPU of one first-contact run, against exhaust or the Node floor. */
interface ContactPhases {
  first: number[];
  again: number[];
  busy: number[];
  busyCached: number[];
  /** The proxy's main-thread CPU ticks over the idle new-host pass and the known-host pass. */
  newHostTicks: number;
  knownHostTicks: number;
  uploads: LoadResult;
}

/**
 * The first-contact sequence against a proxy at `port` (pid `pid`) whose CA is `caFile`: `newHosts`
 * new hosts, the same hosts again, then new hosts while 8 connections upload through it, each paired
 * with a known host under the same load. `atBusyEdge` is called as the loaded pass starts and as it ends.
 */
async function contactPhases(port: number, pid: number, caFile: string, atBusyEdge: () => void): Promise<ContactPhases> {
  const ca = readFileSync(caFile, "utf8");
  // CONNECT + TLS handshake time; then one upload on the connection, as a real client would
  // (a client that hangs up right after the handshake looks like a pin check to the proxy).
  const handshake = async (host: string) => {
    const t0 = process.hrtime.bigint();
    const s = await tlsThroughProxy(port, host, 443, [ca]);
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    await new Promise<void>((resolve, reject) => {
      // The Host a client sends inside a tunnel to :443: Node's http.request, given only a socket,
      // would write `host:80`, which exhaust records as a Host that differs from the CONNECT target.
      const req = http.request(
        { createConnection: () => s, host, headers: { host }, method: "POST", path: "/OneCollector/1.0/" },
        (res) => {
          res.resume();
          res.on("end", () => resolve());
        },
      );
      req.on("error", reject);
      req.end("{}\n");
    });
    s.destroy();
    return ms;
  };
  const first: number[] = [];
  const again: number[] = [];
  const busy: number[] = [];
  const busyCached: number[] = [];
  const stamp = Date.now().toString(36);
  const hosts = Array.from({ length: newHosts }, (_, i) => `fc${i}-${stamp}.events.data.microsoft.com`);
  // The proxy's event-loop CPU over each pass (from /proc: steady on a shared machine).
  const loopTicks = () => cpuTicks(pid, pid);
  const t0 = loopTicks();
  for (const h of hosts) first.push(await handshake(h));
  const t1 = loopTicks();
  for (const h of hosts) again.push(await handshake(h));
  const t2 = loopTicks();
  // The same count of new hosts while 8 keep-alive connections upload 20 KB bodies through the
  // proxy. The uploads run in a child process, so this process's event loop only makes handshakes
  // and times the proxy, not its own queue. Each new host is paired with a handshake to a host the
  // proxy already knows, made under the same load: the difference is what a new host costs.
  const uploader = spawn(process.execPath, [join(PACKAGE_ROOT, "dist", "bench", "upload-child.js"), String(port), caFile, HOST, "8"], {
    stdio: ["pipe", "pipe", "inherit"],
  });
  children.push(uploader);
  let uploaderOut = "";
  uploader.stdout.on("data", (d: Buffer) => (uploaderOut += String(d)));
  await new Promise((r) => setTimeout(r, 1000));
  atBusyEdge();
  for (let i = 0; i < newHosts; i++) {
    busy.push(await handshake(`fcb${i}-${stamp}.events.data.microsoft.com`));
    busyCached.push(await handshake(hosts[i]));
  }
  atBusyEdge();
  uploader.stdin.end();
  await waitExit(uploader);
  const uploads = JSON.parse(uploaderOut) as LoadResult;
  return { first, again, busy, busyCached, newHostTicks: t1 - t0, knownHostTicks: t2 - t1, uploads };
}

/** Handshake figures of one run: idle new and known hosts, the loop's CPU per connection, and under load. */
function contactFigures(r: ContactPhases) {
  const perConnection = (ticks: number) => round((ticks * 10) / newHosts, 3);
  const a = summarise(r.first);
  const b = summarise(r.again);
  const busyNew = summarise(r.busy);
  const busyKnown = summarise(r.busyCached);
  return {
    newHostHandshakeMs: a,
    cachedHostHandshakeMs: b,
    addedByNewHostMs: { p50: round(a.p50 - b.p50), p99: round(a.p99 - b.p99) },
    // CPU ms of the proxy's event loop per connection (CONNECT, handshake, one upload), idle machine phases.
    proxyLoopCpuMsPerConnection: {
      newHost: perConnection(r.newHostTicks),
      knownHost: perConnection(r.knownHostTicks),
      addedByNewHost: perConnection(r.newHostTicks - r.knownHostTicks),
    },
    whileUploading: {
      newHostHandshakeMs: busyNew,
      cachedHostHandshakeMs: busyKnown,
      addedByNewHostMs: { p50: round(busyNew.p50 - busyKnown.p50), p99: round(busyNew.p99 - busyKnown.p99) },
      uploads: r.uploads.requests,
      uploadErrors: r.uploads.errors,
      uploadsInChildProcess: true,
    },
  };
}

async function firstContact() {
  say(`first contact: ${newHosts} new hosts, then the same hosts again, then ${newHosts} new hosts while 8 connections upload`);
  // The proxy runs with the loop probe (bench/loop-probe.ts) loaded: its event-loop delay while uploading.
  const savedEnv = { NODE_OPTIONS: process.env.NODE_OPTIONS, EXHAUST_LOOP_PROBE: process.env.EXHAUST_LOOP_PROBE };
  const probeModule = new URL("./loop-probe.js", import.meta.url).href;
  process.env.NODE_OPTIONS = `${savedEnv.NODE_OPTIONS ?? ""} --import ${probeModule}`.trim();
  process.env.EXHAUST_LOOP_PROBE = "1";
  const p = await spawnProxy([
    "--db",
    join(dir, "first.db"),
    "--certs",
    join(dir, "certs"),
    "--session",
    "first",
    "--mode",
    "sinkhole",
    ...niceArgs,
  ]);
  // An idle process beside it: its loop delay over the same phase is the machine's scheduling alone.
  const idle = spawn(process.execPath, [join(PACKAGE_ROOT, "dist", "bench", "loop-probe.js"), "idle"], {
    stdio: ["pipe", "ignore", "pipe"],
  });
  for (const [k, v] of Object.entries(savedEnv)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  children.push(p.child, idle);
  let idleErr = "";
  await new Promise<void>((resolve) =>
    idle.stderr.on("data", (d: Buffer) => {
      idleErr += String(d);
      if (idleErr.includes("loop-probe ready")) resolve();
    }),
  );
  const caFile = join(dir, "certs", "exhaust-ca.pem");
  const run = await contactPhases(p.port, p.child.pid!, caFile, () => {
    p.child.kill("SIGUSR2");
    idle.kill("SIGUSR2");
  });
  await new Promise((r) => setTimeout(r, 200));
  idle.stdin.end();
  await waitExit(idle);
  const proxyLoop = lastLoopProbeReport(p.stderr()) ?? null;
  const machineLoop = lastLoopProbeReport(idleErr) ?? null;
  const proxy = await stopProxy(p);
  const figures = contactFigures(run);

  // The floor: the same sequence against a CONNECT + TLS terminator on Node's http and tls alone
  // (node-relay.js answering itself, with exhaust's leaf issuer and CA), in the same run.
  say(`first contact: the same against Node's CONNECT and TLS alone`);
  const { child: floorProc, port: floorPort } = await startBenchServer("node-relay.js", [join(dir, "certs")]);
  const floorRun = await contactPhases(floorPort, floorProc.pid!, caFile, () => {});
  floorProc.kill("SIGTERM");
  await waitExit(floorProc);
  return {
    hosts: newHosts,
    ...figures,
    whileUploading: {
      ...figures.whileUploading,
      // Event-loop delay (beyond a 1 ms timer) over this phase: in the proxy, and in an idle process
      // beside it (the machine's scheduling alone); utilization is the proxy loop's busy fraction.
      proxyEventLoop: proxyLoop,
      idleProcessEventLoop: machineLoop,
    },
    nodeFloor: contactFigures(floorRun),
    caKeyType: caKey,
    proxy,
    targets: { addedP99Ms: 5, eventLoopMaxMs: 20 },
  };
}

const runProxy = only.has("proxy");
/** The load straight to the origin: the direct cost every ratio is taken against. */
function directScenario(when: string): Promise<LoadResult> {
  say(`direct${when}: ${durationMs} ms straight to the origin`);
  return load(
    () =>
      new Promise<tls.TLSSocket>((resolve, reject) => {
        const s = tls.connect({ host: "127.0.0.1", port: originPort, servername: HOST, ca: [originCa.certPem] }, () => resolve(s));
        s.once("error", reject);
      }),
  );
}
const direct = runProxy ? await directScenario("") : undefined;
const nodeRelay = runProxy ? await nodeRelayScenario() : undefined;
const sinkhole = runProxy ? await exhaustScenario("sinkhole", ["--mode", "sinkhole"]) : undefined;
const forward = runProxy
  ? await exhaustScenario("forward", ["--map-host", `${HOST}=127.0.0.1:${originPort}`, "--upstream-ca", join(dir, "origin-ca.pem")], true)
  : undefined;
const mitmdump = runProxy ? await mitmdumpScenario() : undefined;
// The same direct load again after the proxy scenarios: how far the machine moved the baseline
// during the run, which is the noise of every ratio against direct (those stay against the first).
const directAfter = runProxy ? await directScenario(", again after the proxy scenarios") : undefined;
const contact = only.has("first-contact") ? await firstContact() : undefined;

originProc.kill("SIGTERM");
await waitExit(originProc);
rmSync(dir, { recursive: true, force: true });

const vsDirect = (r: LoadResult) => ({
  throughputRatio: round(r.reqPerSec / direct!.reqPerSec),
  addedLatencyMs: { p50: round(r.latencyMs.p50 - direct!.latencyMs.p50), p99: round(r.latencyMs.p99 - direct!.latencyMs.p99) },
});
// The headline ratios in one place, every key always present (null with a reason when a part did
// not run), so that runs can be compared line by line.
const ratio = (a: number | null | undefined, b: number | null | undefined) => (a != null && b != null && b > 0 ? round(a / b) : null);
function otherThreadsCpu(cpu: Record<string, number | null> | undefined): number | null {
  const { proxyProcess, proxyLoop, captureThread, decodeThread } = cpu ?? {};
  if (proxyProcess == null || proxyLoop == null || captureThread == null || decodeThread == null) return null;
  return round(Math.max(0, proxyProcess - proxyLoop - captureThread - decodeThread), 4);
}
/** The direct cost of a run: the origin's CPU and the client's per request (undefined when not both were read). */
function directCpuOf(r: LoadResult | undefined): number | undefined {
  const cpu = r && (r.cpuMsPerRequest.origin ?? NaN) + (r.cpuMsPerRequest.client ?? NaN);
  return cpu !== undefined && Number.isFinite(cpu) ? cpu : undefined;
}
const directCpu = directCpuOf(direct);
const directAfterCpu = directCpuOf(directAfter);
const mitm = mitmdump && "load" in mitmdump ? mitmdump.load : undefined;
const summary = {
  cpuMsPerRequest: {
    direct: directCpu !== undefined ? round(directCpu, 4) : null,
    directAfter: directAfterCpu !== undefined ? round(directAfterCpu, 4) : null,
    proxyLoop: forward?.load.cpuMsPerRequest.proxyLoop ?? null,
    proxyProcess: forward?.load.cpuMsPerRequest.proxyProcess ?? null,
    sinkholeLoop: sinkhole?.load.cpuMsPerRequest.proxyLoop ?? null,
    nodeRelayLoop: nodeRelay?.cpuMsPerRequest.nodeRelayLoop ?? null,
    mitmdumpProcess: mitm?.cpuMsPerRequest.mitmdumpProcess ?? null,
  },
  loopCpuVsDirect: ratio(forward?.load.cpuMsPerRequest.proxyLoop, directCpu),
  // The direct cost measured again at the end over the first (1.1: the baseline rose 10 % during the run).
  directCpuAfterVsBefore: ratio(directAfterCpu, directCpu),
  directThroughputAfterVsBefore: ratio(directAfter?.reqPerSec, direct?.reqPerSec),
  // Pages the kernel mapped in afresh per request on each loop: memory given back and taken again.
  loopMinorFaultsPerRequest: {
    proxyLoop: forward?.load.minorFaultsPerRequest.proxyLoop ?? null,
    sinkholeLoop: sinkhole?.load.minorFaultsPerRequest.proxyLoop ?? null,
    nodeRelayLoop: nodeRelay?.minorFaultsPerRequest.nodeRelayLoop ?? null,
  },
  // What exhaust adds on its loop to Node's own HTTP relaying, and what Node's relaying costs against direct.
  loopCpuVsNodeRelay: ratio(forward?.load.cpuMsPerRequest.proxyLoop, nodeRelay?.cpuMsPerRequest.nodeRelayLoop),
  nodeRelayCpuVsDirect: ratio(nodeRelay?.cpuMsPerRequest.nodeRelayLoop, directCpu),
  processCpuVsDirect: ratio(forward?.load.cpuMsPerRequest.proxyProcess, directCpu),
  processCpuVsMitmdump: ratio(forward?.load.cpuMsPerRequest.proxyProcess, mitm?.cpuMsPerRequest.mitmdumpProcess),
  throughputVsDirect: ratio(forward?.load.reqPerSec, direct?.reqPerSec),
  // What a relay of Node's HTTP alone reaches on this machine: the ceiling goal 2 is held against.
  nodeRelayThroughputVsDirect: ratio(nodeRelay?.reqPerSec, direct?.reqPerSec),
  sinkholeThroughputVsDirect: ratio(sinkhole?.load.reqPerSec, direct?.reqPerSec),
  throughputVsMitmdump: ratio(forward?.load.reqPerSec, mitm?.reqPerSec),
  mitmdump: !runProxy ? "not run (--only without proxy)" : mitm ? "measured" : (mitmdump as { skipped: string }).skipped,
  firstContactMs: contact
    ? { p50: contact.newHostHandshakeMs.p50, p99: contact.newHostHandshakeMs.p99, addedP99: contact.addedByNewHostMs.p99 }
    : null,
  firstContactWhileUploading: contact?.whileUploading ?? null,
  // The same handshakes against Node's CONNECT and TLS alone, in the same run: what goal 3 is held against.
  nodeFloorFirstContactMs: contact
    ? {
        p50: contact.nodeFloor.newHostHandshakeMs.p50,
        p99: contact.nodeFloor.newHostHandshakeMs.p99,
        whileUploadingP50: contact.nodeFloor.whileUploading.newHostHandshakeMs.p50,
        whileUploadingP99: contact.nodeFloor.whileUploading.newHostHandshakeMs.p99,
        loopCpuMsPerConnection: contact.nodeFloor.proxyLoopCpuMsPerConnection.newHost,
      }
    : null,
  captureCommitLoopCpuMsPerExchange: capture?.loopCpuMsPerExchange ?? null,
  // The forward run's decoding: its thread's nice value and CPU per relayed request, the exchanges
  // left undecoded when the load ended, and the time to catch up once it had (issue 19, goal 2).
  backgroundNice: forward?.proxy.backgroundNice ?? null,
  decodeThreadCpuMsPerRequest: forward?.load.cpuMsPerRequest.decodeThread ?? null,
  // The forward run's capture writer thread (hashing, SQLite, the group commits) per relayed request,
  // and what the process spent outside the loop and its three named threads (V8's helpers, the
  // libuv pool, the checkpointer).
  captureThreadCpuMsPerRequest: forward?.load.cpuMsPerRequest.captureThread ?? null,
  otherThreadsCpuMsPerRequest: otherThreadsCpu(forward?.load.cpuMsPerRequest),
  decodeBacklogAtLoadEnd: forward?.proxy.decodeLag
    ? { exchanges: forward.proxy.decodeLag.exchangesAtLoadEnd, undecoded: forward.proxy.decodeLag.undecodedAtLoadEnd }
    : null,
  decodeCatchUpMs: forward?.proxy.decodeLag?.catchUpMs ?? null,
  pipelineEventsPerSec: pipeline ? ((pipeline.alone as { eventsPerSec?: number }).eventsPerSec ?? null) : null,
  pipelineEventsPerCpuSecond: pipeline ? ((pipeline.alone as { eventsPerCpuSecond?: number }).eventsPerCpuSecond ?? null) : null,
  // The store stage's CPU alone (pipeline.stages): goal 4's ceiling with this storage shape, on this machine.
  pipelineStoreOnlyEventsPerCpuSecond: pipeline
    ? ((pipeline.stages as { storeOnlyEventsPerCpuSecond?: number }).storeOnlyEventsPerCpuSecond ?? null)
    : null,
  importEventsPerSec: importHar ? ((importHar as { eventsPerSec?: number }).eventsPerSec ?? null) : null,
  importEventsPerCpuSecond: importHar ? ((importHar as { eventsPerCpuSecond?: number }).eventsPerCpuSecond ?? null) : null,
  importPeakRssMb: importHar ? ((importHar as { peakRssMb?: number }).peakRssMb ?? null) : null,
  targets: {
    loopCpuVsDirect: 2,
    throughputVsDirect: 0.5,
    throughputVsMitmdump: 3,
    firstContactP99Ms: 5,
    pipelineEventsPerSec: 40_000,
    importEventsPerSec: 20_000,
  },
};
const report = {
  tool: "exhaust",
  summary,
  node: process.version,
  cpus: cpus().length,
  proxy:
    direct && sinkhole && forward && mitmdump
      ? {
          workload: { bodyBytes: body.length, connections: 8, measuredMs: durationMs, warmupMs: 1000 },
          direct,
          directAfter,
          nodeRelay: nodeRelay && { load: nodeRelay, ...vsDirect(nodeRelay) },
          exhaust: {
            sinkhole: { ...sinkhole, ...vsDirect(sinkhole.load) },
            forward: { ...forward, ...vsDirect(forward.load) },
          },
          mitmdump:
            "load" in mitmdump
              ? {
                  ...mitmdump,
                  ...vsDirect(mitmdump.load),
                  exhaustForwardVsMitmdump: round(forward.load.reqPerSec / mitmdump.load.reqPerSec),
                }
              : mitmdump,
          targets: { throughputRatio: 0.5, addedLatencyP50Ms: 1, addedLatencyP99Ms: 5, vsMitmdump: 3 },
        }
      : undefined,
  firstContact: contact,
  captureCommit: capture,
  decode: decode && { ...decode, targetEventsPerSec: 100_000 },
  classify,
  pipeline,
  import: importHar,
  queries,
  verify,
  parquet,
  fuzz,
};
process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
