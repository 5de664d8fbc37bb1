/**
 * canary-forbidden: no planted canary token (`exhaust canary new`) anywhere in the session: the
 * URL (path and query, as sent and percent-decoded), every request header, every request body
 * after undoing its content encoding, and every decoded field value, in each form CanaryMatcher
 * knows (plain, case-changed, percent-encoded, base64 at every alignment, UTF-16LE, MD5/SHA-1/
 * SHA-256 hex). Each hit is one item, with where and in which form it was found.
 */
import { z } from "zod";
import { decodeContentEncoding, effectiveContentEncoding } from "../../decode/content-encoding.js";
import { isSecretHeader, REDACTED } from "../../log.js";
import type { RawHeaders } from "../../types.js";
import { eventRef, iterateEventValueTexts } from "../../store/events.js";
import { iterateRequests, type RequestRow } from "../../store/exchanges.js";
import { eventFields } from "../../store/fields.js";
import { CanaryMatcher, excerptAround } from "../canary.js";
import type { Evidence } from "../../verdict.js";
import { emptyOutcome, type EvidenceList, type RuleBase, type RuleKind, type VerifyContext } from "./kind.js";

export interface CanaryRule extends RuleBase {
  /** Tokens to search besides the recorded ones. */
  tokens?: string[];
  /** What a session checked without any token to search for gets. */
  whenNoCanaries: "pass" | "warn";
}

export const canaryForbidden: RuleKind<CanaryRule> = {
  kind: "canary-forbidden",
  params: {
    tokens: z.array(z.string().min(8, "a canary token needs at least 8 characters")).optional(),
    whenNoCanaries: z.enum(["pass", "warn"]).default("warn"),
  },
  check(ctx, rule) {
    const out = emptyOutcome(ctx);
    const matcher = new CanaryMatcher([...ctx.canaries, ...(rule.tokens ?? [])]);
    if (matcher.empty) {
      out.note = "no canary tokens recorded (create them with `exhaust canary new`): nothing to search for";
      if (rule.whenNoCanaries === "warn") out.warnings.add({ note: out.note });
      return out;
    }
    for (const req of iterateRequests(ctx.db, ctx.sessionId)) {
      out.checked++;
      searchRequest(matcher, req, out.failures);
    }
    searchFieldValues(ctx, matcher, out.failures);
    out.note = `searched for ${matcher.tokens.length} token(s)`;
    return out;
  },
};

function searchRequest(matcher: CanaryMatcher, req: RequestRow, failures: EvidenceList): void {
  const base = { exchangeId: req.id, host: req.host, bodySha256: req.bodySha256 };
  const report = (text: string, location: string, redact = false) => {
    for (const hit of matcher.search(text)) {
      failures.add(() => ({
        ...base,
        location,
        form: hit.form,
        excerpt: redact ? REDACTED : excerptAround(text, hit.index, hit.match.length),
        note: `canary ${hit.token}`,
      }));
    }
  };
  const url = `${req.host}${req.path}`;
  report(url, "url");
  const decodedUrl = percentDecoded(url);
  if (decodedUrl !== url) report(decodedUrl, "url (percent-decoded)");
  const headers = req.headers;
  for (const [name, value] of headers) report(`${name}: ${value}`, `header ${name}`, isSecretHeader(name));
  if (req.body && req.body.length) report(decodedBody(req.body, headers, req.path).toString("latin1"), "body");
}

function percentDecoded(text: string): string {
  try {
    return decodeURIComponent(text.replace(/\+/g, " "));
  } catch {
    return text;
  }
}

/** The body with its content encoding undone; as stored when it does not decode (a decode finding says why). */
function decodedBody(body: Buffer, headers: RawHeaders, path: string): Buffer {
  const q = path.indexOf("?");
  const query = new URLSearchParams(q === -1 ? "" : path.slice(q + 1));
  try {
    return Buffer.from(decodeContentEncoding(body, effectiveContentEncoding(headers, query)).body);
  } catch {
    return body;
  }
}

/** Field values of one event are searched at once (joined in SQLite); a hit is then found field by field. */
function searchFieldValues(ctx: VerifyContext, matcher: CanaryMatcher, failures: EvidenceList): void {
  for (const row of iterateEventValueTexts(ctx.db, ctx.sessionId)) {
    if (!row.text || !matcher.test(row.text)) continue;
    const ev = eventRef(ctx.db, row.eventId);
    for (const field of eventFields(ctx.db, row.eventId)) {
      const value = field.value ?? "";
      for (const hit of matcher.search(value)) {
        failures.add((): Evidence => ({
          exchangeId: ev?.exchangeId,
          eventId: row.eventId,
          eventName: ev?.name,
          fieldPath: field.path,
          bodySha256: ev?.bodySha256,
          location: `field ${field.path}`,
          form: hit.form,
          excerpt: excerptAround(value, hit.index, hit.match.length),
          note: `canary ${hit.token}`,
        }));
      }
    }
  }
}
