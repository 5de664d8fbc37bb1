/**
 * Complete before it answers: decodes what is still pending in a scope (sessions, or one exchange)
 * with the same ExchangeProcessor the processing thread and `exhaust reprocess` run, and counts what
 * it could not decode. Used by the proxy's graceful stop (its backlog) and by every command that
 * reads results; where decoding is not possible (a read-only database, a session another process is
 * still capturing or importing) it only counts, so the caller can say so.
 */
import { setImmediate as nextTurn, setTimeout as sleep } from "node:timers/promises";
import { rulePacksFingerprint } from "../classify/fingerprint.js";
import { CURRENT_DECODER_TAGS } from "../decode/registry.js";
import { sessionStates, undecodedCount, undecodedMarks, undecodedThrough, type SessionState } from "../store/completeness.js";
import type { Db } from "../store/database.js";
import { EventStore } from "../store/event-store.js";
import { ExchangeProcessor } from "./process.js";

export interface DecodeScope {
  /** These sessions; every session when undefined. */
  sessionIds?: readonly number[];
  /** Only this exchange (`exhaust show`); it must belong to one of the sessions in scope. */
  exchangeId?: string;
}

export interface CompletionOptions {
  /** The database was opened read-only: count, never write. */
  readonly?: boolean;
  /** Sessions not to decode because another process is writing them (the proxy capturing, an import). */
  busySessions?: ReadonlySet<number>;
  /** Told once how many exchanges will be decoded, then as they are. */
  onStart?(pending: number): void;
  onProgress?(done: number, pending: number): void;
  /** Asked between exchanges: true stops (a second Ctrl-C); what is left is counted as undecoded. */
  shouldStop?(): boolean;
  /**
   * Sessions a running proxy decodes itself (its processing thread; `sessionsOwnedByLiveProxy`).
   * Before counting, wait while that thread works through what is undecoded in them now, so that
   * a command run right after an upload sees its events; exchanges captured meanwhile are not
   * waited for. Waiting ends when they are decoded, on `shouldStop`, or after `stallMs`.
   */
  waitFor?: ReadonlySet<number>;
  /** Give up waiting once the proxy has decoded nothing for this long (default WAIT_STALL_MS). */
  stallMs?: number;
  /** Told how many of the exchanges waited for are left, when the wait starts and as it shrinks. */
  onWait?(left: number, total: number): void;
}

/** A proxy's niced processing thread on a busy machine can pause for seconds; past this it is stuck. */
export const WAIT_STALL_MS = 10_000;
/** How often the wait looks at the database again. */
const WAIT_POLL_MS = 100;

export interface Completion {
  /** Exchanges decoded (or re-decoded with current decoders and rules) just now. */
  decoded: number;
  /** Exchanges in scope never decoded, after this run. */
  undecoded: number;
  /** Why `undecoded` is not 0, for people (empty when it is 0). */
  reasons: string[];
  /** Exchanges whose decoding threw (logged as reasons; they stay pending). */
  failed: number;
  /** Stopped early by shouldStop. */
  stopped: boolean;
}

/** The exchanges processing considers pending (never decoded, older decoder, other rules) in a scope. */
export function pendingInScope(db: Db, scope: DecodeScope, skip: ReadonlySet<number> = new Set()): string[] {
  const store = new EventStore(db);
  const currency = { currentTags: CURRENT_DECODER_TAGS, rulesFingerprint: rulePacksFingerprint() };
  if (scope.exchangeId !== undefined) {
    if (scope.sessionIds?.some((id) => skip.has(id))) return [];
    return store.isPending(scope.exchangeId, currency) ? [scope.exchangeId] : [];
  }
  if (scope.sessionIds === undefined && skip.size === 0) return store.pendingExchanges(currency);
  const sessions = (scope.sessionIds ?? sessionStates(db).map((s) => s.id)).filter((id) => !skip.has(id));
  return sessions.flatMap((sessionId) => store.pendingExchanges({ sessionId, ...currency }));
}

/**
 * Decodes what is pending in `scope` (unless read-only), one exchange per turn of the event loop so
 * a signal can stop it, and counts what is left undecoded.
 */
export async function completeDecoding(db: Db, scope: DecodeScope, options: CompletionOptions = {}): Promise<Completion> {
  const busy = options.busySessions ?? new Set<number>();
  const reasons: string[] = [];
  let decoded = 0;
  let failed = 0;
  let stopped = false;
  if (options.waitFor && options.waitFor.size > 0) stopped = await waitForLiveProxy(db, scope, options.waitFor, options);
  if (!options.readonly && !stopped) {
    const ids = pendingInScope(db, scope, busy);
    if (ids.length > 0) {
      options.onStart?.(ids.length);
      const processor = new ExchangeProcessor(db);
      for (const id of ids) {
        if (options.shouldStop?.()) {
          stopped = true;
          break;
        }
        try {
          if (processor.process(id, { onlyIfPending: true })) decoded++;
        } catch (e) {
          failed++;
          // A busy database (another writer holding the lock past the timeout): stop, report what is left.
          if ((e as { code?: string }).code?.startsWith("SQLITE_BUSY")) {
            reasons.push("the database stayed locked by another writer");
            break;
          }
          if (failed === 1) reasons.push(`decoding failed: ${(e as Error).message}`);
        }
        options.onProgress?.(decoded + failed, ids.length);
        await nextTurn();
      }
    }
  }
  const sessionIds = scope.sessionIds;
  const undecoded = scope.exchangeId !== undefined ? exchangeUndecoded(db, scope.exchangeId) : undecodedCount(db, sessionIds);
  if (undecoded > 0) {
    if (options.readonly) reasons.unshift("the database is read-only");
    const busyStates = sessionStates(db, sessionIds).filter((s) => busy.has(s.id));
    if (busyStates.length && !options.readonly) reasons.unshift(busyReason(busyStates));
    if (stopped) reasons.unshift("decoding was stopped");
  }
  return { decoded, undecoded, reasons: undecoded > 0 ? [...new Set(reasons)] : [], failed, stopped };
}

/**
 * Waits while a running proxy decodes what is undecoded now in `sessions` (within the scope).
 * Returns true when stopped by `shouldStop`. Only reads: the proxy's thread does the writing.
 */
async function waitForLiveProxy(db: Db, scope: DecodeScope, sessions: ReadonlySet<number>, options: CompletionOptions): Promise<boolean> {
  const ids = [...sessions].filter((id) => scope.sessionIds === undefined || scope.sessionIds.includes(id));
  if (ids.length === 0) return false;
  const marks = undecodedMarks(db, ids, scope.exchangeId);
  if (marks.size === 0) return false;
  const stallMs = options.stallMs ?? WAIT_STALL_MS;
  const total = undecodedThrough(db, marks, scope.exchangeId);
  let left = total;
  let progressAt = Date.now();
  options.onWait?.(left, total);
  while (left > 0 && Date.now() - progressAt < stallMs) {
    if (options.shouldStop?.()) return true;
    await sleep(WAIT_POLL_MS);
    const now = undecodedThrough(db, marks, scope.exchangeId);
    if (now < left) {
      left = now;
      progressAt = Date.now();
      options.onWait?.(left, total);
    }
  }
  return false;
}

function exchangeUndecoded(db: Db, exchangeId: string): number {
  return db.prepare("SELECT COUNT(*) FROM exchanges WHERE id = ? AND decoder IS NULL").pluck().get(exchangeId) as number;
}

function busyReason(states: SessionState[]): string {
  const names = states.map((s) => s.name).join(", ");
  return `session ${names} is still being written by another process (a running proxy or import; a killed import stays so)`;
}
