/**
 * Classification against telemetry nobody here wrote (shared/data/real-world, read in place; CI keeps
 * shared/ beside the repository): what a privacy researcher would flag, table by table.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { classifyEvent, loadRulePacks } from "../src/classify/engine.js";
import type { ClassifiedField } from "../src/classify/types.js";
import { decodeUpload } from "../src/decode/registry.js";
import type { DecodedField } from "../src/decode/types.js";
import { REAL_WORLD_SAMPLES } from "./helpers/real-world.js";

const SAMPLES = REAL_WORLD_SAMPLES;
const haveSamples = existsSync(SAMPLES);
const packs = loadRulePacks();

interface Classified {
  sample: string;
  event: string;
  field: DecodedField;
  c: ClassifiedField;
}

function classifyBody(sample: string, path: string, contentType: string, body: string): Classified[] {
  const up = decodeUpload({ method: "POST", path, headers: [["Content-Type", contentType]], body: Buffer.from(body) });
  const out: Classified[] = [];
  for (const e of up.events) {
    const ce = classifyEvent(e, packs);
    e.fields.forEach((field, i) => out.push({ sample, event: e.name, field, c: ce.fields[i] }));
  }
  return out;
}

const read = (rel: string) => readFileSync(join(SAMPLES, rel), "utf8").replace(/^\uFEFF/, "");

/** HAR entries' request bodies. */
function harBodies(rel: string): Array<{ path: string; contentType: string; text: string }> {
  const har = JSON.parse(read(rel)) as {
    log: { entries: Array<{ request: { url: string; postData?: { mimeType?: string; text?: string } } }> };
  };
  return har.log.entries
    .filter((e) => e.request.postData?.text)
    .map((e) => ({
      path: new URL(e.request.url).pathname,
      contentType: e.request.postData!.mimeType ?? "application/json",
      text: e.request.postData!.text!,
    }));
}

/** The requests of an insta snapshot of HTTP requests (frigus02's exporter tests): request line, headers, body. */
function snapshotRequests(rel: string): Array<{ path: string; contentType: string; text: string }> {
  const text = read(rel)
    .split(/^---\n/m)
    .slice(2)
    .join("---\n");
  return text
    .split(/\n(?=POST )/)
    .filter((block) => block.startsWith("POST "))
    .map((block) => {
      const [head, ...rest] = block.split("\n\n");
      const path = head.split(" ")[1].split("?")[0];
      const ct = /content-type: (.*)/.exec(head)?.[1] ?? "application/json";
      return { path, contentType: ct, text: rest.join("\n\n").trim() };
    });
}

function allSamples(): Classified[] {
  const out: Classified[] = [];
  for (const b of harBodies("psappinsights/LastSession.json"))
    out.push(...classifyBody("psappinsights/LastSession.json", b.path, b.contentType, b.text));
  const dotnet = read("dotnet-cli/telemetry-lines.txt")
    .split("\n")
    .filter((l) => l.includes("{"))
    .map((l) => l.slice(l.indexOf("{")))
    .join("\n");
  out.push(...classifyBody("dotnet-cli", "/v2/track", "application/json", dotnet));
  for (const f of ["keka-remotedependency.json", "courselabs.json", "hfp-karate-lba.json", "hfp-karate-full.json"]) {
    out.push(...classifyBody(`ai-web-pastes/${f}`, "/v2/track", "application/json", read(`ai-web-pastes/${f}`)));
  }
  for (const snap of ["http_requests__live_metrics.snap", "http_requests__logs.snap", "http_requests__traces.snap"]) {
    for (const r of snapshotRequests(`frigus02/${snap}`)) out.push(...classifyBody(`frigus02/${snap}`, r.path, r.contentType, r.text));
  }
  out.push(
    ...classifyBody(
      "otel-onecollector",
      "/OneCollector/1.0/",
      "application/x-json-stream",
      read("otel-onecollector/LogRecordCommonSchemaJsonSerializerTests.expected.jsonl"),
    ),
  );
  return out;
}

describe.runIf(haveSamples)("classification of real captures (shared/data/real-world)", () => {
  const all = haveSamples ? allSamples() : [];
  const at = (sample: string, path: string) => {
    const hits = all.filter((x) => x.sample.startsWith(sample) && x.field.path === path);
    if (hits.length === 0)
      throw new Error(
        `no field ${path} in ${sample}: ${[...new Set(all.filter((x) => x.sample.startsWith(sample)).map((x) => x.field.path))].join(", ")}`,
      );
    return hits;
  };

  it("decodes every sample into events", () => {
    expect(new Set(all.map((x) => x.sample)).size).toBeGreaterThanOrEqual(9);
    expect(all.length).toBeGreaterThan(500);
  });

  it.each([
    // machine names
    ["psappinsights/LastSession.json", "tags.ai.device.id", "JOSVERL-Y1"],
    ["psappinsights/LastSession.json", "tags.ai.cloud.roleInstance", "josverl-Y1"],
    ["dotnet-cli", "tags.ai.cloud.roleInstance", "Wizard-PC"],
    ["frigus02/http_requests__live_metrics.snap", "MachineName", "Unknown"],
    ["frigus02/http_requests__live_metrics.snap", "[0].MachineName", "Unknown"],
    // user and session ids
    ["psappinsights/LastSession.json", "tags.ai.user.id", "josverl"],
    ["psappinsights/LastSession.json", "tags.ai.session.id", undefined],
    ["ai-web-pastes/keka", "tags.ai.user.id", "5EK2L"],
    ["ai-web-pastes/keka", "tags.ai.session.id", "FUZDt"],
    // per-machine ids, the same value in two fields alike
    ["dotnet-cli", "data.baseData.properties.Machine ID", undefined],
    ["dotnet-cli", "data.baseData.properties.Machine ID Old", undefined],
    ["dotnet-cli", "data.baseData.properties.devdeviceid", undefined],
    // a URL whose query carries the user's position
    ["ai-web-pastes/keka", "data.baseData.data", undefined],
    // pages the user visited, and where they came from
    ["ai-web-pastes/courselabs", "data.baseData.url", undefined],
    ["ai-web-pastes/courselabs", "data.baseData.properties.refUri", undefined],
    ["ai-web-pastes/hfp-karate-full", "data.baseData.url", undefined],
  ])("%s %s is personal", (sample, path, value) => {
    const hits = at(sample, path).filter((x) => value === undefined || x.field.value === value);
    expect(hits.length, `${sample} ${path}=${value}`).toBeGreaterThan(0);
    if (path === "data.baseData.data") {
      const geo = hits.filter((x) => String(x.field.value).includes("latlng="));
      expect(geo.length).toBeGreaterThan(0);
      for (const x of geo) expect(x.c.personal, String(x.field.value)).not.toBe("none");
      return;
    }
    for (const x of hits) expect(x.c.personal, `${path}=${JSON.stringify(x.field.value)} (${x.c.rule})`).not.toBe("none");
  });

  it("marks the dependency URL carrying a Google API key (key=AIza…) secret, and no field of the samples without one", () => {
    const secret = all.filter((x) => x.c.secret === true);
    expect(secret.length).toBeGreaterThan(0);
    for (const x of secret) expect(String(x.field.value), `${x.sample} ${x.field.path}`).toMatch(/[?&]key=AIza[0-9A-Za-z_-]{35}/);
    const withKey = all.filter((x) => typeof x.field.value === "string" && /[?&]key=AIza/.test(x.field.value));
    expect(withKey.filter((x) => x.c.secret !== true).map((x) => `${x.sample} ${x.field.path}`)).toEqual([]);
  });

  it.each([
    ["frigus02/http_requests__logs.snap", "data.baseData.message", "info! apple is 2.99"],
    ["frigus02/http_requests__logs.snap", "data.baseData.exceptions[0].message", "Foo broke"],
    ["otel-onecollector", "body", "hello world"],
    ["otel-onecollector", "formattedMessage", "goodbye world"],
  ])("%s %s %j is content", (sample, path, value) => {
    const hits = at(sample, path).filter((x) => x.field.value === value);
    expect(hits.length).toBeGreaterThan(0);
    for (const x of hits) expect(x.c.category, `${path}=${value} (${x.c.rule})`).toBe("content");
  });

  it("calls no number, version, GUID-shaped id, time or severity content", () => {
    const SEVERITY = /^(trace|debug|verbose|information|info|warn|warning|error|critical|fatal)$/i;
    const innocent = (v: unknown) =>
      typeof v === "number" ||
      typeof v === "boolean" ||
      (typeof v === "string" &&
        (/^[-+]?\d+(\.\d+)?$/.test(v) ||
          /^\d+(\.\d+){1,4}([-+.][\w.-]+)?$/.test(v) ||
          /^[{(]?[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}[})]?$/i.test(v) ||
          /^\d{4}-\d\d-\d\dT/.test(v) ||
          /^\d\d:\d\d:\d\d(\.\d+)?$/.test(v) ||
          SEVERITY.test(v)));
    const wrong = all.filter((x) => x.c.category === "content" && innocent(x.field.value));
    expect(wrong.map((x) => `${x.sample} ${x.field.path}=${JSON.stringify(x.field.value)} (${x.c.rule})`)).toEqual([]);
    // The severity fields themselves, checked by name as well.
    const severities = all.filter((x) => /severity/i.test(x.field.path));
    expect(severities.length).toBeGreaterThan(0);
    for (const x of severities) expect(x.c.category).not.toBe("content");
  });

  it("unwraps hex-wrapped text for classification and keeps the raw value (DiagTrack navigationUrlBytes)", () => {
    // The value as Get-DiagnosticData printed it on a real machine (rathbun/README.md).
    const readme = read("rathbun/README.md");
    const raw = /UrlBytes"\s*:\s*"(0x[0-9A-Fa-f]+)"/.exec(readme)?.[1];
    expect(raw).toBeDefined();
    const e = {
      index: 0,
      name: "Microsoft.WebBrowser.HistoryJournal.HJ_BeforeNavigateExtended",
      fields: [{ path: "navigationUrlBytes", part: "C" as const, value: raw!, type: "string" as const }],
    };
    const c = classifyEvent(e, packs).fields[0];
    expect(c.reasons).toContain("detector.wrapped-text");
    expect(c.personal).toBe("browsing-history");
    // What it wraps ("dwww.msn.com", a host name) is looked at too: here the URL-less host is no more than info.
    expect(c.category).not.toBe("content");
    expect(e.fields[0].value).toBe(raw);
  });
});
