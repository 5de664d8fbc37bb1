/**
 * What a proxy built on Node's HTTP stack pays before it does anything of its own (issue 19, goal
 * 1): a relay made of `http.Server` and `https.request` and nothing else. It answers CONNECT,
 * terminates TLS with a leaf of the origin's CA (which the load trusts), and forwards each request
 * to the origin on a keep-alive agent, the body and the answer streamed as Node's `pipe` streams
 * them. No capture, hashing, addons, decoding or log. Run as its own process, like the origin, so
 * /proc reads its threads alone. Prints its port on stdout.
 *
 * Without an origin port it answers every request itself, as exhaust's sinkhole does (200 and a
 * small JSON body once the upload is read): the first-contact section's floor, a CONNECT and a TLS
 * handshake on Node with nothing of exhaust's (issue 19, goal 3).
 * Usage: node dist/bench/node-relay.js <origin CA dir> [origin port]
 */
import http from "node:http";
import https from "node:https";
import type { Socket } from "node:net";
import { TLSSocket } from "node:tls";
import { loadAuthority } from "../src/ca/authority.js";
import { LeafIssuer } from "../src/ca/leaf.js";

const ca = await loadAuthority(process.argv[2]);
const originPort = process.argv[3] === undefined ? undefined : Number(process.argv[3]);
const issuer = await LeafIssuer.create(ca);
const agent = new https.Agent({ keepAlive: true, maxSockets: 256, ca: [ca.certPem] });

const server = http.createServer((req, res) => {
  if (originPort === undefined) {
    req.resume();
    req.on("end", () => {
      res.writeHead(200, { "content-type": "application/json" });
      res.end('{"acc":1}');
    });
    return;
  }
  const sni = (req.socket as TLSSocket).servername || "localhost";
  const upstream = https.request(
    { host: "127.0.0.1", port: originPort, servername: sni, method: req.method, path: req.url, headers: req.rawHeaders, agent },
    (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    },
  );
  // As exhaust's upstream sockets: without Nagle (tls.connect ignores the agent's noDelay).
  upstream.once("socket", (s: Socket) => s.setNoDelay(true));
  upstream.on("error", () => res.destroy());
  req.pipe(upstream);
});

server.on("connect", (req: http.IncomingMessage, socket: Socket) => {
  const host = (req.url ?? "").replace(/:\d+$/, "");
  socket.write("HTTP/1.1 200 Connection Established\r\n\r\n");
  const secure = new TLSSocket(socket, { isServer: true, secureContext: issuer.secureContextFor(host) });
  secure.on("error", () => secure.destroy());
  server.emit("connection", secure);
});

server.listen(0, "127.0.0.1", () => process.stdout.write(`${(server.address() as { port: number }).port}\n`));
process.on("SIGTERM", () => {
  server.closeAllConnections();
  agent.destroy();
  server.close(() => process.exit(0));
});
