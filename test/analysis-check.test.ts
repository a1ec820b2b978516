import { describe, expect, it } from 'vitest';
import { analyzeDecay } from '../src/analysis/spike.js';
import { checkExpectations, overallPass, describeExpectation } from '../src/analysis/check.js';
import { analyzeSuite } from '../src/analysis/index.js';
import type { RunData } from '../src/analysis/types.js';
import { epochSeries, makeRun, plantedInterval, stepSeries } from './fixtures/analysis/synth.js';

const base = (t: number) => 2 * Math.exp(-0.05 * t);
const d = 20;
const S = 40;
const Fs = [1.3, 1.35, 1.4];
const Fstep = 1.5;

/** relu: epoch spike of size Fs[seed] at d, plus a step spike Fstep over the first 4 steps of d. prelu: neither. */
function suiteRuns(): RunData[] {
  const runs: RunData[] = [];
  Fs.forEach((F, seed) => {
    const epochs = epochSeries(30, 'train', (e) => ({ center: base(e) * (e === d ? F : 1) }));
    const steps = stepSeries([17, 18, 19, 20], S, (e, i) => ({ center: base(e + i / S) * (e === d && i < 4 ? Fstep : 1) }));
    runs.push(makeRun('relu', seed, [d], [...epochs, ...steps]));
    runs.push(makeRun('prelu', seed, [d], epochSeries(30, 'train', (e) => ({ center: base(e) }))));
  });
  return runs;
}

describe('check', () => {
  const results = analyzeDecay(suiteRuns());
  const planted = plantedInterval(Fs);

  it('passes when verdicts match the expectations', () => {
    const rows = checkExpectations(results, { relu: { kind: 'spike' }, prelu: { kind: 'no-spike' } });
    expect(rows.map((r) => [r.variant, r.split, r.resolution, r.decayEpoch, r.verdict, r.pass])).toEqual([
      ['relu', 'train', 'epoch', d, 'spike', true],
      ['prelu', 'train', 'epoch', d, 'no-spike', true],
    ]);
    expect(rows[0]!.ratioMean).toBeCloseTo(planted.mean, 9);
    expect(rows[0]!.ci[0]).toBeCloseTo(planted.lo, 3);
    expect(rows[0]!.expected).toBe('spike');
    expect(overallPass(rows)).toBe(true);
  });

  it('fails when they do not', () => {
    const rows = checkExpectations(results, { relu: { kind: 'no-spike' }, prelu: { kind: 'spike' } });
    expect(rows.map((r) => r.pass)).toEqual([false, false]);
    expect(overallPass(rows)).toBe(false);
    const mixed = checkExpectations(results, { relu: { kind: 'spike' }, prelu: { kind: 'spike' } });
    expect(mixed.map((r) => r.pass)).toEqual([true, false]);
    expect(overallPass(mixed)).toBe(false);
  });

  it('ratio bounds are judged on the mean ratio', () => {
    const m = planted.mean;
    const ok = checkExpectations(results, { relu: { kind: 'ratio', min: m - 0.02, max: m + 0.02 } });
    expect(ok[0]!.pass).toBe(true);
    expect(ok[0]!.expected).toBe(describeExpectation({ kind: 'ratio', min: m - 0.02, max: m + 0.02 }));
    expect(checkExpectations(results, { relu: { kind: 'ratio', min: m + 0.02 } })[0]!.pass).toBe(false);
    expect(checkExpectations(results, { relu: { kind: 'ratio', max: m - 0.02 } })[0]!.pass).toBe(false);
    expect(checkExpectations(results, { prelu: { kind: 'ratio', max: 1.05 } })[0]!.pass).toBe(true);
  });

  it('an expectation names its split and resolution; missing results fail', () => {
    const step = checkExpectations(results, { relu: { kind: 'ratio', min: Fstep - 0.01, max: Fstep + 0.01, resolution: 'step' } });
    expect(step).toHaveLength(1);
    expect(step[0]!.resolution).toBe('step');
    expect(step[0]!.pass).toBe(true);
    // prelu has no step records; nobody has valid records; 'gelu' was not run
    const missing = checkExpectations(results, {
      prelu: { kind: 'no-spike', resolution: 'step' },
      relu: { kind: 'spike', split: 'valid' },
      gelu: { kind: 'no-spike' },
    });
    expect(missing.map((r) => [r.variant, r.pass, r.decayEpoch])).toEqual([
      ['prelu', false, -1],
      ['relu', false, -1],
      ['gelu', false, -1],
    ]);
    expect(missing.every((r) => Number.isNaN(r.ratioMean))).toBe(true);
    expect(checkExpectations(results, { relu: { kind: 'spike', decayEpoch: 7 } })[0]!.pass).toBe(false);
    expect(overallPass([])).toBe(false);
  });

  it('analyzeSuite wires results, checks and thresholds together', () => {
    const a = analyzeSuite('act', suiteRuns(), { relu: { kind: 'spike' }, prelu: { kind: 'no-spike' } }, { spikeRatio: 1.25 });
    expect(a.suite).toBe('act');
    expect(a.thresholds.spikeRatio).toBe(1.25);
    expect(a.thresholds.preWindow).toBe(4);
    expect(a.results).toHaveLength(3); // relu epoch + step, prelu epoch
    expect(overallPass(a.checks)).toBe(true);
    // a spike ratio above the planted mean turns the relu verdict away from 'spike'
    const strict = analyzeSuite('act', suiteRuns(), { relu: { kind: 'spike' } }, { spikeRatio: planted.mean + 0.05 });
    expect(strict.checks[0]!.verdict).not.toBe('spike');
    expect(strict.checks[0]!.pass).toBe(false);
  });
});
