import { captureAddon } from "./capture.js";
import type { CaptureSink, SessionInfo } from "../../store/capture-store.js";
import type { Addon, AddonContext } from "./addon.js";
import { exchangeLogAddon } from "./exchange-log.js";
import { ADDON_MODULES } from "./registry.js";

/**
 * The default chain, in order: the registry's addons (access, routing decisions), then capture,
 * then the `afterCapture` addons, which run once an exchange is durably stored (the processing
 * thread's feed), then the log line.
 */
export function defaultAddons(ctx: AddonContext, store: CaptureSink, session: SessionInfo, afterCapture: Addon[] = []): Addon[] {
  return [...ADDON_MODULES.map((m) => m.create(ctx)), captureAddon(store, session), ...afterCapture, exchangeLogAddon(ctx)];
}
