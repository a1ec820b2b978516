/**
 * TensorBoard scalar exports: the CSV the dashboard downloads (header `Wall time,Step,Value`) and
 * its JSON form (`[[wall, step, value], ...]`). One file holds one scalar series; what it is comes
 * from the file name, which TensorBoard writes as `run-<run>-tag-<tag>.csv` (older versions
 * `run_<run>-tag-<tag>.csv`; '/' in run and tag names becomes '_'): the key comes from the tag
 * (see names.ts), the split from the tag and else the run name, and files in the same folder whose
 * run names differ only in split tokens belong to the same run. A name without that pattern is
 * taken as the tag, with the folder alone naming the run.
 */
import path from 'node:path';
import type { Split } from '../store/types.js';
import { InputError } from '../util/errors.js';
import { parseCell, parseCsv } from './csv.js';
import { classifyName, splitOf, tokens } from './names.js';

export interface ScalarPoint {
  wall?: number;
  step: number;
  value: number;
  /** 1-based line (CSV) or 0-based entry index (JSON) the point came from, for error messages. */
  line: number;
}

export interface ScalarSeries {
  source: string;
  /** Store key the series maps to (e.g. 'center', 'lr'). */
  key: string;
  split: Split;
  /** Files with the same runKey are one run. */
  runKey: string;
  /** Human-readable run name. */
  runName: string;
  points: ScalarPoint[];
}

export interface TensorBoardName {
  key: string;
  split: Split;
  runKey: string;
  runName: string;
}

export function describeTensorBoardName(file: string): TensorBoardName {
  const dir = path.dirname(file);
  const base = path.basename(file).replace(/\.(csv|json|tsv|txt)$/i, '');
  const m = /^run[-_](.*?)[-_]tag[-_](.+)$/i.exec(base);
  const run = m ? m[1]! : '';
  const tag = m ? m[2]! : base;
  const meaning = classifyName(tag);
  const split = meaning.splitNamed ? meaning.split : (splitOf(run) ?? 'train');
  const runTokens = tokens(run).filter((t) => splitOf(t) === undefined);
  const runName = runTokens.length ? runTokens.join('_') : path.basename(dir) || 'run';
  return { key: meaning.key, split, runKey: `${dir}\u0000${runTokens.join('_')}`, runName };
}

export function isTensorBoardCsvHeader(header: readonly string[]): boolean {
  const h = header.map((c) => c.trim().toLowerCase().replace(/\s+/g, ' '));
  return h.length === 3 && (h[0] === 'wall time' || h[0] === 'wall_time') && h[1] === 'step' && h[2] === 'value';
}

function checkStep(step: number, source: string, where: string): void {
  if (!Number.isInteger(step) || step < 0) {
    throw new InputError(`Step must be a non-negative integer, got ${step}`, `${source}:${where}`, 'Step');
  }
}

export function parseTensorBoardCsv(text: string, source: string): ScalarSeries {
  const table = parseCsv(text, source);
  if (!isTensorBoardCsvHeader(table.header)) {
    throw new InputError(`not a TensorBoard scalar CSV: header is '${table.header.join(',')}', expected 'Wall time,Step,Value'`, `${source}:${table.headerLine}`);
  }
  const points: ScalarPoint[] = [];
  for (const row of table.rows) {
    const wall = parseCell(row.cells[0]!, source, row.line, 'Wall time');
    const step = parseCell(row.cells[1]!, source, row.line, 'Step');
    const value = parseCell(row.cells[2]!, source, row.line, 'Value');
    if (step === undefined) throw new InputError('missing Step', `${source}:${row.line}`, 'Step');
    checkStep(step, source, String(row.line));
    if (value === undefined) continue; // nan: not a measurement
    points.push({ ...(wall !== undefined ? { wall } : {}), step, value, line: row.line });
  }
  if (points.length === 0) throw new InputError('no data rows', source);
  return { source, ...describeTensorBoardName(source), points };
}

export function parseTensorBoardJson(text: string, source: string): ScalarSeries {
  let data: unknown;
  try {
    data = JSON.parse(text.replace(/^\uFEFF/, ''));
  } catch (e) {
    throw new InputError(`invalid JSON: ${(e as Error).message}`, source);
  }
  if (!Array.isArray(data)) throw new InputError('expected a JSON array of [wall time, step, value] entries', source);
  const points: ScalarPoint[] = [];
  data.forEach((entry: unknown, i: number) => {
    if (!Array.isArray(entry) || entry.length !== 3) {
      throw new InputError(`entry ${i} is not a [wall time, step, value] triple: ${JSON.stringify(entry)}`, source, `[${i}]`);
    }
    const [wall, step, value] = entry as unknown[];
    if (typeof step !== 'number') throw new InputError(`entry ${i}: step is not a number: ${JSON.stringify(step)}`, source, `[${i}][1]`);
    checkStep(step, source, `[${i}]`);
    if (value === null || (typeof value === 'string' && /^nan$/i.test(value))) return;
    if (typeof value !== 'number' || !Number.isFinite(value)) {
      throw new InputError(`entry ${i}: value is not a finite number: ${JSON.stringify(value)}`, source, `[${i}][2]`);
    }
    if (wall !== null && typeof wall !== 'number') {
      throw new InputError(`entry ${i}: wall time is not a number: ${JSON.stringify(wall)}`, source, `[${i}][0]`);
    }
    points.push({ ...(typeof wall === 'number' ? { wall } : {}), step, value, line: i });
  });
  if (points.length === 0) throw new InputError('no data entries', source);
  return { source, ...describeTensorBoardName(source), points };
}
