/**
 * Containment (docs/containment.md): sinkhole and block relay nothing, the proxy is nobody's relay
 * into private space, no one connection can switch capture off, tunnels tell the truth, and every
 * resource is bounded. Real sockets throughout; origins count every connection and byte they get.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ChildProcess } from "node:child_process";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import http from "node:http";
import https from "node:https";
import net, { type AddressInfo } from "node:net";
import { join } from "node:path";
import tls from "node:tls";
import type { CertificateAuthority } from "../src/ca/authority.js";
import { LeafIssuer } from "../src/ca/leaf.js";
import { classifyAddress } from "../src/proxy/targets.js";
import { openDatabase } from "../src/store/database.js";
import { runCli, spawnProxy } from "./helpers/cli.js";
import { cpuTicks, memoryMb } from "./helpers/proc.js";
import { connectTunnel, hangUpAfterLeaf, httpsThroughProxy, rejectLeafWithAlert, tlsThroughProxy } from "./helpers/client.js";
import { startOrigin, type Origin } from "./helpers/origin.js";
import { eventually, makeOriginAuthority, startTestProxy, tempDir, type TestProxy } from "./helpers/proxy.js";
import { acceptKey, newKey, readResponseHead } from "./helpers/websocket.js";

const HOST = "browser.events.data.microsoft.com";

/** A loopback listener that must receive nothing: counts connections and bytes. */
interface Witness {
  port: number;
  connections: number;
  bytes: number;
  close(): Promise<void>;
}

async function startWitness(): Promise<Witness> {
  const sockets = new Set<net.Socket>();
  const w = {
    port: 0,
    connections: 0,
    bytes: 0,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
  const server = net.createServer((s) => {
    w.connections++;
    sockets.add(s);
    s.on("data", (d: Buffer) => (w.bytes += d.length));
    s.on("error", () => {});
    s.on("close", () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  w.port = (server.address() as AddressInfo).port;
  return w;
}

/** Sends raw bytes on a fresh CONNECT tunnel and returns everything the proxy answers until it closes. */
async function rawInsideConnect(port: number, authority: string, bytes: string | Buffer, localAddress?: string): Promise<string> {
  const socket = await connectTunnel(port, authority, undefined, localAddress);
  return new Promise((resolve) => {
    let text = "";
    socket.on("data", (d) => {
      text += d;
      // One whole response (head and Content-Length body) is all we wait for.
      const end = text.indexOf("\r\n\r\n");
      const length = /content-length: (\d+)/i.exec(text.slice(0, end));
      const whole = length ? text.length >= end + 4 + Number(length[1]) : text.endsWith("\r\n0\r\n\r\n");
      if (end >= 0 && whole) socket.end();
    });
    socket.on("close", () => resolve(text));
    socket.on("error", () => resolve(text));
    socket.write(bytes);
  });
}

const closedPort = async (): Promise<number> => {
  const probe = net.createServer();
  await new Promise<void>((r) => probe.listen(0, "127.0.0.1", r));
  const port = (probe.address() as AddressInfo).port;
  await new Promise((r) => probe.close(r));
  return port;
};

interface ConnRow {
  host: string;
  port: number;
  outcome: string;
  error: string | null;
  client_address: string;
}
const connRows = (p: TestProxy, where = "1=1", ...args: unknown[]) =>
  p.db
    .prepare(
      `SELECT host, port, outcome, error, client_address FROM connections WHERE ended_at IS NOT NULL AND ${where} ORDER BY started_at`,
    )
    .all(...args) as ConnRow[];

describe("sinkhole is airtight", () => {
  let p: TestProxy;
  let witness: Witness;
  beforeAll(async () => {
    witness = await startWitness();
    // The catalogue host is mapped to the witness: if anything were relayed, it would land there.
    p = await startTestProxy({ mode: "sinkhole", mapHost: [`${HOST}=127.0.0.1:${witness.port}`] });
  });
  afterAll(async () => {
    await p.close();
    await witness.close();
  });

  it("answers a TLS upload itself and stores it", async () => {
    const res = await httpsThroughProxy({
      proxyPort: p.port,
      host: HOST,
      path: "/OneCollector/1.0/",
      body: '{"name":"TLS-UPLOAD"}',
      ca: [p.caPem],
    });
    expect(res.status).toBe(200);
    await eventually(() => p.db.prepare("SELECT 1 FROM exchanges WHERE path = '/OneCollector/1.0/' AND outcome = 'sinkholed'").get());
  });

  it("parses plain HTTP inside a CONNECT, stores it and answers it, never tunnels it", async () => {
    const body = '{"name":"LEAKED-UPLOAD"}';
    const answer = await rawInsideConnect(
      p.port,
      `${HOST}:443`,
      `POST /plain HTTP/1.1\r\nHost: ${HOST}\r\nContent-Length: ${body.length}\r\n\r\n${body}`,
    );
    expect(answer).toMatch(/^HTTP\/1.1 200/);
    const row = await eventually(
      () =>
        p.db
          .prepare(
            "SELECT x.host, x.scheme, x.outcome, x.error_code, b.data FROM exchanges x JOIN blobs b ON b.sha256 = x.request_body_sha256 WHERE x.path = '/plain'",
          )
          .get() as { host: string; scheme: string; outcome: string; error_code: string | null; data: Buffer } | undefined,
    );
    expect(row).toMatchObject({ host: HOST, scheme: "http", outcome: "sinkholed", error_code: null });
    expect(row.data.toString()).toBe(body);
  });

  it("answers a WebSocket upgrade locally", async () => {
    const socket = await tlsThroughProxy(p.port, HOST, 443, [p.caPem]);
    socket.write(
      `GET /ws HTTP/1.1\r\nHost: ${HOST}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${newKey()}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
    );
    const head = await readResponseHead(socket);
    socket.destroy();
    expect(head.status).not.toBe(101);
  });

  it("follows the CONNECT target, not the Host header, and records the mismatch", async () => {
    const res = await httpsThroughProxy({
      proxyPort: p.port,
      host: HOST,
      path: "/hostile-host",
      headers: ["Host", `127.0.0.1:${witness.port}`, "Content-Type", "application/json"],
      body: '{"name":"X"}',
      ca: [p.caPem],
    });
    expect(res.status).toBe(200);
    const row = await eventually(
      () =>
        p.db.prepare("SELECT host, error_code FROM exchanges WHERE path = '/hostile-host'").get() as
          { host: string; error_code: string } | undefined,
    );
    expect(row).toEqual({ host: HOST, error_code: "EXH_HOST_MISMATCH" });
  });

  it("refuses bytes that are neither TLS nor HTTP and records them", async () => {
    await rawInsideConnect(p.port, `${HOST}:443`, Buffer.from([0x00, 0x01, 0x02, 0xff, 0x10]));
    const row = await eventually(() => connRows(p, "outcome = 'closed-by-policy' AND error LIKE 'neither TLS nor HTTP%'")[0]);
    expect(row.host).toBe(HOST);
  });

  it("refuses a pinned client's next CONNECT instead of tunnelling it", async () => {
    await rejectLeafWithAlert(p.port, HOST);
    await eventually(() => connRows(p, "outcome = 'client-rejected-certificate'")[0]);
    await expect(connectTunnel(p.port, `${HOST}:443`)).rejects.toMatchObject({ status: 503 });
    await eventually(() => connRows(p, "outcome = 'closed-by-policy' AND error LIKE 'pinned-earlier%'")[0]);
  });

  it("relayed not one byte to the catalogue host's upstream", () => {
    expect({ connections: witness.connections, bytes: witness.bytes }).toEqual({ connections: 0, bytes: 0 });
  });
});

describe("block is airtight", () => {
  it("answers TLS and plain HTTP inside a CONNECT with 503 and relays nothing", async () => {
    const witness = await startWitness();
    const p = await startTestProxy({ mode: "block", mapHost: [`${HOST}=127.0.0.1:${witness.port}`] });
    try {
      const res = await httpsThroughProxy({ proxyPort: p.port, host: HOST, path: "/blocked-tls", body: "{}", ca: [p.caPem] });
      expect(res.status).toBe(503);
      const answer = await rawInsideConnect(
        p.port,
        `${HOST}:443`,
        `POST /blocked-plain HTTP/1.1\r\nHost: ${HOST}\r\nContent-Length: 2\r\n\r\n{}`,
      );
      expect(answer).toMatch(/^HTTP\/1.1 503/);
      await eventually(
        () => (p.db.prepare("SELECT COUNT(*) AS n FROM exchanges WHERE outcome = 'blocked'").get() as { n: number }).n === 2,
      );
      expect({ connections: witness.connections, bytes: witness.bytes }).toEqual({ connections: 0, bytes: 0 });
    } finally {
      await p.close();
      await witness.close();
    }
  });
});

describe("forward mode: the CONNECT target decides the upstream", () => {
  let p: TestProxy;
  let originCa: CertificateAuthority;
  let origin: Origin;
  let witness: Witness;
  beforeAll(async () => {
    originCa = await makeOriginAuthority();
    origin = await startOrigin(originCa);
    witness = await startWitness();
    p = await startTestProxy({ mapHost: [`${HOST}=127.0.0.1:${origin.port}`], originCaPem: originCa.certPem });
  });
  afterAll(async () => {
    await p.close();
    await origin.close();
    await witness.close();
  });

  it("sends a request whose Host names a loopback port to the CONNECT target's upstream", async () => {
    const before = origin.received.length;
    const res = await httpsThroughProxy({
      proxyPort: p.port,
      host: HOST,
      path: "/steer",
      headers: ["Host", `127.0.0.1:${witness.port}`],
      body: "{}",
      ca: [p.caPem],
    });
    expect(res.status).toBe(200);
    expect(origin.received.slice(before).map((r) => r.url)).toEqual(["/steer"]);
    expect(witness.connections).toBe(0);
    const row = await eventually(
      () =>
        p.db.prepare("SELECT host, error_code FROM exchanges WHERE path = '/steer'").get() as
          { host: string; error_code: string } | undefined,
    );
    expect(row).toEqual({ host: HOST, error_code: "EXH_HOST_MISMATCH" });
  });

  it("forwards plain HTTP inside a CONNECT as a captured exchange to the CONNECT target", async () => {
    // The origin speaks TLS, so a plain request relayed there fails: what matters is that it was
    // parsed and stored (not tunnelled) and answered by exhaust.
    const answer = await rawInsideConnect(
      p.port,
      `${HOST}:443`,
      `GET /plain-forward HTTP/1.1\r\nHost: ${HOST}\r\nContent-Length: 0\r\n\r\n`,
    );
    expect(answer).toMatch(/^HTTP\/1.1 (502|504)/);
    const row = await eventually(() => p.db.prepare("SELECT host, scheme FROM exchanges WHERE path = '/plain-forward'").get());
    expect(row).toEqual({ host: HOST, scheme: "http" });
  });
});

describe("no relay to private space", () => {
  let p: TestProxy;
  let ui: Witness;
  let other: Witness;
  beforeAll(async () => {
    ui = await startWitness();
    other = await startWitness();
    p = await startTestProxy({ uiPort: [String(ui.port)] });
  });
  afterAll(async () => {
    await p.close();
    await ui.close();
    await other.close();
  });

  it("answers CONNECT to the UI's loopback port with 403 and a connection row", async () => {
    await expect(connectTunnel(p.port, `127.0.0.1:${ui.port}`)).rejects.toMatchObject({
      status: 403,
      headers: { "x-exhaust-error": "EXH_TARGET_REFUSED" },
    });
    const row = await eventually(() => connRows(p, "port = ?", ui.port)[0]);
    expect(row).toMatchObject({ host: "127.0.0.1", outcome: "refused-private" });
    expect(row.error).toMatch(/UI|loopback/);
  });

  it("answers an absolute-form request to loopback with 403 and a connection row", async () => {
    const res = await new Promise<http.IncomingMessage>((resolve, reject) => {
      const req = http.request({
        host: "127.0.0.1",
        port: p.port,
        path: `http://127.0.0.1:${ui.port}/api/sessions`,
        headers: { host: `127.0.0.1:${ui.port}` },
      });
      req.on("response", resolve);
      req.on("error", reject);
      req.end();
    });
    res.resume();
    expect(res.statusCode).toBe(403);
    expect(res.headers["x-exhaust-error"]).toBe("EXH_TARGET_REFUSED");
    await eventually(() => connRows(p, "port = ? AND outcome = 'refused-private'", ui.port).length >= 2);
  });

  it("refuses hostnames that resolve to loopback, and any loopback port", async () => {
    await expect(connectTunnel(p.port, `localhost:${other.port}`)).rejects.toMatchObject({ status: 403 });
    await expect(connectTunnel(p.port, `[::1]:${other.port}`)).rejects.toMatchObject({ status: 403 });
    await expect(connectTunnel(p.port, `127.0.0.1:${p.port}`)).rejects.toMatchObject({ status: 403 });
    expect(ui.connections + other.connections).toBe(0);
  });

  it("classifies link-local, unspecified, RFC 1918, CGNAT and ULA addresses as refused without --allow-private", () => {
    // Checked on the classifier alone: no test sends a packet outside loopback, not even a refused one.
    expect(["169.254.169.254", "0.0.0.0", "fe80::1", "::"].map(classifyAddress)).toEqual(Array(4).fill("link-local-or-unspecified"));
    expect(["10.1.2.3", "172.16.0.1", "192.168.1.1", "100.64.0.1", "fd00::1", "::ffff:10.0.0.1"].map(classifyAddress)).toEqual(
      Array(6).fill("private"),
    );
    expect(["127.0.0.1", "127.9.9.9", "::1", "[::1]"].map(classifyAddress)).toEqual(Array(4).fill("loopback"));
    expect(classifyAddress("13.107.5.93")).toBe("public");
  });

  it("with --allow-private relays to loopback, still never to the UI or the proxy itself", async () => {
    const open = await startTestProxy({ allowPrivate: true, uiPort: [String(ui.port)] });
    try {
      const tunnel = await connectTunnel(open.port, `127.0.0.1:${other.port}`);
      tunnel.destroy();
      await eventually(() => other.connections === 1);
      await expect(connectTunnel(open.port, `127.0.0.1:${ui.port}`)).rejects.toMatchObject({ status: 403 });
      await expect(connectTunnel(open.port, `127.0.0.1:${open.port}`)).rejects.toMatchObject({ status: 403 });
      expect(ui.connections).toBe(0);
    } finally {
      await open.close();
    }
  });
});

describe("tunnels tell the truth", () => {
  it("answers a CONNECT to a closed loopback port 502 and stores upstream-failed with the error", async () => {
    const port = await closedPort();
    const p = await startTestProxy({ allowPrivate: true, mapHost: [`www.example.org=127.0.0.1:${port}`] });
    try {
      await expect(connectTunnel(p.port, `127.0.0.1:${port}`)).rejects.toMatchObject({
        status: 502,
        headers: { "x-exhaust-error": "EXH_UPSTREAM_FAILED" },
      });
      // The same through a --map-host (allowed without --allow-private).
      await expect(connectTunnel(p.port, "www.example.org:443")).rejects.toMatchObject({ status: 502 });
      const rows = await eventually(() => {
        const r = connRows(p, "outcome = 'upstream-failed'");
        return r.length >= 2 ? r : undefined;
      });
      expect(rows.map((r) => r.error)).toEqual(["ECONNREFUSED", "ECONNREFUSED"]);
    } finally {
      await p.close();
    }
  });
});

describe("no one connection switches capture off", () => {
  let p: TestProxy;
  beforeAll(async () => {
    p = await startTestProxy({ mode: "sinkhole", handshakeTimeout: "2000" });
  });
  afterAll(() => p.close());

  /** A ClientHello as a real client sends it (Node's), captured off a throwaway socket. */
  const clientHello = (): Promise<Buffer> =>
    new Promise((resolve) => {
      const server = net.createServer((s) => {
        s.once("data", (d: Buffer) => {
          resolve(d);
          s.destroy();
          server.close();
        });
      });
      server.listen(0, "127.0.0.1", () => {
        const c = tls.connect({
          host: "127.0.0.1",
          port: (server.address() as AddressInfo).port,
          servername: HOST,
          rejectUnauthorized: false,
        });
        c.on("error", () => {});
      });
    });

  it("1,000 clients that send garbage or reset mid-handshake do not stop the next correct one", async () => {
    const hello = await clientHello();
    const abuse = async (i: number) => {
      const socket = await connectTunnel(p.port, `${HOST}:443`);
      await new Promise<void>((resolve) => {
        socket.on("close", () => resolve());
        socket.on("error", () => resolve());
        if (i % 3 === 0)
          socket.write(Buffer.from([0x16, 0x03])); // a partial record, then close
        else if (i % 3 === 1)
          socket.write(hello); // a whole ClientHello, then a reset
        else socket.write("\x16garbage-that-is-no-tls");
        setTimeout(() => (i % 3 === 1 ? socket.resetAndDestroy() : socket.destroy()), 5);
      });
    };
    for (let i = 0; i < 1000; i += 50) await Promise.all(Array.from({ length: 50 }, (_, j) => abuse(i + j)));
    const res = await httpsThroughProxy({ proxyPort: p.port, host: HOST, path: "/after-abuse", body: '{"name":"OK"}', ca: [p.caPem] });
    expect(res.status).toBe(200);
    await eventually(() => p.db.prepare("SELECT 1 FROM exchanges WHERE path = '/after-abuse' AND outcome = 'sinkholed'").get());
    expect(connRows(p, "outcome = 'client-rejected-certificate'")).toHaveLength(0);
  }, 120_000);

  it("a client address that answers the leaf with unknown_ca is refused (sinkhole) while another is still intercepted", async () => {
    await rejectLeafWithAlert(p.port, HOST, 443, "127.0.0.2");
    await eventually(() => connRows(p, "outcome = 'client-rejected-certificate' AND client_address = '127.0.0.2'")[0]);
    await expect(connectTunnel(p.port, `${HOST}:443`, undefined, "127.0.0.2")).rejects.toMatchObject({ status: 503 });
    const res = await httpsThroughProxy({ proxyPort: p.port, host: HOST, path: "/other-client", body: "{}", ca: [p.caPem] });
    expect(res.status).toBe(200);
  });

  it("takes an HTTP/1.0 request without Host as addressed to the CONNECT target: captured, never pin evidence", async () => {
    for (let i = 0; i < 3; i++) {
      const socket = await tlsThroughProxy(p.port, HOST, 443, [p.caPem], "127.0.0.4");
      const answer = await new Promise<string>((resolve) => {
        let text = "";
        socket.on("data", (d) => (text += d));
        socket.on("close", () => resolve(text));
        socket.on("error", () => resolve(text));
        socket.write(`GET /no-host-${i} HTTP/1.0\r\n\r\n`);
      });
      expect(answer).toMatch(/^HTTP\/1.1 200/);
    }
    const rows = await eventually(() => {
      const r = p.db.prepare("SELECT host FROM exchanges WHERE path LIKE '/no-host-%'").all() as Array<{ host: string }>;
      return r.length === 3 ? r : undefined;
    });
    expect(rows.every((r) => r.host === HOST)).toBe(true);
    expect(connRows(p, "client_address = '127.0.0.4' AND outcome = 'client-rejected-certificate'")).toHaveLength(0);
  });

  it("counts a client that hangs up after reading the leaf only when it repeats", async () => {
    // Hanging up after the handshake, without an alert, is weak evidence: the third time (within
    // the window) pins, not the first.
    await hangUpAfterLeaf(p.port, HOST, 443, "127.0.0.3");
    await eventually(() => connRows(p, "client_address = '127.0.0.3'").length === 1);
    const ok = await httpsThroughProxy({
      proxyPort: p.port,
      host: HOST,
      path: "/between",
      body: "{}",
      ca: [p.caPem],
      localAddress: "127.0.0.3",
    });
    expect(ok.status).toBe(200);
    await hangUpAfterLeaf(p.port, HOST, 443, "127.0.0.3");
    await hangUpAfterLeaf(p.port, HOST, 443, "127.0.0.3");
    await eventually(() => connRows(p, "client_address = '127.0.0.3' AND outcome = 'client-rejected-certificate'")[0]);
    await expect(connectTunnel(p.port, `${HOST}:443`, undefined, "127.0.0.3")).rejects.toMatchObject({ status: 503 });
  });
});

describe("pins expire and are listed", () => {
  it("intercepts the client again after --pin-expiry; `exhaust sessions` names the client and host", async () => {
    const p = await startTestProxy({ mode: "sinkhole", pinExpiry: "600" });
    try {
      await rejectLeafWithAlert(p.port, HOST, 443, "127.0.0.2");
      await eventually(() => connRows(p, "outcome = 'client-rejected-certificate'")[0]);
      await expect(connectTunnel(p.port, `${HOST}:443`, undefined, "127.0.0.2")).rejects.toMatchObject({ status: 503 });
      await sleep(700);
      const res = await httpsThroughProxy({
        proxyPort: p.port,
        host: HOST,
        path: "/after-expiry",
        body: "{}",
        ca: [p.caPem],
        localAddress: "127.0.0.2",
      });
      expect(res.status).toBe(200);
      const listed = runCli(["sessions", "--db", p.dbFile]);
      expect(listed.stdout).toContain(`pinned in test: client 127.0.0.2 rejected the certificate of ${HOST} (1×`);
      const [json] = JSON.parse(runCli(["sessions", "--db", p.dbFile, "--json"]).stdout);
      expect(json.pins).toEqual([expect.objectContaining({ client: "127.0.0.2", host: HOST, connections: 1 })]);
    } finally {
      await p.close();
    }
  });
});

describe("pinned client in forward mode", () => {
  it("is tunnelled while another client address is still intercepted; --no-pin-bypass keeps intercepting", async () => {
    const originCa = await makeOriginAuthority();
    const origin = await startOrigin(originCa);
    const p = await startTestProxy({ mapHost: [`${HOST}=127.0.0.1:${origin.port}`], originCaPem: originCa.certPem });
    const strict = await startTestProxy({ pinBypass: false, mapHost: [`${HOST}=127.0.0.1:${origin.port}`], originCaPem: originCa.certPem });
    try {
      await rejectLeafWithAlert(p.port, HOST, 443, "127.0.0.2");
      await eventually(() => connRows(p, "outcome = 'client-rejected-certificate'")[0]);
      // The pinned client now reaches the origin itself (its certificate, not ours).
      const tunnelled = await tlsThroughProxy(p.port, HOST, 443, [originCa.certPem], "127.0.0.2");
      tunnelled.destroy();
      const intercepted = await httpsThroughProxy({ proxyPort: p.port, host: HOST, path: "/still-captured", body: "{}", ca: [p.caPem] });
      expect(intercepted.status).toBe(200);
      await eventually(() => p.db.prepare("SELECT 1 FROM exchanges WHERE path = '/still-captured'").get());

      await rejectLeafWithAlert(strict.port, HOST, 443, "127.0.0.2");
      await eventually(() => connRows(strict, "outcome = 'client-rejected-certificate'")[0]);
      const again = await tlsThroughProxy(strict.port, HOST, 443, [strict.caPem], "127.0.0.2");
      again.destroy();
    } finally {
      await p.close();
      await strict.close();
      await origin.close();
    }
  });
});

describe("a stalled response body", () => {
  it("is cut off after --body-timeout and stored with EXH_BODY_STALLED", async () => {
    const originCa = await makeOriginAuthority();
    const origin = await startOrigin(originCa, (_req, res) => {
      res.writeHead(200, { "content-type": "text/plain", "content-length": "100" });
      res.write("partial"); // ...and nothing more
    });
    const p = await startTestProxy({ mapHost: [`${HOST}=127.0.0.1:${origin.port}`], originCaPem: originCa.certPem, bodyTimeout: "500" });
    try {
      const t0 = Date.now();
      await expect(httpsThroughProxy({ proxyPort: p.port, host: HOST, path: "/stall", body: "{}", ca: [p.caPem] })).rejects.toThrow();
      expect(Date.now() - t0).toBeLessThan(5000);
      const row = await eventually(() =>
        p.db.prepare("SELECT outcome, error_code FROM exchanges WHERE path = '/stall' AND ended_at IS NOT NULL").get(),
      );
      expect(row).toEqual({ outcome: "upstream-failed", error_code: "EXH_BODY_STALLED" });
    } finally {
      await p.close();
      await origin.close();
    }
  });
});

describe("the processing thread", () => {
  it("is started again when it dies, and catches up on what was captured meanwhile", async () => {
    const p = await startTestProxy({ mode: "sinkhole" });
    try {
      await p.processing.kill();
      for (let i = 0; i < 3; i++) {
        const res = await httpsThroughProxy({
          proxyPort: p.port,
          host: HOST,
          path: `/while-down-${i}`,
          body: '{"name":"Office.Test","data":{}}',
          ca: [p.caPem],
        });
        expect(res.status).toBe(200);
      }
      await eventually(() => p.processing.starts >= 2, 10_000);
      await eventually(
        () =>
          (
            p.db.prepare("SELECT COUNT(*) AS n FROM exchanges WHERE path LIKE '/while-down-%' AND decoder IS NOT NULL").get() as {
              n: number;
            }
          ).n === 3,
        15_000,
      );
    } finally {
      await p.close();
    }
  }, 30_000);
});

/** Open descriptors of a child process, from /proc. */
const fdCount = (pid: number) => readdirSync(`/proc/${pid}/fd`).length;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("bounded resources (child proxy)", () => {
  const proxyArgs = (dir: string, ...more: string[]) => [
    "--db",
    join(dir, "exhaust.db"),
    "--certs",
    join(dir, "certs"),
    "--session",
    "limits",
    ...more,
  ];
  const stop = async (child: ChildProcess): Promise<number | null> => {
    const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
    child.kill("SIGTERM");
    return exited;
  };
  const sessionEnded = (dir: string) => {
    const db = openDatabase(join(dir, "exhaust.db"));
    const row = db.prepare("SELECT ended_at FROM sessions WHERE name = 'limits'").get() as { ended_at: number | null };
    db.close();
    return row.ended_at;
  };

  it("forgets every pin on SIGHUP", async () => {
    const dir = tempDir();
    const proc = await spawnProxy(proxyArgs(dir, "--mode", "sinkhole"));
    await rejectLeafWithAlert(proc.port, HOST, 443, "127.0.0.2");
    // The pin lands when the rejected connection closes: try until the CONNECT is refused.
    const status = () =>
      connectTunnel(proc.port, `${HOST}:443`, undefined, "127.0.0.2").then(
        (t) => (t.destroy(), 200),
        (e: { status: number }) => e.status,
      );
    let seen = await status();
    for (let i = 0; seen !== 503 && i < 50; i++) {
      await sleep(100);
      seen = await status();
    }
    expect(seen).toBe(503);
    proc.child.kill("SIGHUP");
    await eventually(() => /pins cleared \(SIGHUP\)/.test(proc.stderr()));
    const tunnel = await connectTunnel(proc.port, `${HOST}:443`, undefined, "127.0.0.2");
    tunnel.destroy();
    const code = await stop(proc.child);
    // 13 would be Node giving up on a stop that waits for nothing that can still happen.
    expect(code, proc.stderr().split("\n").slice(-10).join("\n")).toBe(0);
  }, 30_000);

  it("reclaims 2,000 idle CONNECTs within the timeout and returns to its baseline of descriptors", async () => {
    const dir = tempDir();
    const proc = await spawnProxy(proxyArgs(dir, "--mode", "sinkhole", "--handshake-timeout", "6000"));
    const pid = proc.child.pid!;
    const ca = readFileSync(join(dir, "certs", "exhaust-ca.pem"), "utf8");
    expect((await httpsThroughProxy({ proxyPort: proc.port, host: HOST, path: "/warm", body: "{}", ca: [ca] })).status).toBe(200);
    await sleep(500);
    const baseline = fdCount(pid);
    const sockets: net.Socket[] = [];
    for (let i = 0; i < 2000; i += 200) {
      sockets.push(...(await Promise.all(Array.from({ length: 200 }, () => connectTunnel(proc.port, `${HOST}:443`)))));
    }
    const closed = sockets.map((s) => new Promise<void>((r) => (s.destroyed ? r() : s.once("close", () => r()))));
    for (const s of sockets) s.on("error", () => {});
    const peak = fdCount(pid);
    expect(peak).toBeGreaterThan(baseline + 1000);
    const t0 = Date.now();
    await eventually(() => fdCount(pid) <= baseline + 5, 20_000);
    await Promise.all(closed);
    const reclaimedMs = Date.now() - t0;
    const code = await stop(proc.child);
    // 13 would be Node giving up on a stop that waits for nothing that can still happen.
    expect(code, proc.stderr().split("\n").slice(-10).join("\n")).toBe(0);
    expect(sessionEnded(dir)).not.toBeNull();
    const db = openDatabase(join(dir, "exhaust.db"));
    const timedOut = (db.prepare("SELECT COUNT(*) AS n FROM connections WHERE error LIKE 'nothing usable within%'").get() as { n: number })
      .n;
    db.close();
    expect(timedOut).toBe(2000);
    console.log(`idle CONNECTs: baseline ${baseline} fds, peak ${peak}, back to baseline ${reclaimedMs} ms after the last was opened`);
  }, 90_000);

  it("under a low descriptor limit refuses, recovers, and exits 0 on SIGTERM with the session closed", async () => {
    const dir = tempDir();
    const proc = await spawnProxy(proxyArgs(dir, "--mode", "sinkhole"), undefined, { maxFiles: 256 });
    const pid = proc.child.pid!;
    const ca = readFileSync(join(dir, "certs", "exhaust-ca.pem"), "utf8");
    // Exhaust the proxy's descriptors with idle connections.
    const hogs: net.Socket[] = [];
    for (let i = 0; i < 300; i++) {
      const s = net.connect(proc.port, "127.0.0.1");
      s.on("error", () => {});
      hogs.push(s);
    }
    await eventually(() => /EXH_PROXY_BUSY/.test(proc.stderr()), 10_000).catch((e: Error) => {
      throw new Error(`${e.message}: no EXH_PROXY_BUSY logged; the proxy said:\n${proc.stderr().slice(-3000)}`);
    });
    // While at the limit, a client is refused (not left hanging, not crashing the proxy).
    await expect(httpsThroughProxy({ proxyPort: proc.port, host: HOST, path: "/at-limit", body: "{}", ca: [ca] })).rejects.toThrow();
    for (const s of hogs) s.destroy();
    // Recovery needs the proxy to have closed its ends: wait for its descriptors to fall well under
    // the limit less the reserve (224 of 256), however slowly a loaded machine gets there.
    await eventually(() => fdCount(pid) < 200, 20_000);
    // Recovered: the next client is intercepted and captured.
    const res = await httpsThroughProxy({ proxyPort: proc.port, host: HOST, path: "/recovered", body: '{"name":"X"}', ca: [ca] }).catch(
      (e: Error) => {
        throw new Error(
          `${e.message}; the proxy (exit ${proc.child.exitCode ?? proc.child.signalCode}) said:\n${proc.stderr().slice(-3000)}`,
        );
      },
    );
    expect(res.status).toBe(200);
    expect(proc.child.exitCode).toBeNull();
    const code = await stop(proc.child);
    // 13 would be Node giving up on a stop that waits for nothing that can still happen.
    expect(code, proc.stderr().split("\n").slice(-10).join("\n")).toBe(0);
    expect(sessionEnded(dir)).not.toBeNull();
    const db = openDatabase(join(dir, "exhaust.db"));
    expect(db.prepare("SELECT outcome FROM exchanges WHERE path = '/recovered'").get()).toEqual({ outcome: "sinkholed" });
    db.close();
  }, 60_000);

  it("assembles a 64 MiB WebSocket message in linear time (a few CPU-seconds, not minutes) and stores it capped at --max-body", async () => {
    const dir = tempDir();
    const originCa = await makeOriginAuthority();
    writeFileSync(join(dir, "origin-ca.pem"), originCa.certPem);
    const issuer = await LeafIssuer.create(originCa);
    let received = 0;
    const origin = https.createServer({ SNICallback: (n, cb) => cb(null, issuer.secureContextFor(n)) });
    origin.on("upgrade", (req: http.IncomingMessage, socket: net.Socket) => {
      socket.write(
        `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${acceptKey(String(req.headers["sec-websocket-key"]))}\r\n\r\n`,
      );
      socket.on("data", (d: Buffer) => (received += d.length));
      socket.on("error", () => {});
    });
    await new Promise<void>((r) => origin.listen(0, "127.0.0.1", r));
    const WS_HOST = "augloop.office.com";
    const proc = await spawnProxy(
      proxyArgs(
        dir,
        "--map-host",
        `${WS_HOST}=127.0.0.1:${(origin.address() as AddressInfo).port}`,
        "--upstream-ca",
        join(dir, "origin-ca.pem"),
        "--max-body",
        String(1024 * 1024),
      ),
    );
    const ca = readFileSync(join(dir, "certs", "exhaust-ca.pem"), "utf8");
    const socket = await tlsThroughProxy(proc.port, WS_HOST, 443, [ca]);
    socket.write(
      `GET /ws HTTP/1.1\r\nHost: ${WS_HOST}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${newKey()}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
    );
    expect((await readResponseHead(socket)).status).toBe(101);
    socket.resume();
    const size = 64 * 1024 * 1024;
    // One binary frame, masked with a zero key (so the payload is sent as it is).
    const header = Buffer.alloc(14);
    header[0] = 0x82;
    header[1] = 0x80 | 127;
    header.writeBigUInt64BE(BigInt(size), 2);
    const chunk = Buffer.alloc(1024 * 1024, 0x41);
    const before = cpuTicks(proc.child.pid!);
    socket.write(header);
    for (let sent = 0; sent < size; sent += chunk.length) {
      if (!socket.write(chunk)) await new Promise((r) => socket.once("drain", r));
    }
    await eventually(() => received >= size + 14, 60_000);
    const db = openDatabase(join(dir, "exhaust.db"));
    const row = await eventually(
      () =>
        db
          .prepare(
            "SELECT x.request_body_size AS size, x.request_body_truncated AS truncated, b.size AS kept FROM exchanges x JOIN blobs b ON b.sha256 = x.request_body_sha256 WHERE x.method = 'WEBSOCKET'",
          )
          .get() as { size: number; truncated: number; kept: number } | undefined,
      20_000,
    );
    const cpuSeconds = (cpuTicks(proc.child.pid!) - before) / 100;
    db.close();
    socket.destroy();
    // Stopped before the figures are judged: a failed bound must not leave the proxy running.
    const code = await stop(proc.child);
    expect(row).toEqual({ size, truncated: 1, kept: 1024 * 1024 });
    console.log(`64 MiB WebSocket message: ${cpuSeconds.toFixed(2)} CPU-seconds in the proxy`);
    // About 0.6–0.9 CPU-seconds when the machine is quiet (TLS in and out included; see docs/containment.md).
    // The bound is what tells linear from quadratic: joining the message anew for each of its
    // ~4,000 TLS records would copy ~130 GB and take minutes, while a loaded CI machine can
    // stretch the linear cost past a second (1.18 s seen): a tight bound would only measure the load.
    expect(cpuSeconds).toBeLessThan(4);
    // 13 would be Node giving up on a stop that waits for nothing that can still happen.
    expect(code, proc.stderr().split("\n").slice(-10).join("\n")).toBe(0);
    await new Promise((r) => origin.close(r));
  }, 120_000);

  it("keeps 40 concurrent 32 MiB uploads under the documented RSS bound (--max-inflight)", async () => {
    const dir = tempDir();
    const proc = await spawnProxy(proxyArgs(dir, "--mode", "sinkhole"));
    const ca = readFileSync(join(dir, "certs", "exhaust-ca.pem"), "utf8");
    const body = Buffer.alloc(32 * 1024 * 1024, 0x42);
    const results = await Promise.allSettled(
      Array.from({ length: 40 }, (_, i) =>
        httpsThroughProxy({
          proxyPort: proc.port,
          host: HOST,
          path: `/big-${i}`,
          headers: { "content-type": "application/octet-stream" },
          body,
          ca: [ca],
        }),
      ),
    );
    const statuses = results.map((r) => (r.status === "fulfilled" ? r.value.status : 0));
    const peak = memoryMb(proc.child.pid!, "VmHWM");
    console.log(
      `40 × 32 MiB uploads: ${statuses.filter((s) => s === 200).length} stored, ${statuses.filter((s) => s === 503).length} answered 503, peak RSS ${peak.toFixed(0)} MiB`,
    );
    expect(statuses.filter((s) => s === 200).length).toBeGreaterThan(0);
    expect(statuses.every((s) => s === 200 || s === 503 || s === 0)).toBe(true);
    // docs/containment.md: peak RSS stays under 3 × --max-inflight + 256 MiB (1 GiB at the defaults).
    expect(peak).toBeLessThan(3 * 256 + 256);
    const code = await stop(proc.child);
    // 13 would be Node giving up on a stop that waits for nothing that can still happen.
    expect(code, proc.stderr().split("\n").slice(-10).join("\n")).toBe(0);
  }, 180_000);
});
