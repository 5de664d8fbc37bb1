import type { Addon } from "../proxy/addons/addon.js";
import { completionOf, type CaptureSink, type SessionInfo } from "../store/capture-store.js";

/**
 * Durable capture. The engine awaits `onResponse` before it releases the response, and this hook
 * resolves only after the group commit that holds the exchange: an upload the client saw
 * acknowledged is on disk (WAL) even if the proxy is killed the next instant.
 */
export function captureAddon(store: CaptureSink, session: SessionInfo): Addon {
  return {
    name: "capture",
    onConnectionOpened: (c) => store.openConnection(session, c),
    onConnectionClosed: (c) => store.closeConnection(c),
    onResponse: (x) => (x.capture ? store.commitExchange(session, x) : undefined),
    onError: (x) => (x.capture ? store.commitExchange(session, x) : undefined),
    onExchangeEnd: (x) => (x.capture ? store.completeExchange(completionOf(x)) : undefined),
    close: () => store.flush(),
  };
}
