/**
 * Child of bench/run.ts's first-contact section: keeps CONNECTIONS keep-alive connections uploading
 * 20 KB bodies through the proxy at PORT until its standard input closes, then prints its
 * LoadResult as JSON. The load runs in its own process so that the process measuring first-contact
 * handshakes has an idle event loop: its figures are then the proxy's latency, not the queue of a
 * client that is also encrypting eight uploads.
 *
 * Usage: node dist/bench/upload-child.js PORT CA_FILE HOST CONNECTIONS
 */
import { readFileSync } from "node:fs";
import { tlsThroughProxy } from "../test/helpers/client.js";
import { runLoad, telemetryUploadBody } from "./load.js";

const [port, caFile, host, connections] = process.argv.slice(2);
const ca = readFileSync(caFile, "utf8");
let done = false;
process.stdin.on("end", () => (done = true));
process.stdin.resume();
const result = await runLoad({
  connections: Number(connections),
  durationMs: 600_000,
  warmupMs: 0,
  openSocket: () => tlsThroughProxy(Number(port), host, 443, [ca]),
  host,
  path: "/OneCollector/1.0/",
  body: telemetryUploadBody(),
  stopWhen: () => done,
});
process.stdout.write(`${JSON.stringify(result)}\n`);
