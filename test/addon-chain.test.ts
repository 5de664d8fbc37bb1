import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Writable } from "node:stream";
import { Command } from "commander";
import { connectTunnel, httpsThroughProxy } from "./helpers/client.js";
import { startOrigin, type Origin } from "./helpers/origin.js";
import { eventually, makeOriginAuthority, startTestProxy, type TestProxy } from "./helpers/proxy.js";
import type { CertificateAuthority } from "../src/ca/authority.js";
import { exhaustError } from "../src/errors.js";
import { createLogger } from "../src/log.js";
import { parseProxyFlags, registerProxyCommand } from "../src/cli/proxy.js";
import { AddonChain, type Addon } from "../src/proxy/addons/addon.js";
import { ADDON_MODULES } from "../src/proxy/addons/registry.js";

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

describe("addons declare their own options", () => {
  it("exhaust proxy registers every registry addon's flags, with their help text and defaults", () => {
    const program = new Command();
    registerProxyCommand(program);
    const proxy = program.commands.find((c) => c.name() === "proxy")!;
    const registered = new Map(proxy.options.map((o) => [o.flags, o]));
    const declared = ADDON_MODULES.flatMap((m) => m.options);
    expect(declared.map((o) => o.flags)).toEqual(
      expect.arrayContaining(["--auth <user:pass>", "--allow <cidr>", "--intercept <what>", "--map-host <host=ip:port>", "--mode <mode>"]),
    );
    for (const spec of declared) {
      const o = registered.get(spec.flags);
      expect(o, spec.flags).toBeDefined();
      expect(o!.description).toBe(spec.description);
      // What the command holds before parsing: the default (--no-X: true).
      expect(proxy.getOptionValue(o!.attributeName())).toEqual(spec.repeatable ? [] : (spec.default ?? (o!.negate ? true : undefined)));
    }
    // No flag is declared twice (by two addons, or by an addon and the core).
    expect(new Set(proxy.options.map((o) => o.flags)).size).toBe(proxy.options.length);
  });

  it("parseProxyFlags gives an addon's flags their defaults when not given, and parses them when given", () => {
    const core = { listen: "127.0.0.1:0", db: "x.db", certs: "certs", maxBody: "1000", upstreamTimeout: "1000", upstreamCa: [] };
    const defaults = parseProxyFlags(core);
    expect(defaults).toMatchObject({
      mode: "forward",
      hostModes: [],
      intercept: "catalog",
      allow: [],
      pinExpiryMs: 600_000,
      pinBypass: true,
    });
    expect(defaults.mapHosts).toEqual(new Map());
    const given = parseProxyFlags({
      ...core,
      mode: "sinkhole",
      hostMode: ["*.example.org=block"],
      intercept: "all",
      mapHost: ["A.example.org=127.0.0.1:9"],
      pinExpiry: "5000",
      pinBypass: false,
    });
    expect(given).toMatchObject({
      mode: "sinkhole",
      hostModes: [{ pattern: "*.example.org", mode: "block" }],
      intercept: "all",
      pinExpiryMs: 5000,
      pinBypass: false,
    });
    expect(given.mapHosts.get("a.example.org")).toEqual({ host: "127.0.0.1", port: 9 });
    expect(() => parseProxyFlags({ ...core, intercept: "some" })).toThrow(/--intercept/);
    expect(() => parseProxyFlags({ ...core, pinExpiry: "0" })).toThrow(/--pin-expiry/);
  });

  it("each addon describes its own options in the session record, credentials left out", async () => {
    const p = await startTestProxy({
      mode: "sinkhole",
      hostMode: ["*.example.org=block"],
      mapHost: ["A.example.org=127.0.0.1:9"],
      pinBypass: false,
      auth: "lab:secret-pass",
    });
    try {
      const stored = JSON.parse(p.db.prepare("SELECT options_json FROM sessions").pluck().get() as string) as Record<string, unknown>;
      expect(stored).toMatchObject({
        mode: "sinkhole",
        hostModes: [{ pattern: "*.example.org", mode: "block" }],
        intercept: "catalog",
        mapHosts: { "a.example.org": "127.0.0.1:9" },
        auth: "required",
        allow: [],
        pinExpiryMs: 600_000,
        pinBypass: false,
      });
      expect(JSON.stringify(stored)).not.toContain("secret-pass");
    } finally {
      await p.close();
    }
  });
});
