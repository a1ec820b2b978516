/**
 * From per-class pools to train/valid/test datasets: seeded per-class sampling, label noise and
 * normalisation with the train split's statistics.
 */
import { InputError } from '../util/errors.js';
import { Rng } from '../util/rng.js';
import type { ClassPool, LoadedSource, RowSet } from './pool.js';
import type { Dataset } from './types.js';

export interface Counts {
  train: number;
  valid: number;
  test: number;
}

interface Pick {
  set: RowSet;
  k: number;
  label: number;
}

/**
 * Per class (stream `split:<class id>` of split_seed, so a class's samples do not depend on which
 * other classes are requested): a random permutation of the train pool gives train then valid, a
 * random permutation of the test pool gives test. Each split is then put in a seeded random order.
 */
export function sampleSplits(src: LoadedSource, counts: Counts, seed: number): { train: Dataset; valid: Dataset; test: Dataset } {
  const picks: Record<keyof Counts, Pick[]> = { train: [], valid: [], test: [] };
  src.pools.forEach((pool: ClassPool, label) => {
    const need = counts.train + counts.valid;
    const have = pool.trainPool.rows.length;
    if (have < need) {
      throw new InputError(
        `class ${pool.id} (${pool.name}) has ${have} samples for train+valid, but train_per_class + valid_per_class = ${counts.train} + ${counts.valid} = ${need}`,
        pool.where,
        counts.train > have ? 'train_per_class' : 'valid_per_class',
      );
    }
    const haveTest = pool.testPool.rows.length;
    if (haveTest < counts.test) {
      throw new InputError(
        `class ${pool.id} (${pool.name}) has ${haveTest} test samples, but test_per_class = ${counts.test}`,
        pool.where,
        'test_per_class',
      );
    }
    const rng = Rng.derive(seed, `split:${pool.id}`);
    const p = rng.permutation(have);
    for (let i = 0; i < need; i++) {
      (i < counts.train ? picks.train : picks.valid).push({ set: pool.trainPool, k: p[i]!, label });
    }
    const q = rng.permutation(haveTest);
    for (let i = 0; i < counts.test; i++) picks.test.push({ set: pool.testPool, k: q[i]!, label });
  });
  const build = (name: keyof Counts): Dataset => {
    const list = picks[name];
    const order = Rng.derive(seed, `order:${name}`).permutation(list.length);
    const rowLen = src.height * src.width * src.channels;
    const x = new Float32Array(list.length * rowLen);
    const y = new Int32Array(list.length);
    const sourceIndex = new Int32Array(list.length);
    for (let i = 0; i < list.length; i++) {
      const pk = list[order[i]!]!;
      const row = pk.set.rows[pk.k]!;
      const { data, scale } = pk.set.store;
      const from = row * rowLen;
      const o = i * rowLen;
      for (let j = 0; j < rowLen; j++) x[o + j] = data[from + j]! * scale;
      y[i] = pk.label;
      sourceIndex[i] = row;
    }
    return {
      x,
      y,
      n: list.length,
      height: src.height,
      width: src.width,
      channels: src.channels,
      numClasses: src.pools.length,
      sourceIndex,
    };
  };
  return { train: build('train'), valid: build('valid'), test: build('test') };
}

/**
 * Replace round(fraction * n) labels, chosen at random, by a uniformly random OTHER class.
 * Returns the new labels; `y` is not modified.
 */
export function applyLabelNoise(y: Int32Array, numClasses: number, fraction: number, rng: Rng): Int32Array {
  const out = y.slice();
  const m = Math.round(fraction * y.length);
  if (m === 0) return out;
  const p = rng.permutation(y.length);
  for (let i = 0; i < m; i++) {
    const at = p[i]!;
    let r = rng.int(numClasses - 1);
    if (r >= y[at]!) r++;
    out[at] = r;
  }
  return out;
}

/** Mean and population std of an array (float64 accumulation, two passes). */
export function meanStd(x: Float32Array): { mean: number; std: number } {
  let s = 0;
  for (let i = 0; i < x.length; i++) s += x[i]!;
  const mean = s / x.length;
  let v = 0;
  for (let i = 0; i < x.length; i++) {
    const d = x[i]! - mean;
    v += d * d;
  }
  return { mean, std: Math.sqrt(v / x.length) };
}

/** In place: x = (x - mean) / std. */
export function normalise(x: Float32Array, mean: number, std: number): void {
  const inv = 1 / std;
  for (let i = 0; i < x.length; i++) x[i] = (x[i]! - mean) * inv;
}
