/**
 * Metric logs other than event files, as scalar series (series.ts):
 *  - a step table: a CSV with a step column (`step`, `_step`, `global_step`), optionally an epoch
 *    column: PyTorch Lightning's CSVLogger metrics.csv (epoch and step rows mixed, keys suffixed
 *    _step/_epoch) and W&B history exports. Each other column is a series: per epoch when an epoch
 *    column exists and no epoch repeats among the column's filled cells (Lightning's epoch-level
 *    rows), else per step with the row's epoch (per step; 'auto' without an epoch column). W&B's
 *    own columns (_runtime, _timestamp, _wandb...) and times are ignored.
 *  - W&B history as JSON lines (wandb-history.jsonl or an export): one object per line with
 *    `_step`; numeric fields become series as in a step table, other fields are ignored.
 *  - an MLflow run folder (file store: meta.yaml, metrics/<key> files of `timestamp value step`
 *    lines, keys with '/' as subfolders); the run name from tags/mlflow.runName.
 */
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { InputError } from '../util/errors.js';
import { parseCell, parseCsv } from './csv.js';
import type { Series, SeriesPoint } from './series.js';

const STEP_COLS = ['step', '_step', 'global_step', 'trainer/global_step'];
const EPOCH_COLS = ['epoch', 'epochs', 'trainer/epoch'];
const IGNORED = /^(_runtime|_timestamp|_wandb.*|wall[ _]?time|time|timestamp|date|created_at|unnamed.*|)$/i;

export function hasStepColumn(header: readonly string[]): boolean {
  return header.some((h) => STEP_COLS.includes(h.trim().toLowerCase()));
}

interface Row {
  where: string;
  get: (col: string) => number | undefined;
}

function tableSeries(columns: readonly string[], rows: readonly Row[], source: string): Series[] {
  const lower = columns.map((c) => c.trim().toLowerCase());
  const stepCol = columns[lower.findIndex((c) => STEP_COLS.includes(c))];
  const epochIdx = lower.findIndex((c) => EPOCH_COLS.includes(c));
  const epochCol = epochIdx >= 0 ? columns[epochIdx] : undefined;
  if (stepCol === undefined) throw new InputError('no step column (step, _step, global_step)', source);
  const out: Series[] = [];
  for (const col of columns) {
    if (col === stepCol || col === epochCol || IGNORED.test(col.trim()) || STEP_COLS.includes(col.trim().toLowerCase())) continue;
    const points: SeriesPoint[] = [];
    const epochsSeen = new Set<number>();
    let repeats = false;
    for (const r of rows) {
      const v = r.get(col);
      if (v === undefined) continue;
      const step = r.get(stepCol);
      if (step === undefined || !Number.isInteger(step) || step < 0) {
        throw new InputError(`step must be a non-negative integer, got ${step}`, r.where, stepCol);
      }
      const epoch = epochCol !== undefined ? r.get(epochCol) : undefined;
      if (epoch !== undefined) {
        if (!Number.isInteger(epoch) || epoch < 0) throw new InputError(`epoch must be a non-negative integer, got ${epoch}`, r.where, epochCol);
        if (epochsSeen.has(epoch)) repeats = true;
        epochsSeen.add(epoch);
      }
      points.push({ step, value: v, ...(epoch !== undefined ? { epoch } : {}) });
    }
    if (points.length === 0) continue;
    const allEpochs = epochCol !== undefined && points.every((p) => p.epoch !== undefined);
    if (allEpochs && !repeats) out.push({ tag: col, source, unit: 'epoch', points: points.map((p) => ({ step: p.epoch!, value: p.value, epoch: p.epoch! })) });
    else if (allEpochs) out.push({ tag: col, source, unit: 'step', points });
    else out.push({ tag: col, source, unit: 'auto', points: points.map(({ step, value }) => ({ step, value })) });
  }
  if (out.length === 0) throw new InputError('no metric columns with values', source);
  return out;
}

/** A CSV with a step column (Lightning CSVLogger, W&B export). */
export function parseStepTable(text: string, source: string): Series[] {
  const t = parseCsv(text, source);
  if (t.rows.length === 0) throw new InputError('no data rows', source);
  const idx = new Map(t.header.map((h, i) => [h, i]));
  return tableSeries(
    t.header,
    t.rows.map((r) => ({ where: `${source}:${r.line}`, get: (c: string) => parseCell(r.cells[idx.get(c)!]!, source, r.line, c) })),
    source,
  );
}

/** W&B history JSON lines. */
export function parseWandbJsonl(text: string, source: string): Series[] {
  const rows: Row[] = [];
  const cols = new Set<string>();
  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/);
  lines.forEach((line, i) => {
    if (line.trim() === '') return;
    let obj: unknown;
    try {
      obj = JSON.parse(line);
    } catch (e) {
      if (lines.slice(i + 1).every((l) => l.trim() === '')) return; // a torn last line
      throw new InputError(`invalid JSON: ${(e as Error).message}`, `${source}:${i + 1}`);
    }
    if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) throw new InputError('not a JSON object', `${source}:${i + 1}`);
    const o = obj as Record<string, unknown>;
    if (typeof o._step !== 'number') throw new InputError('no numeric _step (not a W&B history line)', `${source}:${i + 1}`, '_step');
    for (const [k, v] of Object.entries(o)) if (typeof v === 'number') cols.add(k);
    rows.push({
      where: `${source}:${i + 1}`,
      get: (c) => {
        const v = o[c];
        return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
      },
    });
  });
  if (rows.length === 0) throw new InputError('no data lines', source);
  return tableSeries([...cols], rows, source);
}

export function isMlflowRun(dir: string): boolean {
  return existsSync(path.join(dir, 'meta.yaml')) && existsSync(path.join(dir, 'metrics')) && statSync(path.join(dir, 'metrics')).isDirectory();
}

/** An MLflow run folder: its series and its name. */
export function readMlflowRun(dir: string): { name: string; series: Series[]; sources: string[] } {
  const root = path.join(dir, 'metrics');
  const series: Series[] = [];
  const sources: string[] = [];
  const walk = (d: string, prefix: string) => {
    for (const n of readdirSync(d).sort()) {
      const p = path.join(d, n);
      if (statSync(p).isDirectory()) {
        walk(p, `${prefix}${n}/`);
        continue;
      }
      const points: SeriesPoint[] = [];
      readFileSync(p, 'utf8').split(/\r?\n/).forEach((line, i) => {
        if (line.trim() === '') return;
        const f = line.trim().split(/\s+/);
        if (f.length < 2 || f.length > 3) throw new InputError(`expected 'timestamp value step', got '${line}'`, `${p}:${i + 1}`);
        const value = parseCell(f[1]!, p, i + 1, 'value');
        const step = f.length === 3 ? Number(f[2]) : points.length;
        if (!Number.isInteger(step) || step < 0) throw new InputError(`step must be a non-negative integer, got '${f[2]}'`, `${p}:${i + 1}`, 'step');
        if (value !== undefined) points.push({ step, value });
      });
      if (points.length === 0) continue;
      // A key logged twice at one step: the later line wins, as MLflow's history shows the latest.
      const byStep = new Map<number, SeriesPoint>();
      for (const pt of points) byStep.set(pt.step, pt);
      series.push({ tag: prefix + n, source: p, unit: 'auto', points: [...byStep.values()].sort((a, b) => a.step - b.step) });
      sources.push(p);
    }
  };
  walk(root, '');
  if (series.length === 0) throw new InputError('MLflow run without metric values', root);
  const tag = path.join(dir, 'tags', 'mlflow.runName');
  const name = existsSync(tag) ? readFileSync(tag, 'utf8').trim() || path.basename(dir) : path.basename(dir);
  return { name, series, sources };
}
