/**
 * Knowledge is data: rule packs (classifiers/fields, detectors, events), profiles
 * (classifiers/profiles) and the endpoint catalogue (classifiers/endpoints.yaml) are YAML files
 * that open with where their content comes from. One schema for that source and one loader for
 * the YAML, shared by the three; each keeps its own error code (EXH_RULES_INVALID,
 * EXH_PROFILE_INVALID, EXH_CATALOG_INVALID) through the `fail` callback.
 */
import { readFileSync } from "node:fs";
import { parse as parseYaml } from "yaml";
import { z } from "zod";

/** Where a file's knowledge comes from: a document, its URL when it has one, and the day it was read. */
export const SourceSchema = z.strictObject({
  document: z.string().min(1),
  url: z.string().min(1).optional(),
  read: z.string().regex(/^\d{4}-\d{2}-\d{2}$/, "read must be the date the source was read (YYYY-MM-DD)"),
});
export type Source = z.infer<typeof SourceSchema>;

/** YAML text → value; a syntax error becomes the caller's error (`fail`). */
export function parseYamlText(text: string, fail: (e: Error) => Error): unknown {
  try {
    return parseYaml(text);
  } catch (e) {
    throw fail(e as Error);
  }
}

/** Reads and parses a YAML file; a read or syntax error becomes the caller's error (`fail`). */
export function readYamlFile(file: string, fail: (e: Error) => Error): unknown {
  try {
    return parseYaml(readFileSync(file, "utf8"));
  } catch (e) {
    throw fail(e as Error);
  }
}
