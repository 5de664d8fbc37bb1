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

/** What the access check sees of a proxy request or CONNECT. */
export interface ClientRequest {
  /** The client's address, without an IPv4-mapped prefix. */
  address: string;
  /** The Proxy-Authorization header as sent, if any. */
  proxyAuthorization?: string;
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
 * logged as EXH_ADDON_FAILED with the exchange id and traffic continues, except in the hooks the
 * addon lists as `required`: there a throw fails the exchange (fail closed, see HookFailure).
 */
export interface Addon {
  name: string;
  /**
   * Hooks whose failure must stop what follows them: a failed `onResponse` means the response is
   * not released, and the client gets 503 with the error's code instead (the capture addon: an
   * upload that was not committed is never acknowledged).
   */
  required?: ReadonlyArray<"onResponse">;
  /** A proxy request or CONNECT arrived: a status (403, 407) refuses the client. First refusal wins. */
  admit?(req: ClientRequest): 403 | 407 | undefined;
  onConnect?(d: ConnectDecision): void;
  /**
   * The mode a host's exchanges get, asked before there is an exchange (a plain proxy request's
   * target is checked only when it will be relayed). An addon that sets `x.mode` in
   * `onRequestHeaders` says the same here; the last answer wins. The modes addon answers.
   */
  modeOf?(host: string): ProxyMode | undefined;
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

/**
 * A command-line option of `exhaust proxy` that an addon declares. The CLI registers it with
 * commander as given; the value reaches the addon's `parseOptions` under commander's attribute
 * name (`--map-host` → `mapHost`, `--no-pin-bypass` → `pinBypass`).
 */
export interface AddonOption {
  /** Commander flags: `--map-host <host=ip:port>`. */
  flags: string;
  /** The help text. */
  description: string;
  /** The default value, shown in --help. */
  default?: string;
  /** May be given many times: the values are collected in a list (default: none). */
  repeatable?: boolean;
}

/**
 * An addon as the registry (`addons/registry.ts`) lists it: its name, the options it adds to
 * `exhaust proxy`, how their values become its part of ProxyOptions (declared in the addon's own
 * file by augmenting ProxyOptions), and its factory.
 */
export interface AddonModule {
  name: string;
  options: readonly AddonOption[];
  /**
   * The addon's part of ProxyOptions from its flags (keyed by attribute name); throws
   * EXH_OPT_INVALID naming the option for a bad value.
   */
  parseOptions?(flags: Readonly<Record<string, unknown>>): Partial<ProxyOptions>;
  /**
   * The addon's options as the session records them (`options_json`: how it was captured, never a
   * credential); the shipped addons' options are described by the capture itself.
   */
  describeOptions?(options: ProxyOptions): Record<string, unknown>;
  create(ctx: AddonContext): Addon;
}

type HookName = Exclude<keyof Addon, "name" | "required">;

/** A required hook failed: what the engine answers instead of the release. */
export interface HookFailure {
  addon: string;
  /** The thrown error's stable code when it has one (EXH_CAPTURE_FAILED), else EXH_ADDON_FAILED. */
  code: string;
  message: string;
}

/** A burst of failures of one hook of one addon is logged once (its first), then summed up. */
const BURST_LOG_INTERVAL_MS = 30_000;
interface Burst {
  since: number;
  loggedAt: number;
  failures: number;
}

/** A thrown error's own stable code (EXH_…), else EXH_ADDON_FAILED. */
function failureCode(e: unknown): string {
  const code = (e as { code?: unknown })?.code;
  return typeof code === "string" && code.startsWith("EXH_") ? code : "EXH_ADDON_FAILED";
}

/** Runs the hooks of an ordered addon list, isolating failures. */
export class AddonChain {
  private readonly bursts = new Map<string, Burst>();

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
        if (this.bursts.size) this.succeeded(addon, hook);
      } catch (e) {
        this.failed(addon, hook, arg, e);
      }
    }
  }

  /**
   * Runs one hook on every addon in order. Resolves with the failure of the first addon that lists
   * this hook as `required` and threw in it (the addons after it do not run: the exchange is not
   * released), or undefined; other failures are logged and passed over.
   */
  async run<H extends "onConnectionOpened" | "onConnectionClosed" | "onResponse" | "onError" | "onExchangeEnd">(
    hook: H,
    arg: Parameters<NonNullable<Addon[H]>>[0],
  ): Promise<HookFailure | undefined> {
    for (const addon of this.addons) {
      const fn = addon[hook] as ((a: typeof arg) => void | Promise<void>) | undefined;
      if (!fn) continue;
      try {
        await fn.call(addon, arg);
        if (this.bursts.size) this.succeeded(addon, hook);
      } catch (e) {
        this.failed(addon, hook, arg, e);
        if ((addon.required as readonly string[] | undefined)?.includes(hook)) {
          return {
            addon: addon.name,
            code: failureCode(e),
            message: (e as Error)?.message ?? String(e),
          };
        }
      }
    }
    return undefined;
  }

  /** The first refusal of a client; an addon that throws here refuses it (fail closed: 403). */
  admit(req: ClientRequest): 403 | 407 | undefined {
    return this.firstAnswer("admit", req, (addon) => addon.admit?.(req), 403);
  }

  /**
   * The mode of a host, or undefined when no addon says: the last answer, as a later addon's
   * `onRequestHeaders` overrides an earlier one's mode. An addon that throws here answers
   * "forward": the target is checked as for a relay (fail closed).
   */
  modeOf(host: string): ProxyMode | undefined {
    let mode: ProxyMode | undefined;
    for (const addon of this.addons) {
      if (!addon.modeOf) continue;
      try {
        mode = addon.modeOf(host) ?? mode;
      } catch (e) {
        this.failed(addon, "modeOf", { host }, e);
        return "forward";
      }
    }
    return mode;
  }

  /** The first local answer to an exchange; an addon that throws here is passed over. */
  respond(x: Exchange): LocalResponse | undefined {
    return this.firstAnswer("respond", x, (addon) => addon.respond?.(x), undefined);
  }

  /** The first answer of a hook in chain order; an addon that throws answers `onThrow` (when given). */
  private firstAnswer<R>(
    hook: "admit" | "respond",
    arg: object,
    ask: (addon: Addon) => R | undefined,
    onThrow: R | undefined,
  ): R | undefined {
    for (const addon of this.addons) {
      if (!addon[hook]) continue;
      try {
        const answer = ask(addon);
        if (answer) return answer;
      } catch (e) {
        this.failed(addon, hook, arg, e);
        if (onThrow !== undefined) return onThrow;
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

  /**
   * Logs a failure, once per burst: a full disk fails every commit, and one line per request would
   * bury the cause. The first failure is logged with its reason; while the burst lasts, a summary
   * every BURST_LOG_INTERVAL_MS; when the hook succeeds again, how many failed.
   */
  private failed(addon: Addon, hook: HookName, arg: unknown, e: unknown): void {
    const id = arg && typeof arg === "object" && "id" in arg ? (arg as { id: string }).id : undefined;
    const key = `${addon.name}\0${hook}`;
    const now = Date.now();
    const burst = this.bursts.get(key);
    if (burst) {
      burst.failures++;
      if (now - burst.loggedAt < BURST_LOG_INTERVAL_MS) return;
      burst.loggedAt = now;
    } else {
      this.bursts.set(key, { since: now, loggedAt: now, failures: 1 });
    }
    this.log.error(
      {
        code: failureCode(e),
        addon: addon.name,
        hook,
        exchange: id,
        reason: (e as Error)?.message,
        ...(burst ? { failuresSoFar: burst.failures } : {}),
      },
      burst ? `addon ${addon.name} still failing in ${hook}` : `addon ${addon.name} failed in ${hook} (further failures are summed up)`,
    );
  }

  private succeeded(addon: Addon, hook: HookName): void {
    const key = `${addon.name}\0${hook}`;
    const burst = this.bursts.get(key);
    if (!burst) return;
    this.bursts.delete(key);
    this.log.warn(
      { addon: addon.name, hook, failures: burst.failures, forMs: Date.now() - burst.since },
      `addon ${addon.name} works again in ${hook}`,
    );
  }
}
