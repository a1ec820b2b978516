/**
 * BatchNorm in training through the kernels spikeprobe adds (./added-kernels.ts, names in
 * ./ops.ts), for the model: the fused forward and analytic backward, and PyTorch's running-statistics
 * update in one kernel. The model asks hasFastBatchNorm() / hasFusedRunningStats() and uses plain
 * tfjs ops where the backend lacks them.
 */
import * as tf from '@tensorflow/tfjs';
import { BN_APPLY, BN_GRAD, BN_RUNNING, BN_STATS } from './ops.js';

/**
 * Training-mode BatchNorm (channels last) with the fused kernels of ./added-kernels.ts: batch statistics
 * (not on the tape: the analytic backward below already accounts for them), then
 * y = x * gamma * invstd + (beta - mean * gamma * invstd) with PyTorch's analytic backward.
 * With `relu`, relu(BatchNorm(x) [+ residual]) in the same one kernel forward and one backward:
 * the backward masks dy with the output's step inside the BatchNorm gradient pass and returns
 * that masked gradient as the residual's; the same float32 operations in the same order as
 * BatchNorm, add and ReLU one after the other, so the same numbers (tested).
 */
export function batchNormTrainFused(h: tf.Tensor4D, gamma: tf.Tensor, beta: tf.Tensor, eps: number, relu = false, residual?: tf.Tensor4D): { y: tf.Tensor4D; mean: tf.Tensor1D; variance: tf.Tensor1D } {
  const [mean, variance] = tf.engine().runKernel(BN_STATS, { x: h }) as unknown as [tf.Tensor1D, tf.Tensor1D];
  const applyAttrs = { eps, relu } as unknown as tf.NamedAttrMap;
  const gradAttrs = { eps, g: residual !== undefined } as unknown as tf.NamedAttrMap;
  const f = tf.customGrad(((...args: unknown[]) => {
    const save = args.pop() as tf.GradSaveFunc;
    const [x, gamma, beta, r] = args as [tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor | undefined];
    const y = tf.engine().runKernel(BN_APPLY, { x, mean, variance, gamma, beta, ...(r ? { r } : {}) }, applyAttrs) as tf.Tensor;
    // Intermediates of the forward are disposed before the backward: save what it reads.
    save(relu ? [x, mean, variance, gamma, y] : [x, mean, variance, gamma]);
    return {
      value: y,
      gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => {
        const [xs, m, v, g, ys] = saved as [tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor | undefined];
        const inputs = { dy: dy as tf.Tensor, x: xs, mean: m, variance: v, gamma: g, ...(ys ? { y: ys } : {}) };
        return tf.engine().runKernel(BN_GRAD, inputs, gradAttrs) as tf.Tensor[];
      },
    };
  }) as unknown as Parameters<typeof tf.customGrad>[0]);
  const inputs = residual ? [h, gamma, beta, residual] : [h, gamma, beta];
  return { y: f(...inputs) as tf.Tensor4D, mean, variance };
}

/** Whether the current backend has the running-statistics kernel. */
export function hasFusedRunningStats(): boolean {
  return tf.getKernel(BN_RUNNING, tf.getBackend()) !== undefined;
}

/**
 * PyTorch's running-average update of one layer: [runMean * (1 - momentum) + mean * momentum,
 * runVar * (1 - momentum) + variance * factor * momentum] (factor: count / (count - 1), the
 * unbiased variance), in one kernel.
 */
export function runningStatsFused(runMean: tf.Tensor, runVar: tf.Tensor, mean: tf.Tensor, variance: tf.Tensor, momentum: number, factor: number): [tf.Tensor, tf.Tensor] {
  const attrs = { momentum, factor } as unknown as tf.NamedAttrMap;
  const [m, v] = tf.engine().runKernel(BN_RUNNING, { runMean, runVar, mean, variance }, attrs) as tf.Tensor[];
  return [m!, v!];
}
