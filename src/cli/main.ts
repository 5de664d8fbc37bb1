import { Command, CommanderError } from "commander";
import { TOOL_VERSION } from "../version.js";
import { onSchemaUpdate } from "../store/database.js";
import { schemaUpdateLine } from "./terminal.js";
import { registerCaCommand } from "./ca.js";
import { registerEventCommands } from "./events.js";
import { registerReprocessCommand } from "./reprocess.js";
import { registerProxyCommand } from "./proxy.js";
import { registerSessionsCommand } from "./sessions.js";
import { registerReportCommand } from "./report.js";
import { registerUiCommand } from "./ui.js";
import { registerExportCommand } from "./export.js";
import { registerImportCommand } from "./import.js";
import { registerBundleCommand } from "./bundle.js";
import { registerCanaryCommand } from "./canary.js";
import { registerDiffCommand } from "./diff.js";
import { registerVerifyCommand } from "./verify.js";
import { registerDemoCommand } from "./demo.js";
import { registerStudyCommand } from "./study.js";

// A reader that stops early (`exhaust events --json | head`) closes the pipe: that is the reader's
// choice, not an error, so exit quietly as other Unix tools do instead of dying on EPIPE.
process.stdout.on("error", (e: NodeJS.ErrnoException) => {
  if (e.code === "EPIPE") process.exit(process.exitCode ?? 0);
  throw e;
});

// The first open of a database made by an older version updates its schema, which can take a while
// for a large capture: say so rather than look hung.
onSchemaUpdate((update) => process.stderr.write(schemaUpdateLine(update)));

const program = new Command()
  .name("exhaust")
  .description("Intercept, decode and classify Microsoft Office and Windows telemetry")
  .version(TOOL_VERSION)
  .showHelpAfterError("(run with --help for usage)")
  .exitOverride();

registerProxyCommand(program);
registerCaCommand(program);
registerSessionsCommand(program);
registerEventCommands(program);
registerReprocessCommand(program);
registerUiCommand(program);
registerReportCommand(program);
registerExportCommand(program);
registerImportCommand(program);
registerBundleCommand(program);
registerVerifyCommand(program);
registerDiffCommand(program);
registerCanaryCommand(program);
registerDemoCommand(program);
registerStudyCommand(program);

try {
  await program.parseAsync(process.argv);
} catch (e) {
  if (e instanceof CommanderError) {
    // --help and --version exit 0; everything commander rejects is a usage error.
    process.exitCode = e.exitCode === 0 ? 0 : 2;
  } else {
    throw e;
  }
}
