import * as tf from '@tensorflow/tfjs';
import { Rng } from '../util/rng.js';
import { InputError } from '../util/errors.js';

/**
 * Center loss exactly as the seed's CenterLoss / CenterLossFunction (Wen et al., ECCV 2016):
 *
 *   forward      L = sum_i ||x_i - c_{y_i}||^2 / 2 / B        (B = batch size, or 1 if !sizeAverage)
 *   d L / d x_i  = upstream * (x_i - c_{y_i}) / B
 *   centers grad = sum_{i: y_i = j} (c_j - x_i) / (1 + n_j)  (NOT scaled by upstream nor by B,
 *                                                            so lambda does not slow the centers)
 */

/**
 * Center loss with the seed's custom feature gradient. `labels` int32 [B]; returns a scalar. With
 * `mask` (float [B] of 0/1, a constant) only the masked samples count; B stays the batch size.
 */
export function centerLoss(features: tf.Tensor2D, labels: tf.Tensor1D, centers: tf.Tensor2D, sizeAverage = true, mask?: tf.Tensor1D): tf.Scalar {
  const divisor = sizeAverage ? features.shape[0] : 1;
  const centersBatch = tf.gather(centers, labels);
  const f = tf.customGrad(((x: tf.Tensor, save: tf.GradSaveFunc) => {
    const diff = mask ? tf.mul(tf.sub(x, centersBatch), tf.expandDims(mask, 1)) : tf.sub(x, centersBatch);
    save([diff]);
    const value = tf.div(tf.sum(tf.square(diff)), 2 * divisor) as tf.Scalar;
    return {
      value,
      gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => [tf.mul(dy as tf.Tensor, tf.div(saved[0]!, divisor))],
    };
  }) as unknown as Parameters<typeof tf.customGrad>[0]);
  return f(features) as tf.Scalar;
}

/**
 * The seed's gradient for the centers: sum_{i:y_i=j}(c_j - x_i) / (1 + n_j); zero for absent classes.
 * With `mask` only the masked samples count (in the sums and in n_j).
 */
export function centerGradient(features: tf.Tensor2D, labels: tf.Tensor1D, centers: tf.Tensor2D, mask?: tf.Tensor1D): tf.Tensor2D {
  return tf.tidy(() => {
    const k = centers.shape[0];
    // tf.oneHot(..., 'float32') is wrong on wasm: build int32, then cast.
    const full = tf.cast(tf.oneHot(tf.cast(labels, 'int32'), k), 'float32') as tf.Tensor2D; // [B, K]
    const onehot = mask ? (tf.mul(full, tf.expandDims(mask, 1)) as tf.Tensor2D) : full;
    const diff = tf.sub(tf.matMul(onehot, centers), features); // c_{y_i} - x_i
    const sums = tf.matMul(onehot, diff, true, false); // [K, D]
    const counts = tf.add(tf.sum(onehot, 0), 1).reshape([k, 1]);
    return tf.div(sums, counts) as tf.Tensor2D;
  });
}

/** Centers initialised like `nn.init.kaiming_normal_(centers.t())`: fan_in = num_classes, std = sqrt(2 / K). */
export function initCenters(numClasses: number, featDim: number, seed: number): Float32Array {
  const rng = Rng.derive(seed, 'centers-init');
  const std = Math.sqrt(2 / numClasses);
  const out = new Float32Array(numClasses * featDim);
  for (let i = 0; i < out.length; i++) out[i] = rng.normal() * std;
  return out;
}

let centersCounter = 0;

export interface CenterLossOptions {
  numClasses: number;
  featDim: number;
  /** Divide by the batch size (the seed's default). */
  sizeAverage?: boolean;
  /** Learning rate of the centers' plain SGD (the seed's alpha). */
  alpha?: number;
  seed?: number;
  /** Initial centers (row-major [numClasses, featDim]); default kaiming_normal_ as the seed. */
  init?: Float32Array;
}

/**
 * The seed's CenterLoss module plus its own optimiser (torch.optim.SGD(centers, alpha): plain SGD).
 * Use in your own tfjs loop:
 *
 *   const cl = new CenterLossModule({ numClasses: 8, featDim: 512, alpha: 0.5 });
 *   const { grads } = tf.variableGrads(() => tf.add(ce, tf.mul(lamb, cl.loss(features, labels))));
 *   cl.step(features, labels);      // centers -= alpha * grad_centers
 */
export class CenterLossModule {
  readonly centers: tf.Variable<tf.Rank.R2>;
  readonly numClasses: number;
  readonly featDim: number;
  readonly sizeAverage: boolean;
  alpha: number;

  constructor(opts: CenterLossOptions) {
    this.numClasses = opts.numClasses;
    this.featDim = opts.featDim;
    this.sizeAverage = opts.sizeAverage ?? true;
    this.alpha = opts.alpha ?? 0.5;
    const init = opts.init ?? initCenters(opts.numClasses, opts.featDim, opts.seed ?? 0);
    if (init.length !== opts.numClasses * opts.featDim) {
      throw new InputError(`initial centers have ${init.length} values, expected ${opts.numClasses}x${opts.featDim}`, undefined, 'centers');
    }
    const name = `centers${++centersCounter}`;
    this.centers = tf.tidy(() => tf.variable(tf.tensor2d(init, [opts.numClasses, opts.featDim]), false, name));
  }

  /** The seed's feature-dim check. */
  checkFeatures(features: tf.Tensor): void {
    const d = features.shape.slice(1).reduce((a, b) => a * b, 1);
    if (d !== this.featDim) {
      throw new InputError(`Center's dim: ${this.featDim} should be equal to input feature's dim: ${d}`, undefined, 'feat_dim');
    }
  }

  loss(features: tf.Tensor, labels: tf.Tensor1D): tf.Scalar {
    this.checkFeatures(features);
    const f = features.reshape([features.shape[0]!, this.featDim]) as tf.Tensor2D;
    return centerLoss(f, labels, this.centers, this.sizeAverage);
  }

  gradient(features: tf.Tensor, labels: tf.Tensor1D): tf.Tensor2D {
    this.checkFeatures(features);
    return tf.tidy(() => centerGradient(features.reshape([features.shape[0]!, this.featDim]) as tf.Tensor2D, labels, this.centers));
  }

  /** One plain SGD step of the centers with lr (default alpha), using the current (pre-step) centers. */
  step(features: tf.Tensor, labels: tf.Tensor1D, lr = this.alpha): void {
    tf.tidy(() => {
      const g = this.gradient(features, labels);
      this.centers.assign(tf.sub(this.centers, tf.mul(g, lr)) as tf.Tensor2D);
    });
  }

  dispose(): void {
    this.centers.dispose();
  }
}
