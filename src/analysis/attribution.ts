/**
 * Attribution: which recorded quantities changed across a learning-rate decay, and which part of
 * the center loss carried its jump.
 *
 * For one run, `pre` are the records of the trend window before the decay and `post` those of the
 * window the spike is measured over (the same records spike.ts uses). For every numeric key
 * present in both:
 *   before = mean over pre, after = mean over post, change = after - before,
 *   relChange = change / |before|  (±Infinity when before = 0 and change ≠ 0; 0 when both are 0).
 * Means are additive, so when center = cl_within + cl_lag holds record by record, the changes
 * add up too: center change = within change + lag change.
 *
 * Because the loss is usually still falling, "after - before" understates a rise against the
 * trend, so the four terms of the decomposition (metric, cl_within, cl_lag, feat_sq) are also
 * measured against a least-squares LINE fitted over the pre window ("detrended"): expected = mean of
 * the line over the post positions, observed = mean over post, excess = observed - expected. A
 * least-squares line is linear in the data, so these excesses add up exactly as well, which is what
 * makes "x% of the rise is within-class variance" well defined.
 *
 * Which term carried the jump (`carrier`), decided on the detrended numbers and only when the
 * center loss rose above its trend (center excess > 0):
 *   'scale'  when feat_sq rose, relative to its own trend, at least as much as the center loss did
 *            (excess/expected of feat_sq >= that of center): uniformly larger features scale both
 *            parts by the same factor, so the jump is the features growing;
 *   'within' otherwise, when the within-class share of the excess is >= the lag share;
 *   'lag'    otherwise.
 * Absent when the center loss did not rise or the parts were not recorded.
 */
import type { MetricRecord } from '../store/types.js';
import type { Attribution, LogDecomposition, TrendExcess } from './types.js';
import { fitTrend, predictTrend } from './trend.js';
import { meanOr } from './stats.js';

export const WITHIN_KEY = 'cl_within';
export const LAG_KEY = 'cl_lag';
export const FEAT_SQ_KEY = 'feat_sq';
export const CLEAN_KEY = 'center/clean';
export const FLIPPED_KEY = 'center/flipped';
export const FLIPPED_SHARE_KEY = 'flipped_share';

/** Keys of a record that are positions or labels, not measurements. */
const NOT_MEASURED = new Set(['kind', 'epoch', 'split', 'step', 'iter']);

/** The finite numeric value of `key` in a record, or undefined. */
export function num(r: MetricRecord, key: string): number | undefined {
  const v = r[key];
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}

/** Numeric measurement keys present in any of the records, in first-seen order. */
export function measuredKeys(records: readonly MetricRecord[]): string[] {
  const seen = new Set<string>();
  for (const r of records) {
    for (const k of Object.keys(r)) {
      if (!NOT_MEASURED.has(k) && !seen.has(k) && num(r, k) !== undefined) seen.add(k);
    }
  }
  return [...seen];
}

export function relativeChange(before: number, change: number): number {
  if (before !== 0) return change / Math.abs(before);
  return change === 0 ? 0 : Math.sign(change) * Infinity;
}

/** Sort by |relChange| descending; NaN last; ties keep key order. */
function sortByRelChange<T extends { key: string; relChange: number }>(rows: T[]): T[] {
  const mag = (v: number) => (Number.isNaN(v) ? -1 : Math.abs(v));
  return rows.sort((a, b) => mag(b.relChange) - mag(a.relChange) || a.key.localeCompare(b.key));
}

function detrend(
  pre: readonly MetricRecord[],
  post: readonly MetricRecord[],
  xOf: (r: MetricRecord) => number,
  key: string,
): TrendExcess | undefined {
  const px: number[] = [];
  const py: number[] = [];
  for (const r of pre) {
    const v = num(r, key);
    if (v !== undefined) {
      px.push(xOf(r));
      py.push(v);
    }
  }
  const postPts = post.filter((r) => num(r, key) !== undefined);
  if (px.length === 0 || postPts.length === 0) return undefined;
  const line = fitTrend(px, py, 'linear');
  const expected = meanOr(postPts.map((r) => predictTrend(line, xOf(r))));
  const observed = meanOr(postPts.map((r) => num(r, key)!));
  return { expected, observed, excess: observed - expected };
}

/**
 * Attribution for one run across one decay. Undefined when `metric` is missing from either window.
 */
export function attributeWindow(
  pre: readonly MetricRecord[],
  post: readonly MetricRecord[],
  xOf: (r: MetricRecord) => number,
  metric = 'center',
): Attribution | undefined {
  const keys = measuredKeys([...pre, ...post]);
  const others: Attribution['others'] = [];
  for (const key of keys) {
    const b = pre.map((r) => num(r, key)).filter((v): v is number => v !== undefined);
    const a = post.map((r) => num(r, key)).filter((v): v is number => v !== undefined);
    if (b.length === 0 || a.length === 0) continue;
    const before = meanOr(b);
    const after = meanOr(a);
    const change = after - before;
    others.push({ key, before, after, change, relChange: relativeChange(before, change) });
  }
  const byKey = new Map(others.map((o) => [o.key, o]));
  const c = byKey.get(metric);
  if (!c) return undefined;
  const center = detrend(pre, post, xOf, metric)!;
  const detrended: NonNullable<Attribution['detrended']> = { center };
  const w = detrend(pre, post, xOf, WITHIN_KEY);
  const l = detrend(pre, post, xOf, LAG_KEY);
  const f = detrend(pre, post, xOf, FEAT_SQ_KEY);
  if (w) detrended.within = w;
  if (l) detrended.lag = l;
  if (f) detrended.featSq = f;
  const cl = detrend(pre, post, xOf, CLEAN_KEY);
  const fl = detrend(pre, post, xOf, FLIPPED_KEY);
  const share = flippedShare([...pre, ...post], metric);
  if (cl && fl && share !== undefined) {
    detrended.clean = cl;
    detrended.flipped = fl;
    detrended.flippedShare = share;
  }
  const out: Attribution = { center: c.change, others: sortByRelChange(others), detrended };
  if (byKey.has(WITHIN_KEY)) out.within = byKey.get(WITHIN_KEY)!.change;
  if (byKey.has(LAG_KEY)) out.lag = byKey.get(LAG_KEY)!.change;
  if (byKey.has(FEAT_SQ_KEY)) out.featSq = byKey.get(FEAT_SQ_KEY)!.change;
  return finishAttribution(out);
}

/**
 * The share s of flipped samples: the recorded flipped_share, else from center = (1 - s) clean + s flipped
 * record by record (the memorisation instrument's split); mean over the records that give one.
 */
function flippedShare(records: readonly MetricRecord[], metric: string): number | undefined {
  const xs: number[] = [];
  for (const r of records) {
    const s = num(r, FLIPPED_SHARE_KEY);
    if (s !== undefined) {
      xs.push(s);
      continue;
    }
    const c = num(r, metric);
    const cl = num(r, CLEAN_KEY);
    const fl = num(r, FLIPPED_KEY);
    if (c !== undefined && cl !== undefined && fl !== undefined && Math.abs(fl - cl) > 1e-9) xs.push((c - cl) / (fl - cl));
  }
  return xs.length ? meanOr(xs) : undefined;
}

/** The log decomposition of the detrended center loss (types.ts LogDecomposition); undefined when a term is not positive. */
export function logDecomposition(d: NonNullable<Attribution['detrended']>): LogDecomposition | undefined {
  const { center: c, within: w, featSq: f } = d;
  if (!w || !(c.observed > 0 && c.expected > 0 && w.observed > 0 && w.expected > 0)) return undefined;
  const total = Math.log(c.observed / c.expected);
  const lag = Math.log(c.observed / w.observed) - Math.log(c.expected / w.expected);
  if (f && f.observed > 0 && f.expected > 0) {
    const scale = Math.log(f.observed / f.expected);
    const spread = Math.log(w.observed / f.observed) - Math.log(w.expected / f.expected);
    return { total, terms: [{ part: 'scale', log: scale }, { part: 'spread', log: spread }, { part: 'lag', log: lag }] };
  }
  return { total, terms: [{ part: 'within', log: Math.log(w.observed / w.expected) }, { part: 'lag', log: lag }] };
}

/** Fill `shares`, `carrier`, `decomposition` and `samples` from the detrended numbers (see the module comment). */
export function finishAttribution(a: Attribution): Attribution {
  delete a.shares;
  delete a.carrier;
  delete a.decomposition;
  delete a.samples;
  const d = a.detrended;
  if (d) {
    const dec = logDecomposition(d);
    if (dec) a.decomposition = dec;
  }
  if (!d || !(d.center.excess > 0)) return a;
  if (d.clean && d.flipped && d.flippedShare !== undefined) {
    const s = d.flippedShare;
    a.samples = { clean: ((1 - s) * d.clean.excess) / d.center.excess, flipped: (s * d.flipped.excess) / d.center.excess };
  }
  if (d.within && d.lag) {
    a.shares = { within: d.within.excess / d.center.excess, lag: d.lag.excess / d.center.excess };
  }
  const rel = (t: TrendExcess) => (t.expected > 0 ? t.excess / t.expected : NaN);
  if (d.featSq && rel(d.featSq) >= rel(d.center)) a.carrier = 'scale';
  else if (a.shares) a.carrier = a.shares.within >= a.shares.lag ? 'within' : 'lag';
  return a;
}

function averageExcess(list: (TrendExcess | undefined)[]): TrendExcess | undefined {
  const xs = list.filter((t): t is TrendExcess => t !== undefined);
  if (xs.length === 0) return undefined;
  return {
    expected: meanOr(xs.map((t) => t.expected)),
    observed: meanOr(xs.map((t) => t.observed)),
    excess: meanOr(xs.map((t) => t.excess)),
  };
}

/**
 * Average per-seed attributions into one: every number is the mean over the seeds that have it;
 * relChange is recomputed from the averaged before and change; shares/carrier from the averages.
 */
export function combineAttributions(list: readonly Attribution[]): Attribution | undefined {
  if (list.length === 0) return undefined;
  const avg = (f: (a: Attribution) => number | undefined): number | undefined => {
    const xs = list.map(f).filter((v): v is number => v !== undefined);
    return xs.length ? meanOr(xs) : undefined;
  };
  const rows = new Map<string, { before: number[]; after: number[]; change: number[] }>();
  for (const a of list) {
    for (const o of a.others) {
      let row = rows.get(o.key);
      if (!row) rows.set(o.key, (row = { before: [], after: [], change: [] }));
      row.before.push(o.before);
      row.after.push(o.after);
      row.change.push(o.change);
    }
  }
  const others: Attribution['others'] = [...rows].map(([key, r]) => {
    const before = meanOr(r.before);
    const change = meanOr(r.change);
    return { key, before, after: meanOr(r.after), change, relChange: relativeChange(before, change) };
  });
  const out: Attribution = { center: avg((a) => a.center)!, others: sortByRelChange(others) };
  const within = avg((a) => a.within);
  const lag = avg((a) => a.lag);
  const featSq = avg((a) => a.featSq);
  if (within !== undefined) out.within = within;
  if (lag !== undefined) out.lag = lag;
  if (featSq !== undefined) out.featSq = featSq;
  const center = averageExcess(list.map((a) => a.detrended?.center));
  if (center) {
    const d: NonNullable<Attribution['detrended']> = { center };
    const w = averageExcess(list.map((a) => a.detrended?.within));
    const l = averageExcess(list.map((a) => a.detrended?.lag));
    const f = averageExcess(list.map((a) => a.detrended?.featSq));
    if (w) d.within = w;
    if (l) d.lag = l;
    if (f) d.featSq = f;
    const cl = averageExcess(list.map((a) => a.detrended?.clean));
    const fl = averageExcess(list.map((a) => a.detrended?.flipped));
    const share = avg((a) => a.detrended?.flippedShare);
    if (cl && fl && share !== undefined) {
      d.clean = cl;
      d.flipped = fl;
      d.flippedShare = share;
    }
    out.detrended = d;
  }
  return finishAttribution(out);
}
