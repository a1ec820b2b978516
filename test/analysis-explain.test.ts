import { describe, expect, it } from 'vitest';
import { analyzeSuite } from '../src/analysis/index.js';
import type { RunData } from '../src/analysis/types.js';
import { epochSeries, makeRun, plantedInterval } from './fixtures/analysis/synth.js';

const b = (e: number) => 1.5 * Math.exp(-0.04 * e);
const d = 20;
const Fs = [1.22, 1.25, 1.31];
const WITHIN = 0.71;
const FEAT_RISE = 0.18;

/**
 * ReLU: the center loss is b(e)·F at d (cl_within takes 71% of the jump, cl_lag 29%), feat_sq
 * rises 18% over the two post-decay epochs, dead_frac/conv1 goes 0 -> 0.02 at the decay.
 * PReLU: b(e) throughout, no dead units.
 */
function runs(): RunData[] {
  const out: RunData[] = [];
  Fs.forEach((F, seed) => {
    out.push(
      makeRun('ReLU', seed, [d], epochSeries(30, 'train', (e) => {
        const J = e === d ? (F - 1) * b(e) : 0;
        const w = 0.7 * b(e) + WITHIN * J;
        const l = 0.3 * b(e) + (1 - WITHIN) * J;
        const post = e >= d && e < d + 2;
        return { center: w + l, cl_within: w, cl_lag: l, feat_sq: 3 * (post ? 1 + FEAT_RISE : 1), 'dead_frac/conv1': e >= d ? 0.02 : 0, lr: e < d ? 0.1 : 0.01 };
      })),
    );
    out.push(makeRun('PReLU', seed, [d], epochSeries(30, 'train', (e) => ({ center: b(e), 'dead_frac/conv1': 0, lr: e < d ? 0.1 : 0.01 }))));
  });
  return out;
}

describe('explanation', () => {
  const a = analyzeSuite('activation', runs(), { ReLU: { kind: 'spike' }, PReLU: { kind: 'no-spike' } }, { postWindow: 2 }); // the planted post window
  const text = a.explanation.join('\n');
  const p = plantedInterval(Fs);

  it('states the measured numbers for the spiking variant', () => {
    const meanF = p.mean;
    const sentence = a.explanation.find((s) => s.startsWith('ReLU, train, epoch 20:'));
    expect(sentence).toBeDefined();
    expect(sentence).toContain(`center loss ${b(d).toPrecision(3)} -> ${(b(d) * meanF).toPrecision(3)}`);
    expect(sentence).toContain(`x${meanF.toFixed(2)}`);
    expect(sentence).toContain(`95% CI ${p.lo.toFixed(2)}-${p.hi.toFixed(2)} over 3 seeds`);
    expect(sentence).toMatch(/: spike(, a (transient peak|level shift)[^.]*)?\.$/);
  });

  it('says which term carried the rise, the feature scale and the dead units', () => {
    const attr = a.explanation.find((s) => s.startsWith('ReLU across the decay:'));
    expect(attr).toBeDefined();
    // The rise as terms that add up: ln(post mean / trend) = ln scale + ln relative spread + ln lag, each with its share.
    const r = a.results.find((x) => x.variant === 'ReLU' && x.split === 'train' && x.resolution === 'epoch' && x.decayEpoch === 20)!;
    const dec = r.attribution!.decomposition!;
    expect(dec.terms.map((t) => t.part)).toEqual(['scale', 'spread', 'lag']);
    expect(dec.terms.reduce((s, t) => s + t.log, 0)).toBeCloseTo(dec.total, 12);
    expect(attr).toContain(`the post-window mean is x${Math.exp(dec.total).toFixed(2)} times its trend = `);
    for (const t of dec.terms) expect(attr).toContain(`x${Math.exp(t.log).toFixed(2)} (${Math.round((t.log / dec.total) * 100)}%)`);
    const shares = [...attr!.matchAll(/ x\d\.\d\d \((-?\d+)%\)/g)].map((m) => Number(m[1]));
    expect(shares.length).toBe(3);
    expect(Math.abs(shares.reduce((x, y) => x + y, 0) - 100)).toBeLessThanOrEqual(2);
    // The synthetic runs scale the features by (1 + FEAT_RISE) after the decay: the scale term says so.
    expect(attr).toContain(`feature scale x${(1 + FEAT_RISE).toFixed(2)}`);
    expect(attr).toContain('dead units 0.00 -> 0.02');
    expect(attr).toContain('lr 0.100 -> 0.0100');
  });

  it('compares the other variant at the same decay', () => {
    const prelu = a.explanation.find((s) => s.startsWith('PReLU at the same decay:'));
    expect(prelu).toBeDefined();
    expect(prelu).toContain('x1.00');
    expect(prelu).toMatch(/: no spike\.$/);
    expect(a.explanation.indexOf(prelu!)).toBeGreaterThan(a.explanation.findIndex((s) => s.startsWith('ReLU, train')));
    expect(text).toContain('dead units 0.00 -> 0.00');
  });

  it('reports the thresholds and the checks with numbers', () => {
    expect(a.explanation[0]).toContain('4 epochs');
    expect(a.explanation[0]).toContain('x1.20');
    expect(text).toContain('Checks: 2 of 2 pass.');
    expect(text).toContain(`ReLU train/epoch at epoch 20: expected spike, got spike (x${p.mean.toFixed(2)}`);
  });

  it('every sentence carries a number', () => {
    for (const s of a.explanation) expect(s).toMatch(/\d/);
  });

  it('handles any variant names and splits, single seeds and failing checks', () => {
    const recs = [
      ...epochSeries(12, 'valid', (e) => ({ center: b(e) * (e === 8 ? 1.6 : 1) })),
      ...epochSeries(12, 'test', (e) => ({ center: b(e) })),
    ];
    const s = analyzeSuite('x', [makeRun('alpha', 0, [8], recs)], { alpha: { kind: 'no-spike', split: 'valid' } }, { postWindow: 2 });
    expect(s.explanation).toContain('alpha, valid, epoch 8: center loss ' + `${b(8).toPrecision(3)} -> ${(1.6 * b(8)).toPrecision(3)} (x1.60, single seed, no interval): spike, a transient peak (100% of the excess gone before the next decay).`);
    expect(s.explanation.some((x) => x.startsWith('alpha, test, epoch 8:') && x.includes('x1.00'))).toBe(true);
    expect(s.explanation.join(' ')).toContain('Checks: 0 of 1 pass.');
    expect(s.explanation.join(' ')).toContain('FAIL');
    expect(s.explanation.join(' ')).not.toContain('train');
  });

  it('changes with the data (no canned text)', () => {
    const other = analyzeSuite('activation', runs().map((r) => ({ ...r, records: r.records.map((x) => ({ ...x, center: (x.center as number) * 2 })) })), {});
    const s1 = a.explanation.find((s) => s.startsWith('ReLU, train'))!;
    const s2 = other.explanation.find((s) => s.startsWith('ReLU, train'))!;
    expect(s2).not.toBe(s1);
    expect(s2).toContain(`center loss ${(2 * b(d)).toPrecision(3)}`);
  });
});
