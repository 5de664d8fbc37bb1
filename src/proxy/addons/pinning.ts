import type { ConnectionRecord } from "../../types.js";
import { parsePositiveInteger } from "../options.js";
import type { Addon, AddonContext, AddonModule } from "./addon.js";

declare module "../options.js" {
  interface ProxyOptions {
    /** How long a (client address, host) pin lasts after its last evidence. */
    pinExpiryMs: number;
    /** false with --no-pin-bypass: a client that rejects the leaf is never tunnelled or refused, always intercepted. */
    pinBypass: boolean;
  }
}

/** --pin-expiry's default. */
export const PIN_EXPIRY_DEFAULT_MS = 10 * 60_000;

/** Weak evidence (abandoned handshakes, quiet closes) must repeat this often... */
export const PIN_REPEAT = 3;
/** ...within this window, from the same client address, for the same host. */
export const PIN_WINDOW_MS = 60_000;

/** Past this many (client, host) entries, stale ones are dropped. */
const MAX_ENTRIES = 10_000;

interface PinState {
  /** When weak evidence was seen, newest last (only those inside the window are kept). */
  weak: number[];
  /** Pinned until this time (last evidence + --pin-expiry); undefined: not pinned. */
  until?: number;
}

export interface PinningAddon extends Addon {
  /** Forgets every pin (SIGHUP on `exhaust proxy`); returns how many there were. */
  clear(): number;
  /** The pins in force: client address, host, until. */
  pins(): Array<{ client: string; host: string; until: number }>;
}

/**
 * A client that refuses our leaf (certificate pinning, as Windows DiagTrack does, or a CA it does
 * not trust) is recorded by the server as `client-rejected-certificate`. From then on that client's
 * connections to that host are tunnelled, so the client keeps working; the rejected connection
 * stays as evidence that it called. Where the host's mode is sinkhole or block, a tunnel would let
 * the data out, so the CONNECT is refused instead.
 *
 * Pinning is decided on evidence only (docs/containment.md): a TLS alert naming the certificate
 * pins at once; a handshake abandoned after the client sent a complete ClientHello and answered our
 * certificate flight, or a close right after the handshake before any request, pins only when the
 * same client address does it PIN_REPEAT times within PIN_WINDOW_MS. Resets and closes before or
 * right after the ClientHello, timeouts, garbage and plain HTTP never count.
 * The state is per (client address, host), expires after --pin-expiry, and --no-pin-bypass keeps
 * intercepting whatever the evidence.
 */
export function pinningAddon({ log, options }: AddonContext): PinningAddon {
  const state = new Map<string, PinState>();
  const keyOf = (client: string, host: string) => `${client.replace(/^::ffff:/, "")} ${host.toLowerCase()}`;
  const pinnedNow = (key: string, now: number): boolean => {
    const s = state.get(key);
    if (!s?.until) return false;
    if (s.until > now) return true;
    state.delete(key);
    return false;
  };
  /** Drops entries with neither a pin in force nor weak evidence inside the window. */
  const prune = (now: number) => {
    for (const [key, s] of state) {
      if ((s.until ?? 0) <= now && !s.weak.some((t) => now - t < PIN_WINDOW_MS)) state.delete(key);
    }
  };
  const pin = (key: string, c: ConnectionRecord, why: string, now: number) => {
    const s = state.get(key) ?? { weak: [] };
    const wasPinned = s.until !== undefined && s.until > now;
    s.until = now + options.pinExpiryMs;
    state.set(key, s);
    c.outcome = "client-rejected-certificate";
    c.error = c.error ? `${c.error}; ${why}` : why;
    if (!wasPinned) {
      log.warn(
        { host: c.host, client: c.clientAddress, reason: c.error, bypass: options.pinBypass },
        options.pinBypass
          ? "client rejected our certificate (pinning?); this client's connections to this host bypass interception for a while"
          : "client rejected our certificate (pinning?); --no-pin-bypass: still intercepting",
      );
    }
  };
  return {
    name: "pinning",
    onConnect(d) {
      if (!options.pinBypass || d.action !== "intercept") return;
      if (pinnedNow(keyOf(d.clientAddress, d.host), Date.now())) {
        d.action = d.mode === undefined || d.mode === "forward" ? "tunnel" : "refuse";
        d.reason = "pinned-earlier";
      }
    },
    onConnectionClosed(c) {
      if (!c.pinEvidence) return;
      const now = Date.now();
      if (state.size > MAX_ENTRIES) prune(now);
      const key = keyOf(c.clientAddress, c.host);
      if (c.pinEvidence === "certificate-alert") {
        pin(key, c, "TLS alert naming the certificate", now);
        return;
      }
      const s = state.get(key) ?? { weak: [] };
      s.weak = s.weak.filter((t) => now - t < PIN_WINDOW_MS);
      s.weak.push(now);
      state.set(key, s);
      if (s.weak.length >= PIN_REPEAT) {
        pin(
          key,
          c,
          `${s.weak.length} ${c.pinEvidence === "quiet-close" ? "closes right after the handshake" : "handshakes abandoned after reading our certificate"} within ${PIN_WINDOW_MS / 1000} s`,
          now,
        );
      }
    },
    clear() {
      const n = [...state.values()].filter((s) => s.until !== undefined).length;
      state.clear();
      return n;
    },
    pins() {
      const now = Date.now();
      return [...state.entries()]
        .filter(([, s]) => s.until !== undefined && s.until > now)
        .map(([k, s]) => {
          const [client, host] = k.split(" ");
          return { client, host, until: s.until! };
        });
    },
  };
}

export const pinning: AddonModule = {
  name: "pinning",
  options: [
    {
      flags: "--pin-expiry <ms>",
      description: "how long a client's certificate rejection keeps its host bypassed",
      default: String(PIN_EXPIRY_DEFAULT_MS),
    },
    { flags: "--no-pin-bypass", description: "keep intercepting hosts whose client rejected the certificate" },
  ],
  parseOptions: (flags) => ({
    pinExpiryMs: parsePositiveInteger("--pin-expiry", flags.pinExpiry as string),
    pinBypass: flags.pinBypass as boolean,
  }),
  create: pinningAddon,
  describeOptions: (o) => ({ pinExpiryMs: o.pinExpiryMs, pinBypass: o.pinBypass }),
};
