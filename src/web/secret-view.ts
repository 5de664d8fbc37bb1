/**
 * Credentials out of every UI API answer: the credential values of the whole database
 * are learned incrementally (new exchanges and events since the last request) and every JSON answer
 * passes through `redact` before it is serialised: a field under a credential key or holding a
 * credential shows `[redacted]`, and any other string has each credential form replaced. Bodies
 * holding a credential are not shown at all (`bodyHasSecret`).
 */
import { exchangesSinceRowid } from "../store/exchanges.js";
import { fieldValuesByRuleSince, secretFieldValuesSince } from "../store/export-queries.js";
import { learnExchange, secretDetectorIds } from "../export/learn-secrets.js";
import type { Db } from "../store/database.js";
import { createMarkerRedactor, type Redactor } from "../export/redaction.js";
import { isSecretJsonKey } from "../secrets.js";
import type { RawHeaders } from "../types.js";

const PAGE = 500;

export class SecretView {
  private readonly r: Redactor = createMarkerRedactor();
  private lastRowid = 0;
  private lastEventId = 0;

  constructor(private readonly db: Db) {}

  /** Learns what was stored since the last call. */
  private refresh(): void {
    const s = this.r.secrets;
    for (;;) {
      const page = exchangesSinceRowid(this.db, this.lastRowid, PAGE);
      for (const x of page) {
        learnExchange(this.db, x, s);
        this.lastRowid = x.rowid;
      }
      if (page.length < PAGE) break;
    }
    const fields = secretFieldValuesSince(this.db, this.lastEventId, isSecretJsonKey);
    for (const f of fields.values) s.learnField(f.path, f.value);
    // Fields the classifier marked secret (a URL carrying an API key, token or signature).
    for (const f of fieldValuesByRuleSince(this.db, this.lastEventId, fields.lastEventId, secretDetectorIds()))
      s.learnField(f.path, f.value);
    this.lastEventId = fields.lastEventId;
  }

  /** The JSON answer with credentials replaced by [redacted]. */
  redact<T>(payload: T): T {
    this.refresh();
    const walk = (v: unknown): unknown => {
      if (typeof v === "string") return this.r.text(v);
      if (Array.isArray(v)) return v.map(walk);
      if (v && typeof v === "object" && !(v instanceof Uint8Array)) {
        const o = v as Record<string, unknown>;
        const out: Record<string, unknown> = {};
        for (const [k, x] of Object.entries(o)) out[k] = walk(x);
        if (typeof o.path === "string" && "value" in o) out.value = walk(this.r.field(o.path, o.value));
        return out;
      }
      return v;
    };
    return walk(payload) as T;
  }

  /** The redactor with everything stored so far learned: for exports built outside the JSON answers. */
  redactor(): Redactor {
    this.refresh();
    return this.r;
  }

  bodyHasSecret(data: Uint8Array, headers: RawHeaders | null, path?: string): boolean {
    this.refresh();
    return this.r.bodyHasSecret(data, headers, path);
  }
}
