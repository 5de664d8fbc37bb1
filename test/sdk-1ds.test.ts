/**
 * Microsoft's own 1DS JavaScript SDK (@microsoft/1ds-core-js with the post channel, the telemetry
 * stack of Office for the web, Teams and VS Code extensions) run in this process, its uploads sent
 * through the real proxy in sinkhole mode: the SDK accepts the sinkhole's answer (no retry, no
 * error of its own) and the upload is stored and decoded field by field.
 */
import { createRequire } from "node:module";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { httpsThroughProxy } from "./helpers/client.js";
import { eventually, startTestProxy, type TestProxy } from "./helpers/proxy.js";

const require = createRequire(import.meta.url);

const { AppInsightsCore } = require("@microsoft/1ds-core-js") as typeof import("@microsoft/1ds-core-js");

const { PostChannel } = require("@microsoft/1ds-post-js") as typeof import("@microsoft/1ds-post-js");

const TOKEN = "0123456789abcdef0123456789abcdef-01234567-89ab-cdef-0123-456789abcdef-0123";
const COLLECTOR = "browser.events.data.microsoft.com";

interface SentPost {
  status: number;
  body: string;
}

describe("1DS JavaScript SDK through the proxy (sinkhole)", () => {
  let p: TestProxy;
  beforeAll(async () => {
    p = await startTestProxy({ mode: "sinkhole" });
  });
  afterAll(() => p?.close());

  it("gets an answer it accepts, and its event is stored with every field", async () => {
    const answers: SentPost[] = [];
    const sdkProblems: string[] = [];
    const core = new AppInsightsCore();
    const post = new PostChannel();
    core.initialize(
      {
        instrumentationKey: TOKEN,
        endpointUrl: `https://${COLLECTOR}/OneCollector/1.0/`,
        extensions: [post],
        loggingLevelConsole: 0,
        extensionConfig: {
          [post.identifier]: {
            // The SDK's own transport hook: its request (URL, headers, body) goes through exhaust as
            // an HTTPS client would send it, and exhaust's answer goes back to the SDK unchanged.
            httpXHROverride: {
              sendPOST: (
                payload: { urlString: string; headers: Record<string, string>; data: string | Uint8Array },
                oncomplete: (status: number, headers: Record<string, string>, response?: string) => void,
              ) => {
                const url = new URL(payload.urlString);
                httpsThroughProxy({
                  proxyPort: p.port,
                  host: url.hostname,
                  path: `${url.pathname}${url.search}`,
                  headers: payload.headers,
                  body: Buffer.from(payload.data),
                  ca: [p.caPem],
                }).then(
                  (res) => {
                    answers.push({ status: res.status, body: res.body.toString() });
                    oncomplete(res.status, res.headers as Record<string, string>, res.body.toString());
                  },
                  (e: Error) => {
                    sdkProblems.push(`transport: ${e.message}`);
                    oncomplete(0, {});
                  },
                );
              },
            },
          },
        },
      },
      [],
    );
    core.getNotifyMgr().addNotificationListener({
      eventsSendRequest: () => {},
      eventsDiscarded: (events: unknown[], reason: number) => sdkProblems.push(`discarded ${events.length} (reason ${reason})`),
      eventsRetrying: (events: unknown[]) => sdkProblems.push(`retrying ${events.length}`),
    } as never);
    core.track({ name: "Exhaust.Sdk.Test", baseData: {}, data: { planted: "Zephyr-4471", Count: 3 } });
    void post.flush(false);

    const stored = await eventually(
      () =>
        p.db.prepare("SELECT id, path, response_status FROM exchanges WHERE host = ? AND method = 'POST'").get(COLLECTOR) as
          { id: string; path: string; response_status: number } | undefined,
      20_000,
    );
    expect(stored.path.startsWith("/OneCollector/1.0/")).toBe(true);
    await eventually(() => answers.length > 0, 10_000);
    expect(answers[0].status).toBe(200);
    expect(JSON.parse(answers[0].body)).toEqual({ acc: 1 });
    const fields = await eventually(() => {
      const rows = p.db
        .prepare("SELECT e.name, f.path, f.value FROM events e JOIN fields f ON f.event_id = e.id WHERE e.exchange_id = ?")
        .all(stored.id) as Array<{ name: string; path: string; value: string }>;
      return rows.length ? rows : undefined;
    }, 20_000);
    expect(fields[0].name).toBe("Exhaust.Sdk.Test");
    expect(fields).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ path: "planted", value: "Zephyr-4471" }),
        expect.objectContaining({ path: "Count", value: "3" }),
      ]),
    );
    // The SDK is content with the answer: one upload, no retry, nothing discarded.
    await new Promise((r) => setTimeout(r, 1000));
    const posts = p.db.prepare("SELECT COUNT(*) AS n FROM exchanges WHERE host = ? AND method = 'POST'").get(COLLECTOR) as { n: number };
    expect(posts.n).toBe(1);
    expect(sdkProblems).toEqual([]);
    void core.unload(false);
  }, 60_000);
});
