/**
 * CSV output for simulation results (RFC 4180): one header row, CRLF line ends, fields quoted
 * only when they must be.
 */

export type Cell = string | number | boolean | null;

/** A number as a CSV field: integers in full, others to 6 significant digits; NaN and ±Infinity empty. */
function formatNumber(n: number): string {
  if (!Number.isFinite(n)) return '';
  if (n === 0) return '0';
  if (Number.isInteger(n)) return String(n);
  // Rounding through Number drops trailing zeros; String avoids the exponent from 1e-6 to 1e21.
  return String(Number(n.toPrecision(6)));
}

function field(cell: Cell | undefined): string {
  if (cell === null || cell === undefined) return '';
  if (typeof cell === 'number') return formatNumber(cell);
  if (typeof cell === 'boolean') return cell ? 'true' : 'false';
  return /[",\r\n]/.test(cell) ? `"${cell.replace(/"/g, '""')}"` : cell;
}

/**
 * RFC 4180 CSV: a header row of `columns` (default: the keys of the first row, in order), CRLF
 * line ends (after every row, the last included), fields quoted when they hold a comma, quote,
 * CR or LF. Numbers that are not integers are written with up to 6 significant digits; NaN,
 * ±Infinity, null and missing keys as empty fields. No rows and no columns give "".
 */
export function toCsv(rows: readonly Readonly<Record<string, Cell>>[], columns?: readonly string[]): string {
  const cols = columns ?? Object.keys(rows[0] ?? {});
  if (cols.length === 0) return '';
  const lines = [cols.map(field).join(',')];
  for (const row of rows) {
    lines.push(cols.map((c) => field(Object.hasOwn(row, c) ? row[c] : undefined)).join(','));
  }
  return `${lines.join('\r\n')}\r\n`;
}
