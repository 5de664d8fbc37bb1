import { afterAll, describe, expect, it } from "vitest";
import { createHash } from "node:crypto";
import { rmSync } from "node:fs";
import { join } from "node:path";
import { runCli } from "./helpers/cli.js";
import { tempDir } from "./helpers/proxy.js";
import { openDatabase } from "../src/store/database.js";
import { base64Alignments, CanaryMatcher, newCanaryToken } from "../src/verify/canary.js";

describe("exhaust canary new", () => {
  const dir = tempDir("exhaust-canary-");
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("prints unique tokens and records them with the label", () => {
    const db = join(dir, "lab.db");
    const r = runCli(["canary", "new", "--count", "5", "--label", "Q3 budget.docx", "--db", db]);
    expect(r.status).toBe(0);
    const tokens = r.stdout.trim().split("\n");
    expect(tokens).toHaveLength(5);
    expect(new Set(tokens).size).toBe(5);
    for (const t of tokens) expect(t).toMatch(/^exh[a-z2-7]{20}$/);
    const rw = openDatabase(db);
    const rows = rw.prepare("SELECT token, label FROM canaries ORDER BY token").all() as Array<{ token: string; label: string }>;
    rw.close();
    expect(rows.map((x) => x.token)).toEqual([...tokens].sort());
    expect(new Set(rows.map((x) => x.label))).toEqual(new Set(["Q3 budget.docx"]));
    expect(runCli(["canary", "list", "--db", db]).stdout).toContain(tokens[0]);
    expect(runCli(["canary", "new", "--count", "0", "--db", db]).status).toBe(2);
  });
});

describe("canary forms", () => {
  const token = newCanaryToken();
  const matcher = new CanaryMatcher([token]);
  const formsIn = (text: string) => matcher.search(text).map((h) => h.form);
  const latin1 = (b: Buffer) => b.toString("latin1");

  it("finds the token as it is, in lower/upper case, percent-encoded and as UTF-16LE", () => {
    expect(formsIn(`x=${token}&y`)).toEqual(["plain"]);
    expect(formsIn(`"${token.toUpperCase()}"`)).toEqual(["upper-case"]);
    expect(formsIn([...token].map((c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`).join(""))).toEqual(["url-encoded"]);
    expect(formsIn(latin1(Buffer.concat([Buffer.from([0x41, 0]), Buffer.from(token, "utf16le")])))).toEqual(["utf-16le"]);
  });

  it.each([0, 1, 2, 3, 4, 5])("finds base64 of the token inside longer data at offset %i", (offset) => {
    const data = Buffer.concat([Buffer.alloc(offset, 0xa5), Buffer.from(token), Buffer.from([0xff, 0x00, 0x17])]);
    expect(formsIn(data.toString("base64"))).toContain("base64");
    expect(formsIn(data.toString("base64url"))).toEqual(expect.arrayContaining([expect.stringMatching(/^base64/)]));
  });

  it("gives every alignment only characters the token alone decides", () => {
    const [a0, a1, a2] = base64Alignments(Buffer.from(token));
    for (const prefix of [Buffer.from([0]), Buffer.from([0xff])]) {
      expect(Buffer.concat([prefix, Buffer.from(token), Buffer.from([0xff])]).toString("base64")).toContain(a1);
      expect(Buffer.concat([prefix, prefix, Buffer.from(token), Buffer.from([0])]).toString("base64")).toContain(a2);
    }
    expect(Buffer.from(token).toString("base64")).toContain(a0);
  });

  it.each(["md5", "sha1", "sha256"])("finds the %s digest in lower and upper case hex", (algorithm) => {
    const hex = createHash(algorithm).update(token).digest("hex");
    expect(formsIn(`h=${hex}`)).toEqual([`${algorithm}-hex`]);
    expect(formsIn(`h=${hex.toUpperCase()}`)).toEqual([`${algorithm}-hex`]);
    const ofUpper = createHash(algorithm).update(token.toUpperCase()).digest("hex");
    expect(formsIn(ofUpper)).toEqual([`${algorithm}-hex (of upper-case)`]);
  });

  it("finds nothing for another token or random data", () => {
    const other = newCanaryToken();
    expect(formsIn(`${other} ${Buffer.from(other).toString("base64")} ${createHash("sha256").update(other).digest("hex")}`)).toEqual([]);
    expect(formsIn(createHash("sha512").update(token).digest("base64"))).toEqual([]);
  });
});
