import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { resolveConfig } from '../src/config/load.js';
import { gatherBatch, loadData, resizeBilinear, type DataConfig } from '../src/data/index.js';
import { dataConfigOf } from '../src/train/trainer.js';
import { InputError } from '../src/util/errors.js';

interface Case {
  n: number;
  c: number;
  h: number;
  w: number;
  outH: number;
  outW: number;
  x: number[];
  y: number[];
}

describe('data.image_size: bilinear resize with PyTorch semantics', () => {
  const fx = JSON.parse(readFileSync(join(import.meta.dirname, 'fixtures', 'resize.json'), 'utf8')) as { torch: string; cases: Case[] };
  for (const c of fx.cases) {
    it(`${c.n}x${c.h}x${c.w}x${c.c} -> ${c.outH}x${c.outW} equals F.interpolate(bilinear, align_corners=False) of PyTorch ${fx.torch}`, () => {
      const y = resizeBilinear(Float32Array.from(c.x), c.n, c.h, c.w, c.c, c.outH, c.outW);
      expect(y.length).toBe(c.y.length);
      let worst = 0;
      for (let i = 0; i < y.length; i++) worst = Math.max(worst, Math.abs(y[i]! - c.y[i]!));
      // Float32 rounding: PyTorch sums in float32, this in float64 (values are ~N(0, 1)).
      expect(worst).toBeLessThan(1e-5);
    });
  }
  it('preserves constants (the augmentation background stays the background)', () => {
    const y = resizeBilinear(new Float32Array(28 * 28).fill(-0.8), 1, 28, 28, 1, 48, 48);
    expect(Math.max(...y.map((v) => Math.abs(v + 0.8)))).toBeLessThan(1e-6);
  });
});

const FER_COUNTS = [6000, 4400, 2100, 2050, 1450, 150, 380, 120];

function cfg(over: Partial<DataConfig>): DataConfig {
  return {
    source: 'fashion-mnist',
    classes: [0, 1, 2, 3, 4, 5, 6, 7],
    train_per_class: 3000,
    valid_per_class: 250,
    test_per_class: 250,
    split_seed: 1234,
    synthetic: { height: 28, width: 28, noise: 0.3 },
    augment: { shift: 0, flip: false, noise: 0 },
    label_noise: 0,
    ...over,
  };
}

describe('data.train_counts and label noise: the FER-like split', () => {
  const d = loadData(cfg({ train_counts: FER_COUNTS, label_noise: 0.2, image_size: 48 }), process.cwd());

  it("has the reference's per-class train counts, 250 valid and test per class, 48 px", () => {
    const clean = d.train.yClean!;
    const per = new Array(8).fill(0);
    for (const y of clean) per[y]++;
    expect(per).toEqual(FER_COUNTS);
    expect(d.train.n).toBe(16650);
    for (const s of [d.valid, d.test]) {
      const c = new Array(8).fill(0);
      for (const y of s.y) c[y]++;
      expect(c).toEqual(new Array(8).fill(250));
      expect(s.height).toBe(48);
    }
    expect(d.train.x.length).toBe(16650 * 48 * 48);
  });

  it('class 0 (its train pool used up) takes valid from its held-out rows, disjoint from test', () => {
    // 6000 train rows of class 0 = the whole train pool: valid rows come after the test rows.
    const rowsOf = (s: typeof d.valid, k: number) => new Set([...s.sourceIndex!].filter((_, i) => s.y[i] === k));
    const v0 = rowsOf(d.valid, 0);
    const t0 = rowsOf(d.test, 0);
    for (const r of v0) expect(t0.has(r)).toBe(false);
    expect([...v0].every((r) => r >= 6000)).toBe(true); // held-out rows of the package
    // A class with train rows to spare takes valid from its train pool, as before.
    expect([...rowsOf(d.valid, 1)].every((r) => r < 6000)).toBe(true);
  });

  it('flips exactly round(0.2 n) labels, each to another class, and keeps the true ones', () => {
    let flipped = 0;
    for (let i = 0; i < d.train.n; i++) if (d.train.y[i] !== d.train.yClean![i]) flipped++;
    expect(flipped).toBe(Math.round(0.2 * 16650));
    const idx = Int32Array.from({ length: 64 }, (_, i) => i * 7);
    const b = gatherBatch(d.train, idx, 0, 64);
    for (let i = 0; i < 64; i++) {
      expect(b.y[i]).toBe(d.train.y[idx[i]!]);
      expect(b.yTrue![i]).toBe(d.train.yClean![idx[i]!]);
    }
    expect(gatherBatch(d.valid, idx, 0, 8).yTrue).toBeUndefined();
  });

  it('refuses counts the source cannot hold and bad sizes, naming the field', () => {
    const bad: [Partial<DataConfig>, RegExp][] = [
      [{ train_counts: [6001, 1, 1, 1, 1, 1, 1, 1] }, /train_counts\[0\]/],
      [{ train_counts: [6000, 1, 1, 1, 1, 1, 1, 1], valid_per_class: 500, test_per_class: 600 }, /train_counts\[0\]/],
      [{ train_counts: [1, 2] }, /train_counts/],
      [{ image_size: 4 }, /image_size/],
    ];
    for (const [over, re] of bad) {
      try {
        loadData(cfg(over), process.cwd());
        throw new Error('accepted');
      } catch (e) {
        expect(e).toBeInstanceOf(InputError);
        expect(String((e as Error).message) + ' ' + ((e as InputError).field ?? '')).toMatch(re);
      }
    }
  });
});

describe('config: train_counts replaces train_per_class, also over presets', () => {
  it('takes train_counts over a preset and refuses both given', () => {
    const c = resolveConfig({ lr: 0.05, epochs: 1, data: { train_counts: [5, 6, 7, 8, 9, 10, 11, 12], image_size: 32 } }, 'tiny');
    expect(c.data.train_per_class).toBeUndefined();
    expect(dataConfigOf(c).train_counts).toEqual([5, 6, 7, 8, 9, 10, 11, 12]);
    expect(() => resolveConfig({ lr: 0.05, epochs: 1, data: { train_per_class: 5, train_counts: [5, 6, 7, 8, 9, 10, 11, 12] } })).toThrow(/train_counts: replaces data.train_per_class/);
    expect(() => resolveConfig({ lr: 0.05, epochs: 1, data: { classes: 3, train_counts: [5, 6] } })).toThrow(/train_counts: has 2 entries but data.classes names 3/);
    expect(() => resolveConfig({ lr: 0.05, epochs: 1, data: { image_size: 300 } })).toThrow(/image_size/);
    expect(dataConfigOf(resolveConfig({ lr: 0.05, epochs: 1 })).train_per_class).toBe(3000);
  });
});
