/**
 * The look the printable HTML documents share (the session report and the fleet study): page,
 * headings, tables, verdict statuses, charts. Each adds its own rules after this.
 */
export const DOCUMENT_CSS = `
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1b1b1b; max-width: 1100px; margin: 0 auto; padding: 1.5em; }
h2 { border-bottom: 2px solid #333; padding-bottom: 0.15em; margin-top: 1.6em; }
.meta, small { color: #555; }
table { border-collapse: collapse; margin: 0.5em 0 1em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.45em; text-align: left; vertical-align: top; }
th { background: #f1f1f1; }
.pass { color: #2e7d32; font-weight: 700; } .fail { color: #c62828; font-weight: 700; } .warn { color: #ef6c00; font-weight: 700; } .inconclusive { color: #6a1b9a; font-weight: 700; }
.chart { max-width: 100%; height: auto; }
`;
