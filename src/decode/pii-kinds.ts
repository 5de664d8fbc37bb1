/** PIIKind names (wire-formats.md §2.6), shared by the Bond, JSON and Aria annotations. */
export const PII_KIND_NAMES: Readonly<Record<number, string>> = {
  0: "NotSet",
  1: "DistinguishedName",
  2: "GenericData",
  3: "IPV4Address",
  4: "IPv6Address",
  5: "MailSubject",
  6: "PhoneNumber",
  7: "QueryString",
  8: "SipAddress",
  9: "SmtpAddress",
  10: "Identity",
  11: "Uri",
  12: "Fqdn",
  13: "IPV4AddressLegacy",
  14: "IPv6ScrubLastHextets",
  15: "DropValue",
};

export function piiKindName(kind: number | null | undefined): string | undefined {
  if (kind === null || kind === undefined || kind === 0) return undefined;
  return PII_KIND_NAMES[kind] ?? `PIIKind(${kind})`;
}
