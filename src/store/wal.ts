/**
 * Write-ahead log management for a writer that has the database to itself between two writes
 * (the checkpoint thread, src/store/checkpointer.ts, handles the capture's WAL).
 */
import type { Db } from "./database.js";

/**
 * A passive checkpoint between two writes: it takes in the frames not yet checkpointed, so the
 * next write starts the WAL over instead of growing it. Never waits for readers.
 */
export function checkpointBetweenWrites(db: Db): void {
  db.pragma("wal_checkpoint(PASSIVE)");
}
