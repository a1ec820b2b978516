/**
 * The answer (src/analysis/answer.ts) and the attribution that adds up (src/analysis/attribution.ts
 * logDecomposition, samples), on recorded runs: the FER-like ReLU runs with flipped and with clean
 * labels (test/fixtures/analysis/fer-like) and the default suite's 12 runs with its fork
 * (test/fixtures/report/fer-demo.json, roles from probes/fer-demo.yaml).
 */
import { readFileSync, readdirSync, writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { analyzeSuite, finishAttribution } from '../src/analysis/index.js';
import { compositionTerms, summariseGroups } from '../src/analysis/explain.js';
import { answerText, buildAnswer } from '../src/analysis/answer.js';
import { fmtRatio, fmtValue } from '../src/analysis/format.js';
import type { DecayResult, RunData } from '../src/analysis/types.js';
import { analyzeRuns } from '../src/suite/analyze.js';
import { loadSuite } from '../src/suite/load.js';

const FER = join(import.meta.dirname, 'fixtures', 'analysis', 'fer-like');
const ferRuns: RunData[] = readdirSync(FER).map((f) => ({ dir: f, ...(JSON.parse(readFileSync(join(FER, f), 'utf8')) as Omit<RunData, 'dir'>) }));
const demoRuns = (JSON.parse(readFileSync(resolve('test/fixtures/report/fer-demo.json'), 'utf8')) as { runs: RunData[] }).runs;
const demoSuite = loadSuite(resolve('probes/fer-demo.yaml'));
const demo = analyzeRuns(demoSuite.name, demoRuns, demoSuite.expect, demoSuite.thresholds, demoSuite.roles);

const trainSpikes = (rs: DecayResult[]) => rs.filter((r) => r.split === 'train' && r.resolution === 'epoch' && r.metric === 'center' && r.verdict === 'spike');

describe('attribution that adds up', () => {
  it('the log terms add up to ln(observed / trend) of the post-window mean, with and without the feature scale', () => {
    const fer = analyzeSuite('fer-like', ferRuns);
    for (const [a, parts] of [
      [fer, ['within', 'lag']],
      [demo, ['scale', 'spread', 'lag']],
    ] as const) {
      const spikes = trainSpikes(a.results);
      expect(spikes.length).toBeGreaterThan(0);
      for (const r of spikes) {
        const d = r.attribution!.detrended!;
        const dec = r.attribution!.decomposition!;
        expect(dec.terms.map((t) => t.part)).toEqual(parts);
        expect(dec.total).toBeCloseTo(Math.log(d.center.observed / d.center.expected), 12);
        expect(dec.terms.reduce((s, t) => s + t.log, 0)).toBeCloseTo(dec.total, 12);
        expect(dec.total).toBeGreaterThan(0);
      }
    }
  });

  it('flipped and clean samples share the rise (the shares add to 1 where center = (1 - s) clean + s flipped)', () => {
    for (const a of [analyzeSuite('fer-like', ferRuns), demo]) {
      for (const r of trainSpikes(a.results).filter((x) => x.variant === 'relu')) {
        const s = r.attribution!.samples!;
        expect(s.clean + s.flipped).toBeCloseTo(1, 2);
        // The flipped fifth of the samples carries more than its head count of the rise.
        expect(s.flipped).toBeGreaterThan(0.2);
      }
    }
  });
});

describe('the answer', () => {
  it('with roles: the baseline first, the control next, each with its measured ratios; fork effects rank as causes; the fix with its cost', () => {
    const ans = buildAnswer(demo);
    expect(ans.baseline).toBe('relu');
    expect(ans.variants.map((l) => l.variant)).toEqual(['relu', 'relu-clean', 'prelu']);
    for (const line of ans.variants) {
      expect(line.sentence.startsWith(`${line.variant} (${demoSuite.roles[line.variant]}): `)).toBe(true);
      for (const r of line.results) expect(line.sentence).toContain(fmtRatio(r.ratioMean));
      const spikes = line.results.filter((r) => r.verdict === 'spike').length;
      expect(/rises/.test(line.sentence)).toBe(spikes > 0);
    }
    expect(ans.more).toBe(1); // the fork's own verdicts are in the table; its effect is a cause
    const fork = demo.forks!.find((f) => f.fork === 'relu-clean6')!;
    const effect = fork.metrics.find((m) => m.split === 'train' && m.metric === 'center')!;
    expect(ans.causes[0]!.sentence.startsWith('relu-clean6: label_noise = 0 from epoch 6 (a twin of relu): ')).toBe(true);
    expect(ans.causes[0]!.sentence).toContain(`${fmtValue(Math.abs(effect.diff.mean))} ${effect.diff.mean > 0 ? 'less' : 'more'} train center loss over the 3 epochs from 6`);
    // What the baseline's rise is made of, at each decay where it spiked.
    expect(ans.composition.map((c) => c.label)).toEqual(trainSpikes(demo.results).filter((r) => r.variant === 'relu').map((r) => `relu at ${r.decayEpoch}`));
    const prelu = demo.results.filter((r) => r.variant === 'prelu' && r.split === 'train' && r.resolution === 'epoch' && r.metric === 'center');
    const relu6 = demo.results.find((r) => r.variant === 'relu' && r.split === 'train' && r.resolution === 'epoch' && r.metric === 'center' && r.decayEpoch === 6)!;
    expect(relu6.verdict).toBe('spike');
    const fix = ans.fixes.find((f) => f.variant === 'prelu')!;
    // The baseline spikes at 6 only: the fix is judged there (removes: no spike; shrinks: its interval below the baseline's mean or its mean below the baseline's interval).
    const p6 = prelu.find((r) => r.decayEpoch === 6)!;
    expect(fix.effect).toBe(p6.verdict === 'no-spike' ? 'removes' : p6.ci[1] < relu6.ratioMean || p6.ratioMean < relu6.ci[0] ? 'shrinks' : 'does not remove');
    expect(fix.effect).toBe('does not remove'); // FINDINGS: PReLU does not remove the rise
    expect(fix.sentence).toMatch(/test accuracy \d\.\d{3} against \d\.\d{3} \([+-]\d+\.\d points, epoch \d+\)/);
    // The terminal's short form says the same.
    const text = answerText(demo).join('\n');
    for (const line of ans.variants) expect(text).toContain(line.sentence);
    for (const c of [...ans.causes, ...ans.composition]) expect(text).toContain(c.sentence);
  });

  it('without roles: one sentence per variant, no role words, the noisy and the clean runs told apart', () => {
    const a = analyzeSuite('fer-like', ferRuns);
    const ans = buildAnswer(a);
    expect(ans.baseline).toBeUndefined();
    expect(ans.variants.map((l) => l.variant).sort()).toEqual(['relu', 'relu-clean']);
    const clean = ans.variants.find((l) => l.variant === 'relu-clean')!;
    const noisy = ans.variants.find((l) => l.variant === 'relu')!;
    expect(clean.results.every((r) => r.verdict === 'no-spike')).toBe(true);
    expect(clean.sentence).toMatch(/^relu-clean: no spike \(x\d\.\d\d at 10, x\d\.\d\d at 20; 3 seeds\)\.$/);
    expect(noisy.sentence).toMatch(/^relu: the train center loss rises over its trend in the 3 epochs after each decay: x\d\.\d\d at 10 \(95% CI [\d.-]+\), x\d\.\d\d at 20 \(95% CI [\d.-]+\), 3 seeds, and stays up\.$/);
    expect(ans.fixes).toEqual([]);
  });

  it('a variant marked as a cause is compared with the baseline at each decay', () => {
    const a = analyzeSuite('fer-like', ferRuns, [], undefined, { roles: { 'relu-clean': 'baseline', relu: 'cause' } });
    const ans = buildAnswer(a);
    const at = (v: string, d: number) => a.results.find((r) => r.variant === v && r.decayEpoch === d && r.split === 'train' && r.resolution === 'epoch')!;
    expect(ans.causes[0]!.sentence).toBe(
      `relu against relu-clean: ${fmtRatio(at('relu', 10).ratioMean)} against ${fmtRatio(at('relu-clean', 10).ratioMean)} at 10 (spike), ${fmtRatio(at('relu', 20).ratioMean)} against ${fmtRatio(at('relu-clean', 20).ratioMean)} at 20 (spike).`,
    );
  });
});

describe('roles in suites', () => {
  it('come from the variants and forks, stay out of the training config, and must be one of the four', () => {
    expect(demoSuite.roles).toEqual({ relu: 'baseline', 'relu-clean': 'control', prelu: 'fix', 'relu-clean6': 'cause' });
    for (const j of demoSuite.jobs) expect(j.config).not.toHaveProperty('role');
    const dir = mkdtempSync(join(tmpdir(), 'sp-roles-'));
    const file = join(dir, 'bad.yaml');
    writeFileSync(file, 'name: bad\nbase: { epochs: 2 }\nvariants:\n  relu: { role: culprit }\n');
    expect(() => loadSuite(file)).toThrow(/bad\.yaml:4: variants\.relu\.role: one of baseline, cause, fix, control/);
  });
});

describe('what the explanation names', () => {
  it('summarises per-layer series instead of listing them', () => {
    const o = (key: string, relChange: number) => ({ key, before: 1, after: 1 + relChange, change: relChange, relChange });
    const others = [o('eff_lr/stem.conv', -0.57), o('eff_lr/layer1.0', -0.45), o('eff_lr/layer2.0', -0.5), o('angle/a', 0.1), o('angle/b', -0.2), o('center', 0.3), o('lr', -0.5)];
    expect(summariseGroups(others)).toEqual(['eff_lr/* fell in all 3 (-57% to -45%)', 'angle/* rose in 1 of 2, fell in 1 (-20% to +10%)']);
  });

  it('states shares only where the terms read as shares of the rise', () => {
    const t = (observed: number, expected: number) => ({ observed, expected, excess: observed - expected });
    const base = { center: 0, others: [] };
    // A clear rise carried by the scale: shares that add up to 100%.
    const clear = finishAttribution({ ...base, detrended: { center: t(1.3, 1), within: t(1.17, 0.9), featSq: t(13, 10) } });
    expect(compositionTerms(clear)).toBe('the post-window mean is x1.30 times its trend = feature scale x1.30 (100%) x within-class spread relative to the scale x1.00 (0%) x center lag x1.00 (0%)');
    // A small total from terms that offset each other: factors, no shares.
    const offset = finishAttribution({ ...base, detrended: { center: t(1.03, 1), within: t(0.9 * 1.03, 0.9), featSq: t(11.6, 10) } });
    expect(compositionTerms(offset)).toMatch(/x1\.03 times its trend = feature scale x1\.16 x within-class spread relative to the scale x0\.89 x center lag x1\.00 \(terms that offset each other: no shares\)$/);
  });
});
