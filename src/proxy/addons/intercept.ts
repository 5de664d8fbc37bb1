import { exhaustError } from "../../errors.js";
import type { AddonModule } from "./addon.js";

declare module "../options.js" {
  interface ProxyOptions {
    /** Which CONNECTs are intercepted: hosts in the catalogue, or all. */
    intercept: "catalog" | "all";
  }
}

/**
 * The intercept decision: a CONNECT to a host in the endpoint catalogue (or any host, with
 * --intercept all) is intercepted, any other is tunnelled. It runs first in the chain; the addons
 * after it (modes, pinning) may change the decision.
 */
export const intercept: AddonModule = {
  name: "intercept",
  options: [{ flags: "--intercept <what>", description: "catalog (hosts in classifiers/endpoints.yaml) | all", default: "catalog" }],
  parseOptions(flags) {
    const what = flags.intercept;
    if (what !== "catalog" && what !== "all") {
      throw exhaustError("EXH_OPT_INVALID", { option: "--intercept", reason: `expected catalog or all, got "${String(what)}"` });
    }
    return { intercept: what };
  },
  create({ options, catalog }) {
    return {
      name: "intercept",
      onConnect(d) {
        if (options.intercept === "all") {
          d.action = "intercept";
          d.reason = "intercept-all";
          return;
        }
        const entry = catalog.match(d.host);
        d.action = entry ? "intercept" : "tunnel";
        d.reason = entry ? `catalog:${entry.id}` : "not-in-catalog";
      },
    };
  },
  describeOptions: (o) => ({ intercept: o.intercept }),
};
