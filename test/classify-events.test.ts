import { describe, expect, it } from "vitest";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { spawnSync } from "node:child_process";
import { PACKAGE_ROOT } from "../src/paths.js";
import { classifyEvent, eventGroup, loadRulePacks } from "../src/classify/engine.js";

/** CI keeps shared/ beside the repository. */
const SHARED_TSV = join(PACKAGE_ROOT, "..", "shared", "data", "office-events.tsv");
const haveShared = existsSync(SHARED_TSV);
const skipNote = haveShared ? "" : ` (skipped: ${SHARED_TSV} not found)`;

const packs = loadRulePacks();

interface SharedRow {
  name: string;
  group: string;
  category: string;
  subtype: string;
}
function sharedRows(): SharedRow[] {
  const [header, ...lines] = readFileSync(SHARED_TSV, "utf8").split(/\r?\n/).filter(Boolean);
  const cols = header.split("\t");
  const at = (cells: string[], c: string) => cells[cols.indexOf(c)] ?? "";
  return lines.map((l) => {
    const cells = l.split("\t");
    return {
      name: at(cells, "event_name"),
      group: at(cells, "microsoft_group"),
      category: at(cells, "category"),
      subtype: at(cells, "subtype"),
    };
  });
}

describe("the event catalogue", () => {
  it.runIf(haveShared)(`classifiers/events/office-events.tsv is up to date with shared/data/office-events.tsv${skipNote}`, () => {
    const r = spawnSync(process.execPath, [join(PACKAGE_ROOT, "scripts", "gen-event-catalogue.mjs"), "--check", "--input", SHARED_TSV], {
      encoding: "utf8",
    });
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
  });

  it.runIf(haveShared)(`gives every event name of shared/data/office-events.tsv its Microsoft group${skipNote}`, () => {
    const rows = sharedRows();
    expect(rows.length).toBeGreaterThanOrEqual(1704);
    const groups = new Map<string, Set<string>>();
    for (const r of rows) groups.set(r.name, (groups.get(r.name) ?? new Set()).add(r.group));
    for (const [name, gs] of groups) {
      const c = classifyEvent({ index: 0, name, fields: [] }, packs);
      expect(c.groupRule, name).toBe(`event.office.${name.replace(/ /g, "_")}`);
      if (gs.size === 1) expect(c.group, name).toBe([...gs][0]);
      else expect([...gs], name).toContain(c.group);
      expect(c.eventCategory, name).toBe(c.group === "essential" ? "functional" : "diagnostic");
    }
  });

  it.runIf(haveShared)(`keeps Microsoft's category and subtype, and the other entries of names listed twice${skipNote}`, () => {
    for (const r of sharedRows()) {
      const rule = packs.catalog.get(r.name)!;
      if (rule.group !== r.group) {
        expect(rule.also, r.name).toContain(`${r.group}|${r.category}|${r.subtype}|`);
        continue;
      }
      expect(rule.catalogCategory ?? "", r.name).toBe(r.category);
      expect(rule.subtype ?? "", r.name).toBe(r.subtype);
    }
  });

  it("keeps a source URL and a why for every catalogue rule", () => {
    expect(packs.catalog.size).toBeGreaterThanOrEqual(1699);
    for (const rule of packs.catalog.values()) {
      expect(rule.source, rule.id).toMatch(
        rule.id.startsWith("event.windows.")
          ? /^https:\/\/github\.com\/MicrosoftDocs\/windows-itpro-docs\/blob\/[0-9a-f]+\/windows\/privacy\//
          : /^https:\/\/learn\.microsoft\.com\//,
      );
      expect(rule.why.length, rule.id).toBeGreaterThan(10);
    }
  });

  it("prefers the still-documented entry, then essential, for names listed twice", () => {
    // Documented both as an essential service and as required diagnostic data, both current.
    expect(eventGroup("Office.ClickToRun.UpdateStatus", packs)).toMatchObject({ group: "essential", category: "functional" });
    // Essential entry removed from the docs, required entry current.
    expect(eventGroup("Office.OneNote.FirstRun.FirstRunDurationsBreakdown", packs)).toMatchObject({ group: "required" });
  });

  it("matches names that differ only in case, after exact names", () => {
    expect(eventGroup("office.word.fileopen.userinitiatedopen", packs)).toMatchObject({
      group: "required",
      groupRule: "event.office.Office.Word.FileOpen.UserInitiatedOpen",
    });
    expect(eventGroup("Office.Android.DocsUI.PayWallControl.PaywallSessionData", packs).groupRule).toBe(
      "event.office.Office.Android.DocsUI.PayWallControl.PaywallSessionData",
    );
  });
});

const WINDOWS_TSV = join(PACKAGE_ROOT, "..", "shared", "data", "windows-events.tsv");
const haveWindows = existsSync(WINDOWS_TSV);

describe("the Windows event catalogue (Microsoft's required Windows diagnostic events)", () => {
  it.runIf(haveWindows)("classifiers/events/windows-events.tsv is up to date with shared/data/windows-events.tsv", () => {
    const r = spawnSync(
      process.execPath,
      [join(PACKAGE_ROOT, "scripts", "gen-event-catalogue.mjs"), "--windows", "--check", "--input", WINDOWS_TSV],
      { encoding: "utf8" },
    );
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
  });

  it.runIf(haveWindows)("gives every listed Windows event its group: required, or optional when only in the limit-enhanced list", () => {
    const [header, ...lines] = readFileSync(WINDOWS_TSV, "utf8").split(/\r?\n/).filter(Boolean);
    const cols = header.split("\t");
    const groups = new Map<string, Set<string>>();
    for (const l of lines) {
      const cells = l.split("\t");
      const name = cells[cols.indexOf("event")];
      for (const g of cells[cols.indexOf("group")].split(",")) groups.set(name, (groups.get(name) ?? new Set()).add(g));
    }
    expect(groups.size).toBeGreaterThanOrEqual(1055);
    for (const [name, gs] of groups) {
      const g = eventGroup(name, packs);
      expect(g.groupRule, name).toBe(`event.windows.${name.replace(/ /g, "_")}`);
      expect(g.group, name).toBe(gs.has("required") ? "required" : "optional");
      expect(g.category, name).toBe("diagnostic");
    }
  });

  it("classifies the events of real Diagnostic Data Viewer captures by Microsoft's list, not by a glob", () => {
    // Names from payloads copied from the viewer on Windows 10 21H1 (real-world samples).
    for (const name of [
      "Census.Battery",
      "Census.Enterprise",
      "Microsoft.Windows.Kernel.Power.OSStateChange",
      "Microsoft.Windows.StoreAgent.Telemetry.InstallOperationRequest",
    ]) {
      expect(eventGroup(name, packs), name).toMatchObject({ group: "required", groupRule: `event.windows.${name}` });
    }
    expect(eventGroup("Census.NotInAnyList", packs).groupRule).toBe("event.glob.windows-census");
  });
});
