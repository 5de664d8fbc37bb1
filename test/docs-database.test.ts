import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { PACKAGE_ROOT } from "../src/paths.js";
import { openDatabase } from "../src/store/database.js";
import { tempDir } from "./helpers/proxy.js";

// docs/database.md is the schema's reference for anyone with `sqlite3`: every table, view and column the
// migrations create must be named there, and the migration count it states must be the real one.
describe("docs/database.md follows the migrations", () => {
  const doc = readFileSync(join(PACKAGE_ROOT, "docs", "database.md"), "utf8");
  const db = openDatabase(join(tempDir("exhaust-docs-db-"), "schema.db"));
  afterAll(() => db.close());

  const objects = db
    .prepare("SELECT name, type FROM sqlite_master WHERE type IN ('table','view') AND name NOT LIKE 'sqlite_%' ORDER BY name")
    .all() as { name: string; type: string }[];

  it("finds the schema", () => {
    expect(objects.length).toBeGreaterThan(5);
  });

  it("states the number of migrations", () => {
    const version = db.pragma("user_version", { simple: true }) as number;
    expect(doc).toContain(`(${version} in this version)`);
  });

  it.each(objects.map((o) => [o.name, o.type]))("names %s (%s) and each of its columns", (name) => {
    expect(doc, `table ${name}`).toContain("`" + name + "`");
    const columns = db.prepare(`SELECT name FROM pragma_table_info(?)`).all(name) as { name: string }[];
    const missing = columns.map((c) => c.name).filter((c) => !doc.includes("`" + c + "`"));
    expect(missing, `columns of ${name} not in docs/database.md`).toEqual([]);
  });
});
