/**
 * Field paths are unique within an event: a filter on `name` must mean the envelope's event name,
 * never a Part C property that happens to be called `name` (OneCollector lines such as
 * `{"name":"MyNewEvent",…,"data":{"name":"MyEvent"}}` carry both).
 */

/** Envelope paths of every decoder (1DS JSON/Bond, Application Insights, Aria). */
const ENVELOPE_PATHS = new Set(["ver", "name", "time", "iKey", "cV", "flags", "popSample", "Type", "RecordType", "sampleRate", "seq"]);

/**
 * The path of a Part C property: its key verbatim ("Data.Doc.Ext" stays one name), unless the key
 * would read as an envelope field or as a path under Part A/B (`ext.`, `tags.`, `data.`); such a key
 * keeps its own name under `data.` (`data.name`), where it sits on the wire.
 */
export function partCPath(key: string): string {
  if (ENVELOPE_PATHS.has(key) || key.startsWith("ext.") || key.startsWith("data.") || key.startsWith("tags.")) return `data.${key}`;
  return key;
}

/** The wire key of a Part C path: the inverse of partCPath (for rebuilding events from fields). */
export function partCKey(path: string): string {
  if (path.startsWith("data.")) {
    const key = path.slice("data.".length);
    if (partCPath(key) === path) return key;
  }
  return path;
}
