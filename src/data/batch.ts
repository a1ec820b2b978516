/** Batching and augmentation. */
import type { Rng } from '../util/rng.js';
import type { AugmentConfig, Dataset } from './types.js';

/** A shuffled order of 0..n-1 for one epoch. */
export function epochOrder(n: number, rng: Rng): Int32Array {
  return rng.permutation(n);
}

/**
 * Copy samples idx[start..end) (end clipped to idx.length) into a fresh batch; `yTrue` (the true
 * labels) comes along where the dataset has flipped labels.
 */
export function gatherBatch(ds: Dataset, idx: Int32Array, start: number, end: number): { x: Float32Array; y: Int32Array; yTrue?: Int32Array } {
  const e = Math.min(end, idx.length);
  const s = Math.max(0, Math.min(start, e));
  const rowLen = ds.height * ds.width * ds.channels;
  const m = e - s;
  const x = new Float32Array(m * rowLen);
  const y = new Int32Array(m);
  const yTrue = ds.yClean ? new Int32Array(m) : undefined;
  for (let i = 0; i < m; i++) {
    const k = idx[s + i]!;
    if (!(k >= 0 && k < ds.n)) throw new RangeError(`gatherBatch: index ${k} out of range 0..${ds.n - 1}`);
    x.set(ds.x.subarray(k * rowLen, (k + 1) * rowLen), i * rowLen);
    y[i] = ds.y[k]!;
    if (yTrue) yTrue[i] = ds.yClean![k]!;
  }
  return yTrue ? { x, y, yTrue } : { x, y };
}

/**
 * Augment a NHWC batch; returns a new array (x is not modified). Per sample, in this draw order:
 * horizontal flip with probability 1/2 (if aug.flip), a translation by integers dy, dx uniform in
 * [-shift, shift] (if aug.shift > 0) with vacated pixels set to `background` (the normalised value
 * of a 0 pixel), then gaussian noise of std aug.noise on every value (if aug.noise > 0).
 */
export function augmentBatch(
  x: Float32Array,
  n: number,
  h: number,
  w: number,
  c: number,
  aug: AugmentConfig,
  background: number,
  rng: Rng,
): Float32Array {
  const rowLen = h * w * c;
  if (x.length !== n * rowLen) throw new RangeError(`augmentBatch: x has ${x.length} values, expected ${n}*${h}*${w}*${c}`);
  const shift = Math.max(0, Math.floor(aug.shift));
  if (!aug.flip && shift === 0 && !(aug.noise > 0)) return x.slice();
  const out = new Float32Array(x.length);
  for (let s = 0; s < n; s++) {
    const flip = aug.flip && rng.next() < 0.5;
    const dy = shift > 0 ? rng.int(2 * shift + 1) - shift : 0;
    const dx = shift > 0 ? rng.int(2 * shift + 1) - shift : 0;
    const base = s * rowLen;
    for (let yy = 0; yy < h; yy++) {
      const sy = yy - dy;
      for (let xx = 0; xx < w; xx++) {
        const o = base + (yy * w + xx) * c;
        const sxShift = xx - dx;
        const sx = flip ? w - 1 - sxShift : sxShift;
        if (sy < 0 || sy >= h || sxShift < 0 || sxShift >= w) {
          for (let k = 0; k < c; k++) out[o + k] = background;
        } else {
          const from = base + (sy * w + sx) * c;
          for (let k = 0; k < c; k++) out[o + k] = x[from + k]!;
        }
      }
    }
    if (aug.noise > 0) {
      for (let i = base; i < base + rowLen; i++) out[i] = out[i]! + aug.noise * rng.normal();
    }
  }
  return out;
}
