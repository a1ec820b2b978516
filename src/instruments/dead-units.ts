import * as tf from '@tensorflow/tfjs';
import { ACT_STATS } from '../backend/index.js';
import type { Instrument, Values } from './types.js';

/**
 * Dead / inactive units per activation layer. A unit is a channel. Per layer and pass:
 *  - zero_frac/<layer>: mean fraction of outputs <= 0 per sample (ReLU: zeros; PReLU/leaky/ELU:
 *    the negative side);
 *  - dead_frac/<layer>: fraction of channels whose output is <= 0 at every position of every sample
 *    of the pass (dead for ReLU, entirely on the negative side for PReLU);
 *  - died/<layer>, revived/<layer>: channels that became dead / stopped being dead since the
 *    previous epoch's pass of the same split.
 * Reductions run on the backend (one pass per activation where the ACT_STATS kernel is
 * registered: wasm and cpu); only per-channel vectors and one count per layer are read back.
 */
export function deadUnits(): Instrument {
  let maxes = new Map<string, tf.Tensor1D>();
  let zeroSum = new Map<string, number>();
  let n = 0;
  const prevDead = new Map<string, Uint8Array>();
  let split = 'train';
  const disposeAll = () => {
    for (const t of maxes.values()) t.dispose();
    maxes = new Map();
  };
  return {
    name: 'dead-units',
    description: 'per activation layer: zero/negative fraction per sample, dead channels, died/revived since last epoch',
    needs: ['activations'],
    begin(s) {
      split = s;
      disposeAll();
      zeroSum = new Map();
      n = 0;
    },
    batch(v) {
      const acts = v.activations();
      const step: Values = {};
      let fracs: Float32Array;
      let chMax: tf.Tensor1D[];
      if (tf.getKernel(ACT_STATS, tf.getBackend())) {
        // One pass per activation (src/backend/added-kernels.ts): channel max and count <= 0.
        const r = acts.map((a) => tf.engine().runKernel(ACT_STATS, { x: a.t }) as unknown as [tf.Tensor1D, tf.Tensor1D]);
        chMax = r.map((x) => x[0]);
        const counts = tf.tidy(() => tf.concat(r.map((x) => x[1])).dataSync() as Float32Array);
        tf.dispose(r.map((x) => x[1]));
        fracs = Float32Array.from(acts, (a, i) => counts[i]! / a.t.size);
      } else {
        const fr = tf.tidy(() => acts.map((a) => tf.mean(tf.cast(tf.lessEqual(a.t, 0), 'float32'))));
        fracs = tf.tidy(() => tf.stack(fr).dataSync() as Float32Array);
        tf.dispose(fr);
        chMax = acts.map((a) => tf.tidy(() => tf.max(a.t, [0, 1, 2]) as tf.Tensor1D));
      }
      acts.forEach((a, i) => {
        const m = chMax[i]!;
        const prev = maxes.get(a.name);
        if (prev) {
          maxes.set(a.name, tf.tidy(() => tf.maximum(prev, m)));
          prev.dispose();
          m.dispose();
        } else maxes.set(a.name, m);
        zeroSum.set(a.name, (zeroSum.get(a.name) ?? 0) + fracs[i]! * v.batchSize);
        if (v.record) step[`zero_frac/${a.name}`] = fracs[i]!;
      });
      n += v.batchSize;
      return v.record ? step : undefined;
    },
    end() {
      const out: Values = {};
      let totalDead = 0;
      let totalUnits = 0;
      for (const [name, t] of maxes) {
        const mx = t.dataSync() as Float32Array;
        const dead = new Uint8Array(mx.length);
        let nd = 0;
        for (let c = 0; c < mx.length; c++) if (mx[c]! <= 0) (dead[c] = 1), nd++;
        out[`dead_frac/${name}`] = nd / mx.length;
        out[`zero_frac/${name}`] = (zeroSum.get(name) ?? 0) / Math.max(1, n);
        totalDead += nd;
        totalUnits += mx.length;
        const key = `${split}|${name}`;
        const prev = prevDead.get(key);
        if (prev) {
          let died = 0;
          let revived = 0;
          for (let c = 0; c < dead.length; c++) {
            if (dead[c] && !prev[c]) died++;
            if (!dead[c] && prev[c]) revived++;
          }
          out[`died/${name}`] = died;
          out[`revived/${name}`] = revived;
        }
        prevDead.set(key, dead);
      }
      if (totalUnits > 0) out.dead_frac = totalDead / totalUnits;
      let z = 0;
      for (const v of zeroSum.values()) z += v;
      if (zeroSum.size > 0) out.zero_frac = z / Math.max(1, n) / zeroSum.size;
      disposeAll();
      return out;
    },
    dispose: disposeAll,
  };
}
