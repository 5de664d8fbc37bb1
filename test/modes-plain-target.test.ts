/**
 * A plain proxy request's target is checked (private space refused, names resolved) only when it
 * will be relayed: the server asks the addons for the host's mode, the same answer the exchange
 * then gets from them (one place: the modes addon, and any addon that sets a mode).
 */
import { afterEach, describe, expect, it } from "vitest";
import type { Addon } from "../src/proxy/addons/addon.js";
import { plainProxyRequest } from "./helpers/plain.js";
import { eventually, startTestProxy, type TestProxy } from "./helpers/proxy.js";

const plainRequest = (port: number, url: string) => plainProxyRequest(port, url, new URL(url).host, '{"name":"plain"}\n');

describe("the mode a plain request's target check acts on is the addons'", () => {
  let p: TestProxy | undefined;
  afterEach(async () => {
    await p?.close();
    p = undefined;
  });

  it("--host-mode sinkhole for a loopback target: answered locally, nothing relayed, nothing refused", async () => {
    p = await startTestProxy({ hostMode: ["127.0.0.1=sinkhole"], intercept: "all" });
    const res = await plainRequest(p.port, "http://127.0.0.1:9/v1/upload");
    expect(res.status).toBe(200);
    const row = await eventually(
      () => p!.db.prepare("SELECT outcome FROM exchanges WHERE path = '/v1/upload'").get() as { outcome: string },
    );
    expect(row.outcome).toBe("sinkholed");
  });

  it("without it, the same loopback target is refused as private space (the check runs for a relay)", async () => {
    p = await startTestProxy({ intercept: "all" });
    const res = await plainRequest(p.port, "http://127.0.0.1:9/v1/upload");
    expect(res.status).toBe(403);
  });

  it("an addon of the operator's that sinkholes a host is heard before the target check", async () => {
    const lab: Addon = {
      name: "lab-sinkhole",
      modeOf: (host) => (host === "127.0.0.1" ? "sinkhole" : undefined),
      onRequestHeaders(x) {
        if (x.host === "127.0.0.1") x.mode = "sinkhole";
      },
    };
    p = await startTestProxy({ intercept: "all", addons: [lab] });
    const res = await plainRequest(p.port, "http://127.0.0.1:9/v1/lab");
    expect(res.status).toBe(200);
    const row = await eventually(() => p!.db.prepare("SELECT outcome FROM exchanges WHERE path = '/v1/lab'").get() as { outcome: string });
    expect(row.outcome).toBe("sinkholed");
  });
});
