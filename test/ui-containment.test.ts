/**
 * The UI is only for its user (issue 13, item 6): a foreign Host is answered 421 (DNS rebinding),
 * a foreign Origin on anything but GET/HEAD 403, and no credential planted in an upload through the
 * real proxy (query parameters and a header) appears in any answer of the UI.
 */
import http from "node:http";
import { rmSync, writeFileSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLogger } from "../src/log.js";
import { startUiServer, type RunningUi } from "../src/web/server.js";
import { checkUiRequest, redactCredentialParams, uiHostNames } from "../src/web/containment.js";
import { runCli } from "./helpers/cli.js";
import { httpsThroughProxy } from "./helpers/client.js";
import { eventually, startTestProxy, tempDir, type TestProxy } from "./helpers/proxy.js";

const quietLog = () => createLogger({ level: "warn", destination: new Writable({ write: (_c, _e, cb) => cb() }) });

const QUERY_TICKET = "t=EwB4QUERYTICKET-5521+x/y";
const DEVICE_TICKET = "t=EwDEVICETICKET-8813";
const HEADER_TICKET = "p:HEADERTICKET-3307";
const FIELD_CODE = "FIELDAUTHCODE-6604";
const SECRETS = [QUERY_TICKET, DEVICE_TICKET, HEADER_TICKET, FIELD_CODE];

interface Answer {
  status: number;
  text: string;
}

/** A raw HTTP request with exactly the Host (and other headers) given. */
function ask(port: number, path: string, headers: Record<string, string>, method = "GET"): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: "127.0.0.1", port, path, method, headers, setHost: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString("utf8") }));
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end();
  });
}

/** A stream's text until `until` matches (or `ms` pass), then the connection is dropped. */
function askStream(
  port: number,
  path: string,
  headers: Record<string, string>,
  until: RegExp,
  ms = 10_000,
): Promise<Answer & { type: string }> {
  return new Promise((resolve, reject) => {
    let text = "";
    const req = http.request({ host: "127.0.0.1", port, path, headers, setHost: false }, (res) => {
      const done = () => {
        clearTimeout(timer);
        req.destroy();
        resolve({ status: res.statusCode ?? 0, text, type: String(res.headers["content-type"] ?? "") });
      };
      const timer = setTimeout(done, ms);
      res.on("data", (c: Buffer) => {
        text += c.toString("utf8");
        if (until.test(text)) done();
      });
      res.on("end", done);
    });
    req.on("error", (e) => (text ? undefined : reject(e)));
    req.end();
  });
}

describe("web UI containment", () => {
  let p: TestProxy;
  let ui: RunningUi;
  let own: string;

  beforeAll(async () => {
    p = await startTestProxy({ mode: "sinkhole" });
    const line = JSON.stringify({
      name: "Office.Identity.SignIn",
      time: "2026-11-24T08:00:00.000Z",
      ver: "4.0",
      data: { "Data.RedirectUrl": `https://login.example/cb?state=1&AuthCode=${FIELD_CODE}`, "Activity.Success": true },
    });
    const query = `?cors=true&Tickets=${encodeURIComponent(QUERY_TICKET)}&AuthMsaDeviceTicket=${encodeURIComponent(DEVICE_TICKET)}&content-type=application%2Fx-json-stream`;
    const res = await httpsThroughProxy({
      proxyPort: p.port,
      host: "browser.events.data.microsoft.com",
      path: `/OneCollector/1.0/${query}`,
      headers: { "Content-Type": "application/x-json-stream", Tickets: `"1"="${HEADER_TICKET}"` },
      body: `${line}\n`,
      ca: [p.caPem],
    });
    expect(res.status).toBe(200);
    await eventually(
      () => (p.db.prepare("SELECT COUNT(*) AS n FROM exchanges WHERE classified_with IS NOT NULL").get() as { n: number }).n === 1,
      15_000,
    );
    await eventually(() => (p.db.prepare("SELECT COUNT(*) AS n FROM events").get() as { n: number }).n === 1, 15_000);
    // The database holds the credentials as captured: the UI is what must not show them.
    const stored = p.db.prepare("SELECT path, request_headers AS h FROM exchanges").get() as { path: string; h: string };
    expect(stored.path).toContain(encodeURIComponent(DEVICE_TICKET));
    expect(stored.h).toContain(HEADER_TICKET);
    ui = await startUiServer({ dbFile: p.dbFile, host: "127.0.0.1", port: 0, log: quietLog() });
    own = `127.0.0.1:${ui.port}`;
  }, 60_000);
  afterAll(async () => {
    await ui?.close();
    await p?.close();
  });

  it("answers a foreign Host with 421 on the API and the page; its own names work", async () => {
    for (const path of ["/api/sessions", "/", "/app.js", "/api/nothing-here", "/api/live", "/api/export?format=csv"]) {
      const foreign = await ask(ui.port, path, { host: "attacker.example" });
      expect(foreign.status, path).toBe(421);
      expect(foreign.text).not.toContain("test");
      expect(JSON.parse(foreign.text)).toMatchObject({ code: "EXH_UI_HOST_REFUSED" });
      expect((await ask(ui.port, path, { host: `attacker.example:${ui.port}` })).status, path).toBe(421);
    }
    // No Host at all: HTTP/1.1 requires one, Node's server answers 400 before the UI sees it.
    expect([400, 421]).toContain((await ask(ui.port, "/api/sessions", {})).status);
    expect((await ask(ui.port, "/api/sessions", { host: `127.0.0.1:${ui.port + 1}` })).status).toBe(421);
    const ok = await ask(ui.port, "/api/sessions", { host: own });
    expect(ok.status).toBe(200);
    expect(JSON.parse(ok.text)[0]).toMatchObject({ name: "test" });
    expect((await ask(ui.port, "/api/sessions", { host: `localhost:${ui.port}` })).status).toBe(200);
    expect((await ask(ui.port, "/", { host: `LOCALHOST:${ui.port}` })).status).toBe(200);
  });

  it("refuses anything but GET/HEAD from a foreign Origin with 403", async () => {
    for (const method of ["POST", "DELETE", "PUT"]) {
      const r = await ask(
        ui.port,
        "/api/sessions",
        { host: own, origin: "http://attacker.example", "content-type": "application/json" },
        method,
      );
      expect(r.status, method).toBe(403);
      expect(JSON.parse(r.text)).toMatchObject({ code: "EXH_UI_ORIGIN_REFUSED" });
      expect((await ask(ui.port, "/api/sessions", { host: own, origin: "null" }, method)).status).toBe(403);
      expect((await ask(ui.port, "/api/sessions", { host: own, origin: `https://${own}` }, method)).status).toBe(403);
      // Its own origin passes the rule (and meets no route: the UI is read-only).
      expect((await ask(ui.port, "/api/sessions", { host: own, origin: `http://${own}` }, method)).status).toBe(404);
    }
    // A GET is answered whatever its Origin says (reading needs the Host check only).
    expect((await ask(ui.port, "/api/sessions", { host: own, origin: "http://attacker.example" })).status).toBe(200);
  });

  it("shows no credential value in any view: exchanges, exchange, body, event, fields, connections, charts", async () => {
    const get = async (path: string) => {
      const r = await ask(ui.port, path, { host: own });
      expect(r.status, path).toBe(200);
      return r.text;
    };
    const sessionId = (JSON.parse(await get("/api/sessions")) as Array<{ id: number }>)[0].id;
    const texts: Record<string, string> = {};
    for (const path of [
      "/",
      "/app.js",
      "/app.css",
      "/api/sessions",
      `/api/sessions/${sessionId}`,
      `/api/sessions/${sessionId}/exchanges`,
      `/api/hosts?session=${sessionId}`,
      `/api/events?session=${sessionId}`,
      `/api/events?session=${sessionId}&q=login`,
      `/api/fields?session=${sessionId}`,
      `/api/charts/time?session=${sessionId}`,
      `/api/charts/categories?session=${sessionId}`,
    ]) {
      texts[path] = await get(path);
    }
    const session = JSON.parse(texts[`/api/sessions/${sessionId}`]) as { connections: Array<{ id: string }> };
    expect(session.connections.length).toBeGreaterThan(0);
    const exchanges = JSON.parse(texts[`/api/sessions/${sessionId}/exchanges`]) as Array<{ id: string; path: string }>;
    expect(exchanges).toHaveLength(1);
    expect(exchanges[0].path).toBe(
      "/OneCollector/1.0/?cors=true&Tickets=[redacted]&AuthMsaDeviceTicket=[redacted]&content-type=application%2Fx-json-stream",
    );
    for (const x of exchanges) {
      texts[`/api/exchanges/${x.id}`] = await get(`/api/exchanges/${x.id}`);
      texts[`/api/exchanges/${x.id}/body`] = await get(`/api/exchanges/${x.id}/body`);
      texts[`/api/exchanges/${x.id}/body?decompress=1&view=text`] = await get(`/api/exchanges/${x.id}/body?decompress=1&view=text`);
      texts[`/api/exchanges/${x.id}/body?view=hex`] = await get(`/api/exchanges/${x.id}/body?view=hex`);
      texts[`/api/exchanges/${x.id}/body?part=response`] = await get(`/api/exchanges/${x.id}/body?part=response`);
    }
    // "Export this view" and the live stream (replayed from the start) are built outside the JSON answers: redacted too.
    for (const format of ["csv", "jsonl"])
      texts[`/api/export?format=${format}`] = await get(`/api/export?session=${sessionId}&format=${format}`);
    // A URL field carrying a credential in its query is classified secret (detector.url-secret-query): exports
    // drop its whole value, as the session exports do.
    expect(texts["/api/export?format=jsonl"]).toContain('"path":"Data.RedirectUrl","part":"C","value":"[redacted]"');
    expect(texts["/api/export?format=csv"]).toContain("Data.RedirectUrl");
    const live = await askStream(ui.port, "/api/live?afterEvent=0&afterExchange=0", { host: own }, /event: stored\n[^\n]*\n\n/);
    expect(live.status).toBe(200);
    expect(live.type).toMatch(/^text\/event-stream/);
    expect(live.text).toContain("Tickets=[redacted]");
    expect(live.text).toContain("Office.Identity.SignIn");
    texts["/api/live"] = live.text;
    const detail = JSON.parse(texts[`/api/exchanges/${exchanges[0].id}`]) as { path: string; requestHeaders: Array<[string, string]> };
    expect(detail.path).toContain("AuthMsaDeviceTicket=[redacted]");
    expect(detail.requestHeaders).toContainEqual(["Tickets", "[redacted]"]);
    const events = JSON.parse(texts[`/api/events?session=${sessionId}`]) as { rows: Array<{ id: number }> };
    expect(events.rows).toHaveLength(1);
    for (const e of events.rows) texts[`/api/events/${e.id}`] = await get(`/api/events/${e.id}`);
    const event = JSON.parse(texts[`/api/events/${events.rows[0].id}`]) as {
      exchange: { path: string };
      fields: Array<{ path: string; value: string }>;
    };
    expect(event.exchange.path).toContain("Tickets=[redacted]");
    // The query parameter is redacted in place; once the UI has learned the field is classified secret
    // (detector.url-secret-query, looked up as it serves), the whole value is.
    expect(["https://login.example/cb?state=1&AuthCode=[redacted]", "[redacted]"]).toContain(
      event.fields.find((f) => f.path === "Data.RedirectUrl")?.value,
    );

    const forms = SECRETS.flatMap((s) => [s, encodeURIComponent(s), JSON.stringify(s).slice(1, -1), s.replace(/^[tp]:?=?/, "")]);
    for (const [path, text] of Object.entries(texts)) {
      for (const f of forms) expect(text.includes(f), `${path} shows ${f}`).toBe(false);
    }
  });

  it("knows its names: loopback, a wildcard, a configured address and --host-name", () => {
    const loop = uiHostNames("127.0.0.1", 8081, { loopback: true });
    expect([...loop].sort()).toEqual(["127.0.0.1:8081", "[::1]:8081", "localhost:8081"]);
    expect(uiHostNames("::1", 8081, { loopback: true }).has("[::1]:8081")).toBe(true);
    const lab = uiHostNames("10.1.2.3", 8081, { loopback: false, extra: ["Lab.Example"] });
    expect([...lab].sort()).toEqual(["10.1.2.3:8081", "lab.example:8081"]);
    const any = uiHostNames("0.0.0.0", 8081, { loopback: false });
    for (const n of ["0.0.0.0:8081", "127.0.0.1:8081", "localhost:8081", `${hostname().toLowerCase()}:8081`])
      expect(any.has(n), n).toBe(true);
    expect(any.has("attacker.example:8081")).toBe(false);
    expect(uiHostNames("127.0.0.1", 80, { loopback: true }).has("localhost")).toBe(true);
    expect(uiHostNames("127.0.0.1", 8081, { loopback: true }).has("localhost")).toBe(false);
    expect(checkUiRequest("HEAD", { host: "localhost:8081", origin: "http://attacker.example" }, loop)).toEqual({ ok: true });
    expect(checkUiRequest("POST", { host: "localhost:8081", origin: "http://localhost:8081" }, loop)).toEqual({ ok: true });
    expect(checkUiRequest("POST", { host: "localhost:8081", origin: "http://localhost:9999" }, loop)).toMatchObject({
      ok: false,
      status: 403,
    });
  });

  it("redacts credential parameters in free text as in paths, and nothing else", () => {
    expect(redactCredentialParams("GET /p?a=1&Tickets=abc&b=2 failed")).toBe("GET /p?a=1&Tickets=[redacted]&b=2 failed");
    expect(redactCredentialParams("https://h/x?aad-token=q#frag and https://h/y?%41uthorization=z;cookie=w")).toBe(
      "https://h/x?aad-token=[redacted]#frag and https://h/y?%41uthorization=[redacted];cookie=[redacted]",
    );
    expect(redactCredentialParams("/p?ticket=keep&name=x&Tickets=")).toBe("/p?ticket=keep&name=x&Tickets=");
    expect(redactCredentialParams("no query a=b")).toBe("no query a=b");
  });
});

describe("terminal output of captured values", () => {
  const UNSAFE = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/;
  const VALUE = "report\u001b[2J\u001b]0;owned\u0007 done\u202eexe.txt\u2066x\u0085\u007f";
  const NAME = "Office.Evil\u202eEvent";
  let dir: string;
  let db: string;

  beforeAll(() => {
    dir = tempDir("exhaust-terminal-");
    db = join(dir, "t.db");
    const file = join(dir, "ddv.json");
    const payload = JSON.stringify({
      ver: "4.0",
      name: NAME,
      time: "2026-11-24T08:00:00.000Z",
      data: { "Data.Title": VALUE, "Data.Esc\u001bKey": 1 },
    });
    writeFileSync(file, JSON.stringify([{ Name: NAME, Timestamp: "2026-11-24T08:00:00Z", Payload: payload }]));
    const r = runCli(["import", file, "--db", db, "--session", "evil\u202esession"]);
    expect(r.status, r.stderr).toBe(0);
    expect(UNSAFE.test(r.stdout)).toBe(false);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("`show` prints ESC, BEL, C1, DEL and bidi characters of a captured value escaped, never raw", () => {
    const id = JSON.parse(runCli(["events", "--db", db, "--json"]).stdout.split("\n")[0]).event.id as number;
    const show = runCli(["show", String(id), "--db", db]);
    expect(show.status, show.stderr).toBe(0);
    expect(UNSAFE.test(show.stdout)).toBe(false);
    expect(show.stdout).toContain("report\\x1b[2J\\x1b]0;owned\\x07 done\\u202eexe.txt\\u2066x\\x85\\x7f");
    expect(show.stdout).toContain("Office.Evil\\u202eEvent");
    expect(show.stdout).toContain("Data.Esc\\x1bKey");

    const events = runCli(["events", "--db", db]);
    expect(events.status).toBe(0);
    expect(UNSAFE.test(events.stdout)).toBe(false);
    expect(events.stdout).toContain("Office.Evil\\u202eEvent");

    // JSON stays the same value (escapes are JSON escapes), but carries no raw control or bidi character.
    for (const args of [
      ["show", String(id), "--json"],
      ["events", "--json"],
      ["sessions", "--json"],
    ]) {
      const r = runCli([...args, "--db", db]);
      expect(r.status).toBe(0);
      expect(UNSAFE.test(r.stdout), args.join(" ")).toBe(false);
    }
    const json = JSON.parse(runCli(["show", String(id), "--json", "--db", db]).stdout) as {
      fields: Array<{ path: string; value: unknown }>;
    };
    expect(json.fields.find((f) => f.path === "Data.Title")?.value).toBe(VALUE);

    const sessions = runCli(["sessions", "--db", db]);
    expect(UNSAFE.test(sessions.stdout)).toBe(false);
    expect(sessions.stdout).toContain("evil\\u202esession");
  });
});
