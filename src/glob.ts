/**
 * Globs and literal text in regular expressions, written once: rule packs (`path`/`headerGlob`
 * globs), profiles (endpoint globs), the endpoint catalogue (host globs), the credential list
 * (`Auth*`) and the canary finder all build their patterns here.
 */

/** `text` as a regular expression that matches exactly it. */
export function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\-]/g, "\\$&");
}

/** The pattern of a glob: each `*` becomes `star` (any run of characters by default), the rest is literal. */
export function globPattern(glob: string, star = ".*"): string {
  return glob.split("*").map(escapeRegExp).join(star);
}

/** `*` = any run of characters (dots included); everything else literal; anchored at both ends. */
export function globToRegExp(glob: string, flags = ""): RegExp {
  return new RegExp(`^${globPattern(glob)}$`, flags);
}
