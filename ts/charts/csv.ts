// CSV for result tables (RFC 4180): a header row, then one row per record; fields holding a comma, quote
// or line break are quoted, quotes doubled. Numbers are written in full (no rounding), so a spreadsheet
// or a plotting script reads back exactly what was computed.

export type CsvValue = string | number | boolean | null | undefined;

function field(value: CsvValue): string {
  if (value === null || value === undefined) return '';
  const text = String(value);
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

/** `rows` as CSV with the given columns (default: the keys of the first row), lines ending in \n. */
export function toCsv<T extends Record<string, CsvValue>>(
  rows: readonly T[], columns?: readonly (keyof T & string)[]
): string {
  const keys = columns ?? (rows.length > 0 ? (Object.keys(rows[0]!) as (keyof T & string)[]) : []);
  const lines = [keys.map(field).join(',')];
  for (const row of rows) lines.push(keys.map((k) => field(row[k])).join(','));
  return lines.join('\n') + '\n';
}
