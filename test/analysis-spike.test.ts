import { describe, expect, it } from 'vitest';
import { analyzeDecay, decideVerdict, measureSpikeAt, resolveThresholds, DEFAULT_THRESHOLDS } from '../src/analysis/spike.js';
import type { DecayResult, RunData } from '../src/analysis/types.js';
import { epochSeries, makeRun, plantedInterval, rng, stepSeries } from './fixtures/analysis/synth.js';

const A = 2;
const K = 0.06;
/** The falling trend every synthetic center loss follows: 2·exp(-0.06·epoch). */
const base = (t: number) => A * Math.exp(-K * t);

/**
 * A run whose center loss is base(e) times `factor(e)` times (1 + noise), on the train split.
 * spikeAt/F: the value at spikeAt is multiplied by F, the one after by 1 + (F-1)/4 (a decaying bump).
 */
function spikedRun(variant: string, seed: number, opts: { decays: number[]; spikeAt?: number[]; F?: number; noise?: number; epochs?: number }): RunData {
  const r = rng(seed, variant);
  const F = opts.F ?? 1;
  const factor = (e: number) => {
    for (const s of opts.spikeAt ?? []) {
      if (e === s) return F;
      if (e === s + 1) return 1 + (F - 1) / 4;
    }
    return 1;
  };
  const recs = epochSeries(opts.epochs ?? 30, 'train', (e) => ({
    center: base(e) * factor(e) * (1 + (opts.noise ?? 0) * r.normal()),
    lr: e < opts.decays[0]! ? 0.1 : 0.01,
  }));
  return makeRun(variant, seed, opts.decays, recs);
}

function only(results: DecayResult[], f: Partial<DecayResult>): DecayResult {
  const m = results.filter((r) => Object.entries(f).every(([k, v]) => (r as unknown as Record<string, unknown>)[k] === v));
  expect(m).toHaveLength(1);
  return m[0]!;
}

describe('measureSpikeAt', () => {
  it('recovers a planted ratio on a falling trend, at the decay position', () => {
    const d = 20;
    const F = 1.35;
    const xs = Array.from({ length: 30 }, (_, e) => e);
    const ys = xs.map((e) => base(e) * (e === d ? F : 1));
    const m = measureSpikeAt(xs, ys, d, 4, 2)!;
    expect(m.at).toBe(d);
    expect(m.expected).toBeCloseTo(base(d), 12);
    expect(m.observed).toBeCloseTo(base(d) * F, 12);
    expect(m.ratio).toBeCloseTo(F, 10);
    expect(m.excess).toBeCloseTo(base(d) * (F - 1), 12);
    // comparing with the last pre-decay value would understate the spike
    expect(m.observed / base(d - 1)).toBeLessThan(F);
  });

  it('block means: the max is over consecutive block averages', () => {
    const xs = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9];
    const ys = [1, 1, 1, 1, 5, 1, 1, 1, 3, 3]; // pre 0..3 flat at 1
    const single = measureSpikeAt(xs, ys, 4, 4, 6, { trend: 'linear' })!;
    expect(single.observed).toBe(5);
    expect(single.at).toBe(4);
    const blocked = measureSpikeAt(xs, ys, 4, 4, 6, { trend: 'linear', block: 2 })!;
    // blocks (4,5) -> 3, (6,7) -> 1, (8,9) -> 3: first max wins, at its mean position 4.5 -> rounded 5
    expect(blocked.observed).toBe(3);
    expect(blocked.at).toBe(5);
  });
});

describe('decideVerdict rules', () => {
  const th = resolveThresholds();
  it('n >= 2', () => {
    expect(decideVerdict([1.25, 1.3, 1.28], th).verdict).toBe('spike');
    expect(decideVerdict([1.0, 1.02, 0.98], th).verdict).toBe('no-spike');
    // mean 1.25 >= 1.2 but the interval reaches below 1
    expect(decideVerdict([1.0, 1.5], th).verdict).toBe('inconclusive');
    // mean <= 1 and no seed at 1.2: no-spike although the 2-seed interval is wide
    const wide = decideVerdict([0.9, 1.1], th);
    expect(wide.ci[1]).toBeGreaterThan(th.spikeRatio);
    expect(wide.verdict).toBe('no-spike');
    // mean 1.0 but one seed spiked
    expect(decideVerdict([0.7, 1.3], th).verdict).toBe('inconclusive');
    // above 1 clearly but below the spike ratio, CI upper above the ratio -> inconclusive
    expect(decideVerdict([1.12, 1.16, 1.2], th).verdict).toBe('inconclusive');
  });
  it('n = 1 needs a margin of (spikeRatio - 1) / 2', () => {
    const s = th.spikeRatio;
    const m = (s - 1) / 2;
    expect(decideVerdict([s + m], th).verdict).toBe('spike');
    expect(decideVerdict([s + m - 0.01], th).verdict).toBe('inconclusive');
    expect(decideVerdict([s], th).verdict).toBe('inconclusive');
    expect(decideVerdict([s - m], th).verdict).toBe('inconclusive');
    expect(decideVerdict([s - m - 0.01], th).verdict).toBe('no-spike');
    expect(decideVerdict([1.5], th).ci).toEqual([1.5, 1.5]);
  });
  it('n = 0 is inconclusive; bad thresholds are refused', () => {
    const v = decideVerdict([], th);
    expect(v.verdict).toBe('inconclusive');
    expect(v.mean).toBeNaN();
    expect(() => resolveThresholds({ spikeRatio: 1 })).toThrow(/spikeRatio/);
    expect(() => resolveThresholds({ preWindow: 1 })).toThrow(/preWindow/);
    expect(resolveThresholds({ postWindow: 3 })).toEqual({ ...DEFAULT_THRESHOLDS, postWindow: 3 });
  });
});

/** These planted windows were laid out for a post window of 2 epochs. */
const PW2 = { thresholds: { postWindow: 2 } };

describe('analyzeDecay, epoch resolution', () => {
  it('noise-free planted spikes: per-seed ratios, mean, sd and CI follow from the planted sizes', () => {
    const d = 20;
    const Fs = [1.3, 1.35, 1.42];
    const runs = Fs.map((F, i) => spikedRun('relu', i, { decays: [d], spikeAt: [d], F }));
    const res = only(analyzeDecay(runs), { variant: 'relu', split: 'train', resolution: 'epoch', decayEpoch: d });
    expect(res.n).toBe(3);
    res.seeds.forEach((s, i) => {
      expect(s.ratio).toBeCloseTo(Fs[i]!, 9);
      expect(s.at).toBe(d);
      expect(s.expected).toBeCloseTo(base(d), 10);
    });
    const p = plantedInterval(Fs);
    expect(res.ratioMean).toBeCloseTo(p.mean, 9);
    expect(res.ratioSd).toBeCloseTo(p.sd, 9);
    expect(res.ci[0]).toBeCloseTo(p.lo, 3);
    expect(res.ci[1]).toBeCloseTo(p.hi, 3);
    expect(res.verdict).toBe('spike');
    expect(res.metric).toBe('center');
  });

  it('with noise, 5 seeds: ratio near the planted one and the 95% CI covers it in most replicates', () => {
    const d = 20;
    const F = 1.3;
    let covered = 0;
    let spikes = 0;
    const reps = 40;
    for (let rep = 0; rep < reps; rep++) {
      // each seed's spike size varies around F (sd 0.05); every value has 1% noise
      const runs = [0, 1, 2, 3, 4].map((s) => {
        const Fi = F + 0.05 * rng(1000 * rep + s, 'size').normal();
        return spikedRun('relu', 1000 * rep + s, { decays: [d], spikeAt: [d], F: Fi, noise: 0.01 });
      });
      const res = only(analyzeDecay(runs, { resolutions: ['epoch'] }), { decayEpoch: d });
      expect(Math.abs(res.ratioMean - F)).toBeLessThan(0.12);
      if (res.ci[0] <= F && F <= res.ci[1]) covered++;
      if (res.verdict === 'spike') spikes++;
    }
    // nominal coverage 95%: 40 replicates, fewer than 33 covered would be very unlikely (< 0.5%)
    expect(covered).toBeGreaterThanOrEqual(33);
    expect(spikes).toBeGreaterThanOrEqual(36);
  });

  it('no planted spike: no-spike, ratios near 1', () => {
    const runs = [0, 1, 2].map((s) => spikedRun('prelu', s, { decays: [20], noise: 0.01 }));
    const res = only(analyzeDecay(runs), { decayEpoch: 20, resolution: 'epoch' });
    expect(res.verdict).toBe('no-spike');
    expect(Math.abs(res.ratioMean - 1)).toBeLessThan(0.06);
  });

  it('a spike off the decay epoch is not attributed to the decay', () => {
    const F = 1.5;
    // spike long before the decay
    const early = [0, 1, 2].map((s) => spikedRun('relu', s, { decays: [20], spikeAt: [10], F }));
    expect(only(analyzeDecay(early, PW2), { decayEpoch: 20 }).verdict).toBe('no-spike');
    // spike just after the post window (decay 20, postWindow 2 -> epochs 20, 21; spike at 22)
    const late = [0, 1, 2].map((s) => spikedRun('relu', s, { decays: [20], spikeAt: [22], F }));
    const lateRes = only(analyzeDecay(late, PW2), { decayEpoch: 20 });
    expect(lateRes.verdict).toBe('no-spike');
    expect(lateRes.ratioMean).toBeCloseTo(1, 9);
    // the same spike is found when the decay is where it is
    const onDecay = [0, 1, 2].map((s) => spikedRun('relu', s, { decays: [22], spikeAt: [22], F }));
    expect(only(analyzeDecay(onDecay, PW2), { decayEpoch: 22 }).ratioMean).toBeCloseTo(F, 9);
  });

  it('the trend of a later decay starts after the previous decay’s post window', () => {
    // decays at 10 and 14 (preWindow 4, postWindow 2): the trend for 14 uses epochs 12, 13 only,
    // so the spike at 10-11 does not tilt it.
    const F1 = 1.6;
    const F2 = 1.3;
    const runs = [0, 1].map((seed) => {
      const recs = epochSeries(30, 'train', (e) => ({
        center: base(e) * (e === 10 ? F1 : e === 11 ? 1 + (F1 - 1) / 4 : e === 14 ? F2 : 1),
      }));
      return makeRun('relu', seed, [10, 14], recs);
    });
    const results = analyzeDecay(runs, { resolutions: ['epoch'], ...PW2 });
    expect(only(results, { decayEpoch: 10 }).ratioMean).toBeCloseTo(F1, 9);
    expect(only(results, { decayEpoch: 14 }).ratioMean).toBeCloseTo(F2, 9);
    // with decays 10 and 12 the window for 12 would start at 12: no pre points -> skipped
    const tight = runs.map((r) => makeRun('relu', r.manifest.seed, [10, 12], r.records));
    const res12 = only(analyzeDecay(tight, { resolutions: ['epoch'], ...PW2 }), { decayEpoch: 12 });
    expect(res12.n).toBe(0);
    expect(res12.verdict).toBe('inconclusive');
    expect(res12.skipped?.map((s) => s.reason)).toEqual(["0 pre-decay point(s) with 'center' (need 2)", "0 pre-decay point(s) with 'center' (need 2)"]);
  });

  it('variants and splits are analysed separately; a run ending before the decay is skipped', () => {
    const d = 20;
    const F = 1.4;
    const runs: RunData[] = [];
    for (const seed of [0, 1, 2]) {
      const recs = [
        ...epochSeries(30, 'train', (e) => ({ center: base(e) * (e === d ? F : 1) })),
        ...epochSeries(30, 'valid', (e) => ({ center: 1.1 * base(e) })),
      ];
      runs.push(makeRun('relu', seed, [d], recs));
      runs.push(makeRun('prelu', seed, [d], epochSeries(30, 'train', (e) => ({ center: base(e) }))));
    }
    runs.push(makeRun('prelu', 9, [d], epochSeries(d, 'train', (e) => ({ center: base(e) })))); // stopped at epoch 19
    const results = analyzeDecay(runs, { resolutions: ['epoch'] });
    expect(results.map((r) => `${r.variant}/${r.split}`)).toEqual(['relu/train', 'relu/valid', 'prelu/train']);
    expect(only(results, { variant: 'relu', split: 'train' }).verdict).toBe('spike');
    expect(only(results, { variant: 'relu', split: 'valid' }).verdict).toBe('no-spike');
    const prelu = only(results, { variant: 'prelu' });
    expect(prelu.verdict).toBe('no-spike');
    expect(prelu.n).toBe(3);
    expect(prelu.skipped).toEqual([{ run: 'prelu-s9', seed: 9, reason: "no post-decay point with 'center'" }]);
  });
});

describe('analyzeDecay, step resolution', () => {
  const S = 50; // steps per epoch
  const d = 20;
  /** Per-step center loss: base at fractional epoch, times F for the first 5 steps of epoch d. */
  function stepRun(seed: number, F: number, noise = 0): RunData {
    const r = rng(seed, 'steps');
    const value = (e: number, i: number) => base(e + i / S) * (e === d && i < 5 ? F : 1);
    const steps = stepSeries([16, 17, 18, 19, 20, 21], S, (e, i) => ({ center: value(e, i) * (1 + noise * r.normal()) }));
    const epochs = epochSeries(30, 'train', (e) => {
      let sum = 0;
      for (let i = 0; i < S; i++) sum += value(e, i);
      return { center: sum / S };
    });
    return makeRun('relu', seed, [d], [...epochs, ...steps]);
  }

  it('finds a spike in the first steps after the decay that the epoch means dilute', () => {
    const F = 1.3;
    const runs = [0, 1, 2].map((s) => stepRun(s, F));
    const results = analyzeDecay(runs);
    const step = only(results, { resolution: 'step' });
    // post window = first 20% of 50 steps = 10 steps, blocks of round(10/10) = 1 -> the max is step d·S
    step.seeds.forEach((s) => {
      expect(s.at).toBe(d * S);
      expect(s.ratio).toBeCloseTo(F, 9);
    });
    expect(step.verdict).toBe('spike');
    // epoch means: the spike adds (F-1)·Σ_{i<5} base(d+i/S) to the epoch sum
    let all = 0;
    let first5 = 0;
    for (let i = 0; i < S; i++) {
      all += base(d + i / S);
      if (i < 5) first5 += base(d + i / S);
    }
    const epochRatio = 1 + ((F - 1) * first5) / all;
    const epoch = only(results, { resolution: 'epoch' });
    expect(epoch.ratioMean).toBeCloseTo(epochRatio, 6);
    expect(epoch.verdict).toBe('no-spike');
  });

  it('with per-step noise the block means still recover the planted size', () => {
    const F = 1.3;
    const runs = [0, 1, 2, 3].map((s) => stepRun(s, F, 0.02));
    // stepFraction 0.1 -> the 5 spiked steps, one block of 5
    const res = only(analyzeDecay(runs, { resolutions: ['step'], stepFraction: 0.1, stepBlock: 5 }), { resolution: 'step' });
    expect(Math.abs(res.ratioMean - F)).toBeLessThan(0.05);
    expect(res.verdict).toBe('spike');
    const none = [0, 1, 2, 3].map((s) => stepRun(s, 1, 0.02));
    const res0 = only(analyzeDecay(none, { resolutions: ['step'], stepFraction: 0.1, stepBlock: 5 }), { resolution: 'step' });
    expect(res0.verdict).toBe('no-spike');
  });
});

describe('spike shape: a transient peak or a level shift', () => {
  // Base curve 2 * 0.95^e; a planted multiplier from the decay at 10 on (next decay at 20).
  const base = (e: number) => 2 * 0.95 ** e;
  const runOf = (seed: number, mult: (e: number) => number) =>
    makeRun('v', seed, [10, 20], epochSeries(30, 'train', (e) => ({ center: base(e) * mult(e) })));
  const th = { postWindow: 3 };

  it('a bump that is gone by the next decay is a transient peak (recovery 1)', () => {
    const bump = (e: number) => (e === 11 ? 1.5 : e === 12 ? 1.2 : 1);
    const r = analyzeDecay([1, 2, 3].map((s) => runOf(s, bump)), { thresholds: th, splits: ['train'], resolutions: ['epoch'] })[0]!;
    expect(r.verdict).toBe('spike');
    expect(r.seeds[0]!.at).toBe(11);
    expect(r.recoveryMean).toBeCloseTo(1, 10); // the last two epochs before 20 are back on the trend
    expect(r.shape).toBe('peak');
  });

  it('a rise that stays up (or keeps rising) until the next decay is a level shift', () => {
    const step = (e: number) => (e >= 10 && e < 20 ? 1.5 : 1);
    const r = analyzeDecay([1, 2, 3].map((s) => runOf(s, step)), { thresholds: th, splits: ['train'], resolutions: ['epoch'] })[0]!;
    expect(r.verdict).toBe('spike');
    // Still 1.5x the trend at epochs 18 and 19: nothing came back.
    expect(r.seeds[0]!.recovery).toBeCloseTo(0, 10);
    expect(r.shape).toBe('level');
    const ramp = (e: number) => (e >= 10 && e < 20 ? 1 + 0.1 * (e - 9) : 1);
    const r2 = analyzeDecay([1, 2, 3].map((s) => runOf(s, ramp)), { thresholds: th, splits: ['train'], resolutions: ['epoch'] })[0]!;
    expect(r2.recoveryMean!).toBeLessThan(0);
    expect(r2.shape).toBe('level');
  });
});
