import type { Command } from "commander";
import { createLogger } from "../log.js";
import { DEFAULT_DB_FILE } from "../paths.js";
import { parseHostPort } from "../proxy/options.js";
import { startUiServer } from "../web/server.js";
import { readCompleted } from "./complete.js";
import { runCommand } from "./run.js";

export const UI_DEFAULT_LISTEN = "127.0.0.1:8081";

export function registerUiCommand(program: Command): void {
  program
    .command("ui")
    .description("browse the database in a local, read-only web UI")
    .option("--listen <host:port>", "address to listen on (beyond loopback a token is required and printed)", UI_DEFAULT_LISTEN)
    .option("--db <file>", "database file", DEFAULT_DB_FILE)
    .option("--host-name <name...>", "more names the UI answers to in Host (e.g. this machine's DNS name); others get 421")
    .action((opts: { listen: string; db: string; hostName?: string[] }) =>
      runCommand(async () => {
        const listen = parseHostPort("--listen", opts.listen, "127.0.0.1");
        // Every session decoded before the first page is served (the server itself only reads); a
        // session a running proxy still decodes is not waited for: the UI shows its backlog.
        (await readCompleted(opts.db, () => ({}), { waitForProxy: false })).db.close();
        const log = createLogger();
        const ui = await startUiServer({ dbFile: opts.db, host: listen.host, port: listen.port, log, hostNames: opts.hostName });
        // The address (with the token, when one is needed) goes to stdout for the user; logs go to stderr.
        process.stdout.write(ui.token ? `exhaust ui: ${ui.url}?token=${ui.token}\n` : `exhaust ui: ${ui.url}\n`);
        if (ui.token)
          process.stdout.write("listening beyond loopback: every request needs the token above (?token= once, then a cookie)\n");
        log.info({ listen: `${ui.host}:${ui.port}`, db: opts.db, tokenRequired: ui.token !== undefined }, "ui listening");
        await new Promise<void>((resolve) => {
          process.once("SIGINT", resolve);
          process.once("SIGTERM", resolve);
        });
        await ui.close();
      }),
    );
}
