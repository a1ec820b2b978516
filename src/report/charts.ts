/**
 * Which charts the report draws, and their Vega-Lite specs.
 *
 * A chart's spec carries no data and no title: it reads the named datasets E (epoch aggregates),
 * S (step aggregates) and R (rules at decay epochs), filled in when it is rendered. Charts that look
 * the same (a panel in every decay window) therefore share one compiled Vega spec, a "template".
 */
import { compile, type TopLevelSpec } from 'vega-lite';
import type { DecayWindow, PreparedData, Query } from './data.js';
import type { Split } from '../store/types.js';

/** Placeholders in specs compiled once for several charts start with this (never in a real label). */
const MARK = '\u0000';

export const PALETTE = ['#4c78a8', '#f58518', '#54a24b', '#e45756', '#72b7b2', '#b279a2', '#eeca3b', '#9d755d', '#ff9da6', '#bab0ac'];

export interface PanelDef {
  id: string;
  title: string;
  yTitle: string;
  keys?: string[];
  prefix?: string;
  log?: boolean;
  /** Draw in decay windows (default true). */
  window?: boolean;
  note?: string;
}

export const PANELS: PanelDef[] = [
  { id: 'center', title: 'Center loss', yTitle: 'center loss', keys: ['center'] },
  {
    id: 'cl',
    title: 'Center loss split: within-class variance (cl_within) vs center lag (cl_lag)',
    yTitle: 'part of center loss',
    keys: ['cl_within', 'cl_lag'],
    note: 'center = cl_within + cl_lag.',
  },
  { id: 'feat', title: 'Feature norm (feat_norm_mean)', yTitle: 'mean ‖x‖', keys: ['feat_norm_mean'] },
  { id: 'featsq', title: 'Feature scale (feat_sq)', yTitle: '½ mean ‖x‖²', keys: ['feat_sq'] },
  { id: 'dead', title: 'Dead fraction per layer (dead_frac/*)', yTitle: 'dead fraction', prefix: 'dead_frac/' },
  { id: 'drift', title: 'Center drift (center_drift)', yTitle: 'center drift', keys: ['center_drift'] },
  { id: 'lr', title: 'Learning rates: model lr and center_lr', yTitle: 'learning rate', keys: ['lr', 'center_lr'], log: true },
  { id: 'efflr', title: 'Effective learning rate per layer (eff_lr/*)', yTitle: 'effective lr', prefix: 'eff_lr/', log: true },
  { id: 'ce', title: 'Cross-entropy', yTitle: 'cross-entropy', keys: ['ce'] },
  { id: 'acc', title: 'Accuracy', yTitle: 'accuracy', keys: ['acc'] },
  { id: 'total', title: 'Total loss (ce + λ·center)', yTitle: 'total loss', keys: ['total'], window: false },
];

/** Most series (keys) one group chart shows; larger groups are split over several charts. */
const MAX_GROUP = 4;
/** Above this many epochs in a chart, epoch aggregates are drawn as line + band instead of points + error bars. */
const MAX_EPOCH_POINTS = 40;

export interface Rule {
  x: number;
  label: string;
}

/** Parameters that fully determine a chart's Vega-Lite spec. */
export interface SpecParams {
  step: boolean;
  /** Epoch aggregates as points with min-max error bars, as a line with a min-max band (many epochs), or not at all. */
  epoch: false | 'points' | 'band';
  rules: boolean;
  lab: 'split' | 'key';
  series: string[];
  variants: string[];
  log: boolean;
  yTitle: string;
  interactive: boolean;
  width: number;
  height: number;
  /** The fitted pre-decay trend (dataset T) and the measured peak (dataset P) drawn over the series. */
  marks?: boolean;
}

export interface ChartPlan {
  section: 'window' | 'overview';
  window?: DecayWindow;
  panel: string;
  title: string;
  note?: string;
  queries: Query[];
  rules: Rule[];
  spec: SpecParams;
  /** Rows of the trend (T) and peak (P) marks, where spec.marks. */
  marks?: { T: object[]; P: object[] };
}

export interface PlanResult {
  charts: ChartPlan[];
  /** Display label per key index (suffix after the group prefix, or the key itself). */
  klab: string[];
  /** Keys that take a single value everywhere and are not drawn: key -> value. */
  constantKeys: [string, number][];
}

const SPLIT_SERIES: Record<Split | 'steps', string> = { steps: 'train (steps)', train: 'train', valid: 'valid', test: 'test' };

export function planCharts(data: PreparedData, opts: { interactive: boolean; width?: number; height?: number }): PlanResult {
  const width = opts.width ?? 540;
  const height = opts.height ?? 180;
  const kIndex = new Map(data.keys.map((k, i) => [k, i]));
  const klab = data.keys.map((k) => k);
  const has = (k: string): boolean => data.epochKeys.has(k) || data.stepKeys.has(k);
  const covered = new Set<string>();

  interface Resolved {
    def: PanelDef;
    keys: string[];
    mode: 'split' | 'key';
    part?: string;
  }
  const resolved: Resolved[] = [];
  for (const def of PANELS) {
    let keys: string[];
    if (def.prefix) {
      const prefix = def.prefix;
      keys = data.keys.filter((k) => k.startsWith(prefix) && has(k)).sort();
      for (const k of keys) klab[kIndex.get(k)!] = k.slice(prefix.length) || k;
    } else keys = (def.keys ?? []).filter(has);
    keys.forEach((k) => covered.add(k));
    if (keys.length === 0) continue;
    if (!def.prefix && (def.keys ?? []).length === 1) {
      resolved.push({ def, keys, mode: 'split' });
      continue;
    }
    const chunks = Math.ceil(keys.length / MAX_GROUP);
    for (let c = 0; c < chunks; c++) {
      const part = keys.slice(c * MAX_GROUP, (c + 1) * MAX_GROUP);
      resolved.push({ def, keys: part, mode: 'key', part: chunks > 1 ? `${klab[kIndex.get(part[0]!)!]}–${klab[kIndex.get(part[part.length - 1]!)!]}` : undefined });
    }
  }
  // Keys no panel covers: one overview chart each unless constant.
  const constantKeys: [string, number][] = [];
  for (const k of data.keys) {
    if (covered.has(k) || !has(k)) continue;
    const c = data.constant.get(k);
    if (c !== undefined) {
      constantKeys.push([k, c]);
      continue;
    }
    resolved.push({ def: { id: `other:${k}`, title: k, yTitle: k, keys: [k], window: false }, keys: [k], mode: 'split' });
  }

  const epochCount = (queries: Query[]): number => {
    const q = queries.find((x) => x.kind === 'epoch');
    if (!q) return 0;
    const a = Math.max(q.from ?? -Infinity, data.epochRange[0]);
    const b = Math.min(q.to ?? Infinity, data.epochRange[1]);
    return b - a + 1;
  };
  const charts: ChartPlan[] = [];
  const build = (r: Resolved, section: 'window' | 'overview', w?: DecayWindow): ChartPlan | undefined => {
    const ks = r.keys.map((k) => kIndex.get(k)!);
    const queries: Query[] = [];
    let series: string[];
    let epoch = false;
    let step = false;
    const a = w ? { from: w.e0, to: w.e1 } : {};
    if (r.mode === 'split') {
      const k = r.keys[0]!;
      const splits = [...(data.epochKeys.get(k) ?? [])];
      step = data.stepKeys.has(k) && w !== undefined;
      epoch = splits.length > 0;
      const si = data.splits.filter((s) => splits.includes(s)).map((s) => data.splits.indexOf(s));
      if (epoch) queries.push({ kind: 'epoch', keys: ks, splits: si, label: 'split', ...a });
      if (step) queries.push({ kind: 'step', keys: ks, label: 'split', from: w!.x0, to: w!.x1 });
      series = [...(step ? [SPLIT_SERIES.steps] : []), ...data.splits.filter((s) => splits.includes(s)).map((s) => SPLIT_SERIES[s])];
    } else {
      // Group charts show one split: train where there is any, else the first split that has the keys.
      const splitOf = data.splits.find((s) => r.keys.some((k) => data.epochKeys.get(k)?.has(s)));
      const chosen: Split | undefined = r.keys.some((k) => data.epochKeys.get(k)?.has('train')) ? 'train' : splitOf;
      epoch = chosen !== undefined;
      step = w !== undefined && r.keys.some((k) => data.stepKeys.has(k)) && (chosen === 'train' || chosen === undefined);
      if (epoch) queries.push({ kind: 'epoch', keys: ks, splits: [data.splits.indexOf(chosen!)], label: 'key', ...a });
      if (step) queries.push({ kind: 'step', keys: ks, label: 'key', from: w!.x0, to: w!.x1 });
      series = r.keys.map((k) => klab[kIndex.get(k)!]!);
    }
    if (!epoch && !step) return undefined;
    const rules: Rule[] = data.decayEpochs
      .filter((d) => !w || (d >= w.x0 && d <= w.x1))
      .map((d) => ({ x: d, label: w && d === w.decay ? `LR decay → epoch ${d}` : `decay ${d}` }));
    const log = (r.def.log ?? false) && r.keys.every((k) => data.positive.get(k) !== false);
    const splitNote =
      r.mode === 'key'
        ? (() => {
            const q = queries.find((x) => x.kind === 'epoch');
            const s = q?.splits?.length ? data.splits[q.splits[0]!] : 'train';
            return `Split: ${s}${step ? ' (lines: per-step, points: epoch means)' : ''}.`;
          })()
        : undefined;
    return {
      section,
      window: w,
      panel: r.def.id,
      title: r.def.title + (r.part ? ` (${r.part})` : ''),
      note: [r.def.note, splitNote].filter((s) => s).join(' ') || undefined,
      queries,
      rules,
      spec: {
        step,
        epoch: !epoch ? false : epochCount(queries) > MAX_EPOCH_POINTS ? 'band' : 'points',
        rules: rules.length > 0,
        lab: r.mode,
        series,
        variants: data.variants,
        log,
        yTitle: r.def.yTitle,
        interactive: opts.interactive,
        width,
        height,
      },
    };
  };

  for (const w of data.windows) {
    for (const r of resolved) {
      if (r.def.window === false) continue;
      const c = build(r, 'window', w);
      if (c) charts.push(c);
    }
  }
  for (const r of resolved) {
    const c = build(r, 'overview');
    if (c) charts.push(c);
  }
  return { charts, klab, constantKeys };
}

const DASHES: Record<string, number[]> = {
  'train (steps)': [1, 0],
  train: [1, 0],
  valid: [6, 3],
  test: [2, 2],
};
const SHAPES: Record<string, string> = { 'train (steps)': 'circle', train: 'circle', valid: 'square', test: 'triangle-up' };
const GROUP_DASHES = [[1, 0], [6, 3], [2, 2], [8, 3, 2, 3]];
const GROUP_SHAPES = ['circle', 'square', 'triangle-up', 'diamond'];

/**
 * The Vega-Lite spec for a chart (no data values, no title). With `placeholders`, the y title and the
 * series names are written as placeholders (styles still follow the real names), so that charts
 * differing only in those share one compilation.
 */
export function vegaLiteSpec(p: SpecParams, placeholders = false): TopLevelSpec {
  const yTitle = placeholders ? `${MARK}Y` : p.yTitle;
  const seriesDomain = placeholders ? p.series.map((_, i) => `${MARK}S${i}`) : p.series;
  const x = {
    field: 'x',
    type: 'quantitative',
    title: 'epoch',
    scale: { zero: false, nice: false },
    axis: { tickMinStep: 1 },
  };
  const y = {
    field: 'mean',
    type: 'quantitative',
    title: yTitle,
    scale: p.log ? { type: 'log' } : { zero: false },
  };
  const color = {
    field: 'variant',
    type: 'nominal',
    title: 'variant',
    scale: { domain: p.variants, range: p.variants.map((_, i) => PALETTE[i % PALETTE.length]) },
  };
  const dashRange = p.series.map((s, i) => (p.lab === 'split' ? (DASHES[s] ?? [1, 0]) : GROUP_DASHES[i % GROUP_DASHES.length]!));
  const shapeRange = p.series.map((s, i) => (p.lab === 'split' ? (SHAPES[s] ?? 'circle') : GROUP_SHAPES[i % GROUP_SHAPES.length]!));
  const seriesTitle = p.lab === 'split' ? 'split' : 'series';
  const dash = { field: 'series', type: 'nominal', title: seriesTitle, scale: { domain: seriesDomain, range: dashRange } };
  const shape = { field: 'series', type: 'nominal', title: seriesTitle, scale: { domain: seriesDomain, range: shapeRange } };
  // Tooltip contents are built with the rows (field tt): one field read per item instead of a formatting
  // expression, which the page's CSP-safe expression interpreter would evaluate for every point.
  const tooltip = { field: 'tt', type: 'nominal' };
  const layers: Record<string, unknown>[] = [];
  const zoom = { name: 'zoom', select: { type: 'interval', encodings: ['x', 'y'] }, bind: 'scales' };
  /** Line for the mean and a band from min to max; tooltips from the nearest point when interactive. */
  const banded = (data: string, width: number, hover: string): void => {
    layers.push({
      data: { name: data },
      mark: { type: 'area', opacity: 0.16 },
      encoding: { x, y: { ...y, field: 'lo' }, y2: { field: 'hi' }, color, detail: { field: 'series', type: 'nominal' } },
    });
    layers.push({ data: { name: data }, mark: { type: 'line', strokeWidth: width }, encoding: { x, y, color, strokeDash: dash } });
    if (p.interactive) {
      layers.push({
        data: { name: data },
        transform: [{ filter: 'datum.h' }],
        params: [{ name: hover, select: { type: 'point', on: 'pointerover', clear: 'pointerout' } }],
        mark: { type: 'point', filled: true, size: 110 },
        encoding: {
          x,
          y,
          color,
          shape,
          opacity: { condition: { param: hover, empty: false, value: 1 }, value: 0 },
          tooltip,
        },
      });
    }
  };
  if (p.step) banded('S', 1.1, 'hover_s');
  if (p.epoch === 'band') banded('E', 1.5, 'hover_e');
  else if (p.epoch === 'points') {
    layers.push({
      data: { name: 'E' },
      mark: { type: 'rule', strokeWidth: 1.2, opacity: 0.55 },
      encoding: { x, y: { ...y, field: 'lo' }, y2: { field: 'hi' }, color },
    });
    layers.push({
      data: { name: 'E' },
      mark: { type: 'line', strokeWidth: p.step ? 1.3 : 1.6, point: { filled: true, size: 26 } },
      encoding: { x, y, color, strokeDash: dash, shape, tooltip },
    });
  }
  if (p.marks) {
    // The fitted trend, dashed, and the measured peak, a hollow diamond, per variant.
    layers.push({ data: { name: 'T' }, mark: { type: 'line', strokeDash: [4, 3], strokeWidth: 1.4, opacity: 0.9 }, encoding: { x, y, color, detail: { field: 'variant', type: 'nominal' } } });
    layers.push({
      data: { name: 'P' },
      mark: { type: 'point', shape: 'diamond', filled: false, size: 150, strokeWidth: 2, opacity: 1 },
      encoding: { x, y, color, ...(p.interactive ? { tooltip } : {}) },
    });
  }
  // Scroll/drag zoom lives on the first line layer.
  if (p.interactive) {
    const first = layers.find((l) => (l.mark as { type: string }).type === 'line') as { params?: unknown[] } | undefined;
    if (first) first.params = [...(first.params ?? []), zoom];
  }
  if (p.rules) {
    const rx = { field: 'x', type: 'quantitative' };
    layers.push({ data: { name: 'R' }, mark: { type: 'rule', color: '#444', strokeDash: [5, 3], strokeWidth: 1 }, encoding: { x: rx } });
    layers.push({
      data: { name: 'R' },
      // Above the plot; unclipped (zoomable charts clip their marks to the plot).
      mark: { type: 'text', color: '#333', align: 'left', baseline: 'bottom', dx: 3, dy: -2, fontSize: 10, clip: false },
      encoding: { x: rx, y: { value: 0 }, text: { field: 'label', type: 'nominal' } },
    });
  }
  return {
    width: p.width,
    height: p.height,
    padding: { top: p.rules ? 16 : 5, left: 5, right: 5, bottom: 5 },
    layer: layers,
    config: {
      aria: false,
      font: 'system-ui, -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif',
      axis: { labelFontSize: 11, titleFontSize: 11, gridColor: '#ececec' },
      legend: { orient: 'bottom', direction: 'horizontal', labelFontSize: 11, titleFontSize: 11, symbolStrokeWidth: 2, symbolOpacity: 1, columns: 6, labelLimit: 320 },
      view: { stroke: '#ccc' },
      line: { interpolate: 'linear' },
    },
  } as unknown as TopLevelSpec;
}

function substitute(value: unknown, map: Map<string, string>): unknown {
  if (typeof value === 'string') {
    const r = map.get(value);
    if (r !== undefined) return r;
    if (value.includes(MARK)) throw new Error(`report: placeholder left inside a compiled spec string: ${value.slice(0, 80)}`);
    return value;
  }
  if (Array.isArray(value)) return value.map((v) => substitute(v, map));
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = substitute(v, map);
    return out;
  }
  return value;
}

/**
 * Compiles chart specs to Vega. Charts that differ only in y title and series names share one
 * compilation; identical results share one template.
 */
export class TemplateCache {
  /** Compilations shared by every cache in the process (a CLI building both modes, tests). */
  private static readonly shared = new Map<string, object>();
  readonly templates: object[] = [];
  private readonly compiled = TemplateCache.shared;
  private readonly index = new Map<string, number>();
  compilations = 0;

  get(p: SpecParams): number {
    // Placeholders start with a NUL character; a variant name with one in it (never seen) compiles directly.
    const usePlaceholders = !p.variants.some((v) => v.includes(MARK));
    const vl = vegaLiteSpec(p, usePlaceholders);
    const key = JSON.stringify(vl);
    let compiled = this.compiled.get(key);
    if (!compiled) {
      const spec = compile(vl).spec as unknown as { $schema?: string };
      delete spec.$schema; // a URL, and the page needs no schema
      compiled = spec;
      if (this.compiled.size >= 500) this.compiled.clear();
      this.compiled.set(key, compiled);
      this.compilations++;
    }
    const map = new Map<string, string>([[`${MARK}Y`, p.yTitle], ...p.series.map((s, i): [string, string] => [`${MARK}S${i}`, s])]);
    const tpl = usePlaceholders ? (substitute(compiled, map) as object) : compiled;
    const id = JSON.stringify(tpl);
    let i = this.index.get(id);
    if (i === undefined) {
      i = this.templates.length;
      this.templates.push(tpl);
      this.index.set(id, i);
    }
    return i;
  }
}
