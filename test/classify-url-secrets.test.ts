/**
 * Credentials inside URL fields: an API key, token, signature or authorization code in a URL's
 * query (names from classifiers/secrets.yaml) marks the field secret (detector.url-secret-query),
 * and exports redact the value like any other credential. Table-driven; the last test runs the
 * real CLI (import a HAR, export JSONL and HAR) on a real SQLite file.
 */
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { classifyEvent, loadRulePacks } from "../src/classify/engine.js";
import type { DecodedEvent, DecodedField } from "../src/decode/types.js";
import { createRedactor, REDACTED_PREFIX } from "../src/export/redaction.js";
import { secretDetectorIds } from "../src/export/learn-secrets.js";
import { minSecretValueLength, SECRETS_FILE, secretQueryValues } from "../src/secrets.js";
import { parse as parseYaml } from "yaml";
import { CLASSIFIERS_DIR } from "../src/paths.js";
import { openDatabase } from "../src/store/database.js";
import { fieldValuesByRule, fieldValuesByRuleSince } from "../src/store/export-queries.js";
import { SecretView } from "../src/web/secret-view.js";
import { runCli } from "./helpers/cli.js";
import { tempDir } from "./helpers/proxy.js";
import { harOfUploads } from "./helpers/har.js";

const packs = loadRulePacks();
const MAPS_KEY = "AIzaSyBjMHjIjlGlKEWP1eVri2xxs7-juzdOVQA";

const stringField = (path: string, value: string): DecodedField => ({ path, part: "C", value, type: "string" });
const classifyOne = (path: string, value: string) => {
  const e: DecodedEvent = { index: 0, name: "Microsoft.ApplicationInsights.RemoteDependency", fields: [stringField(path, value)] };
  return classifyEvent(e, packs).fields[0];
};

// [field path, value, the credential inside it or undefined]
const TABLE: Array<[string, string, string | undefined]> = [
  [
    "data.baseData.data",
    `GET https://maps.googleapis.com/maps/api/geocode/json?latlng=28.650389399999995,77.2002633&key=${MAPS_KEY}`,
    MAPS_KEY,
  ],
  ["data.baseData.target", "https://api.example.com/v1/items?api_key=4f9c2b7e1a8d3c6b&page=2", "4f9c2b7e1a8d3c6b"],
  ["data.baseData.url", "/api/orders?APIKEY=9b1deb4d3b7d4bad9bdd2b0d7b3dcb6d", "9b1deb4d3b7d4bad9bdd2b0d7b3dcb6d"],
  ["data.baseData.url", "https://myfunc.azurewebsites.net/api/HttpTrigger?code=Zm9vYmFyYmF6cXV4MTIz%3D%3D", "Zm9vYmFyYmF6cXV4MTIz=="],
  ["refUri", "https://acct.blob.core.windows.net/c/b.txt?sv=2022-11-02&sr=b&sig=a2V5c2lnbmF0dXJl%2Bx", "a2V5c2lnbmF0dXJl+x"],
  [
    "Data.NavigationUrl",
    "https://app.example.com/cb#access_token=eyJhbGciOiJIUzI1NiJ9.e30.sig&token_type=Bearer",
    "eyJhbGciOiJIUzI1NiJ9.e30.sig",
  ],
  ["data.baseData.name", "GET /echo?subscription-key=0123456789abcdef0123456789abcdef", "0123456789abcdef0123456789abcdef"],
  ["Data.Endpoint", "wss://live.example.com/socket?token=f3a9c0d1e2b4a5968778", "f3a9c0d1e2b4a5968778"],
  ["data.baseData.data", "https://maps.googleapis.com/maps/api/geocode/json?latlng=28.65,77.20", undefined],
  ["data.baseData.url", "https://example.com/?monkey=banana-bread-recipe", undefined],
  ["data.baseData.url", "https://example.com/search?keyword=annual+report", undefined],
  ["data.baseData.url", "https://example.com/?key=short", undefined],
  ["data.baseData.resultCode", "https://example.com/status?code=200", undefined],
  ["data.baseData.url", "https://ecs.office.com/config/v1/Office?clientId=abc&agents=Word", undefined],
  ["Data.Message", "the key= setting is documented at https://example.com/docs", undefined],
];

describe("a credential in a URL's query marks the field secret", () => {
  it.each(TABLE)("%s = %s", (path, value, credential) => {
    const c = classifyOne(path, value);
    expect(secretQueryValues(value)).toEqual(credential === undefined ? [] : [credential]);
    if (credential === undefined) {
      expect(c.secret).toBeUndefined();
      expect(c.reasons).not.toContain("detector.url-secret-query");
    } else {
      expect(c.secret).toBe(true);
      expect(c.reasons).toContain("detector.url-secret-query");
    }
  });

  it("keeps what else the URL is: the Maps URL with the user's position stays personal", () => {
    const c = classifyOne("data.baseData.data", TABLE[0][1]);
    expect(c.personal).toBe("direct-identifier");
    expect(c.reasons).toEqual(expect.arrayContaining(["detector.url-personal-query", "detector.url-secret-query"]));
  });
});

it("the detector and the exports count a credential from the one length classifiers/secrets.yaml sets", () => {
  const list = parseYaml(readFileSync(SECRETS_FILE, "utf8")) as { minValueLength: number };
  expect(minSecretValueLength()).toBe(list.minValueLength);
  // The detector pack does not say it again.
  const pack = parseYaml(readFileSync(join(CLASSIFIERS_DIR, "detectors", "secrets.yaml"), "utf8")) as {
    detectors: Array<{ id: string; match: Record<string, unknown> }>;
  };
  expect(pack.detectors.find((d) => d.match.type === "url-secret-query")?.match).toEqual({ type: "url-secret-query" });
  // At the length a value counts for both; one character shorter, for neither.
  const r = createRedactor(Buffer.alloc(32, 7));
  for (const n of [list.minValueLength, list.minValueLength - 1]) {
    const url = `https://api.example.com/v1/items?api_key=${"k".repeat(n)}`;
    const counts = n >= list.minValueLength;
    expect(classifyOne("data.baseData.target", url).secret === true, `detector, ${n} characters`).toBe(counts);
    expect(r.field("data.baseData.target", url) !== url, `export, ${n} characters`).toBe(counts);
  }
});

describe("exports redact such a field like any other credential", () => {
  const key = Buffer.alloc(32, 7);

  it.each(TABLE)("%s = %s", (path, value, credential) => {
    const r = createRedactor(key);
    const out = r.field(path, value);
    if (credential === undefined) {
      expect(out).toBe(value);
    } else {
      expect(String(out).startsWith(REDACTED_PREFIX)).toBe(true);
      // Learned: the same credential elsewhere in the export is replaced too.
      expect(r.text(`header value ${credential} here`)).not.toContain(credential);
    }
  });

  it("passes values through untouched with --include-secrets", () => {
    expect(createRedactor(undefined).field("data.baseData.data", TABLE[0][1])).toBe(TABLE[0][1]);
  });
});

describe("the CLI: an imported upload with an API key in a dependency URL", () => {
  const dir = tempDir("exhaust-url-secret-");
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("stores the field as classified secret, and neither JSONL nor HAR export carries the key", () => {
    const envelope = {
      name: "Microsoft.ApplicationInsights.0fdcec700ce5408589d99ae8ead9af66.RemoteDependency",
      time: "2022-03-01T10:00:00.000Z",
      iKey: "0fdcec70-0ce5-4085-89d9-9ae8ead9af66",
      tags: { "ai.session.id": "s1" },
      data: {
        baseType: "RemoteDependencyData",
        baseData: {
          ver: 2,
          name: "GET /maps/api/geocode/json",
          id: "|abc.1",
          resultCode: "200",
          duration: "00:00:00.120",
          success: true,
          type: "Ajax",
          data: TABLE[0][1],
          target: "maps.googleapis.com",
        },
      },
    };
    const har = harOfUploads([
      {
        url: "https://dc.services.visualstudio.com/v2/track",
        body: JSON.stringify([envelope]),
        mimeType: "application/json",
        startedDateTime: "2022-03-01T10:00:00.000Z",
      },
    ]);
    const harFile = join(dir, "in.har");
    writeFileSync(harFile, JSON.stringify(har));
    const db = join(dir, "exhaust.db");
    const imported = runCli(["import", harFile, "--db", db, "--session", "maps", "--json"]);
    expect(imported.status, imported.stderr).toBe(0);

    const events = runCli(["events", "--db", db, "--session", "maps", "--json"]);
    expect(events.status, events.stderr).toBe(0);
    expect(events.stdout).toContain("detector.url-secret-query");

    // The store finds the field by its classification; the UI's view learns the key from it and
    // keeps the body holding it out of sight.
    const handle = openDatabase(db);
    try {
      const sessionId = handle.prepare("SELECT id FROM sessions WHERE name = 'maps'").pluck().get() as number;
      expect(fieldValuesByRule(handle, sessionId, secretDetectorIds())).toEqual([{ path: "data.baseData.data", value: TABLE[0][1] }]);
      expect(fieldValuesByRuleSince(handle, 0, Number.MAX_SAFE_INTEGER, secretDetectorIds())).toHaveLength(1);
      expect(fieldValuesByRule(handle, sessionId, ["detector.no-such-detector"])).toEqual([]);
      const view = new SecretView(handle);
      expect(view.bodyHasSecret(Buffer.from(JSON.stringify([envelope])), [["Content-Type", "application/json"]])).toBe(true);
      expect(view.redact({ text: `key ${MAPS_KEY} again` }).text).not.toContain(MAPS_KEY);
    } finally {
      handle.close();
    }

    const certs = join(dir, "certs");
    // An explicit --certs must hold a CA (EXH_CERTS_NO_CA): the lab's, made once.
    expect(runCli(["ca", "init", "--certs", certs]).status).toBe(0);
    for (const [format, name] of [
      ["jsonl", "out.jsonl"],
      ["har", "out.har"],
    ] as const) {
      const file = join(dir, name);
      const r = runCli(["export", "--format", format, "--db", db, "--certs", certs, "--session", "maps", "--out", file]);
      expect(r.status, r.stderr).toBe(0);
      const text = readFileSync(file, "utf8");
      expect(text, format).not.toContain(MAPS_KEY);
      expect(text, format).toContain(REDACTED_PREFIX);
    }
  });
});
