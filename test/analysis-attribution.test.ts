import { describe, expect, it } from 'vitest';
import { analyzeDecay } from '../src/analysis/spike.js';
import { attributeWindow, combineAttributions } from '../src/analysis/attribution.js';
import type { DecayResult, RunData } from '../src/analysis/types.js';
import { epochSeries, makeRun } from './fixtures/analysis/synth.js';

const d = 20;
const P = 4; // default preWindow
const Q = 2; // default postWindow
const pre = [16, 17, 18, 19];
const post = [20, 21];
/** A linearly falling base, so a line fitted over the pre window predicts it exactly. */
const b = (e: number) => 2 - 0.03 * e;
const mean = (xs: number[]) => xs.reduce((a, c) => a + c, 0) / xs.length;

interface Plant {
  J: number; // jump of the center loss at d (half of it at d + 1)
  withinShare: number; // part of the jump planted in cl_within
  featRise?: number; // relative rise of feat_sq in the post window
}

/** Jump profile: J at d, J/2 at d + 1, 0 elsewhere. */
const jump = (J: number, e: number) => (e === d ? J : e === d + 1 ? J / 2 : 0);

function values(p: Plant, e: number): Record<string, number> {
  const inPost = e >= d && e < d + Q;
  const within = 0.6 * b(e) + p.withinShare * jump(p.J, e);
  const lag = 0.4 * b(e) + (1 - p.withinShare) * jump(p.J, e);
  return {
    center: within + lag,
    cl_within: within,
    cl_lag: lag,
    feat_sq: 5 * (1 + (inPost ? (p.featRise ?? 0) : 0)),
    'dead_frac/conv1': inPost ? 0.02 : 0,
    'eff_lr/conv1': e < d ? 0.1 : 0.02,
    lr: e < d ? 0.1 : 0.01,
    center_drift: 0.01,
  };
}

function plantedRun(seed: number, p: Plant, variant = 'relu'): RunData {
  return makeRun(variant, seed, [d], epochSeries(30, 'train', (e) => values(p, e)));
}

function attributionOf(runs: RunData[]): NonNullable<DecayResult['attribution']> {
  const res = analyzeDecay(runs, { resolutions: ['epoch'], thresholds: { postWindow: 2 } }); // the planted post window
  expect(res).toHaveLength(1);
  return res[0]!.attribution!;
}

describe('attribution', () => {
  it('before/after/change per key follow from the planted windows, and within + lag = center', () => {
    const p: Plant = { J: 0.3, withinShare: 0.7, featRise: 0.05 };
    const a = attributionOf([plantedRun(0, p)]);
    const change = (key: string) => mean(post.map((e) => values(p, e)[key]!)) - mean(pre.map((e) => values(p, e)[key]!));
    expect(a.center).toBeCloseTo(change('center'), 12);
    expect(a.within).toBeCloseTo(change('cl_within'), 12);
    expect(a.lag).toBeCloseTo(change('cl_lag'), 12);
    expect(a.featSq).toBeCloseTo(change('feat_sq'), 12);
    expect(a.within! + a.lag!).toBeCloseTo(a.center, 12);

    // others: every key, sorted by |relChange| descending, relChange = change / |before|
    const keys = Object.keys(values(p, 0));
    const planted = keys.map((key) => {
      const before = mean(pre.map((e) => values(p, e)[key]!));
      const after = mean(post.map((e) => values(p, e)[key]!));
      return { key, before, after, rel: before === 0 ? Infinity : (after - before) / Math.abs(before) };
    });
    planted.sort((x, y) => Math.abs(y.rel) - Math.abs(x.rel));
    expect(a.others.map((o) => o.key)).toEqual(planted.map((x) => x.key));
    const dead = a.others.find((o) => o.key === 'dead_frac/conv1')!;
    expect([dead.before, dead.after, dead.relChange]).toEqual([0, 0.02, Infinity]);
    const eff = a.others.find((o) => o.key === 'eff_lr/conv1')!;
    expect(eff.relChange).toBeCloseTo(-0.8, 12);
    expect(a.others.find((o) => o.key === 'center_drift')!.relChange).toBe(0);
  });

  it('detrended: the rise over the line splits into the planted within/lag shares', () => {
    const p: Plant = { J: 0.3, withinShare: 0.7, featRise: 0.05 };
    const a = attributionOf([plantedRun(0, p)]);
    const meanJump = mean(post.map((e) => jump(p.J, e)));
    expect(a.detrended!.center.excess).toBeCloseTo(meanJump, 10);
    expect(a.detrended!.center.expected).toBeCloseTo(mean(post.map(b)), 10);
    expect(a.detrended!.within!.excess + a.detrended!.lag!.excess).toBeCloseTo(a.detrended!.center.excess, 12);
    expect(a.shares!.within).toBeCloseTo(0.7, 10);
    expect(a.shares!.lag).toBeCloseTo(0.3, 10);
    // feat_sq rose 5%, the center loss meanJump / mean(b) ≈ 16%: classes spread, not scale
    expect(meanJump / mean(post.map(b))).toBeGreaterThan(0.05);
    expect(a.carrier).toBe('within');
  });

  it('carrier: lag when the lag carried most, scale when features grew at least as much', () => {
    expect(attributionOf([plantedRun(0, { J: 0.3, withinShare: 0.2 })]).carrier).toBe('lag');
    const relCenter = mean(post.map((e) => jump(0.3, e))) / mean(post.map(b));
    const scaled = attributionOf([plantedRun(0, { J: 0.3, withinShare: 0.7, featRise: relCenter * 1.2 })]);
    expect(scaled.carrier).toBe('scale');
    expect(scaled.shares!.within).toBeCloseTo(0.7, 10); // shares are still reported
    const below = attributionOf([plantedRun(0, { J: 0.3, withinShare: 0.7, featRise: relCenter * 0.8 })]);
    expect(below.carrier).toBe('within');
  });

  it('no rise over the trend: no shares, no carrier', () => {
    const a = attributionOf([plantedRun(0, { J: 0, withinShare: 0.5 })]);
    expect(a.detrended!.center.excess).toBeCloseTo(0, 10);
    expect(a.shares).toBeUndefined();
    expect(a.carrier).toBeUndefined();
    const fall = attributionOf([plantedRun(0, { J: -0.2, withinShare: 0.5 })]);
    expect(fall.detrended!.center.excess).toBeLessThan(0);
    expect(fall.shares).toBeUndefined();
  });

  it('across seeds: numbers are seed means and shares come from the mean excesses', () => {
    const pa: Plant = { J: 0.3, withinShare: 0.7 };
    const pb: Plant = { J: 0.1, withinShare: 0.1 };
    const a = attributionOf([plantedRun(0, pa), plantedRun(1, pb)]);
    const mj = (p: Plant) => mean(post.map((e) => jump(p.J, e)));
    const w = (mj(pa) * pa.withinShare + mj(pb) * pb.withinShare) / 2;
    const c = (mj(pa) + mj(pb)) / 2;
    expect(a.shares!.within).toBeCloseTo(w / c, 10);
    const single = (p: Plant, seed: number) => attributionOf([plantedRun(seed, p)]).center;
    expect(a.center).toBeCloseTo((single(pa, 0) + single(pb, 1)) / 2, 12);
  });

  it('attributeWindow needs the metric in both windows; combine of nothing is undefined', () => {
    const recs = epochSeries(4, 'train', (e) => ({ cl_within: e }));
    expect(attributeWindow(recs.slice(0, 2), recs.slice(2), (r) => r.epoch)).toBeUndefined();
    expect(combineAttributions([])).toBeUndefined();
    expect(P).toBe(pre.length);
  });
});
