/**
 * The stages after capture, for one stored exchange: load → decode → (classify) → store. Runs in
 * the processing worker while the proxy is up, and in-process for `exhaust reprocess`.
 */
import { CURRENT_DECODER_TAGS, decodeUpload } from "../decode/registry.js";
import type { Db } from "../store/database.js";
import { DecodedStore } from "../store/decoded-store.js";

export interface ProcessOutcome {
  exchangeId: string;
  decoder: string;
  events: number;
  findings: number;
}

export class ExchangeProcessor {
  private readonly store: DecodedStore;

  constructor(db: Db) {
    this.store = new DecodedStore(db);
  }

  process(exchangeId: string): ProcessOutcome | undefined {
    const upload = this.store.loadUpload(exchangeId);
    if (!upload) return undefined;
    const decoded = decodeUpload(upload);
    this.store.replaceDecoded(upload, decoded);
    return { exchangeId, decoder: decoded.decoder, events: decoded.events.length, findings: decoded.findings.length };
  }

  /** Exchanges not decoded yet, or decoded by an older decoder version (all of them with `all`). */
  pending(options: { sessionId?: number; all?: boolean } = {}): string[] {
    return this.store.pendingExchanges({ ...options, currentTags: CURRENT_DECODER_TAGS });
  }
}
