/**
 * Kernels spikeprobe adds to tfjs (their names: ./ops.ts), for the 'wasm' and 'cpu' backends
 * (tfjs 4.22): on wasm the compiled module's passes where they apply (./compiled-bn.ts,
 * ./compiled-kernels.ts), else TypeScript loops over the backend's own memory (the wasm heap, the
 * cpu backend's arrays).
 *
 *  - SpikeprobeBatchNormStats / SpikeprobeBatchNormApply / SpikeprobeBatchNormGrad: training-mode
 *    BatchNorm over the last (channel) axis, PyTorch's CPU algorithm: per-channel mean and biased
 *    variance by two passes in float64; y = x * a + b with a = gamma * invstd, b = beta - mean * a;
 *    backward dx = (dy - sum(dy)/M - (x - mean) * sum(dy * (x - mean)) * invstd^2 / M) * invstd * gamma,
 *    dgamma = sum(dy * (x - mean)) * invstd, dbeta = sum(dy). Replaces a composition of ~25 tfjs
 *    kernels per layer (moments, broadcast sub/mul/add and the reductions their gradients need)
 *    by 2 passes forward and 2 backward. Used by src/model/resnet.ts through tf.customGrad.
 *    Optionally fused with what follows a ResNet's BatchNorm: BN_APPLY takes a residual `r` added
 *    before a ReLU (attr relu), BN_GRAD the ReLU's output `y` (the gradient taken is dy * step(y))
 *    and returns that masked gradient too (attr g: the residual's gradient); the same float32
 *    operations in the same order as the unfused kernels (tested). On wasm with C % 4 == 0 the
 *    passes run compiled, split over the thread pool on a shared heap.
 *  - SpikeprobeActStats: per-channel max and the count of values <= 0 (the dead-units instrument).
 *  - SpikeprobeReluGrad: ReLU's gradient dy * step(x) in one pass; tfjs' Relu gradient uses it
 *    where the backend has it.
 *  - SpikeprobeBatchNormRunning: PyTorch's running-statistics update of one layer in one kernel.
 *  - SpikeprobeSgdStep (wasm with the compiled module): one torch.optim.SGD step of one parameter.
 *
 * On a backend without them (tfjs-node, webgl) the model, trainer and instruments use plain tfjs ops.
 */
import * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { fastActStats, fastReluGrad, sgdStepKernel } from './compiled-kernels.js';
import { bnApplyScales, bnGradScales, wasmBnApply, wasmBnGrad, wasmBnStats } from './compiled-bn.js';
import { buffers, checkFloat, put, type AnyBackend, type Info } from './kernel-io.js';
import { convModule } from './compiled.js';
import { ACT_STATS, BN_APPLY, BN_GRAD, BN_RUNNING, BN_STATS, RELU_GRAD, SGD_STEP } from './ops.js';

export { ACT_STATS, BN_APPLY, BN_GRAD, BN_RUNNING, BN_STATS, RELU_GRAD, SGD_STEP } from './ops.js';

// ---------------------------------------------------------------------------
// BatchNorm (training mode), channels last
// ---------------------------------------------------------------------------

/** Per-channel mean and biased variance (float64 accumulation, centred second pass). */
export function bnStatsArrays(x: Float32Array, C: number, mean: Float32Array, variance: Float32Array): void {
  const n = x.length;
  const M = n / C;
  const s = new Float64Array(C);
  for (let i = 0; i < n; i += C) for (let c = 0; c < C; c++) s[c] += x[i + c]!;
  for (let c = 0; c < C; c++) s[c] /= M;
  const q = new Float64Array(C);
  for (let i = 0; i < n; i += C) {
    for (let c = 0; c < C; c++) {
      const d = x[i + c]! - s[c]!;
      q[c] += d * d;
    }
  }
  for (let c = 0; c < C; c++) {
    mean[c] = s[c]!;
    variance[c] = q[c]! / M;
  }
}


function bnStats(args: { inputs: tf.NamedTensorInfoMap; backend: {} }): Info[] {
  const { x } = args.inputs as { x: Info };
  checkFloat(BN_STATS, x);
  const fast = wasmBnStats(args.backend, x);
  if (fast) return fast;
  const C = x.shape[x.shape.length - 1]!;
  const { ins, outs, infos } = buffers(args.backend as AnyBackend, [x], [[C], [C]]);
  bnStatsArrays(ins[0]!, C, outs[0]!, outs[1]!);
  return infos;
}

/** Attributes of the BatchNorm kernels: eps; relu (apply: ReLU after); g (grad: also output dy * step(y)). */
interface BnAttrs {
  eps: number;
  relu: boolean;
  g: boolean;
}
const bnAttrs = (a?: tf.NamedAttrMap): BnAttrs => ({
  eps: (a?.eps as number | undefined) ?? 1e-5,
  relu: a?.relu === true,
  g: a?.g === true,
});

/** ReLU's gradient through output y (tfjs' dy * step(x): 1 where > 0, NaN where NaN, else 0). */
const reluStep = (v: number) => (v !== v ? v : v > 0 ? 1 : 0);

/** Inputs x, mean, variance, gamma, beta and optionally r (added before the ReLU); attrs eps, relu. */
function bnApply(args: { inputs: tf.NamedTensorInfoMap; backend: {}; attrs?: tf.NamedAttrMap }): Info {
  const { x, mean, variance, gamma, beta, r } = args.inputs as Record<'x' | 'mean' | 'variance' | 'gamma' | 'beta', Info> & { r?: Info };
  checkFloat(BN_APPLY, x, mean, variance, gamma, beta, ...(r ? [r] : []));
  const { eps, relu } = bnAttrs(args.attrs);
  const fast = wasmBnApply(args.backend, x, mean, variance, gamma, beta, r, relu, eps);
  if (fast) return fast;
  const C = x.shape[x.shape.length - 1]!;
  const { ins, outs, infos } = buffers(args.backend as AnyBackend, [x, mean, variance, gamma, beta, ...(r ? [r] : [])], [x.shape]);
  const [xv, mv, vv, gv, bv, rv] = ins as [Float32Array, Float32Array, Float32Array, Float32Array, Float32Array, Float32Array | undefined];
  if (rv && rv.length !== xv.length) throw new Error(`${BN_APPLY}: residual shape differs from x`);
  const y = outs[0]!;
  const a = new Float32Array(C);
  const b = new Float32Array(C);
  bnApplyScales(mv, vv, gv, bv, eps, a, b);
  const n = xv.length;
  // Float32 after every operation, as the unfused kernels round.
  const f = Math.fround;
  for (let i = 0; i < n; i += C) {
    for (let c = 0; c < C; c++) {
      let v = f(f(xv[i + c]! * a[c]!) + b[c]!);
      if (rv) v = f(v + rv[i + c]!);
      y[i + c] = relu ? Math.max(0, v) : v; // tfjs' Relu: NaN kept, -0 to 0
    }
  }
  return infos[0]!;
}

/**
 * Inputs dy, x, mean, variance, gamma and optionally y (the output of a ReLU after the BatchNorm:
 * the gradient taken is g = dy * step(y)); outputs dx, dgamma, dbeta, and g where attrs.g.
 */
function bnGrad(args: { inputs: tf.NamedTensorInfoMap; backend: {}; attrs?: tf.NamedAttrMap }): Info[] {
  const { dy, x, mean, variance, gamma, y } = args.inputs as Record<'dy' | 'x' | 'mean' | 'variance' | 'gamma', Info> & { y?: Info };
  checkFloat(BN_GRAD, dy, x, mean, variance, gamma, ...(y ? [y] : []));
  const { eps, g: wantG } = bnAttrs(args.attrs);
  const fast = wasmBnGrad(args.backend, dy, x, mean, variance, gamma, y, wantG, eps);
  if (fast) return fast;
  const C = x.shape[x.shape.length - 1]!;
  const { ins, outs, infos } = buffers(args.backend as AnyBackend, [dy, x, mean, variance, gamma, ...(y ? [y] : [])],
    [x.shape, [C], [C], ...(wantG ? [x.shape] : [])]);
  const [dyv, xv, mv, vv, gv, yv] = ins as [Float32Array, Float32Array, Float32Array, Float32Array, Float32Array, Float32Array | undefined];
  const [dx, dgamma, dbeta] = outs as [Float32Array, Float32Array, Float32Array];
  const n = xv.length;
  if (dyv.length !== n || (yv && yv.length !== n)) throw new Error(`${BN_GRAD}: dy/y shape differs from x`);
  const gv2 = yv ? (outs[3] ?? new Float32Array(n)) : dyv;
  if (yv) for (let i = 0; i < n; i++) gv2[i] = dyv[i]! * reluStep(yv[i]!);
  else if (outs[3]) outs[3].set(dyv);
  const M = n / C;
  const sum = new Float64Array(C);
  const dot = new Float64Array(C);
  for (let i = 0; i < n; i += C) {
    for (let c = 0; c < C; c++) {
      const g = gv2[i + c]!;
      sum[c] += g;
      dot[c] += (xv[i + c]! - mv[c]!) * g;
    }
  }
  const gm = new Float64Array(C);
  const k = new Float64Array(C);
  const s = new Float64Array(C);
  bnGradScales(sum, dot, vv, gv, eps, M, { gm, k, sc: s, dgamma, dbeta });
  for (let i = 0; i < n; i += C) {
    for (let c = 0; c < C; c++) dx[i + c] = (gv2[i + c]! - gm[c]! - (xv[i + c]! - mv[c]!) * k[c]!) * s[c]!;
  }
  return infos;
}

// ---------------------------------------------------------------------------
// Activation statistics (the dead-units instrument)
// ---------------------------------------------------------------------------

/**
 * x [..., C] -> [max over all but the last axis [C], count of elements <= 0 [1]] (float32; NaN
 * is not <= 0, and a NaN channel's max is NaN, as tf.max). One pass instead of a compare, a cast,
 * a mean and a max over non-inner axes (a transpose) per activation and step.
 */
function actStats(args: { inputs: tf.NamedTensorInfoMap; backend: {} }): Info[] {
  const { x } = args.inputs as { x: Info };
  checkFloat(ACT_STATS, x);
  const C = x.shape[x.shape.length - 1] ?? 1;
  if ('typedArrayFromHeap' in args.backend) {
    const b = args.backend as BackendWasm;
    const r = fastActStats(b, x);
    if (r) {
      const cnt = b.makeOutput([1], 'float32');
      (b.typedArrayFromHeap(cnt) as Float32Array)[0] = r.count;
      return [r.max, cnt];
    }
  }
  const { ins, outs, infos } = buffers(args.backend as AnyBackend, [x], [[C], [1]]);
  const xv = ins[0]!;
  const mx = outs[0]!;
  mx.fill(-Infinity);
  let count = 0;
  for (let i = 0; i < xv.length; i += C) {
    for (let c = 0; c < C; c++) {
      const v = xv[i + c]!;
      const m = mx[c]!;
      if (!Number.isNaN(m) && (Number.isNaN(v) || v > m)) mx[c] = v;
      if (v <= 0) count++;
    }
  }
  outs[1]![0] = count;
  return infos;
}

// ---------------------------------------------------------------------------
// ReLU gradient
// ---------------------------------------------------------------------------

/** dy * step(x): 1 where x > 0, NaN where x is NaN, else 0 (tfjs' Relu gradient to the bit). */
function reluGrad(args: { inputs: tf.NamedTensorInfoMap; backend: {} }): Info {
  const { dy, x } = args.inputs as { dy: Info; x: Info };
  checkFloat(RELU_GRAD, dy, x);
  if ('typedArrayFromHeap' in args.backend) {
    const r = fastReluGrad(args.backend as BackendWasm, dy, x);
    if (r) return r;
  }
  const { ins, outs, infos } = buffers(args.backend as AnyBackend, [dy, x], [x.shape]);
  const [g, xv] = ins as [Float32Array, Float32Array];
  const out = outs[0]!;
  for (let i = 0; i < out.length; i++) {
    const v = xv[i]!;
    out[i] = g[i]! * (Number.isNaN(v) ? v : v > 0 ? 1 : 0);
  }
  return infos[0]!;
}

/**
 * Relu's gradient through RELU_GRAD where the current backend has it (one pass instead of Step,
 * Cast and Multiply), else tfjs' own formula. Same values either way (tested).
 */
let reluGradientRegistered = false;
function registerReluGradient(): void {
  if (reluGradientRegistered) return;
  reluGradientRegistered = true;
  tf.registerGradient({
    kernelName: tf.Relu,
    inputsToSave: ['x'],
    gradFunc: (dy, saved) => {
      const [x] = saved as [tf.Tensor];
      const g = dy as tf.Tensor;
      return {
        x: () =>
          tf.getKernel(RELU_GRAD, tf.getBackend()) ? (tf.engine().runKernel(RELU_GRAD, { dy: g, x }) as tf.Tensor) : tf.mul(g, tf.cast(tf.step(x), 'float32')),
      };
    },
  });
}

// ---------------------------------------------------------------------------
// BatchNorm running statistics
// ---------------------------------------------------------------------------

/**
 * Inputs runMean, runVar, mean, variance (float32 [C]); attrs momentum and factor (the unbiased
 * variance's count / (count - 1)); outputs [runMean * (1 - momentum) + mean * momentum,
 * runVar * (1 - momentum) + variance * factor * momentum]: the float32 operations of the tfjs ops
 * it replaces (each scalar and every product and sum rounded to float32: double rounding through
 * float64 is exact for these), one kernel instead of seven per layer and step.
 */
function bnRunning(args: { inputs: tf.NamedTensorInfoMap; backend: {}; attrs?: tf.NamedAttrMap }): Info[] {
  const { runMean, runVar, mean, variance } = args.inputs as Record<'runMean' | 'runVar' | 'mean' | 'variance', Info>;
  checkFloat(BN_RUNNING, runMean, runVar, mean, variance);
  const { momentum, factor } = args.attrs as unknown as { momentum: number; factor: number };
  const C = mean.shape[0]!;
  const { ins, outs, infos } = buffers(args.backend as AnyBackend, [runMean, runVar, mean, variance], [[C], [C]]);
  const [rm, rv, mv, vv] = ins as [Float32Array, Float32Array, Float32Array, Float32Array];
  const f = Math.fround;
  const [keep, m, k] = [f(1 - momentum), f(momentum), f(factor)];
  for (let c = 0; c < C; c++) {
    outs[0]![c] = f(f(rm[c]! * keep) + f(mv[c]! * m));
    outs[1]![c] = f(f(rv[c]! * keep) + f(f(vv[c]! * k) * m));
  }
  return infos;
}

// ---------------------------------------------------------------------------
// Registration
// ---------------------------------------------------------------------------

const ADDED: ReadonlyArray<{ name: string; func: tf.KernelFunc }> = [
  { name: BN_STATS, func: bnStats as unknown as tf.KernelFunc },
  { name: BN_APPLY, func: bnApply as unknown as tf.KernelFunc },
  { name: BN_GRAD, func: bnGrad as unknown as tf.KernelFunc },
  { name: ACT_STATS, func: actStats as unknown as tf.KernelFunc },
  { name: RELU_GRAD, func: reluGrad as unknown as tf.KernelFunc },
  { name: BN_RUNNING, func: bnRunning as unknown as tf.KernelFunc },
];

/** Register the kernels above for `backendName` (idempotent); returns their names. */
export function registerAddedKernels(backendName: 'wasm' | 'cpu'): string[] {
  const kernels = backendName === 'wasm' && convModule() ? [...ADDED, { name: SGD_STEP, func: sgdStepKernel as tf.KernelFunc }] : ADDED;
  for (const { name, func } of kernels) put(name, backendName, func);
  registerReluGradient();
  return kernels.map((k) => k.name);
}

/** Whether the fused BatchNorm kernels can run on the current backend. */
export function hasFastBatchNorm(): boolean {
  const b = tf.getBackend();
  return tf.getKernel(BN_GRAD, b) !== undefined && tf.getKernel(BN_STATS, b) !== undefined && tf.getKernel(BN_APPLY, b) !== undefined;
}
