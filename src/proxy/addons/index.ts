import { captureAddon } from "./capture.js";
import type { CaptureSink, SessionInfo } from "../../store/capture-store.js";
import type { Addon, AddonContext } from "./addon.js";
import { exchangeLogAddon } from "./exchange-log.js";
import { hostMapAddon } from "./host-map.js";
import { modesAddon } from "./modes.js";
import { pinningAddon } from "./pinning.js";

/** The default chain, in order: routing decisions first, then capture, then the log line. */
/**
 * `afterCapture` addons run once an exchange is durably stored (the processing thread's feed).
 */
export function defaultAddons(ctx: AddonContext, store: CaptureSink, session: SessionInfo, afterCapture: Addon[] = []): Addon[] {
  // modes before pinning: a pinned host is refused rather than tunnelled when its mode keeps data in.
  return [hostMapAddon(ctx), modesAddon(ctx), pinningAddon(ctx), captureAddon(store, session), ...afterCapture, exchangeLogAddon(ctx)];
}
