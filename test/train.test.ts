import * as tf from '@tensorflow/tfjs';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { resolveConfig } from '../src/config/load.js';
import { selectBackend } from '../src/backend/select.js';
import { makeInstruments } from '../src/instruments/index.js';
import { readMetrics } from '../src/store/run-store.js';
import { loadDataFor, train } from '../src/train/trainer.js';

const seedCfg = { lr: 0.05, momentum: 0.9, weight_decay: 5e-4, alpha: 0.5, lamb: 0.01 };

function tinyConfig(extra: Record<string, unknown> = {}) {
  return resolveConfig({ ...seedCfg, epochs: 4, decay_epochs: [2, 3], decay_factors: [0.5, 0.1], ...extra }, 'tiny');
}

describe('tiny real training on wasm', () => {
  const cfg = tinyConfig();
  const data = loadDataFor(cfg);

  it('lowers the loss and reproduces bit-identically with the same seed', async () => {
    const backend = await selectBackend('wasm');
    const dirA = mkdtempSync(join(tmpdir(), 'sp-a-'));
    const dirB = mkdtempSync(join(tmpdir(), 'sp-b-'));
    const a = await train({ config: cfg, backend, data, outDir: dirA, instruments: makeInstruments('default') });
    const b = await train({ config: cfg, backend, data, outDir: dirB, instruments: makeInstruments('default') });
    expect(a.status).toBe('done');
    const first = a.epochs[0]!.train;
    const last = a.epochs[a.epochs.length - 1]!.train;
    expect(last.ce!).toBeLessThan(first.ce! * 0.85);
    expect(last.acc!).toBeGreaterThan(first.acc!);
    // Every recorded number identical, step records included.
    const strip = (d: string) => readMetrics(d).map((r) => ({ ...r, seconds: 0 }));
    expect(strip(dirB)).toEqual(strip(dirA));
    expect(readMetrics(dirA).some((r) => r.kind === 'step')).toBe(true);
    // The schedule: model LR decays at 2 and 3, the centers' LR does not.
    expect(a.epochs.map((e) => e.lr)).toEqual([0.05, 0.05, 0.025, 0.005].map((v) => expect.closeTo(v, 12)));
    expect(a.epochs.map((e) => e.centerLr)).toEqual([0.5, 0.5, 0.5, 0.5]);
    const m = JSON.parse(readFileSync(join(dirA, 'manifest.json'), 'utf8'));
    expect(m.status).toBe('done');
    expect(m.backend).toBe('wasm');
    expect(['relaxed-simd-fma', 'simd128']).toContain(m.kernels);
    expect(m.decayEpochs).toEqual([2, 3]);
  });

  it('a different seed gives different numbers; coupled centers LR decays with the model LR', async () => {
    const backend = await selectBackend('wasm');
    const a = await train({ config: tinyConfig({ epochs: 3 }), backend, data });
    const c = await train({ config: tinyConfig({ epochs: 3, seed: 7, center_lr_coupled: true }), backend, data });
    expect(c.epochs[0]!.train.ce).not.toBe(a.epochs[0]!.train.ce);
    expect(c.epochs.map((e) => e.centerLr)).toEqual([0.5, 0.5, 0.25]);
  });

  it('the center-loss split adds up to the recorded center loss; tensors do not grow with every instrument', async () => {
    const backend = await selectBackend('wasm');
    const dir = mkdtempSync(join(tmpdir(), 'sp-i-'));
    const counts: number[] = [];
    const r = await train({
      config: tinyConfig({ epochs: 3, model: { activation: 'prelu' } }),
      backend,
      data,
      outDir: dir,
      instruments: makeInstruments('all'),
      onEpoch: () => counts.push(tf.memory().numTensors),
    });
    expect(r.status).toBe('done');
    expect(counts[2]).toBe(counts[1]);
    expect(counts[1]).toBe(counts[0]);
    const recs = readMetrics(dir);
    let checked = 0;
    for (const rec of recs) {
      if (typeof rec.cl_within !== 'number') continue;
      const sum = (rec.cl_within as number) + (rec.cl_lag as number);
      expect(Math.abs(sum - (rec.center as number))).toBeLessThan(1e-4 * Math.max(1, rec.center as number));
      checked++;
    }
    expect(checked).toBeGreaterThan(10);
    const ep = recs.find((x) => x.kind === 'epoch' && x.split === 'train' && x.epoch === 2)!;
    for (const k of ['feat_norm_mean', 'center_drift', 'dead_frac', 'eff_lr', 'angle', 'nc1', 'center_dist']) expect(ep[k], k).toBeTypeOf('number');
    expect(Object.keys(ep).some((k) => k.startsWith('prelu_slope/'))).toBe(true);
  });
});

describe('divergence', () => {
  it('a NaN/Inf loss marks the run diverged with its step and keeps the data', async () => {
    const backend = await selectBackend('wasm');
    const cfg = tinyConfig({ epochs: 30, alpha: 10, decay_epochs: [], decay_factors: [] }); // centers overshoot x9 per step
    const data = loadDataFor(cfg);
    const dir = mkdtempSync(join(tmpdir(), 'sp-div-'));
    const r = await train({ config: cfg, backend, data, outDir: dir, instruments: makeInstruments('none') });
    expect(r.status).toBe('diverged');
    expect(r.divergedAt!.what).toMatch(/center loss|cross-entropy/);
    const m = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8'));
    expect(m.status).toBe('diverged');
    expect(m.divergedAt.step).toBe(r.divergedAt!.step);
    const recs = readMetrics(dir);
    expect(recs.filter((x) => x.kind === 'epoch' && x.split === 'test').length).toBe(r.divergedAt!.epoch);
    expect(recs.some((x) => x.kind === 'epoch' && x.split === 'train' && x.epoch === r.divergedAt!.epoch)).toBe(true);
  });
});
