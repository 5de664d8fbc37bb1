import { afterAll, beforeAll, describe, expect, it } from "vitest";
import http from "node:http";
import net from "node:net";
import { httpsThroughProxy } from "./helpers/client.js";
import { startOrigin, type Origin } from "./helpers/origin.js";
import { makeOriginAuthority, startTestProxy, type TestProxy } from "./helpers/proxy.js";
import type { CertificateAuthority } from "../src/ca/authority.js";

/** A corporate proxy stand-in: accepts CONNECT, records the targets, relays bytes. */
async function startCorporateProxy(): Promise<{ port: number; targets: string[]; close(): Promise<void> }> {
  const targets: string[] = [];
  const server = http.createServer((_req, res) => res.writeHead(405).end());
  server.on("connect", (req: http.IncomingMessage, socket: net.Socket, head: Buffer) => {
    targets.push(req.url ?? "");
    const [host, port] = (req.url ?? "").split(":");
    const upstream = net.connect(Number(port), host, () => {
      socket.write("HTTP/1.1 200 Connection Established\r\n\r\n");
      if (head.length) upstream.write(head);
      socket.pipe(upstream).pipe(socket);
    });
    upstream.on("error", () => socket.destroy());
    socket.on("error", () => upstream.destroy());
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    port: (server.address() as net.AddressInfo).port,
    targets,
    close: () =>
      new Promise((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

describe("--upstream: chaining a corporate HTTP proxy", () => {
  let originCa: CertificateAuthority;
  let origin: Origin;
  let corporate: Awaited<ReturnType<typeof startCorporateProxy>>;
  let p: TestProxy;
  beforeAll(async () => {
    originCa = await makeOriginAuthority();
    origin = await startOrigin(originCa);
    corporate = await startCorporateProxy();
    p = await startTestProxy({
      upstream: `http://127.0.0.1:${corporate.port}`,
      mapHost: [`mobile.events.data.microsoft.com=127.0.0.1:${origin.port}`, `www.example.org=127.0.0.1:${origin.port}`],
      originCaPem: originCa.certPem,
    });
  });
  afterAll(async () => {
    await p.close();
    await corporate.close();
    await origin.close();
  });

  it("sends intercepted uploads upstream through the corporate proxy", async () => {
    const res = await httpsThroughProxy({
      proxyPort: p.port,
      host: "mobile.events.data.microsoft.com",
      path: "/OneCollector/1.0/",
      body: '{"name":"via.corporate"}\n',
      ca: [p.caPem],
    });
    expect(res.status).toBe(200);
    expect(origin.received.at(-1)?.body.toString()).toBe('{"name":"via.corporate"}\n');
    expect(corporate.targets).toContain(`127.0.0.1:${origin.port}`);
  });

  it("tunnels other hosts through the corporate proxy too", async () => {
    const before = corporate.targets.length;
    const res = await httpsThroughProxy({ proxyPort: p.port, host: "www.example.org", method: "GET", path: "/", ca: [originCa.certPem] });
    expect(res.status).toBe(200);
    expect(corporate.targets.length).toBe(before + 1);
  });
});
