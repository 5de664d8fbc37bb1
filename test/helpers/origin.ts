import https from "node:https";
import type { AddressInfo } from "node:net";
import type { IncomingMessage, ServerResponse } from "node:http";
import { LeafIssuer } from "../../src/ca/leaf.js";
import type { CertificateAuthority } from "../../src/ca/authority.js";

export interface ReceivedRequest {
  method: string;
  url: string;
  rawHeaders: string[];
  body: Buffer;
}

export interface Origin {
  port: number;
  received: ReceivedRequest[];
  close(): Promise<void>;
}

type Handler = (req: ReceivedRequest, res: ServerResponse, raw: IncomingMessage) => void;

const collectorAnswer: Handler = (req, res) => {
  res.writeHead(200, { "content-type": "application/json", "time-delta-millis": "0" });
  res.end(JSON.stringify({ acc: req.body.length > 0 ? 1 : 0, origin: "local" }));
};

/**
 * A local HTTPS origin on 127.0.0.1 standing in for a Microsoft collector, with a certificate
 * from a test CA of its own (the proxy is told to trust it with --upstream-ca).
 */
export async function startOrigin(
  ca: CertificateAuthority,
  handler: Handler = collectorAnswer,
  options: { record?: boolean; port?: number } = {},
): Promise<Origin> {
  const issuer = await LeafIssuer.create(ca);
  const received: ReceivedRequest[] = [];
  const server = https.createServer({
    SNICallback: (name, cb) => cb(null, issuer.secureContextFor(name || "localhost")),
  });
  server.on("request", (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const r = { method: req.method ?? "", url: req.url ?? "", rawHeaders: req.rawHeaders, body: Buffer.concat(chunks) };
      if (options.record !== false) received.push(r);
      handler(r, res, req);
    });
  });
  await new Promise<void>((resolve) => server.listen(options.port ?? 0, "127.0.0.1", resolve));
  return {
    port: (server.address() as AddressInfo).port,
    received,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
