import { isSecretHeaderName, isSecretParam } from "../secrets.js";
import type { RawHeaders } from "../types.js";

/**
 * Header-level facts of an upload, kept on the exchange for the classifier: who the upload is for
 * (tenant tokens), which SDK sent it and when. 1DS JS beacons send the same names in the query.
 */
export interface UploadFacts {
  /** Tenant tokens from APIKey / X-APIKey / apikey. */
  tenantTokens: string[];
  /** The tenant ids (token prefix before the first `-`); a record's iKey is `o:<tenantId>`. */
  tenantIds: string[];
  sdkVersion?: string;
  clientId?: string;
  /** Upload-Time (epoch ms) as ISO 8601. */
  uploadTime?: string;
  /** Which credential headers and parameters were present (names only, never values): the one list, classifiers/secrets.yaml. */
  credentialHeaders: string[];
}

export function uploadFacts(headers: RawHeaders, query: URLSearchParams): UploadFacts {
  const lookup = new Map<string, string>();
  for (const [k, v] of headers) if (!lookup.has(k.toLowerCase())) lookup.set(k.toLowerCase(), v);
  const get = (...names: string[]) => {
    for (const n of names) {
      const v = lookup.get(n) ?? query.get(n) ?? undefined;
      if (v) return v;
    }
    return undefined;
  };
  const tokens = (get("apikey", "x-apikey") ?? "")
    .split(",")
    .map((t) => t.trim())
    .filter(Boolean);
  const uploadMs = Number(get("upload-time", "client-time-epoch-millis"));
  const credentials = new Set<string>();
  for (const [k] of headers) if (isSecretHeaderName(k)) credentials.add(k);
  for (const k of query.keys()) if (isSecretParam(k)) credentials.add(k);
  return {
    tenantTokens: tokens,
    tenantIds: [...new Set(tokens.map((t) => t.split("-")[0]))],
    sdkVersion: get("sdk-version", "client-version"),
    clientId: get("client-id"),
    uploadTime: Number.isFinite(uploadMs) && uploadMs > 0 ? new Date(uploadMs).toISOString() : undefined,
    credentialHeaders: [...credentials],
  };
}
