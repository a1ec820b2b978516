/**
 * Does a metric spike at a learning-rate decay? Per seed: the trend fitted over the window before
 * the decay predicts what the metric should have been after it; the spike is the max observed in
 * the window after the decay against that prediction. Across seeds: mean ratio, sd, t interval and
 * a verdict.
 *
 * Windows (d = decay epoch, P = thresholds.preWindow, Q = thresholds.postWindow):
 *  - 'epoch' resolution (epoch records of a split): the trend is fitted over epochs
 *    [max(d - P, prev + Q), d) where prev is the run's previous decay epoch (so the previous
 *    decay's own spike window never feeds the trend; without a previous decay the bound is d - P);
 *    the max is taken over epochs [d, min(d + Q, next)) where next is the run's next decay epoch.
 *    x = epoch number.
 *  - 'step' resolution (train step records): the trend is fitted over every step record of the same
 *    pre-window epochs, x = global step; the post window is the first `stepFraction` (default 0.2,
 *    i.e. the first 20%) of the decay epoch: records of epoch d with iter < ceil(stepFraction · S),
 *    S = steps per epoch = 1 + the largest `iter` recorded in the run. Single steps are noisy
 *    minibatch values, so the post window is cut into consecutive blocks of `stepBlock` records
 *    (default round(postRecords / 10), at least 1; a short remainder joins the last block) and
 *    "observed" is the largest block mean, "at" the block's mean step (rounded), "expected" the
 *    trend at the block's mean step.
 * Shape (epoch resolution): per seed, `recovery` = how far the metric came back from its peak by
 * the last two epochs before the next decay (or the run's end), as a share of the peak's excess
 * over the trend (both as ratios to the extrapolated trend); across seeds the mean decides 'peak' (a transient: >= 0.5) or 'level' (a level
 * shift: the metric stays up or keeps rising).
 * A seed is skipped (listed in `skipped`) when fewer than 2 pre-window points or no post-window
 * point carry the metric, or the trend predicts a value <= 0 (no ratio can be formed).
 *
 * Verdict across the n measured seeds (s = spikeRatio, r_i = per-seed ratios, CI = two-sided
 * t interval at `confidence` for the mean ratio, mean ± t_{(1+c)/2, n-1} · sd / √n):
 *  - n = 0: 'inconclusive' (ratioMean, sd and CI are NaN).
 *  - n = 1: the CI is the point [r, r] and sd is 0; without a spread the point must clear the
 *    threshold by half of its excess over 1, m = (s - 1) / 2:
 *      'spike' if r >= s + m (1.3 with the default 1.2), 'no-spike' if r < s - m (1.1),
 *      'inconclusive' in between.
 *  - n >= 2:
 *      'spike'     if CI lower > 1 and mean >= s;
 *      'no-spike'  if CI upper < s, or (mean <= 1 and every r_i < s) — on average not above the
 *                  trend and no single seed spiked, however wide the interval;
 *      'inconclusive' otherwise.
 *    The two cannot both hold because s > 1 (enforced) and mean <= CI upper.
 */
import type { MetricRecord, Split } from '../store/types.js';
import type { Attribution, DecayResult, Resolution, RunData, SeedSpike, SpikeShape, SpikeThresholds, Verdict } from './types.js';
import { fitTrend, predictTrend, type Trend, type TrendModeOption } from './trend.js';
import { meanInterval } from './stats.js';
import { attributeWindow, combineAttributions, num } from './attribution.js';

export const DEFAULT_THRESHOLDS: Readonly<SpikeThresholds> = Object.freeze({
  spikeRatio: 1.2,
  confidence: 0.95,
  preWindow: 4,
  // The FER-like rise builds over 1-5 epochs after the decay (FINDINGS.md); 3 epochs catch it on
  // the recorded runs and leave the clean-label runs no-spike.
  postWindow: 3,
});

/** Defaults filled in and checked; throws RangeError on values no verdict can be built from. */
export function resolveThresholds(t: Partial<SpikeThresholds> = {}): SpikeThresholds {
  const out: SpikeThresholds = { ...DEFAULT_THRESHOLDS };
  for (const k of Object.keys(DEFAULT_THRESHOLDS) as (keyof SpikeThresholds)[]) {
    if (t[k] !== undefined) out[k] = t[k]!;
  }
  if (!(out.spikeRatio > 1)) throw new RangeError(`spikeRatio must be > 1, got ${out.spikeRatio}`);
  if (!(out.confidence > 0 && out.confidence < 1)) throw new RangeError(`confidence must be in (0, 1), got ${out.confidence}`);
  if (!(Number.isInteger(out.preWindow) && out.preWindow >= 2)) throw new RangeError(`preWindow must be an integer >= 2, got ${out.preWindow}`);
  if (!(Number.isInteger(out.postWindow) && out.postWindow >= 1)) throw new RangeError(`postWindow must be an integer >= 1, got ${out.postWindow}`);
  return out;
}

export interface Points {
  xs: number[];
  ys: number[];
}

export interface SpikeMeasure {
  expected: number;
  observed: number;
  at: number;
  /** observed / expected (NaN when expected <= 0). */
  ratio: number;
  excess: number;
  trend: Trend;
  preN: number;
  postN: number;
}

export interface MeasureOptions {
  /** Trend family, default 'auto' (log when all pre values > 0, else linear). */
  trend?: TrendModeOption;
  /** Post-window points averaged per block before taking the max (default 1: plain max). */
  block?: number;
}

/**
 * Trend over `pre`, max over `post` (block means when block > 1). Undefined when pre has no point
 * or post is empty.
 */
export function measureSpike(pre: Points, post: Points, opts: MeasureOptions = {}): SpikeMeasure | undefined {
  if (pre.xs.length === 0 || post.xs.length === 0) return undefined;
  const trend = fitTrend(pre.xs, pre.ys, opts.trend ?? 'auto');
  const order = post.xs.map((_, i) => i).sort((a, b) => post.xs[a]! - post.xs[b]!);
  const block = Math.max(1, Math.floor(opts.block ?? 1));
  const blocks: number[][] = [];
  for (let i = 0; i < order.length; i += block) blocks.push(order.slice(i, i + block));
  if (blocks.length > 1 && blocks[blocks.length - 1]!.length < block) {
    const last = blocks.pop()!;
    blocks[blocks.length - 1]!.push(...last);
  }
  let best = -Infinity;
  let bestX = NaN;
  for (const b of blocks) {
    const y = b.reduce((s, i) => s + post.ys[i]!, 0) / b.length;
    const x = b.reduce((s, i) => s + post.xs[i]!, 0) / b.length;
    if (y > best) {
      best = y;
      bestX = x;
    }
  }
  const expected = predictTrend(trend, bestX);
  return {
    expected,
    observed: best,
    at: block === 1 ? bestX : Math.round(bestX),
    ratio: expected > 0 ? best / expected : NaN,
    excess: best - expected,
    trend,
    preN: pre.xs.length,
    postN: post.xs.length,
  };
}

/** measureSpike with the windows cut from one series by x: pre [decayAt - preWindow, decayAt), post [decayAt, decayAt + postWindow). */
export function measureSpikeAt(
  xs: readonly number[],
  ys: readonly number[],
  decayAt: number,
  preWindow: number,
  postWindow: number,
  opts: MeasureOptions = {},
): SpikeMeasure | undefined {
  const pre: Points = { xs: [], ys: [] };
  const post: Points = { xs: [], ys: [] };
  for (let i = 0; i < xs.length; i++) {
    const x = xs[i]!;
    const y = ys[i]!;
    if (!Number.isFinite(x) || !Number.isFinite(y)) continue;
    if (x >= decayAt - preWindow && x < decayAt) {
      pre.xs.push(x);
      pre.ys.push(y);
    } else if (x >= decayAt && x < decayAt + postWindow) {
      post.xs.push(x);
      post.ys.push(y);
    }
  }
  if (pre.xs.length < 2) return undefined;
  return measureSpike(pre, post, opts);
}

export interface VerdictStats {
  n: number;
  mean: number;
  sd: number;
  ci: [number, number];
  verdict: Verdict;
}

/** The across-seed rules of the module comment. */
export function decideVerdict(ratios: readonly number[], th: SpikeThresholds): VerdictStats {
  const s = th.spikeRatio;
  const { n, mean, sd, ci } = meanInterval(ratios, th.confidence);
  let verdict: Verdict = 'inconclusive';
  if (n === 1) {
    const m = (s - 1) / 2;
    if (mean >= s + m) verdict = 'spike';
    else if (mean < s - m) verdict = 'no-spike';
  } else if (n >= 2) {
    if (ci[0] > 1 && mean >= s) verdict = 'spike';
    else if (ci[1] < s || (mean <= 1 && ratios.every((r) => r < s))) verdict = 'no-spike';
  }
  return { n, mean, sd, ci, verdict };
}

export interface AnalyzeOptions {
  thresholds?: Partial<SpikeThresholds>;
  /** Metric key to test, default 'center'. */
  metric?: string;
  /** Splits to analyse (default all three; a split with no records gives no result). */
  splits?: Split[];
  /** Resolutions (default both; 'step' only ever for the train split). */
  resolutions?: Resolution[];
  /** Step resolution: fraction of the decay epoch's steps the max is taken over (default 0.2). */
  stepFraction?: number;
  /** Step resolution: records per block (default round(post records / 10), at least 1). */
  stepBlock?: number;
  /** Trend family (default 'auto'). */
  trend?: TrendModeOption;
  /** Compute attributions (default true). */
  attribution?: boolean;
}

/** The records of one run around one decay, as spike and attribution see them. */
export interface DecayWindow {
  pre: MetricRecord[];
  post: MetricRecord[];
  xOf: (r: MetricRecord) => number;
  /** Points per post block (step resolution). */
  block: number;
}

const runIndex = new WeakMap<RunData, Map<string, MetricRecord[]>>();

/** Records of a run by `${kind}/${split}`, sorted by epoch then step. */
function indexRun(run: RunData): Map<string, MetricRecord[]> {
  let idx = runIndex.get(run);
  if (idx) return idx;
  idx = new Map();
  for (const r of run.records) {
    if (typeof r.epoch !== 'number' || !Number.isFinite(r.epoch)) continue;
    if (r.kind === 'step' && (num(r, 'step') === undefined || num(r, 'iter') === undefined)) continue;
    const k = `${r.kind}/${r.split}`;
    let list = idx.get(k);
    if (!list) idx.set(k, (list = []));
    list.push(r);
  }
  for (const list of idx.values()) list.sort((a, b) => a.epoch - b.epoch || (a.step ?? 0) - (b.step ?? 0));
  runIndex.set(run, idx);
  return idx;
}

function recordsOf(run: RunData, split: Split, resolution: Resolution): MetricRecord[] {
  if (resolution === 'step' && split !== 'train') return [];
  return indexRun(run).get(`${resolution}/${split}`) ?? [];
}

/** Pre/post records of one run around decay epoch `d`, or a reason why there are none. */
export function decayWindow(
  run: RunData,
  split: Split,
  resolution: Resolution,
  d: number,
  th: SpikeThresholds,
  opts: Pick<AnalyzeOptions, 'stepFraction' | 'stepBlock'> = {},
): DecayWindow | string {
  const decays = [...run.manifest.decayEpochs].sort((a, b) => a - b);
  const prev = decays.filter((e) => e < d).pop();
  const next = decays.find((e) => e > d);
  const preStart = Math.max(d - th.preWindow, prev === undefined ? -Infinity : prev + th.postWindow);
  const records = recordsOf(run, split, resolution);
  const pre = records.filter((r) => r.epoch >= preStart && r.epoch < d);
  if (resolution === 'epoch') {
    const postEnd = Math.min(d + th.postWindow, next ?? Infinity);
    const post = records.filter((r) => r.epoch >= d && r.epoch < postEnd);
    return { pre, post, xOf: (r) => r.epoch, block: 1 };
  }
  const fraction = opts.stepFraction ?? 0.2;
  if (!(fraction > 0 && fraction <= 1)) throw new RangeError(`stepFraction must be in (0, 1], got ${fraction}`);
  let maxIter = -1;
  for (const r of records) maxIter = Math.max(maxIter, r.iter!);
  if (maxIter < 0) return 'no step records';
  const postSteps = Math.max(1, Math.ceil(fraction * (maxIter + 1)));
  const post = records.filter((r) => r.epoch === d && r.iter! < postSteps);
  const block = opts.stepBlock ?? Math.max(1, Math.round(post.length / 10));
  return { pre, post, xOf: (r) => r.step!, block };
}

export interface RunDecayMeasure {
  spike: SeedSpike;
  measure: SpikeMeasure;
  attribution?: Attribution;
}

/** One seed's measurement of one decay, or the reason it has none. */
export function measureRunDecay(
  run: RunData,
  split: Split,
  resolution: Resolution,
  d: number,
  th: SpikeThresholds,
  opts: AnalyzeOptions = {},
): RunDecayMeasure | string {
  const metric = opts.metric ?? 'center';
  const win = decayWindow(run, split, resolution, d, th, opts);
  if (typeof win === 'string') return win;
  const pts = (rs: MetricRecord[]): Points => {
    const p: Points = { xs: [], ys: [] };
    for (const r of rs) {
      const v = num(r, metric);
      if (v !== undefined) {
        p.xs.push(win.xOf(r));
        p.ys.push(v);
      }
    }
    return p;
  };
  const pre = pts(win.pre);
  const post = pts(win.post);
  if (pre.xs.length < 2) return `${pre.xs.length} pre-decay point(s) with '${metric}' (need 2)`;
  if (post.xs.length === 0) return `no post-decay point with '${metric}'`;
  const m = measureSpike(pre, post, { trend: opts.trend ?? 'auto', block: win.block })!;
  if (!(m.expected > 0)) return `trend predicts ${m.expected} <= 0 after the decay`;
  const spike: SeedSpike = {
    seed: run.manifest.seed,
    run: run.manifest.name || run.dir,
    expected: m.expected,
    observed: m.observed,
    at: m.at,
    ratio: m.ratio,
    excess: m.excess,
  };
  if (resolution === 'epoch' && m.excess > 0) {
    const r = recoveryAfter(recordsOf(run, split, 'epoch'), metric, m.at, d, run.manifest.decayEpochs, m.ratio, m.trend);
    if (r !== undefined) spike.recovery = r;
  }
  const out: RunDecayMeasure = { spike, measure: m };
  if (opts.attribution !== false) {
    const a = attributeWindow(win.pre, win.post, win.xOf, metric);
    if (a) out.attribution = a;
  }
  return out;
}

/**
 * How far the metric came back after its peak, in units of the trend: (ratio at the peak - late
 * ratio) / (ratio at the peak - 1), the late ratio = the mean over the last two epochs after the
 * peak and before the next decay (or the run's end) of value / trend. Undefined without such an
 * epoch or without an excess at the peak.
 */
export function recoveryAfter(records: readonly MetricRecord[], metric: string, peakAt: number, d: number, decays: readonly number[], peakRatio: number, trend: Trend): number | undefined {
  const next = [...decays].sort((a, b) => a - b).find((e) => e > d) ?? Infinity;
  const late: number[] = [];
  for (const r of records) {
    if (r.epoch <= peakAt || r.epoch >= next) continue;
    const v = num(r, metric);
    const e = predictTrend(trend, r.epoch);
    if (v !== undefined && e > 0) late.push(v / e);
  }
  if (late.length === 0 || !(peakRatio > 1)) return undefined;
  const tail = late.slice(-2);
  return (peakRatio - tail.reduce((a, b) => a + b, 0) / tail.length) / (peakRatio - 1);
}

/** 'peak' when the mean recovery is at least 0.5, 'level' otherwise (undefined without recoveries). */
export function spikeShape(recoveries: readonly number[]): { recoveryMean: number; shape: SpikeShape } | undefined {
  if (recoveries.length === 0) return undefined;
  const recoveryMean = recoveries.reduce((a, b) => a + b, 0) / recoveries.length;
  return { recoveryMean, shape: recoveryMean >= 0.5 ? 'peak' : 'level' };
}

const SPLITS: Split[] = ['train', 'valid', 'test'];
const RESOLUTIONS: Resolution[] = ['epoch', 'step'];

/**
 * Every (variant, decay epoch, split, resolution) the runs allow, in that order of nesting
 * (variants in order of first appearance, decay epochs ascending). A result is produced when at
 * least one run of the variant lists the decay and has records of that split/resolution carrying
 * the metric; runs that still give no measurement are listed in `skipped`.
 */
export function analyzeDecay(runs: readonly RunData[], opts: AnalyzeOptions = {}): DecayResult[] {
  const th = resolveThresholds(opts.thresholds);
  const metric = opts.metric ?? 'center';
  const splits = opts.splits ?? SPLITS;
  const resolutions = opts.resolutions ?? RESOLUTIONS;
  const byVariant = new Map<string, RunData[]>();
  for (const run of runs) {
    const v = run.manifest.variant;
    let list = byVariant.get(v);
    if (!list) byVariant.set(v, (list = []));
    list.push(run);
  }
  const results: DecayResult[] = [];
  for (const [variant, vruns] of byVariant) {
    const decays = [...new Set(vruns.flatMap((r) => r.manifest.decayEpochs))].sort((a, b) => a - b);
    for (const d of decays) {
      for (const split of SPLITS.filter((s) => splits.includes(s))) {
        for (const resolution of RESOLUTIONS.filter((r) => resolutions.includes(r))) {
          const relevant = vruns.filter(
            (r) => r.manifest.decayEpochs.includes(d) && recordsOf(r, split, resolution).some((x) => num(x, metric) !== undefined),
          );
          if (relevant.length === 0) continue;
          const seeds: SeedSpike[] = [];
          const attributions: Attribution[] = [];
          const skipped: NonNullable<DecayResult['skipped']> = [];
          for (const run of relevant) {
            const m = measureRunDecay(run, split, resolution, d, th, opts);
            if (typeof m === 'string') {
              skipped.push({ run: run.manifest.name || run.dir, seed: run.manifest.seed, reason: m });
              continue;
            }
            seeds.push(m.spike);
            if (m.attribution) attributions.push(m.attribution);
          }
          const v = decideVerdict(
            seeds.map((s) => s.ratio),
            th,
          );
          const result: DecayResult = {
            variant,
            split,
            resolution,
            metric,
            decayEpoch: d,
            seeds,
            n: v.n,
            ratioMean: v.mean,
            ratioSd: v.sd,
            ci: v.ci,
            verdict: v.verdict,
          };
          const sh = spikeShape(seeds.map((x) => x.recovery).filter((x): x is number => x !== undefined));
          if (sh) Object.assign(result, sh);
          const attribution = combineAttributions(attributions);
          if (attribution) result.attribution = attribution;
          if (skipped.length) result.skipped = skipped;
          results.push(result);
        }
      }
    }
  }
  return results;
}
