/**
 * The export formats `exhaust export --format` offers, in the order its help lists them. A new
 * format is one file exporting an ExportFormat (src/export/export-format.ts) plus its line here.
 */
import { bundleFormat } from "./bundle.js";
import { csvFormat } from "./csv.js";
import type { ExportFormat } from "./export-format.js";
import { harFormat } from "./har.js";
import { jsonlFormat } from "./jsonl.js";
import { parquetFormat } from "./parquet-format.js";

export const EXPORT_FORMATS: readonly ExportFormat[] = [harFormat, jsonlFormat, csvFormat, bundleFormat, parquetFormat];
