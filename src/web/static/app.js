// exhaust UI: plain DOM, no framework, no build step. Captured data is hostile: it only ever
// reaches the page through textContent (el() below); the only markup taken from the server is the
// SVG of the charts, which the server builds with every label escaped.

const $ = (sel) => document.querySelector(sel);
const main = $("#main");
const PAGE = 100;

/** el("td", { class: "x", title: "..." }, "text", child...) — strings become text nodes. */
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "onclick") node.addEventListener("click", v);
    else node.setAttribute(k, String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

/** A table: one header row of `headers`, then `rows` in its body. */
function table(attrs, headers, ...rows) {
  return el(
    "table",
    attrs,
    el(
      "thead",
      {},
      el(
        "tr",
        {},
        headers.map((h) => el("th", {}, h)),
      ),
    ),
    el("tbody", {}, ...rows),
  );
}

async function api(path) {
  const res = await fetch(path, { headers: { accept: "application/json" } });
  const body = await res.json();
  if (!res.ok) throw new Error(body.error || `HTTP ${res.status}`);
  return body;
}

// Each list view keeps its own filters: the bar shows only the controls the view applies, and
// switching views swaps in that view's values (a Category set on Events does not follow to Exchanges).
const FILTER_IDS = { host: "#f-host", name: "#f-name", group: "#f-group", category: "#f-category", personal: "#f-personal", q: "#f-q" };
const FILTER_VIEWS = ["events", "fields", "exchanges"];
const viewFilters = { events: {}, fields: { category: "content" }, exchanges: {} };
let filterView = "events";

function readForm() {
  const out = {};
  for (const [k, sel] of Object.entries(FILTER_IDS)) {
    const input = $(sel);
    out[k] = input.type === "checkbox" ? (input.checked ? "1" : "") : input.value.trim();
  }
  return out;
}

function writeForm(values) {
  for (const [k, sel] of Object.entries(FILTER_IDS)) {
    const input = $(sel);
    if (input.type === "checkbox") input.checked = values[k] === "1";
    else input.value = values[k] ?? "";
  }
}

/** The filters of a view: only the ones its bar shows. */
function filtersOf(view) {
  const own = view === filterView ? readForm() : viewFilters[view] || {};
  const out = { session: $("#f-session").value };
  for (const label of document.querySelectorAll("#filters label[data-views]")) {
    if (!label.dataset.views.split(" ").includes(view)) continue;
    const input = label.querySelector("input, select");
    const key = Object.keys(FILTER_IDS).find((k) => FILTER_IDS[k] === `#${input.id}`);
    out[key] = own[key] ?? "";
  }
  return out;
}

function filters() {
  return filtersOf(filterView);
}

/** Shows the bar for `view` (hidden on pages without a list), with that view's own values. */
function showFiltersFor(view) {
  if (FILTER_VIEWS.includes(filterView)) viewFilters[filterView] = readForm();
  const form = $("#filters");
  form.hidden = !FILTER_VIEWS.includes(view);
  if (form.hidden) return;
  filterView = view;
  writeForm(viewFilters[view]);
  for (const label of form.querySelectorAll("label[data-views]")) label.hidden = !label.dataset.views.split(" ").includes(view);
  $("#filters-scope").textContent = `Filters of ${view[0].toUpperCase()}${view.slice(1)}:`;
}

/** "host a.example, category content" — the filters in effect, said on the view itself. */
function appliedText(f) {
  const names = { host: "host", name: "name", group: "group", category: "category", personal: "personal data", q: "search" };
  const parts = Object.entries(names)
    .filter(([k]) => f[k])
    .map(([k, label]) => (k === "personal" ? label : `${label} ${f[k]}`));
  return parts.length ? `Filtered by ${parts.join(", ")}.` : "No filter.";
}

function query(obj) {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(obj)) if (v !== undefined && v !== null && v !== "") p.set(k, String(v));
  return p.toString();
}

/** A dotted name or path with break opportunities after `.`, `-`, `/` and `_`, so narrow columns wrap between its parts. */
function breakable(text) {
  const s = String(text ?? "");
  const out = [];
  let from = 0;
  for (let i = 0; i < s.length; i++) {
    if (".-/_".includes(s[i]) && i + 1 < s.length) {
      out.push(s.slice(from, i + 1), el("wbr"));
      from = i + 1;
    }
  }
  out.push(s.slice(from));
  return out;
}

function catBadge(category) {
  const c = category || "none";
  return el("span", { class: `cat cat-${c}`, "data-category": c }, category || "-");
}

function fmtTime(ms) {
  return ms ? new Date(ms).toISOString().replace("T", " ").slice(0, 19) : "-";
}

/** Text with every occurrence of `term` (case-insensitive) in <mark>. */
function highlighted(text, term) {
  const s = text === null || text === undefined ? "null" : String(text);
  if (!term) return [s];
  const out = [];
  const lower = s.toLowerCase();
  const t = term.toLowerCase();
  let from = 0;
  for (let i = lower.indexOf(t); i >= 0; i = lower.indexOf(t, from)) {
    out.push(s.slice(from, i), el("mark", {}, s.slice(i, i + t.length)));
    from = i + t.length;
  }
  out.push(s.slice(from));
  return out;
}

function showError(e) {
  main.replaceChildren(el("p", { class: "error" }, `Error: ${e.message}`));
}

// ---- Events list, keyset-paged ----

let cursors = [undefined]; // afterId of each page visited; the last is the current page
function resetPaging() {
  cursors = [undefined];
}

// The list a keyboard walks (j/k, Enter) and the event page steps through: the last events page shown.
let listIds = [];
let selectedId = null;
let lastEventsPage = null;

function selectRow(id, scroll = true) {
  selectedId = id;
  for (const tr of document.querySelectorAll("#events tbody tr[data-event]")) {
    const on = Number(tr.dataset.event) === id;
    tr.classList.toggle("selected", on);
    tr.setAttribute("aria-selected", on ? "true" : "false");
    if (on && scroll) tr.scrollIntoView({ block: "nearest" });
  }
}

async function renderEvents() {
  const f = filters();
  const after = cursors[cursors.length - 1];
  const t0 = performance.now();
  const page = await api(`/api/events?${query({ ...f, after, limit: PAGE })}`);
  const ms = Math.round(performance.now() - t0);
  lastEventsPage = page;
  listIds = page.rows.map((r) => r.id);
  if (!listIds.includes(selectedId)) selectedId = listIds[0] ?? null;
  const rows = page.rows.map((r) =>
    el(
      "tr",
      { class: "clickable", "data-event": r.id, onclick: () => (location.hash = `#/event/${r.id}`) },
      el("td", { class: "num" }, el("a", { href: `#/event/${r.id}` }, r.id)),
      el("td", { class: "mono" }, (r.time || "").slice(0, 19)),
      el("td", {}, breakable(r.host)),
      el("td", {}, r.group || "-"),
      el("td", {}, catBadge(r.category)),
      el("td", { class: "num", title: "content fields" }, r.contentFields),
      el("td", { class: "num", title: "fields with personal data" }, r.personalFields),
      el(
        "td",
        { class: "mono" },
        highlighted(r.name, f.q).flatMap((part) => (typeof part === "string" ? breakable(part) : [part])),
      ),
    ),
  );
  const searchNote = f.q
    ? el(
        "p",
        { class: "note" },
        `Free-text search is a bounded scan (values are not indexed): each page examines at most 20,000 events after the previous one` +
          (page.scannedThroughId ? `, this one up to event ${page.scannedThroughId}` : "") +
          `. A short page does not mean there are no further matches: use Next.`,
      )
    : null;
  main.replaceChildren(
    el(
      "p",
      { class: "note applied" },
      appliedText(f),
      " ",
      exportLinks(f),
      el(
        "span",
        { class: "keys" },
        " Keys: ",
        el("kbd", {}, "j"),
        "/",
        el("kbd", {}, "k"),
        " move, ",
        el("kbd", {}, "Enter"),
        " open, ",
        el("kbd", {}, "/"),
        " search, ",
        el("kbd", {}, "Esc"),
        " back",
      ),
    ),
    searchNote ?? "",
    pager(page, ms),
    table(
      { id: "events", class: "events" },
      ["ID", "Time", "Host", "Group", "Category", "Content", "Personal", "Name"],
      rows.length ? rows : el("tr", {}, el("td", { colspan: 8 }, "no events on this page")),
    ),
    pager(page, ms),
  );
  if (selectedId !== null) selectRow(selectedId, false);
}

/** "Export this view: CSV · JSONL": the same filters, every page, credentials redacted (GET /api/export). */
function exportLinks(params) {
  return el(
    "span",
    { class: "export" },
    "Export this view: ",
    el("a", { id: "export-csv", href: `/api/export?${query({ ...params, format: "csv" })}`, download: "" }, "CSV"),
    " · ",
    el("a", { id: "export-jsonl", href: `/api/export?${query({ ...params, format: "jsonl" })}`, download: "" }, "JSONL"),
    " (credentials redacted)",
  );
}

function pager(page, ms) {
  return el(
    "div",
    { class: "pager" },
    el(
      "button",
      { type: "button", disabled: cursors.length <= 1, onclick: () => (cursors.pop(), renderEvents().catch(showError)) },
      "◀ Previous",
    ),
    el("span", {}, `page ${cursors.length} · ${page.rows.length} events · ${ms} ms`),
    el(
      "button",
      {
        type: "button",
        class: "next",
        disabled: page.nextAfterId === null,
        onclick: () => (cursors.push(page.nextAfterId), renderEvents().catch(showError)),
      },
      "Next ▶",
    ),
  );
}

// ---- One event: fields, raw body, headers ----

async function renderEvent(id) {
  const ev = await api(`/api/events/${id}`);
  const x = await api(`/api/exchanges/${encodeURIComponent(ev.exchangeId)}`);
  const term = filters().q;
  const fieldRows = ev.fields.map((f) => {
    const reasons = f.reasons ? JSON.parse(f.reasons).join(", ") : f.rule;
    const declared = [f.piiKind !== null ? `PII kind ${f.piiKind}` : "", f.customerContent ? "customer content" : ""]
      .filter(Boolean)
      .join(", ");
    return el(
      "tr",
      {
        class: `field field-${f.category || "none"}`,
        "data-category": f.category || "none",
        "data-path": f.path,
        title: `rule: ${f.rule || "-"}\nreasons: ${reasons || "-"}\nconfidence: ${f.confidence ?? "-"}${declared ? `\ndeclared by the client: ${declared}` : ""}`,
      },
      el("td", { class: "num" }, f.idx),
      el("td", {}, f.part),
      el("td", { class: "mono" }, breakable(f.path)),
      el("td", {}, catBadge(f.category)),
      el("td", {}, f.personal && f.personal !== "none" ? el("span", { class: "badge personal" }, f.personal) : "-"),
      el("td", { class: "mono rule" }, breakable(f.rule || "-")),
      el("td", { class: "value" }, highlighted(f.value, term)),
      el("td", {}, f.type),
      el("td", { class: "copy" }, copyButton("path", f.path), copyButton("value", f.value === null ? "null" : String(f.value))),
    );
  });
  const findings = ev.findings.length
    ? el(
        "ul",
        { id: "findings" },
        ev.findings.map((f) =>
          el("li", {}, el("span", { class: "mono" }, f.code), " ", el("span", { class: "mono" }, f.fieldPath), `: ${findingText(f)}`),
        ),
      )
    : el("p", { class: "note" }, "none");
  const bodyBox = el("div", { id: "body" }, "Loading body…");
  const at = listIds.indexOf(ev.id);
  if (at >= 0) selectedId = ev.id;
  main.replaceChildren(
    el(
      "p",
      { class: "note" },
      el("a", { href: "#/events" }, "◀ Events"),
      at >= 0 ? ` · event ${at + 1} of ${listIds.length} on the list (j/k for the next/previous)` : "",
    ),
    el("h2", {}, `Event ${ev.id}: `, el("span", { class: "mono" }, ev.name)),
    el(
      "dl",
      {},
      ...[
        ["Session", ev.session],
        ["Time", ev.time || "-"],
        ["Tenant", ev.iKey || "-"],
        ["Format", `${ev.format} (${ev.exchange.decoder || "not decoded"})`],
        ["Group", `${ev.group || "-"} (${ev.groupRule || "-"})${ev.catalogCategory ? `, ${ev.catalogCategory}` : ""}`],
        ["Category", ev.category || "-"],
        [
          "Exchange",
          el(
            "a",
            { id: "exchange-link", href: `#/exchange/${encodeURIComponent(ev.exchangeId)}` },
            `${ev.exchangeId}  ${x.method} ${x.scheme}://${x.host}${x.path}`,
          ),
        ],
        ["Connection", x.connectionOutcome || "-"],
        ["Body SHA-256", ev.exchange.requestBodySha256],
      ].flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v)]),
    ),
    el(
      "section",
      {},
      el("h3", {}, `Fields (${ev.fields.length}) — hover a row for the rule and reasons`),
      table({ id: "fields", class: "fields" }, ["#", "Part", "Path", "Category", "Personal", "Rule", "Value", "Type", "Copy"], fieldRows),
    ),
    el("section", {}, el("h3", {}, "Classification findings"), findings),
    el("section", {}, el("h3", {}, "Request headers (credentials redacted)"), headersTable(x.requestHeaders)),
    el("section", {}, el("h3", {}, "Raw request body"), bodyControls(x.id, bodyBox), bodyBox),
    decodeFindingsSection(x.decodeFindings),
  );
  loadBody(x.id, bodyBox, "", false).catch(showError);
}

/** A finding's message without the field path it already starts with (the path is shown once, beside it). */
function findingText(f) {
  const m = String(f.message ?? "");
  return f.fieldPath && m.startsWith(`${f.fieldPath}: `) ? m.slice(f.fieldPath.length + 2) : m;
}

async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
  } catch {
    // No clipboard permission: select the text in a scratch box and copy that.
    const box = el("textarea", { class: "scratch" }, text);
    document.body.append(box);
    box.select();
    document.execCommand("copy");
    box.remove();
  }
}

function copyButton(what, text) {
  const b = el("button", { type: "button", class: "copy", "data-copy": what, title: `copy the ${what}` }, `⧉ ${what}`);
  b.addEventListener("click", (e) => {
    e.stopPropagation();
    copyText(text).then(() => {
      b.textContent = "✓ copied";
      setTimeout(() => (b.textContent = `⧉ ${what}`), 1200);
    });
  });
  return b;
}

function headersTable(headers) {
  return el(
    "table",
    { class: "headers" },
    el(
      "tbody",
      {},
      headers.map(([k, v]) => el("tr", {}, el("td", { class: "mono" }, k), el("td", { class: "value" }, v))),
    ),
  );
}

function bodyControls(exchangeId, box, part = "request") {
  const suffix = part === "response" ? "-response" : "";
  const view = el(
    "select",
    { id: `body-view${suffix}` },
    el("option", { value: "" }, "auto"),
    el("option", { value: "text" }, "text"),
    el("option", { value: "hex" }, "hex dump"),
  );
  const dec = el("input", { type: "checkbox", id: `body-decompress${suffix}` });
  const reload = () => loadBody(exchangeId, box, view.value, dec.checked, part).catch(showError);
  view.addEventListener("change", reload);
  dec.addEventListener("change", reload);
  return el("p", {}, el("label", {}, "View ", view), " ", el("label", {}, dec, " decompressed"));
}

async function loadBody(exchangeId, box, view, decompress, part = "request") {
  const b = await api(`/api/exchanges/${encodeURIComponent(exchangeId)}/body?${query({ part, view, decompress: decompress ? "1" : "" })}`);
  box.replaceChildren(
    el(
      "p",
      { class: "note" },
      `${b.size} bytes${b.decompressed.length ? ` after undoing ${b.decompressed.join(", ")}` : ""}, shown as ${b.view}${b.truncated ? " (first 256 KiB)" : ""}${b.error ? ` — could not decompress: ${b.error}` : ""}`,
    ),
    el("pre", { class: "body" }, b.text),
  );
}

// ---- Fields across events (content fields first) ----

let fieldCursors = [undefined];
let lastFieldsFull = false;
async function renderFields() {
  const f = filters();
  const after = fieldCursors[fieldCursors.length - 1];
  const category = f.category || "content";
  const rows = await api(
    `/api/fields?${query({ session: f.session, category, afterEvent: after?.[0], afterIdx: after?.[1], limit: PAGE })}`,
  );
  const last = rows[rows.length - 1];
  lastFieldsFull = rows.length >= PAGE;
  main.replaceChildren(
    el(
      "p",
      { class: "note applied" },
      `Fields of category ${category}, in capture order (set Category above for another)${f.q ? `; "${f.q}" highlighted` : ""}. `,
      exportLinks({ view: "fields", session: f.session, category }),
    ),
    el(
      "div",
      { class: "pager" },
      el(
        "button",
        { type: "button", disabled: fieldCursors.length <= 1, onclick: () => (fieldCursors.pop(), renderFields().catch(showError)) },
        "◀ Previous",
      ),
      el("span", {}, `page ${fieldCursors.length} · ${rows.length} fields`),
      el(
        "button",
        {
          type: "button",
          disabled: rows.length < PAGE,
          onclick: () => (fieldCursors.push([last.eventId, last.idx]), renderFields().catch(showError)),
        },
        "Next ▶",
      ),
    ),
    table(
      { class: "fields" },
      ["Event", "Name", "Host", "Path", "Category", "Personal", "Rule", "Value", "Copy"],
      rows.map((r) =>
        el(
          "tr",
          {
            class: `clickable field-${r.category || "none"}`,
            onclick: () => (location.hash = `#/event/${r.eventId}`),
            title: `rule: ${r.rule || "-"}\nreasons: ${r.reasons ? JSON.parse(r.reasons).join(", ") : r.rule || "-"}`,
          },
          el("td", { class: "num" }, el("a", { href: `#/event/${r.eventId}` }, r.eventId)),
          el("td", { class: "mono" }, breakable(r.eventName)),
          el("td", {}, breakable(r.host)),
          el("td", { class: "mono" }, breakable(r.path)),
          el("td", {}, catBadge(r.category)),
          el("td", {}, r.personal || "-"),
          el("td", { class: "mono rule" }, breakable(r.rule || "-")),
          el("td", { class: "value" }, highlighted(r.value, f.q)),
          el("td", { class: "copy" }, copyButton("path", r.path), copyButton("value", r.value === null ? "null" : String(r.value))),
        ),
      ),
    ),
  );
}

// ---- Session overview: endpoints, pinned/tunnelled connections, verdicts, charts ----

async function renderSession() {
  const id = $("#f-session").value;
  if (!id) {
    main.replaceChildren(el("p", {}, "Choose a session above."));
    return;
  }
  const s = await api(`/api/sessions/${id}`);
  setBacklog(Number(id), s.info);
  sessionPageBacklog = s.info.undecoded;
  const timeBox = el("div", {}, "Loading chart…");
  const catBox = el("div", {}, "Loading chart…");
  const outcomeClass = (o) => (o === "client-rejected-certificate" ? "outcome-pinned" : o === "tunnelled" ? "outcome-tunnelled" : "");
  const outcomeText = (o) => (o === "client-rejected-certificate" ? "pinned (client rejected the certificate)" : o);
  main.replaceChildren(
    el("h2", {}, "Session ", el("span", { class: "mono" }, s.info.name)),
    el(
      "dl",
      {},
      ...[
        ["Started", fmtTime(s.info.startedAt)],
        ["Ended", fmtTime(s.info.endedAt)],
        ["Connections", s.info.connections],
        ["Exchanges", s.info.exchanges],
        ["Events", s.info.events],
        ["Request bytes", s.info.requestBytes],
      ].flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v)]),
      // Kept current by the live stream (renderBacklog); gone at 0.
      el("dt", { id: "session-undecoded-label", hidden: true }, "Not decoded yet"),
      el("dd", { id: "session-undecoded", class: "undecoded", hidden: true }),
    ),
    el("section", { id: "verdicts" }, el("h3", {}, "Verdicts"), verdictBlocks(s.verdicts)),
    el("section", {}, el("h3", {}, "Events over time per endpoint"), timeBox),
    el("section", {}, el("h3", {}, "Share of categories per event name"), catBox),
    el(
      "section",
      {},
      el("h3", {}, "Events per Microsoft group"),
      table(
        {},
        ["Group", "Events", "With content", "With personal data"],
        s.groups.map((g) =>
          el(
            "tr",
            {},
            el("td", {}, g.group || "-"),
            el("td", { class: "num" }, g.events),
            el("td", { class: "num" }, g.contentEvents),
            el("td", { class: "num" }, g.personalEvents),
          ),
        ),
      ),
    ),
    el(
      "section",
      { id: "connections" },
      el("h3", {}, "Connections (pinned and tunnelled ones are highlighted)"),
      table(
        {},
        ["Opened", "Host", "Port", "SNI", "Outcome", "Exchanges", "Bytes from client", "Error"],
        s.connections.map((c) =>
          el(
            "tr",
            { "data-outcome": c.outcome },
            el("td", { class: "mono" }, fmtTime(c.startedAt)),
            el("td", {}, c.host),
            el("td", { class: "num" }, c.port),
            el("td", {}, c.sni || "-"),
            el("td", { class: outcomeClass(c.outcome) }, outcomeText(c.outcome)),
            el("td", { class: "num" }, c.exchanges),
            el("td", { class: "num" }, c.bytesFromClient),
            el("td", {}, c.error || ""),
          ),
        ),
      ),
    ),
  );
  renderBacklog();
  api(`/api/charts/time?${query({ session: id })}`)
    .then((c) => (timeBox.innerHTML = c.svg))
    .catch(showError);
  api(`/api/charts/categories?${query({ session: id })}`)
    .then((c) => {
      catBox.innerHTML = c.svg;
      catBox.prepend(
        el(
          "p",
          { class: "note" },
          c.unit === "fields"
            ? "Share of field categories."
            : "Large session: share of the events' own categories (a field-level count would read every field row).",
        ),
      );
    })
    .catch(showError);
}

function verdictBlocks(verdicts) {
  if (!verdicts.length) return el("p", { class: "note" }, "No verdict stored for this session (exhaust verify).");
  const evidence = (e) =>
    el(
      "li",
      {},
      e.eventId ? el("a", { href: `#/event/${e.eventId}` }, `event ${e.eventId}`) : "",
      ` ${[e.eventName, e.fieldPath, e.host, e.location, e.form].filter(Boolean).join(" · ")} `,
      e.excerpt ? el("span", { class: "mono" }, e.excerpt) : "",
    );
  const ruleRow = (r) =>
    el(
      "tr",
      {},
      el("td", { class: "mono" }, r.id),
      el("td", { class: r.status }, r.status),
      el("td", { class: "num" }, r.count),
      el("td", {}, r.description),
      el(
        "td",
        {},
        el("ul", {}, r.evidence.slice(0, 10).map(evidence)),
        r.evidence.length > 10 || r.evidenceOmitted ? `${r.evidence.length - 10 + r.evidenceOmitted} more` : "",
      ),
    );
  return verdicts.map((v) =>
    el(
      "div",
      { class: "verdict" },
      el(
        "p",
        {},
        "Profile ",
        el("span", { class: "mono" }, v.profile.name),
        ": ",
        el("span", { class: v.status }, v.status.toUpperCase()),
        ` (pass ${v.counts.pass}, warn ${v.counts.warn}, fail ${v.counts.fail})`,
      ),
      v.coverage
        ? el(
            "p",
            { class: "note" },
            `Covered ${v.coverage.exchanges} exchanges (${v.coverage.decodedExchanges} decoded), ${v.coverage.events} events, ${v.coverage.catalogueTraffic} to catalogue hosts.`,
          )
        : "",
      (v.inconclusive || []).length
        ? el(
            "ul",
            { class: "inconclusive" },
            v.inconclusive.map((r) => el("li", {}, r)),
          )
        : "",
      table({}, ["Rule", "Status", "Count", "Description", "Evidence"], v.rules.map(ruleRow)),
    ),
  );
}

let exchangeCursors = [undefined];
async function renderExchanges() {
  const id = $("#f-session").value;
  if (!id) {
    main.replaceChildren(el("p", {}, "Choose a session above."));
    return;
  }
  const f = filters();
  const rows = await api(
    `/api/sessions/${id}/exchanges?${query({ host: f.host, category: f.category, after: exchangeCursors[exchangeCursors.length - 1], limit: PAGE })}`,
  );
  lastExchangesFull = rows.length >= PAGE;
  main.replaceChildren(
    el("p", { class: "note applied" }, appliedText(f), f.category ? ` Exchanges that carried at least one ${f.category} event.` : ""),
    el(
      "div",
      { class: "pager" },
      el(
        "button",
        {
          type: "button",
          disabled: exchangeCursors.length <= 1,
          onclick: () => (exchangeCursors.pop(), renderExchanges().catch(showError)),
        },
        "◀ Previous",
      ),
      el("span", {}, `page ${exchangeCursors.length}`),
      el(
        "button",
        {
          type: "button",
          disabled: rows.length < PAGE,
          onclick: () => (exchangeCursors.push(rows[rows.length - 1].seq), renderExchanges().catch(showError)),
        },
        "Next ▶",
      ),
    ),
    table(
      { id: "exchanges" },
      ["Seq", "Started", "Method", "Host", "Path", "Bytes", "Status", "Events", "Outcome", "Decoder"],
      rows.length
        ? rows.map((x) =>
            el(
              "tr",
              { class: "clickable", "data-exchange": x.id, onclick: () => (location.hash = `#/exchange/${encodeURIComponent(x.id)}`) },
              el("td", { class: "num" }, el("a", { href: `#/exchange/${encodeURIComponent(x.id)}` }, x.seq)),
              el("td", { class: "mono" }, fmtTime(x.startedAt)),
              el("td", {}, x.method),
              el("td", {}, breakable(x.host)),
              el("td", { class: "mono value" }, x.path),
              el("td", { class: "num" }, x.requestBodySize),
              el("td", { class: "num" }, x.responseStatus ?? "-"),
              el(
                "td",
                { class: "num", title: "events decoded (of them with content fields)" },
                x.events,
                x.contentEvents ? el("span", { class: "cat cat-content" }, `${x.contentEvents} content`) : "",
              ),
              el("td", {}, breakable(x.outcome)),
              el("td", {}, breakable(x.decoder || "-")),
            ),
          )
        : el("tr", {}, el("td", { colspan: 10 }, "no exchanges match")),
    ),
  );
}
let lastExchangesFull = false;

async function renderExchange(id) {
  const x = await api(`/api/exchanges/${encodeURIComponent(id)}`);
  const bodyBox = el("div", { id: "body" }, "Loading body…");
  const responseBox = el("div", { id: "response-body" }, "Loading body…");
  main.replaceChildren(
    el("h2", {}, `Exchange ${x.seq} of session ${x.session}`),
    el(
      "dl",
      {},
      ...[
        ["Request", `${x.method} ${x.scheme}://${x.host}:${x.port}${x.path}`],
        ["Started", fmtTime(x.startedAt)],
        ["Outcome", `${x.outcome} (${x.mode})`],
        ["Connection", x.connectionOutcome || "-"],
        ["Response status", x.responseStatus ?? "-"],
        ["Decoder", x.decoder || "-"],
        ["Content encoding", x.contentEncoding || "-"],
        ["Body", `${x.requestBodySize} bytes, sha256 ${x.requestBodySha256}`],
        ["Chain", `prev ${x.prevHash}\nhash ${x.hash}`],
      ].flatMap(([k, v]) => [el("dt", {}, k), el("dd", { class: "mono" }, v)]),
    ),
    el(
      "section",
      { id: "exchange-events" },
      el("h3", {}, `Events decoded (${x.events})`),
      x.eventList.length
        ? table(
            {},
            ["#", "Event", "Name", "Group", "Category", "Content", "Personal"],
            x.eventList.map((e) =>
              el(
                "tr",
                { "data-event": e.id },
                el("td", { class: "num" }, e.idx),
                el("td", { class: "num" }, el("a", { href: `#/event/${e.id}` }, e.id)),
                el("td", { class: "mono" }, el("a", { href: `#/event/${e.id}` }, e.name)),
                el("td", {}, e.group || "-"),
                el("td", {}, catBadge(e.category)),
                el("td", { class: "num" }, e.contentFields),
                el("td", { class: "num" }, e.personalFields),
              ),
            ),
          )
        : el("p", { class: "note" }, "none"),
    ),
    el("section", {}, el("h3", {}, "Request headers (credentials redacted)"), headersTable(x.requestHeaders)),
    el(
      "section",
      {},
      el("h3", {}, "Request items as classified"),
      el(
        "table",
        {},
        el(
          "tbody",
          {},
          x.requestItems.map((r) =>
            el(
              "tr",
              {},
              el("td", { class: "mono" }, r.name),
              el("td", {}, r.location),
              el("td", {}, catBadge(r.category)),
              el("td", {}, r.personal),
              el("td", {}, r.secret ? "secret" : ""),
              el("td", { class: "mono" }, r.rule),
            ),
          ),
        ),
      ),
    ),
    el("section", {}, el("h3", {}, "Raw request body"), bodyControls(x.id, bodyBox), bodyBox),
    decodeFindingsSection(x.decodeFindings),
    el(
      "section",
      { id: "response" },
      el("h3", {}, `Response: ${x.responseStatus ?? "none"}${x.responseSource ? ` (from ${x.responseSource})` : ""}`),
      el("h4", {}, "Response headers (credentials redacted)"),
      x.responseHeaders ? headersTable(x.responseHeaders) : el("p", { class: "note" }, "no response headers recorded"),
      el("h4", {}, "Response body"),
      x.responseBodySha256
        ? [bodyControls(x.id, responseBox, "response"), responseBox]
        : el("p", { class: "note" }, "no response body recorded"),
    ),
  );
  loadBody(x.id, bodyBox, "", false).catch(showError);
  if (x.responseBodySha256) loadBody(x.id, responseBox, "", false, "response").catch(showError);
}

// ---- Live updates: server-sent events from /api/live ----

let livePaused = false;
let liveMissed = 0; // events that arrived while paused (what the header says)
let liveMissedRows = 0; // events and exchanges: whether resuming must re-read the view
let liveTimer = null;
let liveSource = null;

function liveStatus(text) {
  $("#live-status").textContent = text;
}

/** Re-reads the current view when new rows may belong on it (the last page of a list). */
function liveRefresh() {
  const view = location.hash.split("/")[1] || "events";
  if (view === "events" && lastEventsPage && lastEventsPage.nextAfterId === null) renderEvents().catch(showError);
  else if (view === "exchanges" && !lastExchangesFull) renderExchanges().catch(showError);
  else if (view === "fields" && !lastFieldsFull) renderFields().catch(showError);
}

function onStored(msg) {
  const n = msg.events.length + msg.exchanges.length;
  if (!n) return;
  if (livePaused) {
    liveMissedRows += n;
    liveMissed += msg.events.length;
    liveStatus(`paused: ${liveMissed} new event${liveMissed === 1 ? "" : "s"}`);
    return;
  }
  liveStatus(
    `${msg.events.length} new event${msg.events.length === 1 ? "" : "s"}, ${msg.exchanges.length} exchange${msg.exchanges.length === 1 ? "" : "s"} at ${new Date().toISOString().slice(11, 19)}`,
  );
  clearTimeout(liveTimer);
  liveTimer = setTimeout(() => {
    liveRefresh();
    // Session counts (and a session started after the page opened) in the session list.
    loadSessions().catch(showError);
  }, 250);
}

function startLive() {
  if (!window.EventSource) {
    liveStatus("no live updates in this browser");
    return;
  }
  liveSource = new EventSource("/api/live");
  liveSource.addEventListener("stored", (e) => onStored(JSON.parse(e.data)));
  liveSource.addEventListener("backlog", (e) => onBacklog(JSON.parse(e.data)));
  liveSource.addEventListener("hello", () => $("#live-toggle").classList.add("connected"));
  liveSource.onerror = () => $("#live-toggle").classList.remove("connected");
  const toggle = $("#live-toggle");
  toggle.addEventListener("click", () => {
    livePaused = !livePaused;
    toggle.setAttribute("aria-pressed", livePaused ? "false" : "true");
    toggle.textContent = livePaused ? "❚❚ paused" : "● live";
    toggle.title = livePaused
      ? "Live updates paused: click to resume"
      : "Live updates: new exchanges and events appear as they are stored (click to pause)";
    if (!livePaused && pendingBacklog) {
      applyBacklog(pendingBacklog);
      pendingBacklog = null;
    }
    if (!livePaused && liveMissedRows) {
      liveMissed = 0;
      liveMissedRows = 0;
      liveStatus("");
      liveRefresh();
    }
  });
}

// ---- The decoding backlog: exchanges stored but not decoded yet (GET /api/sessions, "backlog" messages) ----

const sessionInfo = new Map(); // session id -> { name, exchanges }
const backlog = new Map(); // session id -> { undecoded, decodingByProxy }, sessions with a backlog only
let pendingBacklog = null; // the newest backlog message that arrived while paused
let sessionPageBacklog = 0; // what was not decoded yet when the session page shown was read

function setBacklog(id, b) {
  if (b.undecoded > 0) backlog.set(id, { undecoded: b.undecoded, decodingByProxy: b.decodingByProxy });
  else backlog.delete(id);
}

function notDecodedText(n) {
  return `${n.toLocaleString("en-US")} exchange${n === 1 ? "" : "s"} not decoded yet`;
}

function onBacklog(msg) {
  if (livePaused) pendingBacklog = msg;
  else applyBacklog(msg);
}

function applyBacklog(msg) {
  backlog.clear();
  for (const s of msg.sessions) setBacklog(s.id, s);
  renderBacklog();
}

/** The backlog beside each session in the list, in the banner over every view, and on the session page. */
function renderBacklog() {
  for (const option of $("#f-session").options) {
    const s = sessionInfo.get(Number(option.value));
    if (!s) continue;
    const b = backlog.get(Number(option.value));
    option.textContent = `${s.name} (${s.exchanges} exchanges${b ? `, ${notDecodedText(b.undecoded)}` : ""})`;
  }
  const selected = $("#f-session").value;
  const scope = selected ? [backlog.get(Number(selected))].filter(Boolean) : [...backlog.values()];
  const total = scope.reduce((n, b) => n + b.undecoded, 0);
  const banner = $("#backlog");
  banner.hidden = total === 0;
  if (total > 0) {
    const byProxy = scope.every((b) => b.decodingByProxy);
    const name = selected ? sessionInfo.get(Number(selected))?.name : undefined;
    banner.replaceChildren(
      el("strong", {}, notDecodedText(total)),
      name ? ` in session ${name}` : scope.length > 1 ? ` in ${scope.length} sessions` : "",
      byProxy
        ? ": the running proxy is decoding them (this count goes down as it catches up)."
        : ": no running proxy is decoding them; `exhaust reprocess` does.",
      " Until then the events, fields, charts and verdicts shown are incomplete: they leave those exchanges out.",
    );
  }
  const dd = $("#session-undecoded");
  if (dd) {
    const b = backlog.get(Number(selected));
    // The page's counts and charts were read over less: read them again once all is decoded.
    if (!b && sessionPageBacklog > 0) {
      sessionPageBacklog = 0;
      renderSession().catch(showError);
    }
    dd.hidden = $("#session-undecoded-label").hidden = !b;
    dd.textContent = b ? `${notDecodedText(b.undecoded)}${b.decodingByProxy ? " (the running proxy is decoding them)" : ""}` : "";
  }
}

// ---- Keyboard: j/k through events, Enter opens, / searches, Esc back (as in mitmweb) ----

function onKey(e) {
  if (e.ctrlKey || e.metaKey || e.altKey) return;
  const t = e.target;
  const typing = t && (t.tagName === "INPUT" || t.tagName === "SELECT" || t.tagName === "TEXTAREA");
  if (typing) {
    if (e.key === "Escape") t.blur();
    return;
  }
  const view = location.hash.split("/")[1] || "events";
  if (e.key === "/") {
    e.preventDefault();
    if (view !== "events" && view !== "fields") {
      showFiltersFor("events");
      location.hash = "#/events";
    }
    $("#f-q").focus();
    return;
  }
  if (e.key === "Escape" && view === "event") {
    location.hash = "#/events";
    return;
  }
  if (e.key !== "j" && e.key !== "k" && e.key !== "Enter") return;
  if (!listIds.length) return;
  const at = listIds.indexOf(selectedId);
  if (e.key === "Enter") {
    if (view === "events" && selectedId !== null) location.hash = `#/event/${selectedId}`;
    return;
  }
  const next = listIds[Math.max(0, Math.min(listIds.length - 1, at + (e.key === "j" ? 1 : -1)))];
  if (view === "events") selectRow(next);
  else if (view === "event" && next !== selectedId) location.hash = `#/event/${next}`;
}

// ---- Routing and start ----

function route() {
  const [, view, arg] = location.hash.split("/");
  for (const a of document.querySelectorAll("header nav a")) a.classList.toggle("active", a.id === `nav-${view || "events"}`);
  showFiltersFor(view || "events");
  const run =
    view === "event"
      ? renderEvent(arg)
      : view === "exchange"
        ? renderExchange(decodeURIComponent(arg))
        : view === "fields"
          ? renderFields()
          : view === "session"
            ? renderSession()
            : view === "exchanges"
              ? renderExchanges()
              : renderEvents();
  run.catch(showError);
}

async function loadHosts() {
  const hosts = await api(`/api/hosts?${query({ session: $("#f-session").value })}`);
  const sel = $("#f-host");
  const keep = sel.value;
  sel.replaceChildren(el("option", { value: "" }, "any"), ...hosts.map((h) => el("option", { value: h }, h)));
  if (hosts.includes(keep)) sel.value = keep;
}

async function loadSessions() {
  const sessions = await api("/api/sessions");
  const sel = $("#f-session");
  const keep = sel.value;
  sessionInfo.clear();
  for (const s of sessions) {
    sessionInfo.set(s.id, { name: s.name, exchanges: s.exchanges });
    setBacklog(s.id, s);
  }
  sel.replaceChildren(el("option", { value: "" }, "all sessions"), ...sessions.map((s) => el("option", { value: s.id })));
  sel.value = keep;
  renderBacklog();
}

async function start() {
  await loadSessions();
  await loadHosts();
  $("#filters").addEventListener("submit", (e) => {
    e.preventDefault();
    resetPaging();
    fieldCursors = [undefined];
    exchangeCursors = [undefined];
    viewFilters[filterView] = readForm();
    const view = location.hash.split("/")[1] || "events";
    if (view === "fields") renderFields().catch(showError);
    else if (view === "exchanges") renderExchanges().catch(showError);
    else if (location.hash !== "#/events") location.hash = "#/events";
    else renderEvents().catch(showError);
  });
  document.addEventListener("keydown", onKey);
  startLive();
  $("#f-session").addEventListener("change", () => {
    resetPaging();
    fieldCursors = [undefined];
    exchangeCursors = [undefined];
    loadHosts().catch(showError);
    renderBacklog();
    route();
  });
  window.addEventListener("hashchange", route);
  route();
}

start().catch(showError);

/** What the decoder found in an exchange's body (the event and the exchange pages both show it). */
function decodeFindingsSection(findings) {
  if (!findings.length) return "";
  return el(
    "section",
    {},
    el("h3", {}, "Decode findings"),
    el(
      "ul",
      {},
      findings.map((f) => el("li", {}, `${f.code} (${f.severity}) at ${f.offset ?? "-"}: ${f.message}`)),
    ),
  );
}
