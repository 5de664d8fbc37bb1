/**
 * Fills a named session of a shared database through the real proxy in sinkhole mode: each upload
 * goes over a real TLS connection, then the helper waits until the processing thread has decoded
 * and classified every exchange, and stops the proxy. Several calls on one database file give
 * several sessions (baseline / policy applied) for verify and diff.
 */
import { httpsThroughProxy } from "./client.js";
import { eventually, startTestProxy, type TestProxy } from "./proxy.js";

export interface Upload {
  host: string;
  path?: string;
  headers?: Record<string, string>;
  body: Buffer | Uint8Array;
}

export const JSON_PATH = "/OneCollector/1.0/";
export const JSON_HEADERS = { "content-type": "application/x-json-stream" };

export async function captureSession(
  dbFile: string,
  session: string,
  uploads: Upload[],
  extra?: (p: TestProxy) => Promise<void>,
): Promise<void> {
  const p = await startTestProxy({ mode: "sinkhole", db: dbFile, session });
  try {
    for (const u of uploads) {
      const res = await httpsThroughProxy({
        proxyPort: p.port,
        host: u.host,
        path: u.path ?? JSON_PATH,
        headers: u.headers ?? JSON_HEADERS,
        body: Buffer.from(u.body),
        ca: [p.caPem],
      });
      if (res.status !== 200) throw new Error(`upload to ${u.host} answered ${res.status}`);
    }
    if (extra) await extra(p);
    await eventually(() => {
      const r = p.db
        .prepare(
          `SELECT COUNT(*) AS n, SUM(x.classified_with IS NULL) AS pending FROM exchanges x JOIN sessions s ON s.id = x.session_id WHERE s.name = ?`,
        )
        .get(session) as { n: number; pending: number | null };
      return r.n === uploads.length && (r.pending ?? 0) === 0;
    }, 15_000);
  } finally {
    await p.close();
  }
}
