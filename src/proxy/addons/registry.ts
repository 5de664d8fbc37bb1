import { access } from "./access.js";
import type { AddonModule } from "./addon.js";
import { hostMap } from "./host-map.js";
import { intercept } from "./intercept.js";
import { modes } from "./modes.js";
import { pinning } from "./pinning.js";

/**
 * The addons that decide where traffic goes, in chain order, each with the options it adds to
 * `exhaust proxy`. A new feature is one file in this folder exporting an AddonModule, plus its
 * line here: the CLI registers its flags, `parseProxyFlags` reads them, `defaultAddons` builds it.
 * Access control first (a refused client reaches no other addon), then the intercept decision,
 * then what may change it; modes before pinning: a pinned host is refused rather than tunnelled
 * when its mode keeps data in.
 */
export const ADDON_MODULES: readonly AddonModule[] = [access, intercept, hostMap, modes, pinning];
