/**
 * A plain CSV of per-epoch metrics (Keras CSVLogger, pandas to_csv, hand-made): a header row and one
 * row per epoch (or per epoch and split).
 *
 * Columns:
 *  - epoch / epochs / ep: the epoch number (a non-negative integer, kept as written: a 1-based log
 *    stays 1-based, and so do the decay epochs found in it). Without such a column the epoch is
 *    the row's position (0-based) among the rows of its split.
 *  - split / phase / set / mode: optional; the row's split (a value naming train, valid/val/eval or test).
 *  - iter, wall time, time, timestamp, date and unnamed columns: ignored (a CSV with a step
 *    column is a step table instead: formats.ts).
 *  - `metric`, when given, names the column measured as 'center'; another column that would be
 *    'center' by its name keeps its name as key.
 *  - anything else is a metric; its key and split come from its name (names.ts): "val_center_loss"
 *    is center of the valid split, "center_loss" center of the row's split (train by default).
 *    Two columns meaning the same (split, key) are an error.
 * Cells: a finite number, or empty / nan / null (not logged). An epoch that appears twice for the
 * same split and metric is an error naming both lines.
 */
import type { MetricRecord, Split } from '../store/types.js';
import { InputError } from '../util/errors.js';
import { parseCell, parseCsv } from './csv.js';
import { classifyName, splitOf } from './names.js';

const EPOCH_COLS = new Set(['epoch', 'epochs', 'ep']);
const SPLIT_COLS = new Set(['split', 'phase', 'set', 'mode']);
const IGNORED_COLS = new Set(['step', 'steps', 'iter', 'iteration', 'global_step', 'wall time', 'wall_time', 'walltime', 'time', 'timestamp', 'date']);

export function parseMetricsCsv(text: string, source: string, metric?: string): MetricRecord[] {
  const table = parseCsv(text, source);
  if (metric !== undefined && !table.header.includes(metric)) {
    throw new InputError(`no column '${metric}' (found: ${table.header.join(', ')})`, `${source}:${table.headerLine}`, '--metric');
  }
  const names = table.header.map((h) => h.trim().toLowerCase());
  const epochCol = names.findIndex((n) => EPOCH_COLS.has(n));
  const splitCol = names.findIndex((n) => SPLIT_COLS.has(n));
  const metricCols: { index: number; name: string; key: string; split?: Split }[] = [];
  const claimed = new Map<string, string>();
  table.header.forEach((name, index) => {
    const lower = names[index]!;
    if (index === epochCol || index === splitCol || IGNORED_COLS.has(lower) || lower === '' || /^unnamed/.test(lower)) return;
    const m = classifyName(name);
    if (metric !== undefined) m.key = name === metric ? 'center' : m.key === 'center' ? name : m.key;
    if (m.key === '') throw new InputError(`cannot tell what column '${name}' measures`, `${source}:${table.headerLine}`, name);
    const col = { index, name, key: m.key, ...(m.splitNamed ? { split: m.split } : {}) };
    const id = `${col.split ?? '*'}/${col.key}`;
    const other = claimed.get(id);
    if (other !== undefined) {
      throw new InputError(`columns '${other}' and '${name}' both mean ${col.split ?? 'the row split'} '${col.key}'`, `${source}:${table.headerLine}`, name);
    }
    claimed.set(id, name);
    metricCols.push(col);
  });
  if (metricCols.length === 0) throw new InputError('no metric columns in the header', `${source}:${table.headerLine}`);
  if (table.rows.length === 0) throw new InputError('no data rows', source);

  const records = new Map<string, MetricRecord>();
  const seenAt = new Map<string, number>();
  const ordinal = new Map<Split, number>();
  for (const row of table.rows) {
    let rowSplit: Split = 'train';
    if (splitCol >= 0) {
      const s = splitOf(row.cells[splitCol]!);
      if (s === undefined) {
        throw new InputError(`unknown split '${row.cells[splitCol]}' (expected train, valid or test)`, `${source}:${row.line}`, table.header[splitCol]);
      }
      rowSplit = s;
    }
    let epoch: number;
    if (epochCol >= 0) {
      const e = parseCell(row.cells[epochCol]!, source, row.line, table.header[epochCol]!);
      if (e === undefined || !Number.isInteger(e) || e < 0) {
        throw new InputError(`epoch must be a non-negative integer, got '${row.cells[epochCol]}'`, `${source}:${row.line}`, table.header[epochCol]);
      }
      epoch = e;
    } else {
      epoch = ordinal.get(rowSplit) ?? 0;
      ordinal.set(rowSplit, epoch + 1);
    }
    for (const col of metricCols) {
      const v = parseCell(row.cells[col.index]!, source, row.line, col.name);
      if (v === undefined) continue;
      const split = col.split ?? rowSplit;
      const id = `${split}/${epoch}`;
      const dupId = `${id}/${col.key}`;
      const prevLine = seenAt.get(dupId);
      if (prevLine !== undefined) {
        throw new InputError(`epoch ${epoch} of split ${split} has a second '${col.key}' value (first on line ${prevLine})`, `${source}:${row.line}`, col.name);
      }
      seenAt.set(dupId, row.line);
      let rec = records.get(id);
      if (!rec) records.set(id, (rec = { kind: 'epoch', epoch, split }));
      rec[col.key] = v;
    }
  }
  return [...records.values()];
}
