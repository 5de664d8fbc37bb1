/**
 * Builds a Windows Diagnostic Data Viewer store, EventTranscript.db, with the schema of
 * wire-formats.md §5.1: events_persisted (payload JSON per event, FILETIME timestamp), event_tags
 * and tag_descriptions (data categories per event-name hash).
 */
import Database from "better-sqlite3";

export interface TranscriptEvent {
  /** The CS 4.0 JSON payload as DiagTrack stores it. */
  payload: Record<string, unknown>;
  /** ms since the Unix epoch. */
  time: number;
  /** Data-category tag names, e.g. "Product and Service Performance". */
  tags?: string[];
}

export const FILETIME_UNIX_EPOCH = 116_444_736_000_000_000n;

export function writeEventTranscript(file: string, events: TranscriptEvent[]): void {
  const db = new Database(file);
  db.exec(`
    CREATE TABLE events_persisted (sid TEXT, timestamp INTEGER, payload TEXT, full_event_name TEXT, full_event_name_hash INTEGER,
      event_keywords INTEGER, is_core INTEGER, provider_group_id INTEGER, logging_binary_name TEXT,
      friendly_logging_binary_name TEXT, compressed_payload_size INTEGER, producer_id INTEGER);
    CREATE TABLE event_tags (full_event_name_hash INTEGER, tag_id INTEGER);
    CREATE TABLE tag_descriptions (tag_id INTEGER, locale_name TEXT, tag_name TEXT, description TEXT);
    CREATE TABLE producers (producer_id INTEGER, producer_id_text TEXT);`);
  const tagIds = new Map<string, number>();
  const insertEvent = db.prepare("INSERT INTO events_persisted VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
  const insertTag = db.prepare("INSERT INTO event_tags VALUES (?, ?)");
  const insertDescription = db.prepare("INSERT INTO tag_descriptions VALUES (?, ?, ?, ?)");
  const tagged = new Set<string>();
  events.forEach((e, i) => {
    const name = String(e.payload.name);
    const hash = [...name].reduce((h, c) => (h * 31 + c.charCodeAt(0)) % 2 ** 31, 7);
    const payload = JSON.stringify(e.payload);
    insertEvent.run(
      `S-1-5-18`,
      BigInt(e.time) * 10_000n + FILETIME_UNIX_EPOCH,
      payload,
      name,
      hash,
      0x800000000000,
      1,
      1,
      "devicecensus.exe",
      "Device Census",
      payload.length,
      i + 1,
    );
    for (const tag of e.tags ?? []) {
      if (!tagIds.has(tag)) {
        tagIds.set(tag, tagIds.size + 11);
        insertDescription.run(tagIds.get(tag), "en-US", tag, `${tag} (description)`);
        insertDescription.run(tagIds.get(tag), "de-DE", `${tag} (de)`, "Beschreibung");
      }
      if (!tagged.has(`${hash}:${tag}`)) insertTag.run(hash, tagIds.get(tag));
      tagged.add(`${hash}:${tag}`);
    }
  });
  db.close();
}
