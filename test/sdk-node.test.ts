/**
 * Microsoft's Application Insights SDK for Node.js (applicationinsights 2.x) in a child process,
 * configured to use exhaust as its proxy (it sends `POST https://…/v2/track` in absolute form to
 * the proxy): in sinkhole mode the SDK gets the answer it reads (`itemsReceived`), logs no warning,
 * and its envelope is stored and decoded. The child runs under the loopback guard
 * (test/helpers/loopback-guard.cjs): nothing it tries beyond loopback goes unnoticed.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runGuarded } from "./helpers/guarded-child.js";
import { decodedFieldWithValue, eventually, startTestProxy, type TestProxy } from "./helpers/proxy.js";

const IKEY = "0fdcec70-0ce5-4085-89d9-9ae8ead9af66";

const SDK_SCRIPT = `
const appInsights = require("applicationinsights");
appInsights
  .setup("InstrumentationKey=${IKEY};IngestionEndpoint=https://dc.services.visualstudio.com/")
  .setAutoCollectRequests(false).setAutoCollectPerformance(false, false).setAutoCollectExceptions(false)
  .setAutoCollectDependencies(false).setAutoCollectConsole(false).setAutoCollectHeartbeat(false)
  .setAutoDependencyCorrelation(false).setUseDiskRetryCaching(false).setSendLiveMetrics(false)
  .setInternalLogging(false, true)
  .start();
const client = appInsights.defaultClient;
client.config.proxyHttpsUrl = process.env.EXHAUST_PROXY;
client.trackEvent({ name: "exhaust-node-sdk", properties: { planted: "Zephyr-4471" } });
client.flush({ callback: (response) => { process.stdout.write("RESPONSE " + response + "\\n"); process.exit(0); } });
`;

describe("Application Insights Node.js SDK 2.x through the proxy (sinkhole)", () => {
  let p: TestProxy;
  beforeAll(async () => {
    p = await startTestProxy({ mode: "sinkhole" });
  });
  afterAll(() => p?.close());

  it("gets itemsReceived for its envelope, warns about nothing, and the envelope is stored and decoded", async () => {
    const r = await runGuarded(SDK_SCRIPT, { EXHAUST_PROXY: `http://127.0.0.1:${p.port}` });
    expect(r.refused, "connections or lookups beyond loopback").toEqual([]);
    expect(r.code, r.stderr).toBe(0);
    const answer = /RESPONSE (.*)/.exec(r.stdout)?.[1];
    expect(JSON.parse(answer ?? "null")).toEqual({ itemsReceived: 1, itemsAccepted: 1, errors: [] });
    expect(r.stderr).toBe("");
    const x = await eventually(
      () =>
        p.db.prepare("SELECT id, host, path, method, response_status FROM exchanges WHERE host = 'dc.services.visualstudio.com'").get() as
          { id: string; path: string; method: string; response_status: number } | undefined,
    );
    expect(x).toMatchObject({ method: "POST", path: "/v2.1/track", response_status: 200 });
    const field = await decodedFieldWithValue(p.db, x.id, "Zephyr-4471");
    expect(field.path).toBe("data.baseData.properties.planted");
    const n = p.db.prepare("SELECT COUNT(*) AS n FROM exchanges WHERE host = 'dc.services.visualstudio.com'").get() as { n: number };
    expect(n.n).toBe(1);
  }, 60_000);
});
