import { describe, expect, it } from 'vitest';
import { fitTrend, predictTrend, extrapolate, fitPreWindow } from '../src/analysis/trend.js';
import { tCdf, tQuantile, meanInterval } from '../src/analysis/stats.js';
import { T975 } from './fixtures/analysis/synth.js';

describe('Student t', () => {
  it('matches printed table values of t_{0.975, df}', () => {
    for (const [df, t] of Object.entries(T975)) {
      expect(tQuantile(0.975, Number(df))).toBeCloseTo(t, 3);
    }
    // t_{0.95, 4} = 2.1318 (one-sided 95%, i.e. two-sided 90%)
    expect(tQuantile(0.95, 4)).toBeCloseTo(2.1318, 3);
    // very large df -> normal 1.95996
    expect(tQuantile(0.975, 1e6)).toBeCloseTo(1.95996, 3);
  });

  it('CDF is symmetric, 0.5 at 0, and inverts the quantile', () => {
    expect(tCdf(0, 3)).toBeCloseTo(0.5, 12);
    expect(tCdf(-1.7, 5) + tCdf(1.7, 5)).toBeCloseTo(1, 12);
    for (const p of [0.6, 0.9, 0.99]) expect(tCdf(tQuantile(p, 7), 7)).toBeCloseTo(p, 9);
    expect(tQuantile(0.025, 2)).toBeCloseTo(-T975[2]!, 3);
  });

  it('meanInterval uses mean ± t·sd/√n and degenerates for one value', () => {
    const xs = [1.1, 1.3, 1.5];
    const m = 1.3;
    const sd = 0.2; // sqrt(((−0.2)² + 0 + 0.2²)/2)
    const iv = meanInterval(xs, 0.95);
    expect(iv.mean).toBeCloseTo(m, 12);
    expect(iv.sd).toBeCloseTo(sd, 12);
    expect(iv.ci[0]).toBeCloseTo(m - T975[2]! * sd / Math.sqrt(3), 3);
    expect(iv.ci[1]).toBeCloseTo(m + T975[2]! * sd / Math.sqrt(3), 3);
    expect(meanInterval([1.4], 0.95)).toEqual({ n: 1, mean: 1.4, sd: 0, ci: [1.4, 1.4] });
  });
});

describe('trend', () => {
  it('log trend recovers an exponential decay and extrapolates it', () => {
    const A = 2.5;
    const k = 0.07;
    const xs = [16, 17, 18, 19];
    const ys = xs.map((x) => A * Math.exp(-k * x));
    const t = fitTrend(xs, ys);
    expect(t.mode).toBe('log');
    expect(t.slope).toBeCloseTo(-k, 12);
    expect(t.intercept).toBeCloseTo(Math.log(A), 10);
    expect(predictTrend(t, 21)).toBeCloseTo(A * Math.exp(-k * 21), 12);
    // last value would be a worse prediction than the trend
    expect(Math.abs(extrapolate(xs, ys, 20) - A * Math.exp(-k * 20))).toBeLessThan(1e-12);
    expect(Math.abs(ys[3]! - A * Math.exp(-k * 20))).toBeGreaterThan(0.01);
  });

  it('linear trend recovers a line; auto falls back to linear for non-positive values', () => {
    const xs = [0, 1, 2, 3];
    const ys = xs.map((x) => 0.5 - 0.2 * x); // reaches -0.1 at x = 3
    const t = fitTrend(xs, ys);
    expect(t.mode).toBe('linear');
    expect(predictTrend(t, 5)).toBeCloseTo(0.5 - 0.2 * 5, 12);
    expect(() => fitTrend(xs, ys, 'log')).toThrow(/> 0/);
    const t2 = fitTrend([1, 2, 3], [3, 5, 7], 'linear');
    expect(t2.slope).toBeCloseTo(2, 12);
    expect(t2.residualRms).toBeCloseTo(0, 12);
  });

  it('one point gives a flat line; no point throws', () => {
    expect(predictTrend(fitTrend([3], [0.8]), 10)).toBeCloseTo(0.8, 12);
    expect(() => fitTrend([], [])).toThrow();
    expect(() => fitTrend([1, 2], [1, NaN])).toThrow(/non-finite/);
  });

  it('fitPreWindow uses only the points in [decay - preWindow, decay)', () => {
    const xs = [0, 1, 2, 3, 4, 5, 6, 7];
    // wild values outside the window must not matter
    const ys = xs.map((x) => (x >= 2 && x < 6 ? 1 + 0.1 * x : 100));
    const t = fitPreWindow(xs, ys, 6, 4, 'linear')!;
    expect(t.n).toBe(4);
    expect(predictTrend(t, 6)).toBeCloseTo(1.6, 12);
    expect(fitPreWindow(xs, ys, 1, 4)).toBeUndefined(); // only x = 0 before 1
  });
});
