/**
 * From per-class pools to train/valid/test datasets: seeded per-class sampling, label noise and
 * normalisation with the train split's statistics.
 */
import { InputError } from '../util/errors.js';
import { Rng } from '../util/rng.js';
import type { ClassPool, LoadedSource, RowSet } from './pool.js';
import type { Dataset } from './types.js';

export interface Counts {
  /** One count for every class, or one per class (in pool order). */
  train: number | readonly number[];
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
 * random permutation of the test pool gives test. With per-class train counts, a class whose train
 * pool has fewer than valid_per_class rows left after train takes valid from its test pool's
 * permutation, after the test rows (disjoint from test). Each split is then put in a seeded random order.
 */
export function sampleSplits(src: LoadedSource, counts: Counts, seed: number): { train: Dataset; valid: Dataset; test: Dataset } {
  const picks: Record<keyof Counts, Pick[]> = { train: [], valid: [], test: [] };
  src.pools.forEach((pool: ClassPool, label) => {
    const nTrain = typeof counts.train === 'number' ? counts.train : counts.train[label]!;
    const field = typeof counts.train === 'number' ? 'train_per_class' : `train_counts[${label}]`;
    const have = pool.trainPool.rows.length;
    if (have < nTrain) {
      throw new InputError(`class ${pool.id} (${pool.name}) has ${have} samples for train, but ${field} = ${nTrain}`, pool.where, field);
    }
    const haveTest = pool.testPool.rows.length;
    // Valid comes from the train pool's rows left after train; where fewer than valid_per_class are
    // left (a class whose train pool is used up), it comes from the held-out rows after the test rows.
    const validHeldOut = have - nTrain < counts.valid;
    if (validHeldOut && typeof counts.train === 'number') {
      throw new InputError(
        `class ${pool.id} (${pool.name}) has ${have} samples for train+valid, but train_per_class + valid_per_class = ${nTrain} + ${counts.valid} = ${nTrain + counts.valid}`,
        pool.where,
        'valid_per_class',
      );
    }
    const needHeld = counts.test + (validHeldOut ? counts.valid : 0);
    if (haveTest < needHeld) {
      throw new InputError(
        validHeldOut
          ? `class ${pool.id} (${pool.name}): ${field} = ${nTrain} leaves ${have - nTrain} train-pool rows for valid, and its ${haveTest} held-out rows cannot hold test_per_class + valid_per_class = ${counts.test} + ${counts.valid}`
          : `class ${pool.id} (${pool.name}) has ${haveTest} test samples, but test_per_class = ${counts.test}`,
        pool.where,
        validHeldOut ? field : 'test_per_class',
      );
    }
    const rng = Rng.derive(seed, `split:${pool.id}`);
    const p = rng.permutation(have);
    for (let i = 0; i < nTrain; i++) picks.train.push({ set: pool.trainPool, k: p[i]!, label });
    if (!validHeldOut) for (let i = nTrain; i < nTrain + counts.valid; i++) picks.valid.push({ set: pool.trainPool, k: p[i]!, label });
    const q = rng.permutation(haveTest);
    for (let i = 0; i < counts.test; i++) picks.test.push({ set: pool.testPool, k: q[i]!, label });
    if (validHeldOut) for (let i = counts.test; i < counts.test + counts.valid; i++) picks.valid.push({ set: pool.testPool, k: q[i]!, label });
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
