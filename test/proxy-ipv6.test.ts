/**
 * Request targets naming a bracketed IPv6 address (loopback ::1 only): the absolute-form URL and
 * the Host header are split into host and port correctly, stored so, and relayed there.
 */
import http from "node:http";
import net, { type AddressInfo } from "node:net";
import tls from "node:tls";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LeafIssuer } from "../src/ca/leaf.js";
import { connectTunnel } from "./helpers/client.js";
import { plainProxyRequest } from "./helpers/plain.js";
import { eventually, makeOriginAuthority, startTestProxy, type TestProxy } from "./helpers/proxy.js";

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
  /**
   * An HTTPS origin on [::1] presenting a leaf for the address whatever the client names (a client
   * sends no SNI for an IP, and a server's default certificate must be given as PEM).
   */
  let tlsOrigin: net.Server;
  let tlsPort: number;
  beforeAll(async () => {
    const ca = await makeOriginAuthority();
    const context = (await LeafIssuer.create(ca)).secureContextFor("::1");
    const inner = http.createServer((req, res) => {
      req.resume();
      req.on("end", () => res.end(`v6 TLS origin saw Host ${req.headers.host}\n`));
    });
    tlsOrigin = net.createServer((socket) => {
      const secure = new tls.TLSSocket(socket, { isServer: true, secureContext: context });
      secure.on("error", () => secure.destroy());
      secure.on("secure", () => inner.emit("connection", secure));
    });
    await new Promise<void>((r) => tlsOrigin.listen(0, "::1", r));
    tlsPort = (tlsOrigin.address() as AddressInfo).port;
    p = await startTestProxy({ allowPrivate: true, intercept: "all", originCaPem: ca.certPem });
  });
  afterAll(async () => {
    await p?.close();
    tlsOrigin?.close();
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
          { host: string; port: number; path: string; outcome: string } | undefined,
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

  it("CONNECT [::1]:PORT, intercepted: a Host header naming the same bracketed address is no mismatch", async () => {
    const authority = `[::1]:${tlsPort}`;
    const raw = await connectTunnel(p.port, authority);
    const socket = tls.connect({ socket: raw, ca: [p.caPem], host: "::1" });
    await new Promise<void>((resolve, reject) => {
      socket.once("secureConnect", resolve);
      socket.once("error", reject);
    });
    const res = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = http.request({ createConnection: () => socket, method: "POST", path: "/v6/tunnel", headers: { host: authority } });
      req.on("response", (r) => {
        let body = "";
        r.setEncoding("utf8");
        r.on("data", (c: string) => (body += c));
        r.on("end", () => resolve({ status: r.statusCode ?? 0, body }));
      });
      req.on("error", reject);
      req.end("{}");
    });
    socket.destroy();
    expect(res).toEqual({ status: 200, body: `v6 TLS origin saw Host ${authority}\n` });
    const row = await eventually(
      () =>
        p.db.prepare("SELECT host, port, scheme, error_code FROM exchanges WHERE path = '/v6/tunnel'").get() as
          { host: string; port: number; scheme: string; error_code: string | null } | undefined,
    );
    expect(row).toEqual({ host: "::1", port: tlsPort, scheme: "https", error_code: null });
  });

  it("an upstream on [::1] that refuses: 502 naming it [::1]:PORT", async () => {
    const closed = net.createServer();
    await new Promise<void>((r) => closed.listen(0, "::1", r));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((r) => closed.close(() => r()));
    const authority = `[::1]:${port}`;
    const res = await viaProxy(`http://${authority}/v6/refused`, authority);
    expect(res.status).toBe(502);
    expect(res.body).toContain(`upstream ${authority} `);
  });

  it("a Host header that is not an authority is refused with 400, and the proxy keeps serving", async () => {
    const res = await viaProxy("/v6/bad-host", `[::1]:${origin.port}:9`);
    expect(res.status).toBe(400);
    const again = await viaProxy("/v6/after-bad-host", `[::1]:${origin.port}`);
    expect(again.status).toBe(200);
  });
});

describe.skipIf(noV6 !== undefined)(`IPv6 request targets without --allow-private${noV6 ? ` (skipped: ${noV6})` : ""}`, () => {
  const origin = v6 as Exclude<typeof v6, string>;
  let p: TestProxy;
  beforeAll(async () => {
    p = await startTestProxy({ intercept: "all" });
  });
  afterAll(async () => {
    await p?.close();
  });

  // An origin-form request names its target in the Host header only: the target policy must read
  // it as the engine does, or a loopback/private address is dialled without the check.
  it.each([
    ["Host: [::1] (no port)", "/v6/refused-bare", () => "[::1]"],
    ["Host: [::1]:PORT", "/v6/refused-port", () => `[::1]:${origin.port}`],
    ["absolute-form http://[::1]:PORT/", "", () => `[::1]:${origin.port}`],
  ])("%s is refused 403 and nothing reaches the origin", async (_title, path, host) => {
    const seen = origin.paths.length;
    const target = path || `http://${host()}/v6/refused-absolute`;
    const res = await plainProxyRequest(p.port, target, host());
    expect(res.status).toBe(403);
    expect(origin.paths.length).toBe(seen);
  });

  it("Host: 2130706433 (a number a URL parser reads as 127.0.0.1) is refused 403", async () => {
    const res = await plainProxyRequest(p.port, "/v4/refused-number", `2130706433:${origin.port}`);
    expect(res.status).toBe(403);
  });
});
