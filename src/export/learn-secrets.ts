/**
 * Lets a redactor learn every credential value of the sessions before anything is written, so a
 * body or field holding one is recognised even when the header carrying it comes later.
 */
import { loadRulePacks } from "../classify/packs.js";
import { isSecretJsonKey } from "../secrets.js";
import type { Db } from "../store/database.js";
import { blobData } from "../store/blobs.js";
import { exchangesOfSession, type ExchangeRecord } from "../store/exchanges.js";
import { fieldValuesByRule, secretFieldValues } from "../store/export-queries.js";
import type { Redactor } from "./redaction.js";
import type { SecretValues } from "./secret-values.js";

/** The credential values of one exchange: headers, query string, JSON and form bodies. */
export function learnExchange(db: Db, x: ExchangeRecord, s: SecretValues): void {
  s.learnRequest(x);
  const req = blobData(db, x.requestBodySha256);
  if (req) s.learnBody(req, x.requestHeaders, x.path);
  const res = x.responseBodySha256 ? blobData(db, x.responseBodySha256) : undefined;
  if (res) s.learnBody(res, x.responseHeaders);
}

/** The ids of the secret detectors (classifiers/detectors, class `secret`). */
export const secretDetectorIds = (): string[] =>
  loadRulePacks()
    .detectorList.filter((d) => d.cls === "secret")
    .map((d) => d.id);

export function learnSessionSecrets(db: Db, sessionIds: readonly number[], redactor: Redactor): void {
  if (!redactor.redacting) return;
  const s = redactor.secrets;
  for (const id of sessionIds) {
    for (const x of exchangesOfSession(db, id, 1000)) learnExchange(db, x, s);
    for (const f of secretFieldValues(db, id, isSecretJsonKey)) s.learnField(f.path, f.value);
    // Fields the classifier marked secret (a URL carrying an API key, token or signature).
    for (const f of fieldValuesByRule(db, id, secretDetectorIds())) s.learnField(f.path, f.value);
  }
}
