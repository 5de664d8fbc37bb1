import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { deflateRawSync, gzipSync } from "node:zlib";
import { createHash, X509Certificate } from "node:crypto";
import http from "node:http";
import net from "node:net";
import tls from "node:tls";
import { LeafIssuer } from "../src/ca/leaf.js";
import { CHAIN_GENESIS } from "../src/store/chain.js";
import { rowChainHash } from "./helpers/chain.js";
import { connectTunnel, httpsThroughProxy, rejectLeafWithAlert, tlsThroughProxy } from "./helpers/client.js";
import { startOrigin, type Origin } from "./helpers/origin.js";
import { encodeCsRecords, makeCsRecord } from "./helpers/bond-writer.js";
import { eventually, startTestProxy, useLocalOrigin, type TestProxy } from "./helpers/proxy.js";

const COLLECTOR = "mobile.events.data.microsoft.com";
const sha256 = (b: Buffer) => createHash("sha256").update(b).digest("hex");

interface ExchangeRow {
  id: string;
  seq: number;
  method: string;
  scheme: string;
  host: string;
  port: number;
  path: string;
  started_at: number;
  request_headers: string;
  request_body_sha256: string;
  request_body_size: number;
  request_body_truncated: number;
  request_complete: number;
  response_status: number | null;
  response_body_sha256: string | null;
  response_trailers: string | null;
  outcome: string;
  error_code: string | null;
  prev_hash: string;
  hash: string;
  mode: string;
}

const local = useLocalOrigin();

function exchanges(p: TestProxy): ExchangeRow[] {
  return p.db.prepare("SELECT * FROM exchanges ORDER BY seq").all() as ExchangeRow[];
}

describe("forward mode through --map-host", () => {
  let p: TestProxy;
  beforeAll(async () => {
    p = await startTestProxy({ mapHost: [`${COLLECTOR}=127.0.0.1:${local.origin.port}`], originCaPem: local.ca.certPem });
  });
  afterAll(() => p.close());

  it("makes the TLS connection for a plain proxy request to an https:// URL, and stores it as https with its path", async () => {
    const before = local.origin.received.length;
    const res = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = http.request({
        host: "127.0.0.1",
        port: p.port,
        method: "POST",
        path: `https://${COLLECTOR}/v2.1/track?absolute=1`,
        headers: { Host: COLLECTOR, "Content-Type": "application/x-json-stream" },
      });
      req.on("response", (r) => {
        let body = "";
        r.on("data", (d: Buffer) => (body += d.toString()));
        r.on("end", () => resolve({ status: r.statusCode ?? 0, body }));
      });
      req.on("error", reject);
      req.end(
        '{"name":"Microsoft.ApplicationInsights.Event","iKey":"k","data":{"baseType":"EventData","baseData":{"ver":2,"name":"abs"}}}\n',
      );
    });
    expect(res.status).toBe(200);
    // The origin speaks only TLS: the request reached it over TLS, as origin-form.
    expect(local.origin.received[before].url).toBe("/v2.1/track?absolute=1");
    const row = await eventually(() => exchanges(p).find((r) => r.path === "/v2.1/track?absolute=1"));
    expect(row).toMatchObject({ host: COLLECTOR, scheme: "https", port: 443, outcome: "ok" });
  });

  it("relays a gzip upload byte for byte, answers with the origin's response, stores and chains it", async () => {
    const body = gzipSync(Buffer.from('{"name":"Office.Test","time":"2026-11-24T00:00:00Z"}\n'.repeat(50)));
    const headers = [
      "Content-Type",
      "application/x-json-stream",
      "Content-Encoding",
      "gzip",
      "Client-Id",
      "NO_AUTH",
      "APIKey",
      "0123456789abcdef0123456789abcdef-00000000-0000-0000-0000-000000000000-7000",
      "Upload-Time",
      "1764000000000",
      "X-Custom-Case",
      "KeepMe",
    ];
    const before = local.origin.received.length;
    const res = await httpsThroughProxy({ proxyPort: p.port, host: COLLECTOR, path: "/OneCollector/1.0/", headers, body, ca: [p.caPem] });
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body.toString())).toEqual({ acc: 1, origin: "local" });
    // The client was shown our leaf, issued by the proxy CA, for the collector's name.
    expect(res.peer?.subject.CN).toBe(COLLECTOR);
    expect(res.peer?.issuer.CN).toBe(new X509Certificate(p.caPem).subject.match(/CN=(.*)/)?.[1]);

    const got = local.origin.received[before];
    expect(got.method).toBe("POST");
    expect(got.url).toBe("/OneCollector/1.0/");
    expect(sha256(got.body)).toBe(sha256(body));
    // End-to-end headers arrive in order, with their case.
    const pairs = (raw: string[]) => raw.reduce<string[]>((a, v, i) => (i % 2 ? a : [...a, `${v}: ${raw[i + 1]}`]), []);
    const sent = pairs(headers);
    const arrived = pairs(got.rawHeaders).filter((h) => sent.includes(h));
    expect(arrived).toEqual(sent);

    const row = await eventually(() => exchanges(p).find((r) => r.request_body_sha256 === sha256(body) && r.response_body_sha256));
    expect(row.host).toBe(COLLECTOR);
    expect(row.response_status).toBe(200);
    expect(row.outcome).toBe("ok");
    const blob = p.db.prepare("SELECT data FROM blobs WHERE sha256 = ?").get(row.request_body_sha256) as { data: Buffer };
    expect(Buffer.compare(blob.data, body)).toBe(0);
    expect(JSON.parse(row.request_headers)).toEqual(expect.arrayContaining([["X-Custom-Case", "KeepMe"]]));
  });

  it("links every exchange of the session into a hash chain anyone can recompute", async () => {
    for (let i = 0; i < 3; i++) {
      await httpsThroughProxy({
        proxyPort: p.port,
        host: COLLECTOR,
        path: `/OneCollector/1.0/?n=${i}`,
        body: `{"n":${i}}\n`,
        ca: [p.caPem],
      });
    }
    const rows = await eventually(() => {
      const r = exchanges(p);
      return r.length >= 4 ? r : undefined;
    });
    let prev = CHAIN_GENESIS;
    rows.forEach((r, i) => {
      expect(r.seq).toBe(i + 1);
      expect(r.prev_hash).toBe(prev);
      const recomputed = rowChainHash("test", prev, r);
      expect(r.hash).toBe(recomputed);
      prev = r.hash;
    });
    // Tampering with a stored request breaks the recomputation.
    const tampered = rowChainHash("test", rows[0].prev_hash, { ...rows[0], path: `${rows[0].path}x` });
    expect(tampered).not.toBe(rows[0].hash);
  });
});

describe("sinkhole mode", () => {
  let p: TestProxy;
  beforeAll(async () => {
    // No --map-host and no origin: nothing may leave the machine.
    p = await startTestProxy({ mode: "sinkhole" });
  });
  afterAll(() => p.close());

  it("answers 200 {acc:N} itself with N = records in the upload, and stores it", async () => {
    const lines = ['{"name":"a"}', '{"name":"b"}', '{"name":"c"}'].join("\n") + "\n";
    const res = await httpsThroughProxy({
      proxyPort: p.port,
      host: COLLECTOR,
      path: "/OneCollector/1.0/",
      headers: { "content-type": "application/x-json-stream", "content-encoding": "gzip" },
      body: gzipSync(lines),
      ca: [p.caPem],
    });
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body.toString())).toEqual({ acc: 3 });
    const row = await eventually(() => exchanges(p)[0]);
    expect(row.mode).toBe("sinkhole");
    expect(row.outcome).toBe("sinkholed");
  });

  it("stores an absolute-form request inside the tunnel as its path", async () => {
    const res = await httpsThroughProxy({
      proxyPort: p.port,
      host: COLLECTOR,
      path: `https://${COLLECTOR}/OneCollector/1.0/?cors=true&content-type=application/x-json-stream`,
      headers: { "content-type": "application/x-json-stream" },
      body: '{"name":"absolute"}\n',
      ca: [p.caPem],
    });
    expect(res.status).toBe(200);
    const row = await eventually(() => exchanges(p).find((x) => x.path.includes("cors=true")));
    expect(row.path).toBe("/OneCollector/1.0/?cors=true&content-type=application/x-json-stream");
    expect(row.host).toBe(COLLECTOR);
  });

  it("counts the records of a deflated Bond upload, and of a cut one those before the fault", async () => {
    const records = Array.from({ length: 7 }, (_, i) => makeCsRecord(i, 5));
    const bond = Buffer.from(encodeCsRecords(records));
    const ack = async (body: Buffer, encoding?: string) => {
      const res = await httpsThroughProxy({
        proxyPort: p.port,
        host: "eu-mobile.events.data.microsoft.com",
        path: "/OneCollector/1.0/",
        headers: { "content-type": "application/bond-compact-binary", ...(encoding ? { "content-encoding": encoding } : {}) },
        body,
        ca: [p.caPem],
      });
      return JSON.parse(res.body.toString());
    };
    expect(await ack(deflateRawSync(bond), "deflate")).toEqual({ acc: 7 });
    // Cut inside the fifth record: four whole ones before it.
    const fifth = encodeCsRecords(records.slice(0, 4)).length + 3;
    expect(await ack(bond.subarray(0, fifth))).toEqual({ acc: 4 });
    expect(await ack(Buffer.from([0x29, 0x03, 0x33, 0x2e, 0x30]))).toEqual({ acc: 0 });
  });
});

describe("hosts outside the catalogue", () => {
  let p: TestProxy;
  beforeAll(async () => {
    p = await startTestProxy({ mapHost: [`www.example.org=127.0.0.1:${local.origin.port}`] });
  });
  afterAll(() => p.close());

  it("are tunnelled untouched (the client sees the origin's own certificate) and recorded", async () => {
    const res = await httpsThroughProxy({ proxyPort: p.port, host: "www.example.org", path: "/", method: "GET", ca: [local.ca.certPem] });
    expect(res.status).toBe(200);
    expect(res.peer?.issuer.CN).toBe(local.ca.subject.match(/CN=([^,/]*)/)?.[1] ?? res.peer?.issuer.CN);
    expect(new X509Certificate(res.peer!.raw).checkIssued(new X509Certificate(local.ca.certPem))).toBe(true);
    const conn = await eventually(
      () =>
        p.db.prepare("SELECT * FROM connections WHERE host = 'www.example.org' AND ended_at IS NOT NULL").get() as
          { outcome: string; bytes_from_client: number; bytes_to_client: number; upstream: string } | undefined,
    );
    expect(conn.outcome).toBe("tunnelled");
    expect(conn.upstream).toBe(`127.0.0.1:${local.origin.port}`);
    expect(conn.bytes_from_client).toBeGreaterThan(100);
    expect(conn.bytes_to_client).toBeGreaterThan(500);
    expect(exchanges(p)).toHaveLength(0);
  });
});

describe("certificate pinning", () => {
  let p: TestProxy;
  const host = "v10c.events.data.microsoft.com";
  beforeAll(async () => {
    p = await startTestProxy({ mapHost: [`${host}=127.0.0.1:${local.origin.port}`], originCaPem: local.ca.certPem });
  });
  afterAll(() => p.close());

  it("records a client that refuses the leaf, then tunnels its next connection", async () => {
    // A pinned client trusts only the real issuer (here: the origin's CA), never ours: it answers
    // our leaf with an unknown_ca alert.
    await rejectLeafWithAlert(p.port, host);
    const rejected = await eventually(
      () =>
        p.db.prepare("SELECT * FROM connections WHERE host = ? AND ended_at IS NOT NULL").get(host) as
          { outcome: string; error: string } | undefined,
    );
    expect(rejected.outcome).toBe("client-rejected-certificate");
    const res = await httpsThroughProxy({ proxyPort: p.port, host, method: "GET", path: "/", ca: [local.ca.certPem] });
    expect(res.status).toBe(200);
    const rows = await eventually(() => {
      const r = p.db
        .prepare("SELECT outcome FROM connections WHERE host = ? AND ended_at IS NOT NULL ORDER BY started_at")
        .all(host) as Array<{ outcome: string }>;
      return r.length >= 2 ? r : undefined;
    });
    expect(rows.map((r) => r.outcome)).toEqual(["client-rejected-certificate", "tunnelled"]);
  });
});

describe("certificate pinning in sinkhole mode", () => {
  let p: TestProxy;
  const host = "v10c.events.data.microsoft.com";
  beforeAll(async () => {
    p = await startTestProxy({ mode: "sinkhole" });
  });
  afterAll(() => p.close());

  it("refuses the pinned host's next CONNECT instead of letting its data out through a tunnel", async () => {
    await rejectLeafWithAlert(p.port, host);
    await eventually(() =>
      p.db.prepare("SELECT 1 FROM connections WHERE outcome = 'client-rejected-certificate' AND ended_at IS NOT NULL").get(),
    );
    await expect(connectTunnel(p.port, `${host}:443`)).rejects.toMatchObject({ status: 503 });
    const row = await eventually(
      () =>
        p.db.prepare("SELECT outcome, error FROM connections WHERE outcome = 'closed-by-policy'").get() as
          { outcome: string; error: string } | undefined,
    );
    expect(row.error).toMatch(/pinned-earlier; mode sinkhole/);
  });
});

describe("awkward requests and failing upstreams", () => {
  let p: TestProxy;
  let stalled: Origin;
  let rawOrigin: net.Server;
  let rawOriginPort = 0;
  let closedPort = 0;

  beforeAll(async () => {
    stalled = await startOrigin(local.ca, () => {
      /* never answers */
    });
    // A TLS origin that writes raw HTTP: resets, or a Trailer header Node itself would refuse to send.
    const issuer = await LeafIssuer.create(local.ca);
    rawOrigin = tls.createServer({ SNICallback: (n, cb) => cb(null, issuer.secureContextFor(n)) }, (s) => {
      s.once("data", (d: Buffer) => {
        const path = d.toString().split(" ")[1];
        if (path === "/reset") {
          s.destroy();
        } else if (path === "/trailer-length") {
          s.end("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTrailer: X-Checksum\r\nConnection: close\r\n\r\nok");
        } else {
          s.end(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Checksum\r\nConnection: close\r\n\r\n" +
              "2\r\nok\r\n0\r\nX-Checksum: abc\r\n\r\n",
          );
        }
      });
      s.on("error", () => {});
    });
    await new Promise<void>((r) => rawOrigin.listen(0, "127.0.0.1", r));
    rawOriginPort = (rawOrigin.address() as net.AddressInfo).port;
    const probe = net.createServer();
    await new Promise<void>((r) => probe.listen(0, "127.0.0.1", r));
    closedPort = (probe.address() as net.AddressInfo).port;
    await new Promise((r) => probe.close(r));

    p = await startTestProxy({
      mapHost: [
        `${COLLECTOR}=127.0.0.1:${local.origin.port}`,
        `refused.events.data.microsoft.com=127.0.0.1:${closedPort}`,
        `slow.events.data.microsoft.com=127.0.0.1:${stalled.port}`,
        `raw.events.data.microsoft.com=127.0.0.1:${rawOriginPort}`,
      ],
      originCaPem: local.ca.certPem,
      // Long enough for a 20 MB upload's last megabytes to reach the origin on a loaded machine (the
      // wait starts when the client's upload ends), short enough for the stalled host's 504.
      upstreamTimeout: "1500",
      maxBody: String(8 * 1024 * 1024),
    });
  });
  afterAll(async () => {
    await p.close();
    await stalled.close();
    rawOrigin.close();
  });

  const rowFor = (path: string) => eventually(() => exchanges(p).find((r) => r.path === path && r.response_status !== undefined));

  it("handles Expect: 100-continue", async () => {
    const body = Buffer.from('{"name":"expect"}\n');
    const socket = await tlsThroughProxy(p.port, COLLECTOR, 443, [p.caPem]);
    const res = await new Promise<{ status: number; continued: boolean }>((resolve, reject) => {
      let continued = false;
      const req = http.request({
        createConnection: () => socket,
        method: "POST",
        path: "/expect",
        headers: { host: COLLECTOR, expect: "100-continue", "content-length": String(body.length) },
      });
      req.on("continue", () => {
        continued = true;
        req.end(body);
      });
      req.on("response", (r) => {
        r.resume();
        r.on("end", () => resolve({ status: r.statusCode ?? 0, continued }));
      });
      req.on("error", reject);
    });
    socket.destroy();
    expect(res).toEqual({ status: 200, continued: true });
    const row = await rowFor("/expect");
    expect(row.request_body_sha256).toBe(sha256(body));
  });

  it("relays a 20 MB body and stores it cut at --max-body with a flag", async () => {
    const body = Buffer.alloc(20 * 1024 * 1024, 7);
    const before = local.origin.received.length;
    const res = await httpsThroughProxy({ proxyPort: p.port, host: COLLECTOR, path: "/big", body, ca: [p.caPem] });
    expect(res.status).toBe(200);
    expect(local.origin.received[before].body.length).toBe(body.length);
    const row = await rowFor("/big");
    expect(row.request_body_size).toBe(body.length);
    expect(row.request_body_truncated).toBe(1);
    const stored = p.db.prepare("SELECT size FROM blobs WHERE sha256 = ?").get(row.request_body_sha256) as { size: number };
    expect(stored.size).toBe(8 * 1024 * 1024);
  });

  it("relays a chunked body", async () => {
    const body = Buffer.from("x".repeat(100_000));
    const before = local.origin.received.length;
    const res = await httpsThroughProxy({ proxyPort: p.port, host: COLLECTOR, path: "/chunked", body, chunkSize: 4096, ca: [p.caPem] });
    expect(res.status).toBe(200);
    expect(local.origin.received[before].body.equals(body)).toBe(true);
    const row = await rowFor("/chunked");
    expect(JSON.parse(row.request_headers)).toEqual(expect.arrayContaining([["Transfer-Encoding", "chunked"]]));
    expect(row.request_body_sha256).toBe(sha256(body));
  });

  it("stores the partial upload of a client that aborts mid-body, flagged", async () => {
    const socket = await tlsThroughProxy(p.port, COLLECTOR, 443, [p.caPem]);
    socket.write(`POST /aborted HTTP/1.1\r\nHost: ${COLLECTOR}\r\nContent-Length: 100000\r\n\r\n`);
    socket.write(Buffer.alloc(5000, 1));
    await new Promise((r) => setTimeout(r, 100));
    socket.destroy();
    const row = await eventually(() => exchanges(p).find((r) => r.path === "/aborted"));
    expect(row.outcome).toBe("client-aborted");
    expect(row.request_complete).toBe(0);
    expect(row.request_body_size).toBe(5000);
    expect(row.error_code).toBe("EXH_CLIENT_ABORTED");
  });

  it.each([
    ["refused.events.data.microsoft.com", 502, "upstream-refused", "EXH_UPSTREAM_REFUSED"],
    ["slow.events.data.microsoft.com", 504, "upstream-timeout", "EXH_UPSTREAM_TIMEOUT"],
  ])("answers %s with %i and stores the outcome", async (host, status, outcome, code) => {
    const res = await httpsThroughProxy({ proxyPort: p.port, host, path: `/${outcome}`, body: "{}\n", ca: [p.caPem] });
    expect(res.status).toBe(status);
    expect(res.headers["x-exhaust-error"]).toBe(code);
    // One short line, no stack or library text.
    expect(res.body.toString()).toMatch(/^exhaust: [^\n]+\n$/);
    const row = await rowFor(`/${outcome}`);
    expect(row.outcome).toBe(outcome);
    expect(row.error_code).toBe(code);
    expect(row.response_status).toBe(status);
  });

  it("answers 502 when the upstream resets the connection", async () => {
    const res = await httpsThroughProxy({
      proxyPort: p.port,
      host: "raw.events.data.microsoft.com",
      path: "/reset",
      body: "{}\n",
      ca: [p.caPem],
    });
    expect(res.status).toBe(502);
    const row = await rowFor("/reset");
    expect(row.outcome).toBe("upstream-reset");
  });

  it.each(["/trailer-chunked", "/trailer-length"])("survives an upstream Trailer header (%s) and keeps serving", async (path) => {
    const res = await httpsThroughProxy({ proxyPort: p.port, host: "raw.events.data.microsoft.com", path, method: "GET", ca: [p.caPem] });
    expect(res.status).toBe(200);
    expect(res.body.toString()).toBe("ok");
    const row = await eventually(() => exchanges(p).find((r) => r.path === path && r.response_body_sha256));
    expect(row.outcome).toBe("ok");
    if (path === "/trailer-chunked") expect(JSON.parse(row.response_trailers!)).toEqual([["X-Checksum", "abc"]]);
    const again = await httpsThroughProxy({ proxyPort: p.port, host: COLLECTOR, path: "/after-trailer", body: "{}", ca: [p.caPem] });
    expect(again.status).toBe(200);
  });

  it("answers 400 to a malformed request and keeps serving", async () => {
    const socket = await tlsThroughProxy(p.port, COLLECTOR, 443, [p.caPem]);
    const answer = await new Promise<string>((resolve) => {
      let text = "";
      socket.on("data", (d) => (text += d));
      socket.on("close", () => resolve(text));
      socket.on("error", () => resolve(text));
      socket.write("POST /x HTTP/1.1\r\nHost: a\r\nBad Header Without Colon\r\n\r\n");
    });
    expect(answer).toMatch(/^HTTP\/1.1 400/);
    // A CONNECT to a name that does not resolve is answered 502, nothing is relayed.
    await expect(connectTunnel(p.port, "garbage")).rejects.toMatchObject({ status: 502 });
    const res = await httpsThroughProxy({ proxyPort: p.port, host: COLLECTOR, path: "/after-malformed", body: "{}", ca: [p.caPem] });
    expect(res.status).toBe(200);
  });
});
