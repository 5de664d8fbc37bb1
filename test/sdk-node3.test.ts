/**
 * Microsoft's Application Insights SDK for Node.js 3.x (applicationinsights 3.11.0, built on
 * @azure/monitor-opentelemetry 1.18) in a child process, sending through exhaust as its HTTPS proxy
 * (HTTPS_PROXY: a CONNECT tunnel, TLS with exhaust's CA): in sinkhole mode its exporter gets the
 * answer it reads (`itemsAccepted`), reports success, warns about nothing, and its envelope is
 * stored and decoded.
 *
 * Loopback only, proven: the child runs under the loopback guard (test/helpers/loopback-guard.cjs),
 * which refuses and records any connection or lookup that is not loopback; the test fails on any
 * record. Statsbeat, live metrics, standard metrics and performance counters are switched off with
 * the SDK's own settings. The Azure VM resource detector (IMDS, 169.254.169.254) has no switch in
 * @azure/monitor-opentelemetry 1.18 (its configuration runs it unconditionally), so the child
 * replaces that detector's detect() with an empty resource before the SDK starts.
 */
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runGuarded } from "./helpers/guarded-child.js";
import { decodedFieldWithValue, eventually, startTestProxy, type TestProxy } from "./helpers/proxy.js";

const IKEY = "5f2a9c1e-7b3d-4e8f-9a06-1c2d3e4f5a6b";
const INGESTION = "westeurope-5.in.applicationinsights.azure.com";

const SDK_SCRIPT = `
const { createRequire } = require("node:module");
const sdkRequire = createRequire(require.resolve("applicationinsights3"));
const distroRequire = createRequire(sdkRequire.resolve("@azure/monitor-opentelemetry"));
// No setting turns the Azure VM detector (IMDS) off in @azure/monitor-opentelemetry 1.18.
distroRequire("@opentelemetry/resource-detector-azure").azureVmDetector.detect = () => ({ attributes: {} });
const { diag, DiagLogLevel } = sdkRequire("@opentelemetry/api");
const { logs } = sdkRequire("@opentelemetry/api-logs");
const { AzureMonitorLogExporter } = distroRequire("@azure/monitor-opentelemetry-exporter");
const say = (line) => process.stdout.write(line + "\\n");
// What the exporter concluded about each export (0 = SUCCESS, 1 = FAILED).
const exportOriginal = AzureMonitorLogExporter.prototype.export;
AzureMonitorLogExporter.prototype.export = function (records, done) {
  return exportOriginal.call(this, records, (result) => { say("EXPORT " + result.code + " " + records.length + (result.error ? " " + result.error.message : "")); done(result); });
};
const { useAzureMonitor, flushAzureMonitor, shutdownAzureMonitor } = require("applicationinsights3");
useAzureMonitor({
  azureMonitorExporterOptions: {
    connectionString: "InstrumentationKey=${IKEY};IngestionEndpoint=https://${INGESTION}/;LiveEndpoint=https://westeurope.livediagnostics.monitor.azure.com/",
    disableOfflineStorage: true,
  },
  enableLiveMetrics: false,
  enableStandardMetrics: false,
  enablePerformanceCounters: false,
  enableAutoCollectExceptions: false,
  enableAutoCollectPerformance: false,
  instrumentationOptions: {
    http: { enabled: false }, azureSdk: { enabled: false }, mongoDb: { enabled: false }, mySql: { enabled: false },
    postgreSql: { enabled: false }, redis: { enabled: false }, redis4: { enabled: false },
    bunyan: { enabled: false }, winston: { enabled: false }, console: { enabled: false },
  },
});
// The SDK's own diagnostics: every warning and error it logs.
const diagLine = (level) => (...args) => say("DIAG " + level + " " + args.map(String).join(" "));
diag.setLogger({ error: diagLine("error"), warn: diagLine("warn"), info: diagLine("info"), debug: () => {}, verbose: () => {} }, DiagLogLevel.INFO);
logs.getLogger("exhaust-test").emit({
  body: "exhaust node sdk 3",
  attributes: { "microsoft.custom_event.name": "exhaust-node-sdk-3", planted: "Zephyr-4471" },
});
flushAzureMonitor()
  .then(() => shutdownAzureMonitor())
  .then(() => { say("DONE"); process.exit(0); }, (e) => { say("FAILED " + e.message); process.exit(1); });
`;

describe("Application Insights Node.js SDK 3.x through the proxy (sinkhole), loopback only", () => {
  let p: TestProxy;
  beforeAll(async () => {
    p = await startTestProxy({ mode: "sinkhole" });
  });
  afterAll(() => p?.close());

  it("the guard refuses and records what the SDK would otherwise do unasked: IMDS, a DNS lookup, a direct TLS connection", async () => {
    const r = await runGuarded(
      `const http = require("node:http");
       http.get({ host: "169.254.169.254", path: "/metadata/instance?api-version=2021-12-13", headers: { Metadata: "True" } }).on("error", () => {});
       require("node:dns").lookup("westeurope-5.in.applicationinsights.azure.com", () => {});
       require("node:tls").connect(443, "203.0.113.9").on("error", () => {});
       require("node:net").connect(9, "127.0.0.1").on("error", () => {});
       setTimeout(() => process.exit(0), 300);`,
      {},
    );
    expect(r.code, r.stderr).toBe(0);
    const targets = r.refused.map((l) => (JSON.parse(l) as { target: string }).target).sort();
    expect(targets).toEqual(["169.254.169.254:80", "203.0.113.9:443", "westeurope-5.in.applicationinsights.azure.com"]);
  });

  it("exports its event successfully, warns about nothing, contacts nothing beyond loopback, and the envelope is stored and decoded", async () => {
    const r = await runGuarded(SDK_SCRIPT, {
      HTTPS_PROXY: `http://127.0.0.1:${p.port}`,
      NODE_EXTRA_CA_CERTS: join(p.dir, "certs", "exhaust-ca.pem"),
      APPLICATIONINSIGHTS_STATSBEAT_DISABLED: "true",
      APPLICATION_INSIGHTS_NO_STATSBEAT: "true",
      OTEL_NODE_RESOURCE_DETECTORS: "none",
      OTEL_TRACES_EXPORTER: "none",
      OTEL_METRICS_EXPORTER: "none",
    });
    expect(r.refused, "connections or lookups beyond loopback").toEqual([]);
    expect(r.code, r.stderr + r.stdout).toBe(0);
    expect(r.stdout).toContain("DONE");
    const diagProblems = r.stdout.split("\n").filter((l) => /^DIAG (warn|error)/.test(l));
    expect(diagProblems).toEqual([]);
    const exports = r.stdout.split("\n").filter((l) => l.startsWith("EXPORT "));
    expect(exports).toEqual(["EXPORT 0 1"]);
    const x = await eventually(
      () =>
        p.db.prepare("SELECT id, host, path, method, response_status FROM exchanges WHERE host = ?").get(INGESTION) as
          { id: string; path: string; method: string; response_status: number } | undefined,
    );
    expect(x).toMatchObject({ method: "POST", path: "/v2.1/track", response_status: 200 });
    const field = await decodedFieldWithValue(p.db, x.id, "Zephyr-4471");
    expect(field.path).toBe("data.baseData.properties.planted");
    const name = p.db
      .prepare("SELECT f.value FROM events e JOIN fields f ON f.event_id = e.id WHERE e.exchange_id = ? AND f.path = 'data.baseData.name'")
      .get(x.id) as { value: string } | undefined;
    expect(name?.value).toBe("exhaust-node-sdk-3");
    // No retry: one upload.
    await new Promise((res) => setTimeout(res, 500));
    const n = p.db.prepare("SELECT COUNT(*) AS n FROM exchanges WHERE host = ?").get(INGESTION) as { n: number };
    expect(n.n).toBe(1);
  }, 90_000);
});
