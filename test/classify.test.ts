import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { parse as parseYaml } from "yaml";
import { CLASSIFIERS_DIR } from "../src/paths.js";
import type { DecodedEvent, DecodedField, FieldValue } from "../src/decode/types.js";
import { classifyEvent, classifyRequest, detectValue, eventGroup, loadRulePacks } from "../src/classify/engine.js";
import type { ClassifiedField } from "../src/classify/types.js";
import { FieldRuleSchema } from "../src/classify/schema.js";
import { isSecretHeaderName, isSecretParam } from "../src/secrets.js";
import type { RawHeaders } from "../src/types.js";
import { makeField } from "./helpers/decode.js";

const packs = loadRulePacks();

let nextIndex = 0;
const field = makeField;
function event(name: string, fields: DecodedField[]): DecodedEvent {
  return { index: nextIndex++, name, fields };
}

// ---------------------------------------------------------------------------------------------
// Table-driven from the rule files: every detector's own examples.

type Example = string | { value: string; path: string };
interface DetectorYaml {
  id: string;
  examples: { positive: Example[]; negative: Example[] };
}
const detectorDir = join(CLASSIFIERS_DIR, "detectors");
const detectorDefs: Array<DetectorYaml & { file: string }> = readdirSync(detectorDir)
  .filter((f) => f.endsWith(".yaml"))
  .sort()
  .flatMap((file) =>
    ((parseYaml(readFileSync(join(detectorDir, file), "utf8")) as { detectors: DetectorYaml[] }).detectors ?? []).map((d) => ({
      ...d,
      file,
    })),
  );
const asExample = (e: Example) => (typeof e === "string" ? { value: e, path: "Data.Value" } : e);

describe("detector examples from classifiers/detectors/*.yaml", () => {
  it("cover every loaded detector, each with positive and negative examples", () => {
    expect(detectorDefs.map((d) => d.id).sort()).toEqual(packs.detectorList.map((d) => d.id).sort());
    for (const d of detectorDefs) {
      expect(d.examples.positive.length, d.id).toBeGreaterThan(0);
      expect(d.examples.negative.length, d.id).toBeGreaterThan(0);
    }
  });

  describe.each(detectorDefs.map((d) => [d.id, d] as const))("%s", (id, def) => {
    it.each(def.examples.positive.map((e) => [JSON.stringify(e), asExample(e)] as const))("detects %s", (_, e) => {
      expect(detectValue(e.value, e.path, packs)).toContain(id);
    });
    it.each(def.examples.negative.map((e) => [JSON.stringify(e), asExample(e)] as const))("does not detect %s", (_, e) => {
      expect(detectValue(e.value, e.path, packs)).not.toContain(id);
    });
  });
});

// ---------------------------------------------------------------------------------------------
// The acceptance event

describe("an Office-like event with content, an untagged e-mail address and common fields", () => {
  const sentence = "Please check whether the salary overview for the board meeting on Friday is complete.";
  const ev = event("Office.Word.FileOpen.UserInitiatedOpen", [
    field("Data.Doc.FileName", "C:\\Users\\jdoe\\Documents\\Salaries 2019.xlsx"),
    field("Data.SpellingContext", sentence),
    field("Data.Reviewer", "jan.devries@contoso.com"),
    field("ext.device.localId", "s:11111111-2222-4333-8444-555555555555", undefined, "A"),
    field("App.Version", "16.0.17029.20108"),
    field("Activity.Success", true),
  ]);
  const r = classifyEvent(ev, packs);
  const [fileName, text, mail, device, version, success] = r.fields;

  it("has a 14-word sentence", () => {
    expect(sentence.split(/\s+/)).toHaveLength(14);
  });

  it("classifies the file path as content, with its rule id and findings", () => {
    expect(fileName.category).toBe("content");
    expect(fileName.rule).toBe("detector.windows-path");
    expect(fileName.reasons).toEqual(
      expect.arrayContaining(["detector.windows-path", "detector.document-file-name", "detector.user-profile-path"]),
    );
    const codes = fileName.findings?.map((f) => f.code);
    expect(codes).toEqual(expect.arrayContaining(["content.in-diagnostic", "declared.untagged-content"]));
    // the profile folder names the user
    expect(fileName.personal).toBe("direct-identifier");
  });

  it("classifies the sentence as content", () => {
    expect(text.category).toBe("content");
    expect(text.rule).toBe("detector.free-text");
    expect(text.findings?.map((f) => f.code)).toContain("content.in-diagnostic");
  });

  it("marks the untagged e-mail address personal, with a declared-vs-observed finding", () => {
    expect(mail.personal).toBe("direct-identifier");
    expect(mail.category).toBe("diagnostic");
    expect(mail.rule).toBe("detector.email");
    expect(mail.reasons).toContain("event.default.required");
    expect(mail.findings?.map((f) => f.code)).toEqual(["declared.untagged-pii"]);
  });

  it("marks ext.device.localId a pseudonymous diagnostic id by its Part A rule", () => {
    expect(device).toMatchObject({ category: "diagnostic", personal: "pseudonymous-id", rule: "field.part-a.device-localid" });
    expect(device.findings).toBeUndefined();
  });

  it("classifies App.Version and Activity.Success as plain diagnostic data", () => {
    expect(version).toMatchObject({ category: "diagnostic", personal: "none", rule: "field.office.app" });
    expect(success).toMatchObject({
      category: "diagnostic",
      personal: "none",
      rule: "field.office.activity",
      reasons: ["field.office.activity"],
    });
  });

  it("gives the event its group and makes it content as a whole", () => {
    expect(r.group).toBe("required");
    expect(r.groupRule).toBe("event.office.Office.Word.FileOpen.UserInitiatedOpen");
    expect(r.catalogCategory).toBe("Product and service usage");
    expect(r.subtype).toBe("Application feature success");
    expect(r.eventCategory).toBe("content");
    expect(r.fields).toHaveLength(ev.fields.length);
    expect(r.findings.map((f) => f.fieldPath)).toEqual(
      expect.arrayContaining(["Data.Doc.FileName", "Data.SpellingContext", "Data.Reviewer"]),
    );
  });

  it("gives every result a known rule id, confidence in 0..1 and the winner first in reasons", () => {
    for (const f of r.fields) {
      expect(packs.rules.has(f.rule), f.rule).toBe(true);
      for (const reason of f.reasons) expect(packs.rules.has(reason), reason).toBe(true);
      expect(f.reasons[0]).toBe(f.rule);
      expect(f.confidence).toBeGreaterThan(0);
      expect(f.confidence).toBeLessThanOrEqual(1);
    }
  });
});

// ---------------------------------------------------------------------------------------------
// Never content

describe("numbers, booleans, versions, locales and GUIDs are never content", () => {
  const groups = ["Office.Word.FileOpen.UserInitiatedOpen", "Office.Licensing.Activation", "Some.Unknown.Event"];
  const paths = ["Data.Value", "Data.Doc.FileName", "Data.Text", "ext.device.localId", "Data.SessionId"];
  const check = (value: FieldValue, type?: DecodedField["type"]) => {
    for (const name of groups) {
      for (const path of paths) {
        const f = field(path, value);
        if (type) f.type = type;
        const c: ClassifiedField = classifyEvent(event(name, [f]), packs).fields[0];
        if (c.category === "content") return false;
      }
    }
    return true;
  };
  const versionString = fc.array(fc.nat({ max: 99_999 }), { minLength: 2, maxLength: 5 }).map((parts) => parts.join("."));
  const locale = fc.constantFrom("en", "nl", "de", "fr", "zh", "es", "pt", "ja").chain((l) =>
    fc.oneof(
      fc.constant(l),
      fc.constantFrom("US", "NL", "DE", "GB", "BR", "CN").map((r) => `${l}-${r}`),
      fc.constantFrom("Hans-CN", "Hant-TW", "Latn-RS").map((s) => `${l}-${s}`),
      fc.constant(`${l}-419`),
    ),
  );

  it("numbers", () => fc.assert(fc.property(fc.oneof(fc.integer(), fc.double({ noNaN: true })), (n) => check(n))));
  it('a number string that reads as hex or base64 is still a number (2056297241 spells " V)rA" as hex)', () => {
    expect(check("2056297241")).toBe(true);
    expect(check("123456789012")).toBe(true);
  });
  it("numbers as strings", () =>
    fc.assert(fc.property(fc.oneof(fc.integer(), fc.double({ noNaN: true, noDefaultInfinity: true })), (n) => check(String(n)))));
  it("big integers as decimal strings (int64 typed)", () => fc.assert(fc.property(fc.bigInt(), (n) => check(n.toString(), "int64"))));
  it("booleans", () => fc.assert(fc.property(fc.boolean(), (b) => check(b))));
  it("GUID strings, bare, braced, prefixed, upper case", () =>
    fc.assert(
      fc.property(fc.uuid(), fc.constantFrom("", "s:", "r:", "w:", "{"), fc.boolean(), (u, prefix, upper) => {
        const g = upper ? u.toUpperCase() : u;
        return check(prefix === "{" ? `{${g}}` : `${prefix}${g}`) && check(g, "guid");
      }),
    ));
  it("version strings", () => fc.assert(fc.property(versionString, fc.boolean(), (v, withV) => check(withV ? `v${v}` : v))));
  it("locales", () => fc.assert(fc.property(locale, (l) => check(l))));
  it("arrays of numbers and GUIDs", () => fc.assert(fc.property(fc.array(fc.oneof(fc.integer(), fc.uuid())), (a) => check(a))));
});

// ---------------------------------------------------------------------------------------------
// Precedence

describe("precedence", () => {
  const one = (name: string, f: DecodedField) => classifyEvent(event(name, [f]), packs).fields[0];

  it("the customer-content declaration wins, without an untagged finding", () => {
    const c = one("Office.Word.FileOpen.UserInitiatedOpen", field("Data.Doc.FileName", "C:\\Data\\Plan.docx", { customerContent: true }));
    expect(c.category).toBe("content");
    expect(c.rule).toBe("declared.customer-content");
    expect(c.findings?.map((f) => f.code) ?? []).not.toContain("declared.untagged-content");
    expect(c.reasons).toContain("detector.windows-path");
  });

  it("a declared PII kind sets the personal kind; a matching value raises no finding", () => {
    const c = one("Office.Word.FileOpen.UserInitiatedOpen", field("Data.Mail", "jdoe@contoso.com", { piiKind: 9 }));
    expect(c.personal).toBe("direct-identifier");
    expect(c.rule).toBe("declared.pii.smtp-address");
    expect(c.category).toBe("diagnostic");
    expect(c.findings).toBeUndefined();
  });

  it("a declared mail subject is content", () => {
    const c = one("Office.Outlook.Desktop.Something", field("Data.Subject", "lunch", { piiKind: 5 }));
    expect(c).toMatchObject({ category: "content", rule: "declared.pii.mail-subject" });
  });

  it("a field rule wins over the event default, and over identifier detectors' personal kind", () => {
    const c = one("Some.Unknown.Event", field("Event.Id", "4f0c8a1e-2b3d-4c5e-8f90-123456789abc.1"));
    expect(c).toMatchObject({ category: "diagnostic", personal: "none", rule: "field.office.event" });
    expect(c.reasons).toContain("detector.guid");
  });

  it("a GUID in an unclaimed id field is a pseudonymous id; elsewhere it is just an identifier", () => {
    const id = one("Some.Unknown.Event", field("Data.CorrelationGuid", "4f0c8a1e-2b3d-4c5e-8f90-123456789abc"));
    expect(id).toMatchObject({ personal: "pseudonymous-id", rule: "detector.guid", category: "diagnostic" });
    const other = one("Some.Unknown.Event", field("Data.Mode", "4f0c8a1e-2b3d-4c5e-8f90-123456789abc"));
    expect(other).toMatchObject({ personal: "none", rule: "detector.guid" });
  });

  it("content in an essential event is content, and the finding says functional", () => {
    const c = one("Office.Licensing.Activation", field("Data.Path", "\\\\fileserver\\finance\\budget"));
    expect(c.category).toBe("content");
    expect(c.findings?.map((f) => f.code)).toContain("content.in-functional");
  });

  it("fields nothing claims take the event default: functional in essential events, diagnostic otherwise", () => {
    expect(one("Office.Licensing.Activation", field("Data.Count", 3))).toMatchObject({
      category: "functional",
      rule: "event.default.essential",
    });
    expect(one("Office.Word.FileOpen.UserInitiatedOpen", field("Data.Count", 3))).toMatchObject({
      category: "diagnostic",
      rule: "event.default.required",
    });
    expect(one("Some.Unknown.Event", field("Data.Count", 3))).toMatchObject({ category: "diagnostic", rule: "event.default.unknown" });
  });

  it("underscored Office names find their dotted rule", () => {
    expect(one("Office.Word.FileOpen.UserInitiatedOpen", field("User_PrimaryIdentityHash", "0123456789abcdef0123456789abcdef")).rule).toBe(
      "field.office.user-primaryidentityhash",
    );
  });

  it("an IP address in a version field is a version, elsewhere a network identifier", () => {
    expect(one("Some.Unknown.Event", field("ext.sdk.ver", "3.5.131.1")).personal).toBe("none");
    const ip = one("Some.Unknown.Event", field("Data.Peer", "81.204.33.17"));
    expect(ip.personal).toBe("network-identifier");
    expect(ip.findings?.map((f) => f.code)).toEqual(["declared.untagged-pii"]);
  });

  it("a field rule that already expects the identifier raises no untagged finding", () => {
    const c = one("Some.Unknown.Event", field("PipelineInfo.ClientIp", "81.204.33.17"));
    expect(c).toMatchObject({ personal: "network-identifier", rule: "field.aria.pipelineinfo-clientip" });
    expect(c.findings).toBeUndefined();
  });

  it("the upload's tenant token in an unclaimed field is functional routing data", () => {
    const token = "0123456789abcdef0123456789abcdef-11111111-2222-4333-8444-555555555555-7000";
    const facts = { tenantTokens: [token], tenantIds: ["0123456789abcdef0123456789abcdef"], credentialHeaders: [] };
    const r = classifyEvent(event("Some.Unknown.Event", [field("Data.Tenant", "o:0123456789abcdef0123456789abcdef")]), packs, { facts });
    expect(r.fields[0]).toMatchObject({ category: "functional", rule: "context.tenant-token" });
  });

  it("string arrays are inspected element by element", () => {
    const c = one("Some.Unknown.Event", field("Data.Recent", ["x", "D:\\Finance\\budget 2020.xlsx"]));
    expect(c.category).toBe("content");
  });

  it("results without declarations or detections are shared and frozen", () => {
    const a = one("Some.Unknown.Event", field("App.Name", "Word"));
    const b = one("Office.Word.FileOpen.UserInitiatedOpen", field("App.Name", "Word"));
    expect(a).toBe(b);
    expect(Object.isFrozen(a)).toBe(true);
  });
});

// ---------------------------------------------------------------------------------------------
// Events as a whole

describe("event groups", () => {
  it("a name no catalogue lists gets no group from a look-alike namespace: made-up Office names stay unknown", () => {
    // Catalogued: essential.
    expect(eventGroup("Office.Telemetry.AriaEventSink.RequestMsaDeviceToken", packs)).toMatchObject({ group: "essential" });
    for (const name of [
      "Office.Telemetry.MadeUpEvent",
      "Office.Identity.SomethingNew",
      "Office.Licensing.NewThing",
      "office.telemetry.madeup",
    ]) {
      expect(eventGroup(name, packs), name).toEqual({ group: "unknown", groupRule: "event.default.unknown", category: "diagnostic" });
    }
  });

  it("a glob whose source documents the namespace still places unlisted names (Windows Census)", () => {
    expect(eventGroup("Census.NotInAnyList", packs)).toMatchObject({ group: "required", groupRule: "event.glob.windows-census" });
  });

  it("the catalogue wins over globs", () => {
    expect(eventGroup("Office.Identity.InteractiveSignInMaciOS", packs)).toMatchObject({ group: "required" });
  });

  it("the endpoint purpose places events the names do not", () => {
    expect(eventGroup("json:/config/v1/Office", packs, { endpointPurpose: "configuration" })).toMatchObject({
      group: "essential",
      groupRule: "event.endpoint.configuration",
      category: "functional",
    });
    expect(eventGroup("json:/spell", packs, { endpointPurpose: "connected-experience" })).toMatchObject({
      group: "connected-experience",
      category: "functional",
    });
    expect(eventGroup("json:/x", packs, { endpointPurpose: "diagnostic-upload" })).toMatchObject({
      group: "unknown",
      category: "diagnostic",
    });
  });

  it("envelope fields (name, iKey, ver, time) are never content by a value detector; a Part C `name` still is", () => {
    // The README's smoke test: `.one` reads as a OneNote file name to the detectors.
    const r = classifyEvent(event("test.one", [field("name", "test.one", undefined, "envelope"), field("data.name", "budget.one")]), packs);
    expect(r.fields[0].category).not.toBe("content");
    expect(r.fields[0].findings ?? []).toEqual([]);
    expect(r.fields[1].category).toBe("content");
    expect(r.eventCategory).toBe("content");
    const only = classifyEvent(event("test.one", [field("name", "test.one"), field("time", "C:\\Users\\bob\\report.docx")]), packs);
    expect(only.fields.map((f) => f.category)).not.toContain("content");
  });

  it("unknown events are diagnostic and flagged for review", () => {
    const r = classifyEvent(event("Contoso.Unknown", [field("Data.Count", 1)]), packs);
    expect(r).toMatchObject({ group: "unknown", groupRule: "event.default.unknown", eventCategory: "diagnostic" });
    expect(r.findings.map((f) => f.code)).toEqual(["event.unknown"]);
  });
});

// ---------------------------------------------------------------------------------------------
// Request side

describe("request headers and the client address", () => {
  it("are functional; credentials secret; the client IP a network identifier", () => {
    const items = classifyRequest(
      {
        headers: [
          ["APIKey", "token"],
          ["Tickets", '"1"="p:..."'],
          ["AuthMsaDeviceTicket", "t=..."],
          ["Content-Encoding", "deflate"],
          ["Upload-Time", "1700000000000"],
          ["X-Something", "1"],
        ],
        query: new URLSearchParams("cors=true&apikey=abc&AuthXToken=x"),
        clientAddress: "192.0.2.10",
      },
      packs,
    );
    const by = Object.fromEntries(items.map((i) => [`${i.where}:${i.name}`, i]));
    // APIKey is on the one credential list (classifiers/secrets.yaml): secret, as logs and exports treat it.
    expect(by["header:APIKey"]).toMatchObject({ category: "functional", personal: "none", secret: true, rule: "header.apikey" });
    expect(by["header:Tickets"]).toMatchObject({ category: "functional", secret: true, rule: "header.tickets" });
    expect(by["header:AuthMsaDeviceTicket"]).toMatchObject({ secret: true, rule: "header.auth" });
    expect(by["header:Content-Encoding"].rule).toBe("header.content");
    expect(by["header:X-Something"].rule).toBe("header.transport");
    expect(by["query:apikey"].rule).toBe("header.apikey");
    expect(by["query:AuthXToken"]).toMatchObject({ secret: true });
    expect(by["query:cors"]).toBeUndefined();
    expect(by["connection:client-ip"]).toMatchObject({ category: "functional", personal: "network-identifier", rule: "header.client-ip" });
  });

  it("mark as secret exactly what the one credential list (classifiers/secrets.yaml) names, as logs and exports do", () => {
    const headers: RawHeaders = [
      "Tickets",
      "AuthXToken",
      "Aad-Token",
      "AadDeviceToken",
      "Authorization",
      "Cookie",
      "Set-Cookie",
      "MSFPC",
      "X-API-Key",
      "Content-Type",
      "Client-Id",
      "User-Agent",
      "Upload-Time",
    ].map((n) => [n, "v"]);
    const items = classifyRequest({ headers, query: new URLSearchParams("AuthXToken=x&apikey=a&cors=true&Client-Id=c") }, packs);
    expect(items.length).toBeGreaterThan(10);
    for (const i of items.filter((x) => x.where !== "connection")) {
      expect(i.secret, `${i.where}:${i.name}`).toBe(i.where === "header" ? isSecretHeaderName(i.name) : isSecretParam(i.name));
    }
    const secret = new Set(items.filter((i) => i.secret).map((i) => `${i.where}:${i.name}`));
    for (const n of ["Tickets", "AuthXToken", "Aad-Token", "AadDeviceToken", "Authorization", "Cookie"])
      expect(secret.has(`header:${n}`), n).toBe(true);
    expect(secret.has("header:Content-Type")).toBe(false);
    expect(secret.has("query:AuthXToken")).toBe(true);
  });

  it("refuses a field rule that declares `secret`: credential names have one list", () => {
    expect(() =>
      FieldRuleSchema.parse({
        id: "header.x",
        match: { header: "X" },
        category: "functional",
        secret: true,
        why: "a header that says it is a secret",
      }),
    ).toThrow(/classifiers\/secrets\.yaml/);
  });
});

describe("wrapped text, field roles and repeated values", () => {
  it("classifies what hex or base64 wraps, keeping the raw value", () => {
    const hex = "0x" + Buffer.from("https://www.bing.com/search?q=salary+negotiation").toString("hex").toUpperCase();
    const b64 = Buffer.from("C:\\Users\\jdoe\\Documents\\Merger plan.docx").toString("base64");
    const ev = event("Microsoft.WebBrowser.HistoryJournal.HJ_BeforeNavigateExtended", [
      field("navigationUrlBytes", hex),
      field("blob", b64),
      field("hash", "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855"),
    ]);
    const [url, path, hash] = classifyEvent(ev, packs).fields;
    expect(url).toMatchObject({ category: "content", rule: "detector.url-search" });
    expect(url.reasons).toContain("detector.wrapped-text");
    expect(path.category).toBe("content");
    expect(hash.category).not.toBe("content");
    expect(hash.reasons).not.toContain("detector.wrapped-text");
    expect(ev.fields[0].value).toBe(hex);
  });

  it("calls a short search query content by the field's role, not elsewhere", () => {
    const ev = event("App.Search", [field("Data.query", "salary negotiation tips"), field("Data.Feature", "salary negotiation tips")]);
    const [q, other] = classifyEvent(ev, packs).fields;
    expect(q).toMatchObject({ category: "content", rule: "detector.free-text-by-role" });
    expect(other.category).not.toBe("content");
  });

  it("gives the same value in two fields of one event the stronger personal kind", () => {
    const id = "0551da834d91078fb8f41d5abc217566329d490ea91422c5d61c50a1bf8e2d09";
    const ev = event("AppEvents", [
      field("data.baseData.properties.Machine ID", id),
      field("data.baseData.properties.Previous", id),
      field("a", "Windows"),
      field("b", "Windows"),
    ]);
    const [a, b, c, d] = classifyEvent(ev, packs).fields;
    expect(a.personal).toBe("pseudonymous-id");
    expect(b.personal).toBe("pseudonymous-id");
    expect(b.reasons).toContain("context.same-value");
    expect([c.personal, d.personal]).toEqual(["none", "none"]);
  });

  it("spreads personal kinds across copies whether an event has few personal values or many", () => {
    // 3 and 40 distinct personal values: below and above the count where the engine switches to a Map.
    for (const count of [3, 40]) {
      const ids = Array.from({ length: count }, (_, i) => `${i.toString(16).padStart(8, "0")}4d91078fb8f41d5abc217566329d490e`);
      const ev = event("AppEvents", [
        ...ids.map((id) => field("data.baseData.properties.Machine ID", id)),
        ...ids.map((id) => field("data.baseData.properties.Previous", id)),
        field("data.baseData.properties.Other", "not-a-copy-of-anything"),
      ]);
      const fields = classifyEvent(ev, packs).fields;
      const copies = fields.slice(count, 2 * count);
      expect(fields.slice(0, count).every((f) => f.personal === "pseudonymous-id")).toBe(true);
      expect(copies.map((f) => f.personal)).toEqual(ids.map(() => "pseudonymous-id"));
      expect(copies.every((f) => f.reasons.at(-1) === "context.same-value")).toBe(true);
      expect(fields[2 * count].reasons).not.toContain("context.same-value");
    }
  });
});
