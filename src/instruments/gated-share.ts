import * as tf from '@tensorflow/tfjs';
import { lastActivation } from '../model/resnet.js';
import type { Instrument, Values } from './types.js';

/**
 * What the features cannot reduce of the center loss through the last activation.
 *  - gated_share: the share of sum_{i,d} (x_id - c_{y_i,d})^2 on feature entries that are exactly 0
 *    (a ReLU channel off at every position: its gradient is blocked, only the center can move);
 *  - gated_pass: ||gradient of the center loss passing the last activation|| / ||gradient arriving
 *    at its output||. The features are the spatial mean of that output a (H x W per channel), so
 *    the gradient arriving at a[b,h,w,d] is G[b,d] / (H W) with G = dL/dx ∝ x - c_y, and it passes
 *    times f(a): ReLU 1 where a > 0 else 0; PReLU and leaky 1 where a > 0 else the slope; ELU 1
 *    where a > 0 else a + 1. So gated_pass^2 = sum G^2 mean_hw f^2 / sum G^2 (1: nothing blocked).
 * Per step in the recorded windows and per epoch; with model.feature_norm gated_pass is not defined.
 */
export function gatedShare(): Instrument {
  let acc = { zero: 0, all: 0, pass: 0, arrive: 0 };
  return {
    name: 'gated-share',
    description: 'share of the center loss on exactly-zero features (gated_share); center-loss gradient passing the last activation / arriving (gated_pass)',
    needs: ['features', 'centers', 'activations'],
    begin() {
      acc = { zero: 0, all: 0, pass: 0, arrive: 0 };
    },
    batch(v) {
      const f = v.features();
      const c = v.centersBefore();
      const d = v.featDim;
      const b = v.batchSize;
      const g = new Float64Array(b * d);
      let zero = 0;
      let all = 0;
      for (let i = 0; i < b; i++) {
        const y = v.labels[i]!;
        for (let j = 0; j < d; j++) {
          const x = f[i * d + j]!;
          const e = x - c[y * d + j]!;
          g[i * d + j] = e;
          all += e * e;
          if (x === 0) zero += e * e;
        }
      }
      let pass = NaN;
      let arrive = NaN;
      const acts = v.activations();
      const layer = lastActivation(v.model);
      const a = acts.find((t) => t.name === layer.name)?.t;
      if (a && !v.model.config.feature_norm && a.shape[3] === d) {
        const m2 = passFactorMeanSq(a, layer.kind, layer.slope, v.model.config.negative_slope);
        pass = 0;
        arrive = 0;
        for (let i = 0; i < b * d; i++) {
          pass += g[i]! * g[i]! * m2[i]!;
          arrive += g[i]! * g[i]!;
        }
      }
      acc.zero += zero;
      acc.all += all;
      acc.pass += pass;
      acc.arrive += arrive;
      if (v.record) return out(zero, all, pass, arrive);
    },
    end() {
      return out(acc.zero, acc.all, acc.pass, acc.arrive);
    },
  };
}

function out(zero: number, all: number, pass: number, arrive: number): Values {
  const o: Values = { gated_share: all > 0 ? zero / all : NaN };
  if (Number.isFinite(pass) && arrive > 0) o.gated_pass = Math.sqrt(pass / arrive);
  return o;
}

/** [B*C] mean over positions of f(a)^2, the squared local derivative of the activation at its output a [B,H,W,C]. */
export function passFactorMeanSq(a: tf.Tensor4D, kind: string, slope: tf.Variable | undefined, negativeSlope: number | undefined): Float32Array {
  return tf.tidy(() => {
    const pos = tf.cast(tf.greater(a, 0), 'float32');
    let f: tf.Tensor;
    switch (kind) {
      case 'relu':
        f = pos;
        break;
      case 'prelu':
      case 'prelu_channel':
      case 'leaky_relu': {
        const s = slope ? (slope as tf.Tensor) : tf.scalar(negativeSlope ?? 0.01);
        f = tf.add(pos, tf.mul(tf.sub(1, pos), s));
        break;
      }
      default: // elu: a + 1 on the negative side
        f = tf.add(pos, tf.mul(tf.sub(1, pos), tf.add(a, 1)));
    }
    return tf.mean(tf.square(f), [1, 2]).dataSync() as Float32Array;
  });
}
