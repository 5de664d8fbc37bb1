/**
 * The benchmark's stand-in collector, run as its own process so that the load generator, the proxy
 * and the origin do not share an event loop. Prints its port on stdout.
 * Usage: node dist/bench/origin-server.js <origin CA dir>
 */
import { loadAuthority } from "../src/ca/authority.js";
import { startOrigin } from "../test/helpers/origin.js";

const ca = await loadAuthority(process.argv[2]);
const origin = await startOrigin(
  ca,
  (_req, res) => {
    res.writeHead(200, { "content-type": "application/json" });
    res.end('{"acc":1}');
  },
  { record: false },
);
process.stdout.write(`${origin.port}\n`);
process.on("SIGTERM", () => void origin.close().then(() => process.exit(0)));
