/**
 * @vscode/extension-telemetry (the telemetry module of VS Code extensions) in a child process with
 * its 1DS backend, through exhaust in sinkhole mode. The package needs the `vscode` module, which only
 * VS Code's extension host provides: test/helpers/vscode-host.cjs stands in for that host (the API the
 * package reads, the common properties the host's telemetry logger mixes in, and the host's proxy
 * support routing the extension's https through exhaust). The loopback guard refuses and records
 * anything that would leave loopback.
 *
 * Checked: the upload to mobile.events.data.microsoft.com is answered `{"acc":1}`, the SDK sends it
 * once (no retry) and logs nothing; the event is stored and decoded with VS Code's common
 * properties, and those get the rules of classifiers/fields/sdk-common.yaml.
 */
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runGuarded } from "./helpers/guarded-child.js";
import { eventually, startTestProxy, type TestProxy } from "./helpers/proxy.js";

const VSCODE_HOST = fileURLToPath(new URL("./helpers/vscode-host.cjs", import.meta.url));
// A 1DS ingestion key (74 characters): the package picks its 1DS backend for keys of this shape.
const KEY = "0123456789abcdef0123456789abcdef-01234567-89ab-cdef-0123-456789abcdef-0123";
const COLLECTOR = "mobile.events.data.microsoft.com";
const MACHINE_ID = "3b2f1a9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a";
const SESSION_ID = "7e1c2d3f-4a5b-4c6d-8e9f-0a1b2c3d4e5f1764758400000";
const SQM_ID = "{5C1D2E3F-4A5B-4C6D-8E9F-0A1B2C3D4E5F}";
const DEV_DEVICE_ID = "9f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a";

const SDK_SCRIPT = `
const { TelemetryReporter } = require("@vscode/extension-telemetry");
const https = require("node:https");
const say = (line) => process.stdout.write(line + "\\n");
// Every answer the package's transport receives (status and body), as its oncomplete sees it.
const request = https.request;
https.request = function (...args) {
  const req = request.apply(this, args);
  req.on("response", (res) => { let body = ""; res.on("data", (d) => (body += d)); res.on("end", () => say("ANSWER " + res.statusCode + " " + body)); });
  req.on("error", (e) => say("TRANSPORT-ERROR " + e.message));
  return req;
};
const reporter = new TelemetryReporter("${KEY}");
reporter.sendTelemetryEvent("exhaust.probe", { planted: "Zephyr-4471" }, { count: 3 });
setTimeout(() => {
  reporter.dispose().then(() => { say("DONE"); setTimeout(() => process.exit(0), 200); }, (e) => { say("FAILED " + e); process.exit(1); });
}, 3000);
`;

describe("@vscode/extension-telemetry (1DS) through the proxy (sinkhole), loopback only", () => {
  let p: TestProxy;
  beforeAll(async () => {
    p = await startTestProxy({ mode: "sinkhole" });
  });
  afterAll(() => p?.close());

  it("gets {acc:1}, sends once, logs nothing, and VS Code's common properties are stored and classified", async () => {
    const r = await runGuarded(
      SDK_SCRIPT,
      {
        VSCODE_HOST_PROXY: `http://127.0.0.1:${p.port}`,
        NODE_EXTRA_CA_CERTS: join(p.dir, "certs", "exhaust-ca.pem"),
        VSCODE_HOST_MACHINE_ID: MACHINE_ID,
        VSCODE_HOST_SESSION_ID: SESSION_ID,
        VSCODE_HOST_SQM_ID: SQM_ID,
        VSCODE_HOST_DEV_DEVICE_ID: DEV_DEVICE_ID,
      },
      { extraRequire: [VSCODE_HOST] },
    );
    expect(r.refused, "connections or lookups beyond loopback").toEqual([]);
    expect(r.code, r.stderr + r.stdout).toBe(0);
    expect(r.stderr).toBe("");
    const answers = r.stdout.split("\n").filter((l) => l.startsWith("ANSWER ") || l.startsWith("TRANSPORT-ERROR"));
    expect(answers).toEqual(['ANSWER 200 {"acc":1}']);

    const x = await eventually(
      () =>
        p.db.prepare("SELECT id, path, method, response_status FROM exchanges WHERE host = ?").get(COLLECTOR) as
          { id: string; path: string; method: string; response_status: number } | undefined,
    );
    expect(x).toMatchObject({ method: "POST", response_status: 200 });
    expect(x.path.startsWith("/OneCollector/1.0")).toBe(true);
    const fields = await eventually(() => {
      const rows = p.db
        .prepare(
          "SELECT e.name, f.path, f.value, f.personal, f.rule FROM events e JOIN fields f ON f.event_id = e.id WHERE e.exchange_id = ?",
        )
        .all(x.id) as Array<{ name: string; path: string; value: string; personal: string; rule: string }>;
      return rows.length ? rows : undefined;
    }, 20_000);
    expect(fields[0].name).toBe("exhaust-lab.probe/exhaust.probe");
    const byValue = (v: string) => fields.find((f) => f.value === v);
    expect(byValue("Zephyr-4471")?.path).toMatch(/planted$/);
    const expected: Array<[string, string, string]> = [
      [MACHINE_ID, "common.vscodemachineid", "field.vscode.machine-id"],
      [SESSION_ID, "common.vscodesessionid", "field.vscode.session-id"],
      [SQM_ID, "common.sqmid", "field.vscode.sqm-id"],
      [DEV_DEVICE_ID, "common.devDeviceId", "field.vscode.dev-device-id"],
    ];
    for (const [value, name, rule] of expected) {
      const f = byValue(value);
      expect(f, `${name}: ${value} stored`).toBeDefined();
      expect({ path: f!.path, rule: f!.rule, personal: f!.personal }).toEqual({
        path: `data.baseData.properties.${name}`,
        rule,
        personal: "pseudonymous-id",
      });
    }
    // No retry: one upload.
    const n = p.db.prepare("SELECT COUNT(*) AS n FROM exchanges WHERE host = ? AND method = 'POST'").get(COLLECTOR) as { n: number };
    expect(n.n).toBe(1);
  }, 90_000);
});
