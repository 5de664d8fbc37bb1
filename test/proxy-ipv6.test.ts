/**
 * Request targets naming a bracketed IPv6 address (loopback ::1 only): the absolute-form URL and
 * the Host header are split into host and port correctly, stored so, and relayed there.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { plainProxyRequest } from "./helpers/plain.js";
import { eventually, startTestProxy, type TestProxy } from "./helpers/proxy.js";

/** A plain HTTP origin on [::1], or the reason there is none on this machine. */
async function startV6Origin(): Promise<{ server: http.Server; port: number; paths: string[] } | string> {
  const paths: string[] = [];
  const server = http.createServer((req, res) => {
    paths.push(req.url ?? "");
    req.resume();
    req.on("end", () => res.end(`v6 origin saw Host ${req.headers.host}\n`));
  });
  try {
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(0, "::1", () => resolve());
    });
  } catch (e) {
    return `no IPv6 loopback (::1) on this machine: ${(e as Error).message}`;
  }
  return { server, port: (server.address() as AddressInfo).port, paths };
}

const v6 = await startV6Origin();
const noV6 = typeof v6 === "string" ? v6 : undefined;

describe.skipIf(noV6 !== undefined)(`IPv6 request targets${noV6 ? ` (skipped: ${noV6})` : ""}`, () => {
  const origin = v6 as Exclude<typeof v6, string>;
  let p: TestProxy;
  beforeAll(async () => {
    p = await startTestProxy({ allowPrivate: true, intercept: "all" });
  });
  afterAll(async () => {
    await p?.close();
    await new Promise<void>((r) => {
      origin.server.closeAllConnections();
      origin.server.close(() => r());
    });
  });

  const viaProxy = (path: string, host: string) => plainProxyRequest(p.port, path, host);

  function stored(path: string): Promise<{ host: string; port: number; path: string; outcome: string }> {
    return eventually(
      () =>
        p.db.prepare("SELECT host, port, path, outcome FROM exchanges WHERE path = ?").get(path) as
          | { host: string; port: number; path: string; outcome: string }
          | undefined,
    );
  }

  it("an absolute-form http://[::1]:PORT/ URL goes to ::1 on that port and is stored as host ::1", async () => {
    const authority = `[::1]:${origin.port}`;
    const res = await viaProxy(`http://${authority}/v6/absolute?q=1`, authority);
    expect(res.status).toBe(200);
    expect(origin.paths).toContain("/v6/absolute?q=1");
    expect(await stored("/v6/absolute?q=1")).toEqual({ host: "::1", port: origin.port, path: "/v6/absolute?q=1", outcome: "ok" });
  });

  it("an origin-form request with Host: [::1]:PORT goes there and is stored as host ::1", async () => {
    const res = await viaProxy("/v6/host-header", `[::1]:${origin.port}`);
    expect(res.status).toBe(200);
    expect(res.body).toBe(`v6 origin saw Host [::1]:${origin.port}\n`);
    expect(await stored("/v6/host-header")).toEqual({ host: "::1", port: origin.port, path: "/v6/host-header", outcome: "ok" });
  });

  it("a Host header that is not an authority is refused with 400, and the proxy keeps serving", async () => {
    const res = await viaProxy("/v6/bad-host", `[::1]:${origin.port}:9`);
    expect(res.status).toBe(400);
    const again = await viaProxy("/v6/after-bad-host", `[::1]:${origin.port}`);
    expect(again.status).toBe(200);
  });
});
