/**
 * The verdict defaults on recorded runs: probes/fer-like.yaml's ReLU runs with 20% flipped labels
 * and with clean labels (3 seeds each, epoch records kept in test/fixtures/analysis/fer-like/,
 * written by spikeprobe on 2026-12-04). The defaults (trend over 4 epochs, peak over 3) were chosen
 * on these runs: they must call the noisy runs a spike at both decays, a level shift, and the clean
 * runs no spike.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { analyzeSuite } from '../src/analysis/index.js';
import type { RunData } from '../src/analysis/types.js';

const DIR = join(import.meta.dirname, 'fixtures', 'analysis', 'fer-like');
const runs: RunData[] = readdirSync(DIR).map((f) => ({ dir: f, ...(JSON.parse(readFileSync(join(DIR, f), 'utf8')) as Omit<RunData, 'dir'>) }));

describe('verdict defaults on the recorded FER-like runs', () => {
  const a = analyzeSuite('fer-like', runs);
  const at = (v: string, d: number) => a.results.find((r) => r.variant === v && r.decayEpoch === d && r.split === 'train' && r.resolution === 'epoch')!;

  it('noisy labels: a spike at each decay, a level shift', () => {
    for (const d of [10, 20]) {
      const r = at('relu', d);
      expect(r.n).toBe(3);
      expect(r.verdict, `decay ${d}: x${r.ratioMean}`).toBe('spike');
      expect(r.ci[0]).toBeGreaterThan(1);
      expect(r.shape).toBe('level');
    }
  });

  it('clean labels: no spike at either decay', () => {
    for (const d of [10, 20]) expect(at('relu-clean', d).verdict).toBe('no-spike');
  });

  it('a 2-epoch post window misses part of the first rise', () => {
    const two = analyzeSuite('fer-like', runs, [], { postWindow: 2 });
    const r3 = at('relu', 10);
    const r2 = two.results.find((r) => r.variant === 'relu' && r.decayEpoch === 10 && r.split === 'train' && r.resolution === 'epoch')!;
    expect(r2.ratioMean).toBeLessThan(r3.ratioMean);
  });
});
