import { describe, expect, it } from "vitest";
import { createHash } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { openDatabase } from "../src/store/database.js";
import { httpsThroughProxy } from "./helpers/client.js";
import { spawnProxy, waitExit } from "./helpers/cli.js";
import { startOrigin } from "./helpers/origin.js";
import { makeOriginAuthority, tempDir } from "./helpers/proxy.js";

const HOST = "mobile.events.data.microsoft.com";
const sha256 = (b: Buffer) => createHash("sha256").update(b).digest("hex");

describe("crash safety", () => {
  it("keeps every upload the client saw acknowledged when the proxy is killed with SIGKILL", async () => {
    const dir = tempDir();
    const originCa = await makeOriginAuthority();
    const origin = await startOrigin(originCa);
    writeFileSync(join(dir, "origin-ca.pem"), originCa.certPem);
    const args = [
      "--db",
      join(dir, "exhaust.db"),
      "--certs",
      join(dir, "certs"),
      "--session",
      "crash",
      "--map-host",
      `${HOST}=127.0.0.1:${origin.port}`,
      "--upstream-ca",
      join(dir, "origin-ca.pem"),
    ];
    const first = await spawnProxy(args);
    const ca = readFileSync(join(dir, "certs", "exhaust-ca.pem"), "utf8");
    const uploads = Array.from({ length: 200 }, (_, i) => Buffer.from(`{"name":"Office.Crash","seq":${i}}\n`.repeat(20)));
    const acknowledged: Buffer[] = [];
    const failed: Buffer[] = [];
    let next = 0;
    let killed = false;
    const worker = async () => {
      while (next < uploads.length) {
        const body = uploads[next++];
        try {
          const res = await httpsThroughProxy({ proxyPort: first.port, host: HOST, path: "/OneCollector/1.0/", body, ca: [ca] });
          if (res.status === 200) acknowledged.push(body);
          else failed.push(body);
        } catch {
          failed.push(body);
        }
        if (!killed && acknowledged.length >= 60) {
          killed = true;
          first.child.kill("SIGKILL");
        }
      }
    };
    await Promise.all([worker(), worker(), worker(), worker()]);
    await waitExit(first.child);
    expect(killed).toBe(true);
    expect(failed.length).toBeGreaterThan(0);

    // Restart on the same database and session; send what failed.
    const second = await spawnProxy(args);
    for (const body of failed) {
      const res = await httpsThroughProxy({ proxyPort: second.port, host: HOST, path: "/OneCollector/1.0/", body, ca: [ca] });
      expect(res.status).toBe(200);
    }
    second.child.kill("SIGTERM");
    await waitExit(second.child);

    const db = openDatabase(join(dir, "exhaust.db"));
    const stored = new Set((db.prepare("SELECT request_body_sha256 AS s FROM exchanges").all() as Array<{ s: string }>).map((r) => r.s));
    const lost = acknowledged.filter((b) => !stored.has(sha256(b)));
    expect(lost).toHaveLength(0);
    for (const b of uploads) expect(stored.has(sha256(b))).toBe(true);
    // The chain went on across the restart: consecutive seq, each prev_hash the previous hash.
    const chain = db.prepare("SELECT seq, prev_hash, hash FROM exchanges ORDER BY seq").all() as Array<{
      seq: number;
      prev_hash: string;
      hash: string;
    }>;
    chain.forEach((r, i) => {
      expect(r.seq).toBe(i + 1);
      if (i > 0) expect(r.prev_hash).toBe(chain[i - 1].hash);
    });
    db.close();
    await origin.close();
  });
});
