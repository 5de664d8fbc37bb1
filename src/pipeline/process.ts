/**
 * The stages after capture, for one stored exchange: load → decode → classify → store. Runs in
 * the processing worker while the proxy is up, and in-process for `exhaust reprocess`.
 */
import { EndpointCatalog } from "../catalog/endpoints.js";
import { classifyEvent, classifyRequest, loadRulePacks, type RulePacks } from "../classify/engine.js";
import { rulePacksFingerprint } from "../classify/fingerprint.js";
import { CURRENT_DECODER_TAGS, decodeUpload, type DecodedUpload } from "../decode/registry.js";
import type { Db } from "../store/database.js";
import { EventStore, type Currency, type ProcessedUpload, type StoredUpload } from "../store/event-store.js";
import type { StopSignal, WriterPriority } from "../store/writer-priority.js";

export interface ProcessOutcome {
  exchangeId: string;
  decoder: string;
  events: number;
  findings: number;
  contentFields: number;
}

export class ExchangeProcessor {
  private readonly store: EventStore;
  private readonly packs: RulePacks;
  private readonly catalog: EndpointCatalog;
  readonly rulesFingerprint: string;

  constructor(
    db: Db,
    options: {
      packs?: RulePacks;
      catalog?: EndpointCatalog;
      rowsPerTransaction?: number;
      priority?: WriterPriority;
      /** Ends processing between two transactions (the processing thread's stop). */
      stop?: StopSignal;
    } = {},
  ) {
    const { rowsPerTransaction, priority, stop } = options;
    this.store = new EventStore(db, { rowsPerTransaction, priority, stop });
    this.packs = options.packs ?? loadRulePacks();
    this.catalog = options.catalog ?? EndpointCatalog.load();
    this.rulesFingerprint = rulePacksFingerprint();
  }

  /**
   * Decodes, classifies and stores one exchange. With `onlyIfPending`, an exchange that is already
   * processed by the current decoders and rules is left alone: the processing thread can be told of
   * an exchange twice (its catch-up list at start and the proxy's notice both name a capture made
   * while it started), and processing again would give its events new ids.
   */
  process(exchangeId: string, options: { onlyIfPending?: boolean } = {}): ProcessOutcome | undefined {
    if (options.onlyIfPending && !this.store.isPending(exchangeId, this.currency)) return undefined;
    const upload = this.loadUpload(exchangeId);
    if (!upload) return undefined;
    return this.processUpload(upload);
  }

  /**
   * The same for an upload already in memory, exactly as loadUpload would read it back (the
   * importer's: its bodies were just stored). With `fresh`, the exchange is known to have no
   * results yet, so nothing is looked up or deleted before its events are inserted.
   */
  processUpload(upload: StoredUpload, options: { fresh?: boolean } = {}): ProcessOutcome {
    const results = this.classifyUpload(upload, decodeUpload(upload));
    this.storeResults(upload, results, options);
    let contentFields = 0;
    for (const c of results.classified) for (const f of c.fields) if (f.category === "content") contentFields++;
    return {
      exchangeId: upload.id,
      decoder: results.decoded.decoder,
      events: results.decoded.events.length,
      findings: results.decoded.findings.length,
      contentFields,
    };
  }

  /**
   * The stages one at a time, as processUpload runs them (the bench times each: load, decode with
   * decodeUpload, classify, store): the stored upload, or undefined for an unknown exchange.
   */
  loadUpload(exchangeId: string): StoredUpload | undefined {
    return this.store.loadUpload(exchangeId);
  }

  /** Classification of a decoded upload: its events, and the request's headers and query. */
  classifyUpload(upload: StoredUpload, decoded: DecodedUpload): ProcessedUpload {
    const q = upload.path.indexOf("?");
    const query = new URLSearchParams(q === -1 ? "" : upload.path.slice(q + 1));
    const context = { facts: decoded.facts, endpointPurpose: this.catalog.match(upload.host)?.purpose };
    const classified = decoded.events.map((e) => classifyEvent(e, this.packs, context));
    const request = classifyRequest({ headers: upload.headers, query, clientAddress: upload.clientAddress }, this.packs);
    return { decoded, classified, request, rulesFingerprint: this.rulesFingerprint };
  }

  /** Stores an upload's results in place of any it had (processUpload's last stage). */
  storeResults(upload: StoredUpload, results: ProcessedUpload, options: { fresh?: boolean } = {}): void {
    this.store.replaceEvents(upload, results, options);
  }

  /** Exchanges not processed yet, decoded by an older decoder, or classified with other rules (all with `all`). */
  pending(options: { sessionId?: number; all?: boolean } = {}): string[] {
    return this.store.pendingExchanges({ ...options, ...this.currency });
  }

  private get currency(): Currency {
    return { currentTags: CURRENT_DECODER_TAGS, rulesFingerprint: this.rulesFingerprint };
  }
}
