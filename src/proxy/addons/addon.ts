import type { Logger } from "../../log.js";
import type { EndpointCatalog } from "../../catalog/endpoints.js";
import type { ConnectionRecord, Exchange, ProxyMode, RawHeaders } from "../../types.js";
import type { HostPort, ProxyOptions } from "../options.js";

/** What the proxy will do with a CONNECT; addons may change `action` and `upstream`. */
export interface ConnectDecision {
  host: string;
  port: number;
  clientAddress: string;
  /** `refuse`: answer the CONNECT with 503 and relay nothing. */
  action: "intercept" | "tunnel" | "refuse";
  /** Why, for the connection row and the log: `catalog:<id>`, `intercept-all`, `not-in-catalog`, `pinned-earlier`. */
  reason: string;
  /** Where tunnelled bytes go when not to host:port. */
  upstream?: HostPort;
  /** The mode exchanges with this host would get (set by the modes addon). */
  mode?: ProxyMode;
}

/** An answer exhaust gives itself instead of asking the upstream. */
export interface LocalResponse {
  status: number;
  headers: RawHeaders;
  body: Buffer;
}

/**
 * A feature around the core, in the manner of mitmproxy's addons: it compiles its options once in
 * its factory and then only runs hooks. Every hook call is wrapped by the AddonChain: a throw is
 * logged as EXH_ADDON_FAILED with the exchange id and traffic continues.
 */
export interface Addon {
  name: string;
  onConnect?(d: ConnectDecision): void;
  onConnectionOpened?(c: ConnectionRecord): void | Promise<void>;
  onConnectionClosed?(c: ConnectionRecord): void | Promise<void>;
  /** Request line and headers are known, the body is not: set the mode, the upstream. */
  onRequestHeaders?(x: Exchange): void;
  /** For exchanges not forwarded (sinkhole, block): the answer. First addon to answer wins. */
  respond?(x: Exchange): LocalResponse | undefined;
  /** The response (upstream, local or error) is about to be released to the client: the durable point. */
  onResponse?(x: Exchange): void | Promise<void>;
  /** The exchange failed with no response to give (client aborted). */
  onError?(x: Exchange): void | Promise<void>;
  /** Everything is over: response body sent, or the failure handled. */
  onExchangeEnd?(x: Exchange): void | Promise<void>;
  close?(): Promise<void>;
}

/** What addon factories get: parsed options and the shared services. */
export interface AddonContext {
  options: ProxyOptions;
  catalog: EndpointCatalog;
  log: Logger;
}

type HookName = Exclude<keyof Addon, "name">;

/** Runs the hooks of an ordered addon list, isolating failures. */
export class AddonChain {
  constructor(
    readonly addons: readonly Addon[],
    private readonly log: Logger,
  ) {
    const names = new Set<string>();
    for (const a of addons) {
      if (names.has(a.name)) throw new Error(`duplicate addon name ${a.name}`);
      names.add(a.name);
    }
  }

  runSync<H extends "onConnect" | "onRequestHeaders">(hook: H, arg: Parameters<NonNullable<Addon[H]>>[0]): void {
    for (const addon of this.addons) {
      const fn = addon[hook] as ((a: typeof arg) => void) | undefined;
      if (!fn) continue;
      try {
        fn.call(addon, arg);
      } catch (e) {
        this.failed(addon, hook, arg, e);
      }
    }
  }

  async run<H extends "onConnectionOpened" | "onConnectionClosed" | "onResponse" | "onError" | "onExchangeEnd">(
    hook: H,
    arg: Parameters<NonNullable<Addon[H]>>[0],
  ): Promise<void> {
    for (const addon of this.addons) {
      const fn = addon[hook] as ((a: typeof arg) => void | Promise<void>) | undefined;
      if (!fn) continue;
      try {
        await fn.call(addon, arg);
      } catch (e) {
        this.failed(addon, hook, arg, e);
      }
    }
  }

  respond(x: Exchange): LocalResponse | undefined {
    for (const addon of this.addons) {
      if (!addon.respond) continue;
      try {
        const answer = addon.respond(x);
        if (answer) return answer;
      } catch (e) {
        this.failed(addon, "respond", x, e);
      }
    }
    return undefined;
  }

  async close(): Promise<void> {
    for (const addon of [...this.addons].reverse()) {
      try {
        await addon.close?.();
      } catch (e) {
        this.failed(addon, "close", undefined, e);
      }
    }
  }

  private failed(addon: Addon, hook: HookName, arg: unknown, e: unknown): void {
    const id = arg && typeof arg === "object" && "id" in arg ? (arg as { id: string }).id : undefined;
    this.log.error(
      { code: "EXH_ADDON_FAILED", addon: addon.name, hook, exchange: id, reason: (e as Error)?.message },
      `addon ${addon.name} failed in ${hook}`,
    );
  }
}
