/**
 * endpoint-forbidden / endpoint-allowed-only: which hosts the session may contact. A host counts
 * whether exhaust decrypted its traffic (each exchange is an item) or not: tunnelled, pinned
 * (the client rejected exhaust's certificate), denied or failed connections are items too,
 * because pinning does not hide that data left.
 */
import { z } from "zod";
import { hostGlobToRegExp, type EndpointCatalog } from "../../catalog/endpoints.js";
import { bareConnectionHostCounts, bareConnectionsToHost } from "../../store/connections.js";
import { exchangeHostCounts, exchangesToHost } from "../../store/exchanges.js";
import type { Evidence } from "../../verdict.js";
import { emptyOutcome, type RuleBase, type RuleKind, type RuleOutcome, type VerifyContext } from "./kind.js";

const PURPOSES = ["diagnostic-upload", "configuration", "connected-experience", "error-reporting", "application-insights"] as const;

const selectorParams = {
  /** Host globs (`*` = part of one DNS label), as in classifiers/endpoints.yaml. */
  hosts: z.array(z.string().regex(/^[a-z0-9*][a-z0-9*.-]*$/, "host globs are lower-case DNS names with `*`")).optional(),
  /** Entry ids of classifiers/endpoints.yaml: every host glob of each entry. */
  endpoints: z.array(z.string().min(1)).optional(),
  /** Endpoint purposes of classifiers/endpoints.yaml: every entry with that purpose. */
  purposes: z.array(z.enum(PURPOSES)).optional(),
};

export interface EndpointRule extends RuleBase {
  hosts?: string[];
  endpoints?: string[];
  purposes?: Array<(typeof PURPOSES)[number]>;
}

function refineSelectors(rule: EndpointRule, catalog: EndpointCatalog): string | undefined {
  if (!rule.hosts?.length && !rule.endpoints?.length && !rule.purposes?.length) {
    return "needs at least one of hosts, endpoints, purposes";
  }
  const known = new Set(catalog.endpoints.map((e) => e.id));
  const unknown = (rule.endpoints ?? []).find((id) => !known.has(id));
  if (unknown) return `endpoints: no entry ${unknown} in classifiers/endpoints.yaml`;
  const purposes = new Set(catalog.endpoints.map((e) => e.purpose));
  const missing = (rule.purposes ?? []).find((p) => !purposes.has(p));
  if (missing) return `purposes: no entry of classifiers/endpoints.yaml has purpose ${missing}`;
  return undefined;
}

/** The host globs a rule selects, each matched on its own (the catalogue's first-match order does not apply). */
export function selectedHostMatcher(rule: EndpointRule, catalog: EndpointCatalog): (host: string) => boolean {
  const ids = new Set(rule.endpoints ?? []);
  const purposes = new Set<string>(rule.purposes ?? []);
  const globs = [
    ...(rule.hosts ?? []),
    ...catalog.endpoints.filter((e) => ids.has(e.id) || purposes.has(e.purpose)).flatMap((e) => e.hosts),
  ];
  const res = [...new Set(globs)].map(hostGlobToRegExp);
  return (host) => {
    const h = host.toLowerCase();
    return res.some((re) => re.test(h));
  };
}

/** Adds every exchange and bare connection to the hosts `offending` picks as failures. */
function checkHosts(ctx: VerifyContext, offending: (host: string) => boolean, why: (host: string) => string): RuleOutcome {
  const out = emptyOutcome(ctx);
  // Decrypted exchanges and bare connections (pinned, tunnelled, failed) count alike; each has its own evidence.
  const sources: Array<[Array<{ host: string; count: number }>, (host: string) => Evidence[]]> = [
    [
      exchangeHostCounts(ctx.db, ctx.sessionId),
      (host) =>
        exchangesToHost(ctx.db, ctx.sessionId, host, ctx.evidenceLimit).map((x): Evidence => ({
          exchangeId: x.id,
          host: x.host,
          bodySha256: x.bodySha256,
          excerpt: `${x.method} https://${x.host}${x.path}`.slice(0, 160),
          note: `${why(host)}; decrypted exchange (${x.outcome})`,
        })),
    ],
    [
      bareConnectionHostCounts(ctx.db, ctx.sessionId),
      (host) =>
        bareConnectionsToHost(ctx.db, ctx.sessionId, host, ctx.evidenceLimit).map((c): Evidence => ({
          connectionId: c.id,
          host: c.host,
          excerpt: `${c.host}:${c.port} ${c.outcome}, ${c.bytesFromClient} bytes from the client${c.error ? ` (${c.error})` : ""}`.slice(
            0,
            160,
          ),
          note: `${why(host)}; connection ${c.outcome}${c.outcome === "client-rejected-certificate" ? " (pinned: data left unread)" : ""}`,
        })),
    ],
  ];
  for (const [counts, evidenceFor] of sources) {
    for (const { host, count } of counts) {
      out.checked += count;
      if (offending(host)) out.failures.addCounted(count, evidenceFor(host));
    }
  }
  return out;
}

/** A rule kind over the hosts a rule's selectors match: `offends` turns that matcher into the offence. */
function endpointKind(kind: string, offends: (selected: boolean) => boolean, why: (host: string) => string): RuleKind<EndpointRule> {
  return {
    kind,
    params: selectorParams,
    refine: refineSelectors,
    check(ctx, rule) {
      const selected = selectedHostMatcher(rule, ctx.catalog);
      return checkHosts(ctx, (host) => offends(selected(host)), why);
    },
  };
}

export const endpointForbidden = endpointKind(
  "endpoint-forbidden",
  (selected) => selected,
  (host) => `${host} is a forbidden endpoint`,
);

export const endpointAllowedOnly = endpointKind(
  "endpoint-allowed-only",
  (selected) => !selected,
  (host) => `${host} is not an allowed endpoint`,
);
