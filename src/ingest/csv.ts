/**
 * A small delimited-text reader for metric logs: one record per line (quoted fields may contain
 * the delimiter and "" for a quote, but not a line break), delimiter guessed from the header
 * (comma, tab or semicolon, whichever occurs most outside quotes), a UTF-8 BOM and CRLF line ends
 * tolerated, blank lines and lines starting with '#' skipped. Line numbers are 1-based.
 */
import { InputError } from '../util/errors.js';

export interface CsvRow {
  line: number;
  cells: string[];
}

export interface CsvTable {
  header: string[];
  headerLine: number;
  delimiter: string;
  rows: CsvRow[];
}

function countOutsideQuotes(line: string, ch: string): number {
  let n = 0;
  let inQ = false;
  for (const c of line) {
    if (c === '"') inQ = !inQ;
    else if (!inQ && c === ch) n++;
  }
  return n;
}

export function splitCsvLine(line: string, delimiter: string, source: string, lineNo: number): string[] {
  const cells: string[] = [];
  let cur = '';
  let i = 0;
  let quoted = false;
  let atStart = true;
  while (i < line.length) {
    const c = line[i]!;
    if (quoted) {
      if (c === '"') {
        if (line[i + 1] === '"') {
          cur += '"';
          i += 2;
          continue;
        }
        quoted = false;
        i++;
        continue;
      }
      cur += c;
      i++;
      continue;
    }
    if (c === '"' && atStart && cur.trim() === '') {
      quoted = true;
      cur = '';
      atStart = false;
      i++;
      continue;
    }
    if (c === delimiter) {
      cells.push(cur.trim());
      cur = '';
      atStart = true;
      i++;
      continue;
    }
    cur += c;
    atStart = false;
    i++;
  }
  if (quoted) throw new InputError(`unterminated quoted field`, `${source}:${lineNo}`);
  cells.push(cur.trim());
  return cells;
}

export function parseCsv(text: string, source: string): CsvTable {
  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/);
  let headerIdx = -1;
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i]!.trim();
    if (l !== '' && !l.startsWith('#')) {
      headerIdx = i;
      break;
    }
  }
  if (headerIdx < 0) throw new InputError('empty file: no header row', source);
  const headerText = lines[headerIdx]!;
  const counts = [',', '\t', ';'].map((d) => [d, countOutsideQuotes(headerText, d)] as const);
  const best = counts.reduce((a, b) => (b[1] > a[1] ? b : a));
  const delimiter = best[1] > 0 ? best[0] : ',';
  const header = splitCsvLine(headerText, delimiter, source, headerIdx + 1);
  const rows: CsvRow[] = [];
  for (let i = headerIdx + 1; i < lines.length; i++) {
    const raw = lines[i]!;
    const t = raw.trim();
    if (t === '' || t.startsWith('#')) continue;
    const cells = splitCsvLine(raw, delimiter, source, i + 1);
    if (cells.length !== header.length) {
      throw new InputError(`expected ${header.length} fields as in the header, found ${cells.length}`, `${source}:${i + 1}`);
    }
    rows.push({ line: i + 1, cells });
  }
  return { header, headerLine: headerIdx + 1, delimiter, rows };
}

/**
 * A numeric cell: a finite number, or undefined for an empty cell or nan/NaN/null (a value that
 * was not logged). Anything else is an InputError naming file, line and column.
 */
export function parseCell(cell: string, source: string, line: number, column: string): number | undefined {
  const t = cell.trim();
  if (t === '' || /^(nan|null|none)$/i.test(t)) return undefined;
  const v = Number(t);
  if (!Number.isFinite(v)) throw new InputError(`not a finite number: '${cell}'`, `${source}:${line}`, column);
  return v;
}
