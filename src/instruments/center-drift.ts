import type { Instrument, Values } from './types.js';

function norm(a: Float32Array, off: number, d: number, b?: Float32Array): number {
  let s = 0;
  for (let j = 0; j < d; j++) s += (a[off + j]! - (b ? b[off + j]! : 0)) ** 2;
  return Math.sqrt(s);
}

/**
 * Center drift: ||c_t - c_{t-1}|| per step (mean over classes) and over the epoch per class
 * (||c_end - c_start||); center norms. Train split only (centers do not move in eval).
 */
export function centerDrift(): Instrument {
  let start: Float32Array | undefined;
  let last: Float32Array | undefined;
  let stepSum = 0;
  let steps = 0;
  let k = 0;
  let d = 0;
  return {
    name: 'center-drift',
    description: 'per-step and per-epoch center movement, center norms',
    needs: ['centers'],
    splits: ['train'],
    begin() {
      start = undefined;
      last = undefined;
      stepSum = 0;
      steps = 0;
    },
    batch(v) {
      k = v.numClasses;
      d = v.featDim;
      const before = v.centersBefore();
      const after = v.centersAfter();
      start ??= before.slice();
      last = after;
      let s = 0;
      for (let c = 0; c < k; c++) s += norm(after, c * d, d, before);
      stepSum += s / k;
      steps++;
      if (v.record) return { center_step_drift: s / k };
    },
    end() {
      const out: Values = {};
      if (!start || !last) return out;
      let drift = 0;
      let cn = 0;
      for (let c = 0; c < k; c++) {
        const dc = norm(last, c * d, d, start);
        const nc = norm(last, c * d, d);
        out[`center_drift/c${c}`] = dc;
        out[`center_norm/c${c}`] = nc;
        drift += dc / k;
        cn += nc / k;
      }
      out.center_drift = drift;
      out.center_norm = cn;
      out.center_step_drift = stepSum / Math.max(1, steps);
      return out;
    },
  };
}
