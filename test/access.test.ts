import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { statSync } from "node:fs";
import { join } from "node:path";
import { connectTunnel, httpsThroughProxy } from "./helpers/client.js";
import { runCli } from "./helpers/cli.js";
import { startOrigin, type Origin } from "./helpers/origin.js";
import { eventually, makeOriginAuthority, startTestProxy, tempDir, type TestProxy } from "./helpers/proxy.js";
import type { CertificateAuthority } from "../src/ca/authority.js";

const HOST = "mobile.events.data.microsoft.com";

describe("listening beyond loopback", () => {
  it("is refused without --auth or --allow (exit 2, one line naming the problem)", () => {
    const dir = tempDir();
    const r = runCli(["proxy", "--listen", "0.0.0.0:0", "--db", join(dir, "x.db"), "--certs", join(dir, "certs"), "--init-ca"]);
    expect(r.status).toBe(2);
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
    expect(r.stderr).toMatch(/refusing to listen on non-loopback address 0\.0\.0\.0:0 without --auth/);
  });

  it("rejects bad option values with exit 2", () => {
    const r = runCli(["proxy", "--mode", "teleport"]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/invalid option --mode: mode must be forward, sinkhole or block/);
  });
});

describe("proxy authentication", () => {
  let p: TestProxy;
  beforeAll(async () => {
    p = await startTestProxy({ auth: "lab:s3cret", mode: "sinkhole" });
  });
  afterAll(() => p.close());

  it("answers 407 to a CONNECT without valid Proxy-Authorization", async () => {
    await expect(connectTunnel(p.port, `${HOST}:443`)).rejects.toMatchObject({ status: 407 });
    const wrong = `Basic ${Buffer.from("lab:nope").toString("base64")}`;
    await expect(connectTunnel(p.port, `${HOST}:443`, wrong)).rejects.toMatchObject({ status: 407 });
    const denied = await eventually(() => {
      const rows = p.db.prepare("SELECT outcome, host FROM connections WHERE outcome = 'denied' AND ended_at IS NOT NULL").all();
      return rows.length === 2 ? rows : undefined;
    });
    expect(denied).toEqual([
      { outcome: "denied", host: HOST },
      { outcome: "denied", host: HOST },
    ]);
  });

  it("lets a CONNECT with the right credentials through", async () => {
    const good = `Basic ${Buffer.from("lab:s3cret").toString("base64")}`;
    const socket = await connectTunnel(p.port, `${HOST}:443`, good);
    socket.destroy();
  });
});

describe("secrets", () => {
  let p: TestProxy;
  let originCa: CertificateAuthority;
  let origin: Origin;
  beforeAll(async () => {
    originCa = await makeOriginAuthority();
    origin = await startOrigin(originCa);
    p = await startTestProxy({ mapHost: [`${HOST}=127.0.0.1:${origin.port}`], originCaPem: originCa.certPem });
  });
  afterAll(async () => {
    await p.close();
    await origin.close();
  });

  it("keeps the CA key file at mode 0600", () => {
    expect(statSync(join(p.dir, "certs", "exhaust-ca.key")).mode & 0o777).toBe(0o600);
  });

  it("never writes Tickets, Authorization or Aad- values to the log", async () => {
    const secrets = {
      Tickets: '"1"="p:TICKETVALUE-7f3a"',
      Authorization: "Bearer AUTHVALUE-91bc",
      "Aad-Token": "AADVALUE-55d0",
      AuthMsaDeviceTicket: "MSAVALUE-0c1d",
      Cookie: "MSFPC=COOKIEVALUE-77aa",
    };
    const res = await httpsThroughProxy({
      proxyPort: p.port,
      host: HOST,
      path: "/OneCollector/1.0/?cors=true&AuthXToken=QUERYTOKEN-1234",
      headers: { ...secrets, "content-type": "application/x-json-stream" },
      body: '{"name":"x"}\n',
      ca: [p.caPem],
    });
    expect(res.status).toBe(200);
    // The values did reach the origin (the proxy is transparent) ...
    const received = origin.received.at(-1)!.rawHeaders.join("\n");
    expect(received).toContain("TICKETVALUE-7f3a");
    // ... and the log saw the exchange, but none of the values.
    await new Promise((r) => setTimeout(r, 100));
    const log = p.logLines.join("");
    expect(log).toContain('"path":"/OneCollector/1.0/"');
    for (const value of ["TICKETVALUE", "AUTHVALUE", "AADVALUE", "MSAVALUE", "COOKIEVALUE", "QUERYTOKEN"]) {
      expect(log).not.toContain(value);
    }
  });
});
