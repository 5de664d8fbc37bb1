import { exhaustError, isExhaustError } from "../../errors.js";
import type { Addon } from "./addon.js";
import type { Exchange } from "../../types.js";
import { completionOf, type CaptureSink, type SessionInfo } from "../../store/capture-store.js";

/**
 * Durable capture. The engine awaits `onResponse` before it releases the response, and this hook
 * resolves only after the group commit that holds the exchange: an upload the client saw
 * acknowledged is on disk (WAL) even if the proxy is killed the next instant. The hook is
 * `required`: when the commit fails (disk full, database locked, store gone) it throws
 * EXH_CAPTURE_FAILED and the engine answers 503 instead of releasing anything (fail closed).
 */
export function captureAddon(store: CaptureSink, session: SessionInfo): Addon {
  // Exchanges whose durable point committed: only those get their completion written.
  const committed = new WeakSet<Exchange>();
  const commit = async (x: Exchange) => {
    if (!x.capture) return;
    try {
      await store.commitExchange(session, x);
    } catch (e) {
      if (isExhaustError(e) && e.code === "EXH_CAPTURE_FAILED") throw e;
      throw exhaustError("EXH_CAPTURE_FAILED", { reason: (e as Error)?.message?.split("\n")[0] ?? String(e) }, e);
    }
    committed.add(x);
  };
  // Connection rows, completions and the flush at close acknowledge nothing to a client. Once the
  // store is gone its guard has said so, once, and the proxy stops with that error as its last
  // line: each connection closing on the way out would only repeat it as an addon failure.
  const unlessStoreGone = (write: Promise<void>) =>
    write.catch((e: unknown) => {
      if (!(isExhaustError(e) && e.code === "EXH_STORE_GONE")) throw e;
    });
  return {
    name: "capture",
    required: ["onResponse"],
    onConnectionOpened: (c) => unlessStoreGone(store.openConnection(session, c)),
    onConnectionClosed: (c) => unlessStoreGone(store.closeConnection(c)),
    onResponse: commit,
    onError: commit,
    onExchangeEnd: (x) => (committed.has(x) ? unlessStoreGone(store.completeExchange(completionOf(x))) : undefined),
    close: () => unlessStoreGone(store.flush()),
  };
}
