/**
 * Turns recorded runs into the small, columnar data the report page carries.
 *
 * - Epoch records: aggregated across the seeds of a variant per (split, key, epoch): mean, min, max, n.
 *   One series per (variant, split, key); the epoch is implicit (e0 + index), gaps are null.
 * - Step records (train only): kept only inside the windows around the decay epochs, positioned at
 *   x = epoch + iter / itersPerEpoch. Where a variant has more distinct steps than the chart can show,
 *   they are bucketed on a fixed grid: line = mean over seeds of each seed's bucket mean, band = min..max
 *   over seeds and over the steps in the bucket (so a one-step spike still shows in the band).
 * - Numbers are rounded to 5 significant digits (step data, noisy anyway, to 4), x arrays shared between series, constant
 *   columns stored once, and records repeated in a run (a resumed run re-records epochs) deduplicated,
 *   the last record winning.
 */
import { materializeRows } from './page/rows.js';
import type { EpochSeries, Query, Row, RowSource, Series, StepSeries } from './page/shapes.js';

export type { EpochSeries, Query, Row, RowSource, Series, StepSeries } from './page/shapes.js';
import type { RunData } from '../analysis/types.js';
import type { MetricRecord, Split } from '../store/types.js';

export const SPLIT_ORDER: Split[] = ['train', 'valid', 'test'];
const STRUCTURAL = new Set(['kind', 'epoch', 'split', 'step', 'iter']);

export interface DecayWindow {
  decay: number;
  /** Epoch records e with e0 <= e <= e1 belong to the window. */
  e0: number;
  e1: number;
  /** Step records with x0 <= x < x1 belong to the window. */
  x0: number;
  x1: number;
}

export interface PreparedData {
  variants: string[];
  splits: Split[];
  keys: string[];
  xs: number[][];
  series: Series[];
  windows: DecayWindow[];
  /** key -> splits that have epoch data for it. */
  epochKeys: Map<string, Set<Split>>;
  /** keys with step data inside some window. */
  stepKeys: Set<string>;
  /** key -> every finite value (all splits, all resolutions) is > 0. */
  positive: Map<string, boolean>;
  /** key -> the single value it takes everywhere, if it takes only one. */
  constant: Map<string, number>;
  /** Whether step data was bucketed, per variant. */
  bucketed: boolean[];
  epochRange: [number, number];
  decayEpochs: number[];
}

export interface PrepareOptions {
  /** Epochs on either side of a decay epoch shown in its window (default 3). */
  windowEpochs?: number;
  /** Target number of points per variant and key across one window of step data (default 200). */
  stepPointsPerWindow?: number;
  /** Decay epochs to show (default: union of the manifests' decayEpochs). */
  decayEpochs?: number[];
}

const POW10 = Array.from({ length: 23 }, (_, i) => 10 ** i);

/** v rounded to `digits` significant digits (null if not finite). */
export function roundSig(v: number, digits = 5): number | null {
  if (!Number.isFinite(v)) return null;
  if (v === 0) return 0;
  const e = digits - 1 - Math.floor(Math.log10(Math.abs(v)));
  // Dividing an integer by an exact power of ten gives the double nearest the decimal, which prints short.
  if (e >= 0 && e <= 22) return Math.round(v * POW10[e]!) / POW10[e]!;
  if (e < 0 && -e <= 22) return Math.round(v / POW10[-e]!) * POW10[-e]!;
  return Number(v.toPrecision(digits));
}

function roundX(v: number): number {
  return Math.round(v * 1e5) / 1e5;
}

export function variantOf(run: RunData): string {
  return run.manifest.variant !== '' ? run.manifest.variant : run.manifest.name;
}

interface RunParts {
  vi: number;
  epochs: Map<Split, Map<number, MetricRecord>>;
  /** Train step records, deduplicated. */
  stepList: MetricRecord[];
  /** Steps inside the decay windows with their positions (filled in once the windows are known). */
  steps: { x: number; rec: MetricRecord }[];
  eMin: number;
  eMax: number;
}

function numericKeys(rec: MetricRecord, into: Set<string>): void {
  for (const k in rec) {
    if (!into.has(k) && !STRUCTURAL.has(k) && typeof rec[k] === 'number') into.add(k);
  }
}

function splitRun(run: RunData, vi: number): RunParts {
  const epochs = new Map<Split, Map<number, MetricRecord>>();
  // Steps in recording order; a run resumed from a checkpoint may repeat some, the last one wins.
  let stepList: MetricRecord[] = [];
  let lastId = -Infinity;
  let ordered = true;
  let eMin = Infinity;
  let eMax = -Infinity;
  for (const rec of run.records) {
    const e = rec.epoch;
    if (typeof e !== 'number' || !Number.isFinite(e)) continue;
    if (rec.kind === 'epoch') {
      let m = epochs.get(rec.split);
      if (!m) epochs.set(rec.split, (m = new Map()));
      m.set(e, rec);
    } else if (rec.kind === 'step' && rec.split === 'train') {
      const id = typeof rec.step === 'number' ? rec.step : typeof rec.iter === 'number' ? e * 1e9 + rec.iter : NaN;
      if (!Number.isFinite(id)) continue;
      if (id <= lastId) ordered = false;
      lastId = id;
      stepList.push(rec);
    } else continue;
    if (e < eMin) eMin = e;
    if (e > eMax) eMax = e;
  }
  if (!ordered) {
    const byId = new Map<number, MetricRecord>();
    for (const rec of stepList) byId.set(typeof rec.step === 'number' ? rec.step : rec.epoch * 1e9 + (rec.iter as number), rec);
    stepList = [...byId.values()];
  }
  return { vi, epochs, stepList, steps: [], eMin, eMax };
}

/**
 * Positions x = epoch + iter / itersPerEpoch for the steps of the epochs `keep` accepts. Iterations per
 * epoch come from where consecutive epochs start (step - iter), else from the largest iter seen.
 */
function positionSteps(stepList: MetricRecord[], keep: (epoch: number) => boolean): { x: number; rec: MetricRecord }[] {
  const list = stepList.filter((r) => keep(r.epoch));
  const start = new Map<number, number>();
  const maxIter = new Map<number, number>();
  for (const rec of list) {
    if (typeof rec.step === 'number' && typeof rec.iter === 'number') start.set(rec.epoch, rec.step - rec.iter);
    if (typeof rec.iter === 'number') maxIter.set(rec.epoch, Math.max(maxIter.get(rec.epoch) ?? 0, rec.iter));
  }
  const ipe = new Map<number, number>();
  const known: number[] = [];
  for (const [e, s] of start) {
    const next = start.get(e + 1);
    if (next !== undefined && next > s) {
      ipe.set(e, next - s);
      known.push(next - s);
    }
  }
  known.sort((a, b) => a - b);
  const typical = known.length ? known[Math.floor(known.length / 2)]! : undefined;
  const itersIn = (e: number): number => ipe.get(e) ?? Math.max(typical ?? 0, (maxIter.get(e) ?? 0) + 1, 1);
  const steps: { x: number; rec: MetricRecord }[] = [];
  let lastEpoch = NaN;
  let n = 1;
  for (const rec of list) {
    if (rec.epoch !== lastEpoch) {
      lastEpoch = rec.epoch;
      n = itersIn(lastEpoch);
    }
    let within: number;
    if (typeof rec.iter === 'number') within = rec.iter;
    else if (typeof rec.step === 'number' && start.has(rec.epoch)) within = rec.step - start.get(rec.epoch)!;
    else within = n / 2;
    steps.push({ x: rec.epoch + Math.min(Math.max(within / n, 0), 0.99999), rec });
  }
  return steps;
}


interface Acc {
  sum: number;
  n: number;
  min: number;
  max: number;
}

function pack(
  cells: (Acc | undefined)[],
  digits: number,
): { mean: (number | null)[]; min?: (number | null)[]; max?: (number | null)[]; seeds: number | number[] } {
  const m: (number | null)[] = [];
  const lo: (number | null)[] = [];
  const hi: (number | null)[] = [];
  const n: number[] = [];
  let spread = false;
  for (const c of cells) {
    if (!c || c.n === 0) {
      m.push(null);
      lo.push(null);
      hi.push(null);
      n.push(0);
      continue;
    }
    const mean = roundSig(c.sum / c.n, digits);
    m.push(mean);
    const l = roundSig(c.min, digits);
    const h = roundSig(c.max, digits);
    lo.push(l);
    hi.push(h);
    if (c.min !== c.max) spread = true;
    n.push(c.n);
  }
  const nConst = n.every((x) => x === n[0]) ? (n[0] ?? 0) : n;
  return spread ? { mean: m, min: lo, max: hi, seeds: nConst } : { mean: m, seeds: nConst };
}

/**
 * Per key across everything shown: whether every finite value is > 0 (log scales), and the one
 * value it takes if it takes only one (constant columns stored once).
 */
class KeyStats {
  readonly positive = new Map<string, boolean>();
  private readonly constVal = new Map<string, number | null>();

  note(k: string, v: number): void {
    if (!Number.isFinite(v)) return;
    if (v <= 0) this.positive.set(k, false);
    else if (!this.positive.has(k)) this.positive.set(k, true);
    const c = this.constVal.get(k);
    if (c === undefined) this.constVal.set(k, v);
    else if (c !== null && c !== v) this.constVal.set(k, null);
  }

  constants(): Map<string, number> {
    const constant = new Map<string, number>();
    for (const [k, c] of this.constVal) if (c !== null) constant.set(k, c);
    return constant;
  }
}

/** The epochs the runs cover and the splits they have, in SPLIT_ORDER. */
function extent(parts: RunParts[]): { eMin: number; eMax: number; splits: Split[] } {
  let eMin = Infinity;
  let eMax = -Infinity;
  const splitSet = new Set<Split>();
  for (const p of parts) {
    eMin = Math.min(eMin, p.eMin);
    eMax = Math.max(eMax, p.eMax);
    for (const split of p.epochs.keys()) splitSet.add(split);
  }
  if (!Number.isFinite(eMin)) {
    eMin = 0;
    eMax = 0;
  }
  return { eMin, eMax, splits: SPLIT_ORDER.filter((s) => splitSet.has(s)) };
}

/** The window of W epochs either side of each decay, within the runs' epochs. */
function decayWindows(decayEpochs: number[], W: number, eMin: number, eMax: number): DecayWindow[] {
  return decayEpochs
    .map((d) => ({ decay: d, e0: Math.max(d - W, eMin), e1: Math.min(d + W, eMax), x0: Math.max(d - W, eMin), x1: Math.min(d + W, eMax) + 1 }))
    .filter((w) => w.e0 <= w.e1);
}

/** Keep each run's steps inside the windows, positioned (the epoch after a window tells how long its last epoch is). */
function keepWindowSteps(parts: RunParts[], windows: DecayWindow[]): void {
  const inWindow = (x: number): boolean => {
    for (const w of windows) if (x >= w.x0 && x < w.x1) return true;
    return false;
  };
  const nearWindow = (e: number): boolean => {
    for (const w of windows) if (e >= Math.floor(w.x0) && e <= w.x1) return true;
    return false;
  };
  for (const p of parts) p.steps = positionSteps(p.stepList, nearWindow).filter((s) => inWindow(s.x));
}

/** Keys of the epoch records and of the steps that will be shown, in first-seen order. */
function keysOf(parts: RunParts[]): string[] {
  const keySet = new Set<string>();
  for (const p of parts) {
    for (const m of p.epochs.values()) for (const rec of m.values()) numericKeys(rec, keySet);
    for (const s of p.steps) numericKeys(s.rec, keySet);
  }
  return [...keySet];
}

/** Epoch aggregates per (variant, split, key) over the variant's seeds, appended to `series`; returns key -> splits. */
function epochSeries(parts: RunParts[], nVariants: number, splits: Split[], kIndex: Map<string, number>, stats: KeyStats, series: Series[]): Map<string, Set<Split>> {
  const epochKeys = new Map<string, Set<Split>>();
  for (let vi = 0; vi < nVariants; vi++) {
    const vParts = parts.filter((p) => p.vi === vi);
    for (const split of splits) {
      const si = splits.indexOf(split);
      const perKey = new Map<string, Map<number, Acc>>();
      for (const p of vParts) {
        const m = p.epochs.get(split);
        if (!m) continue;
        for (const [e, rec] of m) {
          for (const k in rec) {
            const val = rec[k];
            if (STRUCTURAL.has(k) || typeof val !== 'number') continue;
            stats.note(k, val);
            if (!Number.isFinite(val)) continue;
            let byE = perKey.get(k);
            if (!byE) perKey.set(k, (byE = new Map()));
            const a = byE.get(e);
            if (a) {
              a.sum += val;
              a.n++;
              if (val < a.min) a.min = val;
              if (val > a.max) a.max = val;
            } else byE.set(e, { sum: val, n: 1, min: val, max: val });
          }
        }
      }
      for (const [k, byE] of perKey) {
        const es = [...byE.keys()];
        const e0 = Math.min(...es);
        const e1 = Math.max(...es);
        const cells: (Acc | undefined)[] = [];
        for (let e = e0; e <= e1; e++) cells.push(byE.get(e));
        series.push({ kind: 'epoch', variant: vi, split: si, key: kIndex.get(k)!, firstEpoch: e0, ...pack(cells, 5) });
        let sp = epochKeys.get(k);
        if (!sp) epochKeys.set(k, (sp = new Set()));
        sp.add(split);
      }
    }
  }
  return epochKeys;
}

/** Length of the union of the windows' step ranges. */
function windowSpan(windows: DecayWindow[]): number {
  let span = 0;
  let end = -Infinity;
  for (const w of windows) {
    const a = Math.max(w.x0, end);
    if (w.x1 > a) span += w.x1 - a;
    end = Math.max(end, w.x1);
  }
  return span;
}

/** Per (seed, cell) sums, counts, minima and maxima, reused across the keys of a variant. */
class CellScratch {
  readonly sum: Float64Array;
  readonly cnt: Int32Array;
  readonly mn: Float64Array;
  readonly mx: Float64Array;
  constructor(n: number) {
    this.sum = new Float64Array(n);
    this.cnt = new Int32Array(n);
    this.mn = new Float64Array(n);
    this.mx = new Float64Array(n);
  }
}

/**
 * Key k's step values in cells: per seed the mean of its steps in a cell, then per cell the mean
 * over seeds (line) and min..max over seeds and steps (band). Cells no seed reaches are left out;
 * null where k has no finite value.
 */
function stepCells(lists: { x: number; rec: MetricRecord }[][], cellIdx: Int32Array[], C: number, k: string, t: CellScratch): { cell: number; acc: Acc }[] | null {
  const { sum, cnt, mn, mx } = t;
  sum.fill(0);
  cnt.fill(0);
  mn.fill(Infinity);
  mx.fill(-Infinity);
  let any = false;
  for (let r = 0; r < lists.length; r++) {
    const list = lists[r]!;
    const idx = cellIdx[r]!;
    for (let i = 0; i < list.length; i++) {
      const val = list[i]!.rec[k];
      if (typeof val !== 'number' || !Number.isFinite(val)) continue;
      any = true;
      const j = r * C + idx[i]!;
      sum[j]! += val;
      cnt[j]!++;
      if (val < mn[j]!) mn[j] = val;
      if (val > mx[j]!) mx[j] = val;
    }
  }
  if (!any) return null;
  const cells: { cell: number; acc: Acc }[] = [];
  for (let c = 0; c < C; c++) {
    const out: Acc = { sum: 0, n: 0, min: Infinity, max: -Infinity };
    for (let r = 0; r < lists.length; r++) {
      const j = r * C + c;
      if (cnt[j] === 0) continue;
      out.sum += sum[j]! / cnt[j]!;
      out.n++;
      if (mn[j]! < out.min) out.min = mn[j]!;
      if (mx[j]! > out.max) out.max = mx[j]!;
    }
    if (out.n > 0) cells.push({ cell: c, acc: out });
  }
  return cells;
}

/**
 * Step aggregates per (variant, key) inside the windows, appended to `series`: each step's own
 * position, or buckets of width bw on a grid from the first window's start where a variant has
 * more distinct steps than the windows hold points. Returns the shared x arrays, the keys with step
 * data and which variants were bucketed.
 */
function stepSeries(parts: RunParts[], nVariants: number, keys: string[], kIndex: Map<string, number>, windows: DecayWindow[], bw: number,
  stats: KeyStats, series: Series[]): { xs: number[][]; stepKeys: Set<string>; bucketed: boolean[] } {
  const xs: number[][] = [];
  const xsIndex = new Map<string, number>();
  const internX = (arr: number[]): number => {
    const id = arr.join(',');
    let i = xsIndex.get(id);
    if (i === undefined) {
      i = xs.length;
      xs.push(arr);
      xsIndex.set(id, i);
    }
    return i;
  };
  const stepKeys = new Set<string>();
  const bucketed: boolean[] = Array.from({ length: nVariants }, () => false);
  const g0 = windows.length ? Math.min(...windows.map((w) => w.x0)) : 0;
  const spanTotal = windowSpan(windows);
  for (let vi = 0; vi < nVariants; vi++) {
    const lists = parts.filter((p) => p.vi === vi).map((p) => p.steps);
    const distinct = new Set<number>();
    for (const list of lists) for (const s of list) distinct.add(roundX(s.x));
    if (distinct.size === 0) continue;
    const useBuckets = distinct.size > Math.ceil(spanTotal / bw);
    bucketed[vi] = useBuckets;
    // Cell of every step: a bucket on the grid, or the step's own position.
    let cellX: number[];
    let cellIdx: Int32Array[];
    if (useBuckets) {
      let maxCell = 0;
      cellIdx = lists.map((list) => {
        const idx = new Int32Array(list.length);
        for (let i = 0; i < list.length; i++) {
          idx[i] = Math.floor((list[i]!.x - g0) / bw);
          if (idx[i]! > maxCell) maxCell = idx[i]!;
        }
        return idx;
      });
      cellX = Array.from({ length: maxCell + 1 }, (_, c) => roundX(g0 + (c + 0.5) * bw));
    } else {
      cellX = [...distinct].sort((a, b) => a - b);
      const at = new Map(cellX.map((x, i) => [x, i]));
      cellIdx = lists.map((list) => Int32Array.from(list, (s) => at.get(roundX(s.x))!));
    }
    const scratch = new CellScratch(lists.length * cellX.length);
    for (const k of keys) {
      const cells = stepCells(lists, cellIdx, cellX.length, k, scratch);
      if (!cells) continue;
      let kMin = Infinity;
      let kMax = -Infinity;
      for (const c of cells) {
        if (c.acc.min < kMin) kMin = c.acc.min;
        if (c.acc.max > kMax) kMax = c.acc.max;
      }
      stats.note(k, kMin);
      stats.note(k, kMax);
      series.push({ kind: 'step', variant: vi, key: kIndex.get(k)!, xIndex: internX(cells.map((c) => cellX[c.cell]!)), ...pack(cells.map((c) => c.acc), 4) });
      stepKeys.add(k);
    }
  }
  return { xs, stepKeys, bucketed };
}

export function prepareData(runs: RunData[], opts: PrepareOptions = {}): PreparedData {
  const W = opts.windowEpochs ?? 3;
  const pointsPerWindow = opts.stepPointsPerWindow ?? 200;
  const variants: string[] = [];
  for (const r of runs) if (!variants.includes(variantOf(r))) variants.push(variantOf(r));
  const parts = runs.map((r) => splitRun(r, variants.indexOf(variantOf(r))));

  const { eMin, eMax, splits } = extent(parts);
  const decaySet = new Set<number>(opts.decayEpochs ?? runs.flatMap((r) => r.manifest.decayEpochs ?? []));
  const decayEpochs = [...decaySet].filter((d) => Number.isFinite(d)).sort((a, b) => a - b);
  const windows = decayWindows(decayEpochs, W, eMin, eMax);
  keepWindowSteps(parts, windows);
  const keys = keysOf(parts);
  const kIndex = new Map(keys.map((k, i) => [k, i]));

  const stats = new KeyStats();
  const series: Series[] = [];
  const epochKeys = epochSeries(parts, variants.length, splits, kIndex, stats, series);
  const { xs, stepKeys, bucketed } = stepSeries(parts, variants.length, keys, kIndex, windows, (2 * W + 1) / pointsPerWindow, stats, series);
  return {
    variants,
    splits,
    keys,
    xs,
    series,
    windows,
    epochKeys,
    stepKeys,
    positive: stats.positive,
    constant: stats.constants(),
    bucketed,
    epochRange: [eMin, eMax],
    decayEpochs,
  };
}

/** Step rows per series and chart that get a hover target (tooltips); fewer keep the page fast. */
export const HOVER_POINTS = 80;

/** Rows for one query (src/report/page/rows.ts: the same function the page runs). */
export function materialize(src: RowSource, q: Query): Row[] {
  return materializeRows(src, q, HOVER_POINTS);
}

/** The page's rows(P, q): materializeRows itself, inlined as its compiled text. */
export const ROWS_JS = `${materializeRows.toString()}
function rows(P, q) { return materializeRows(P, q, ${HOVER_POINTS}); }`;
