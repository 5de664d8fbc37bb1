import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Writable } from "node:stream";
import { connectTunnel, httpsThroughProxy } from "./helpers/client.js";
import { startOrigin, type Origin } from "./helpers/origin.js";
import { eventually, makeOriginAuthority, startTestProxy, type TestProxy } from "./helpers/proxy.js";
import type { CertificateAuthority } from "../src/ca/authority.js";
import { exhaustError } from "../src/errors.js";
import { createLogger } from "../src/log.js";
import { AddonChain, type Addon } from "../src/proxy/addons/addon.js";

const HOST = "www.example.org";

/** The pino lines of one addon's failures, parsed. */
function failuresOf(lines: string[], addon: string): Array<{ code: string; addon: string; hook: string; exchange?: string }> {
  return lines
    .flatMap((l) => l.split("\n"))
    .filter((l) => l.startsWith("{"))
    .map((l) => JSON.parse(l) as { code?: string; addon?: string; hook: string; exchange?: string })
    .filter((r): r is { code: string; addon: string; hook: string; exchange?: string } => r.addon === addon && r.code !== undefined);
}

describe("the addon chain's promises", () => {
  let originCa: CertificateAuthority;
  let origin: Origin;
  let p: TestProxy;
  const seen: string[] = [];
  /** Throws in every hook it has, a plain error in some, a coded one in another. */
  const throwing: Addon = {
    name: "throwing",
    onConnectionOpened() {
      throw new Error("boom on open");
    },
    onResponse() {
      throw new Error("boom on response");
    },
    onExchangeEnd() {
      throw exhaustError("EXH_BODY_STALLED", { side: "request", ms: 1 });
    },
  };
  /** Runs after the throwing addon: it still sees every exchange. */
  const witness: Addon = {
    name: "witness",
    onExchangeEnd(x) {
      seen.push(x.id);
    },
  };

  beforeAll(async () => {
    originCa = await makeOriginAuthority();
    origin = await startOrigin(originCa);
    p = await startTestProxy({
      intercept: "all",
      mapHost: [`${HOST}=127.0.0.1:${origin.port}`],
      originCaPem: originCa.certPem,
      addons: [throwing, witness],
    });
  });
  afterAll(async () => {
    await p?.close();
    await origin?.close();
  });

  it("isolates an addon that throws: the proxy keeps serving, stores, and logs the failure with its code", async () => {
    for (let i = 0; i < 3; i++) {
      const res = await httpsThroughProxy({ proxyPort: p.port, host: HOST, path: `/n${i}`, method: "GET", ca: [p.caPem] });
      expect(res.status).toBe(200);
    }
    expect(origin.received.map((r) => r.url)).toEqual(["/n0", "/n1", "/n2"]);
    // Stored by the capture addon before the throwing one ran, and every later addon still ran.
    const stored = await eventually(() => {
      const rows = p.db.prepare("SELECT id, upstream FROM exchanges WHERE host = ? ORDER BY seq").all(HOST) as Array<{
        id: string;
        upstream: string;
      }>;
      return rows.length === 3 && seen.length === 3 && rows;
    });
    expect(new Set(seen)).toEqual(new Set(stored.map((r) => r.id)));
    // The host-map addon's upstream (a host/port pair) is what the exchange records.
    expect(stored.map((r) => r.upstream)).toEqual(Array(3).fill(`127.0.0.1:${origin.port}`));

    const failures = await eventually(() => {
      const f = failuresOf(p.logLines, "throwing");
      return f.some((r) => r.hook === "onExchangeEnd") && f;
    });
    // A plain error is logged as EXH_ADDON_FAILED; an error with a stable code keeps it.
    expect(failures.find((f) => f.hook === "onResponse")).toMatchObject({ code: "EXH_ADDON_FAILED", exchange: stored[0].id });
    expect(failures.find((f) => f.hook === "onExchangeEnd")).toMatchObject({ code: "EXH_BODY_STALLED" });
    expect(failures.find((f) => f.hook === "onConnectionOpened")).toMatchObject({ code: "EXH_ADDON_FAILED" });
    // A burst of the same failure is logged once, not once per request.
    expect(failures.filter((f) => f.hook === "onResponse")).toHaveLength(1);
    expect(failuresOf(p.logLines, "witness")).toEqual([]);
  });
});

describe("addon names", () => {
  const log = createLogger({ level: "silent", destination: new Writable({ write: (_c, _e, cb) => cb() }) });

  it("refuses two addons with one name", () => {
    expect(() => new AddonChain([{ name: "a" }, { name: "b" }, { name: "a" }], log)).toThrow(/duplicate addon name a/);
    expect(() => new AddonChain([{ name: "a" }, { name: "b" }], log)).not.toThrow();
  });

  it("refuses an extra addon named like one of the default chain when the proxy starts", async () => {
    await expect(startTestProxy({ addons: [{ name: "capture" }] })).rejects.toThrow(/duplicate addon name capture/);
  });
});

describe("an access addon that throws", () => {
  let p: TestProxy;
  beforeAll(async () => {
    p = await startTestProxy({
      addons: [
        {
          name: "broken-gate",
          admit() {
            throw new Error("gate broke");
          },
        },
      ],
    });
  });
  afterAll(async () => {
    await p?.close();
  });

  it("refuses the client (fail closed) and logs the failure", async () => {
    await expect(connectTunnel(p.port, `${HOST}:443`)).rejects.toMatchObject({ status: 403 });
    await expect(connectTunnel(p.port, `${HOST}:443`)).rejects.toMatchObject({ status: 403 });
    expect(failuresOf(p.logLines, "broken-gate")).toMatchObject([{ code: "EXH_ADDON_FAILED", hook: "admit" }]);
  });
});
