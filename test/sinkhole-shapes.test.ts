/**
 * Sinkhole answers in the shape each endpoint's SDKs read (shapes live in classifiers/endpoints.yaml)
 * and CORS for browser SDKs: preflights answered, uploads readable by the page.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { httpsThroughProxy } from "./helpers/client.js";
import { eventually, startTestProxy, type TestProxy } from "./helpers/proxy.js";

describe("sinkhole answers per endpoint, CORS for browsers", () => {
  let p: TestProxy;
  beforeAll(async () => {
    p = await startTestProxy({ mode: "sinkhole" });
  });
  afterAll(() => p?.close());

  const send = (host: string, path: string, body: string | undefined, headers: Record<string, string> = {}, method = "POST") =>
    httpsThroughProxy({
      proxyPort: p.port,
      host,
      path,
      method,
      body,
      headers: { "Content-Type": "application/json", ...headers },
      ca: [p.caPem],
    });

  it("answers Application Insights track uploads with itemsReceived/itemsAccepted counting the envelopes", async () => {
    const envelope = (i: number) => ({
      name: "Microsoft.ApplicationInsights.Event",
      time: "2026-01-01T00:00:00Z",
      iKey: "k",
      data: { baseType: "EventData", baseData: { ver: 2, name: `e${i}` } },
    });
    const array = await send("dc.services.visualstudio.com", "/v2/track", JSON.stringify([envelope(1), envelope(2), envelope(3)]));
    expect(array.status).toBe(200);
    expect(JSON.parse(array.body.toString())).toEqual({ itemsReceived: 3, itemsAccepted: 3, errors: [] });
    const lines = await send(
      "westeurope-5.in.applicationinsights.azure.com",
      "/v2.1/track",
      [1, 2].map((i) => JSON.stringify(envelope(i))).join("\n"),
      { "Content-Type": "application/x-json-stream" },
    );
    expect(JSON.parse(lines.body.toString())).toEqual({ itemsReceived: 2, itemsAccepted: 2, errors: [] });
  });

  it("answers Live Metrics pings with x-ms-qps-subscribed: false, as the service does when nobody watches", async () => {
    const ping = await send(
      "rt.services.visualstudio.com",
      "/QuickPulseService.svc/ping?ikey=k",
      JSON.stringify({ Instance: "PC-1", MachineName: "PC-1" }),
    );
    expect(ping.status).toBe(200);
    expect(ping.headers["x-ms-qps-subscribed"]).toBe("false");
    expect(ping.body.length).toBe(0);
    const regional = await send("westeurope.livediagnostics.monitor.azure.com", "/QuickPulseService.svc/ping?ikey=k", "{}");
    expect(regional.headers["x-ms-qps-subscribed"]).toBe("false");
  });

  it("still answers 1DS collectors with {acc:N}", async () => {
    const res = await send(
      "browser.events.data.microsoft.com",
      "/OneCollector/1.0/",
      '{"name":"a","time":"2026-01-01T00:00:00Z","ver":"4.0","iKey":"o:t"}\n{"name":"b","time":"2026-01-01T00:00:00Z","ver":"4.0","iKey":"o:t"}',
      { "Content-Type": "application/x-json-stream" },
    );
    expect(JSON.parse(res.body.toString())).toEqual({ acc: 2 });
  });

  it("answers a browser's preflight (origin echoed, method and headers allowed, cacheable) and stores it", async () => {
    const pre = await send(
      "dc.services.visualstudio.com",
      "/v2/track",
      undefined,
      {
        Origin: "https://app.example.com",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type,sdk-context",
      },
      "OPTIONS",
    );
    expect(pre.status).toBe(200);
    expect(pre.headers["access-control-allow-origin"]).toBe("https://app.example.com");
    expect(pre.headers["access-control-allow-credentials"]).toBe("true");
    expect(pre.headers["access-control-allow-methods"]).toContain("POST");
    expect(pre.headers["access-control-allow-headers"]).toBe("content-type,sdk-context");
    expect(Number(pre.headers["access-control-max-age"])).toBeGreaterThan(0);
    const post = await send("dc.services.visualstudio.com", "/v2/track", "[]", { Origin: "https://app.example.com" });
    expect(post.headers["access-control-allow-origin"]).toBe("https://app.example.com");
    const rows = await eventually(() => {
      const r = p.db
        .prepare(
          "SELECT method FROM exchanges WHERE host = 'dc.services.visualstudio.com' AND request_headers LIKE '%app.example.com%' ORDER BY seq",
        )
        .all() as Array<{ method: string }>;
      return r.length >= 2 ? r : undefined;
    });
    expect(rows.map((r) => r.method)).toEqual(["OPTIONS", "POST"]);
  });

  it("gives no CORS headers to a request without Origin", async () => {
    const res = await send("dc.services.visualstudio.com", "/v2/track", "[]");
    expect(res.headers["access-control-allow-origin"]).toBeUndefined();
  });
});
