import { isExhaustError } from "../errors.js";

/**
 * Runs a command body and turns failures into the CLI contract: one line on stderr naming the
 * problem, exit 2 for usage/input errors (ExhaustError says which), 1 otherwise.
 */
export async function runCommand(body: () => Promise<number | void> | number | void): Promise<void> {
  try {
    const code = await body();
    if (typeof code === "number") process.exitCode = code;
  } catch (e) {
    if (isExhaustError(e)) {
      process.stderr.write(`exhaust: ${e.message} [${e.code}]\n`);
      process.exitCode = e.exitCode;
      return;
    }
    process.stderr.write(`exhaust: unexpected error: ${(e as Error)?.stack ?? String(e)}\n`);
    process.exitCode = 1;
  }
}

export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}
