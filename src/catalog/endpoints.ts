import { join } from "node:path";
import { z } from "zod";
import { readYamlFile, SourceSchema } from "../sources.js";
import { exhaustError } from "../errors.js";
import { globPattern } from "../glob.js";
import { CLASSIFIERS_DIR } from "../paths.js";

export const DEFAULT_CATALOG_FILE = join(CLASSIFIERS_DIR, "endpoints.yaml");

const hostGlob = z.string().regex(/^[a-z0-9*][a-z0-9*.-]*$/, "host globs are lower-case DNS names where `*` stands for part of a label");

/**
 * What the sinkhole answers for uploads to an endpoint, in the shape its SDKs read (status, headers,
 * body; `{count}` in the body is the number of records in the upload). The first entry whose
 * `path` (a case-insensitive regex on the path without query) and `method` match wins; with none,
 * the 1DS collector's `{"acc":N}`.
 */
const SinkholeAnswerSchema = z.strictObject({
  path: z.string().min(1),
  method: z
    .string()
    .regex(/^[A-Z]+$/)
    .optional(),
  status: z.number().int().min(200).max(599),
  headers: z.record(z.string().regex(/^[A-Za-z0-9-]+$/), z.string()).default({}),
  body: z.string().default(""),
  source: z.string().min(1),
});
export type SinkholeAnswer = z.infer<typeof SinkholeAnswerSchema>;

const EndpointSchema = z.strictObject({
  id: z.string().regex(/^[a-z0-9-]+$/),
  hosts: z.array(hostGlob).min(1),
  product: z.string().min(1),
  purpose: z.enum(["diagnostic-upload", "configuration", "connected-experience", "error-reporting", "application-insights"]),
  pinning: z.enum(["expected", "none", "unknown"]).default("unknown"),
  mode: z.enum(["forward", "sinkhole", "block"]).optional(),
  sinkhole: z.array(SinkholeAnswerSchema).optional(),
  source: z.string().min(1),
});

const CatalogSchema = z.strictObject({
  source: SourceSchema,
  endpoints: z.array(EndpointSchema).min(1),
});

export type Endpoint = z.infer<typeof EndpointSchema>;

/** `*` matches any run of characters inside one DNS label. */
export function hostGlobToRegExp(glob: string): RegExp {
  return new RegExp(`^${globPattern(glob, "[^.]*")}$`);
}

/**
 * The DNS subtree a glob can reach: the labels right of the last label holding a `*`.
 * `nexus*.officeapps.live.com` → `officeapps.live.com`. Used for the CA's name constraints.
 */
export function globToDomain(glob: string): string {
  const labels = glob.split(".");
  let last = -1;
  labels.forEach((label, i) => {
    if (label.includes("*")) last = i;
  });
  return labels.slice(last + 1).join(".");
}

export class EndpointCatalog {
  readonly endpoints: readonly Endpoint[];
  private readonly matchers: Array<{ re: RegExp; endpoint: Endpoint; rank: number }>;
  /** Hosts seen by the proxy repeat endlessly; remember the answer (bounded). */
  private readonly lookupCache = new Map<string, Endpoint | null>();
  private readonly sinkholeAnswers = new Map<Endpoint, Array<{ path: RegExp; answer: SinkholeAnswer }>>();

  constructor(endpoints: Endpoint[]) {
    this.endpoints = endpoints;
    // The most specific pattern wins wherever it sits in the file: exact hosts before globs, then
    // the glob with more fixed characters (`v10c.events.data…` is windows-utc, not the catch-all
    // `*.events.data…`); equal ones keep file order.
    const specificity = (glob: string) => (glob.includes("*") ? 0 : 1_000_000) + glob.replace(/\*/g, "").length;
    this.matchers = endpoints
      .flatMap((endpoint) => endpoint.hosts.map((h) => ({ re: hostGlobToRegExp(h), endpoint, rank: specificity(h) })))
      .sort((a, b) => b.rank - a.rank);
    for (const e of endpoints) {
      if (e.sinkhole)
        this.sinkholeAnswers.set(
          e,
          e.sinkhole.map((answer) => ({ path: new RegExp(answer.path, "i"), answer })),
        );
    }
  }

  /** The sinkhole answer the catalogue gives for an upload to host/path (path without query), if any. */
  sinkholeAnswer(host: string, method: string, path: string): SinkholeAnswer | undefined {
    const e = this.match(host);
    const answers = e ? this.sinkholeAnswers.get(e) : undefined;
    return answers?.find((a) => (a.answer.method === undefined || a.answer.method === method) && a.path.test(path))?.answer;
  }

  static load(file: string = DEFAULT_CATALOG_FILE): EndpointCatalog {
    const raw = readYamlFile(file, (e) => exhaustError("EXH_CATALOG_INVALID", { file, reason: e.message }, e));
    const parsed = CatalogSchema.safeParse(raw);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw exhaustError("EXH_CATALOG_INVALID", { file, reason: `${issue.path.join(".")}: ${issue.message}` });
    }
    const ids = new Set<string>();
    for (const e of parsed.data.endpoints) {
      if (ids.has(e.id)) throw exhaustError("EXH_CATALOG_INVALID", { file, reason: `duplicate id ${e.id}` });
      ids.add(e.id);
      for (const [i, a] of (e.sinkhole ?? []).entries()) {
        try {
          new RegExp(a.path, "i");
        } catch (err) {
          throw exhaustError("EXH_CATALOG_INVALID", { file, reason: `${e.id}.sinkhole.${i}.path: ${(err as Error).message}` });
        }
      }
    }
    return new EndpointCatalog(parsed.data.endpoints);
  }

  match(host: string): Endpoint | undefined {
    const key = host.toLowerCase();
    const cached = this.lookupCache.get(key);
    if (cached !== undefined) return cached ?? undefined;
    const found = this.matchers.find((m) => m.re.test(key))?.endpoint;
    if (this.lookupCache.size > 10_000) this.lookupCache.clear();
    this.lookupCache.set(key, found ?? null);
    return found;
  }

  /** The smallest set of DNS subtrees covering every host glob (no domain inside another). */
  constraintDomains(): string[] {
    const all = [...new Set(this.endpoints.flatMap((e) => e.hosts.map(globToDomain)))].filter((d) => d.length > 0);
    return all.filter((d) => !all.some((other) => other !== d && d.endsWith(`.${other}`))).sort();
  }
}
