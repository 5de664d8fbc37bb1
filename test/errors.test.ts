import { describe, expect, it } from "vitest";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { ERROR_DEFINITIONS, errorMessage, exhaustError, type ErrorCode } from "../src/errors.js";
import { errorInfo } from "../src/proxy/relay.js";
import { PACKAGE_ROOT } from "../src/paths.js";

describe("error codes", () => {
  const doc = readFileSync(join(PACKAGE_ROOT, "docs", "errors.md"), "utf8");
  const documented = new Map(
    [...doc.matchAll(/^\| `(EXH_[A-Z_]+)` \| (\d) \|\s*(\d*)\s*\|/gm)].map((m) => [
      m[1],
      { exit: Number(m[2]), http: m[3] ? Number(m[3]) : undefined },
    ]),
  );

  it("are all documented in docs/errors.md with their exit code and HTTP status, and the doc lists no dead code", () => {
    const defined = Object.keys(ERROR_DEFINITIONS).sort();
    expect([...documented.keys()].sort()).toEqual(defined);
    for (const code of defined as ErrorCode[]) {
      const def: { exitCode: number; httpStatus?: number } = ERROR_DEFINITIONS[code];
      expect(documented.get(code)).toEqual({ exit: def.exitCode, http: def.httpStatus });
    }
  });

  it("fill their message templates and keep code and cause", () => {
    const cause = new Error("boom");
    const e = exhaustError("EXH_OPT_INVALID", { option: "--mode", reason: "nope" }, cause);
    expect(e.message).toBe("invalid option --mode: nope");
    expect(e.code).toBe("EXH_OPT_INVALID");
    expect(e.exitCode).toBe(2);
    expect(e.cause).toBe(cause);
  });

  it("give an exchange the code and the filled message, without making an error", () => {
    expect(errorInfo("EXH_HOST_MISMATCH", { host: "a.example:80", target: "a.example:443" })).toEqual({
      code: "EXH_HOST_MISMATCH",
      message: "Host header a.example:80 differs from the connection's target a.example:443; the request went to a.example:443",
    });
    // The thrown error says the same.
    expect(exhaustError("EXH_HOST_MISMATCH", { host: "a.example:80", target: "a.example:443" }).message).toBe(
      errorInfo("EXH_HOST_MISMATCH", { host: "a.example:80", target: "a.example:443" }).message,
    );
    // A parameter left out stays visible in the message rather than turning into "undefined".
    expect(errorMessage("EXH_HOST_MISMATCH", { host: "h:80" })).toContain("{target}");
  });
});
