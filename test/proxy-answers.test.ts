/**
 * The answers exhaust writes itself on a raw client socket (a refused target, an unreachable one)
 * and through the engine (an upstream failure) are one shape: the byte layout is pinned here.
 */
import net from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "./helpers/cli.js";
import { startTestProxy, type TestProxy } from "./helpers/proxy.js";

/** Sends `request` on a fresh connection to the proxy and returns everything it answers until it closes. */
function rawExchange(port: number, request: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, "127.0.0.1", () => s.write(request));
    const chunks: Buffer[] = [];
    s.on("data", (c: Buffer) => chunks.push(c));
    s.on("close", () => resolve(Buffer.concat(chunks).toString("utf8")));
    s.on("error", reject);
    s.setTimeout(10_000, () => s.destroy(new Error("no answer")));
  });
}

describe("exhaust's own answers on the wire", () => {
  let p: TestProxy;
  beforeAll(async () => {
    p = await startTestProxy();
  });
  afterAll(async () => {
    await p?.close();
  });

  it("a CONNECT to private space: 403, the code, the length of its one line, and a close", async () => {
    const raw = await rawExchange(p.port, "CONNECT 10.1.2.3:443 HTTP/1.1\r\nHost: 10.1.2.3:443\r\n\r\n");
    const body = "exhaust: relay to 10.1.2.3:443 refused: 10.1.2.3 is private address space; --allow-private relays there\n";
    expect(raw).toBe(
      "HTTP/1.1 403 Forbidden\r\n" +
        "Content-Type: text/plain; charset=utf-8\r\n" +
        "X-Exhaust-Error: EXH_TARGET_REFUSED\r\n" +
        `Content-Length: ${Buffer.byteLength(body)}\r\n` +
        "Connection: close\r\n" +
        "\r\n" +
        body,
    );
  });
});

describe("exhaust's own answers for an unreachable mapped target", () => {
  let p: TestProxy;
  let dead: number;
  beforeAll(async () => {
    dead = await freePort();
    p = await startTestProxy({ mapHost: [`www.example.org=127.0.0.1:${dead}`] });
  });
  afterAll(async () => {
    await p?.close();
  });

  it("a tunnel whose upstream refuses: 502 with the code and the reason, in the same layout", async () => {
    const raw = await rawExchange(p.port, "CONNECT www.example.org:443 HTTP/1.1\r\nHost: www.example.org:443\r\n\r\n");
    const head = raw.slice(0, raw.indexOf("\r\n\r\n") + 4);
    const body = raw.slice(head.length);
    expect(body).toMatch(/^exhaust: .*ECONNREFUSED.*\n$/);
    expect(head).toBe(
      "HTTP/1.1 502 Bad Gateway\r\n" +
        "Content-Type: text/plain; charset=utf-8\r\n" +
        "X-Exhaust-Error: EXH_UPSTREAM_FAILED\r\n" +
        `Content-Length: ${Buffer.byteLength(body)}\r\n` +
        "Connection: close\r\n" +
        "\r\n",
    );
  });
});
