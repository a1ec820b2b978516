/**
 * Speed kernels for training on the 'wasm' and 'cpu' backends (tfjs 4.22), written as plain
 * TypeScript loops over the backends' own memory (the wasm heap, the cpu backend's arrays):
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
 *    passes run compiled (./wasm-bn.ts: ./native/conv.c, split over the conv thread pool on a
 *    shared heap); elsewhere as TypeScript loops.
 *  - wasm Identity and same-dtype Cast: share the input's data (reference count) as the cpu and
 *    webgl backends do, instead of copying it. The engine clones every tensor it saves for the
 *    backward pass through Identity, so stock wasm copied every conv/mul/relu input of a step.
 *  - wasm Transpose: one strided-copy loop in WebAssembly (./wasm-simd.ts) after merging axes;
 *    stock wasm's is 5-10x slower and Conv2DBackpropFilter transposes x and dy on every call.
 *  - wasm Slice: a strided copy in WebAssembly; stock wasm's copies the whole input out of the
 *    heap first (a 9 MB copy to take the centre tap of a 3x3x512x512 filter).
 *  - wasm GatherV2 along axis 0: one row copy per index (stock computes every element's index).
 *  - wasm Max/Min/Sum/Mean over non-inner axes: the fast Transpose, then the stock reduction.
 *  - wasm LessEqual/Greater against a scalar: SIMD compare (PReLU masks, dead-unit counts).
 *  - wasm MaxPoolGrad: stock wasm's is ~10x slower than the forward pool; same semantics (each
 *    output's gradient goes to the first maximum of its window in row-major scan order, '>'
 *    comparisons as tfjs' cpu kernel).
 *
 * registerFastKernels() registers them for the backends that are registered (idempotent). On a
 * backend without them (tfjs-node, webgl) resnet.ts falls back to plain tfjs ops.
 */
import * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { fastActStats, fastMaxPoolGrad, fastReluGrad } from './wasm-conv.js';
import { bnApplyScales, bnGradScales, wasmBnApply, wasmBnGrad, wasmBnStats } from './wasm-bn.js';
import { simdOps, type SimdOps } from './wasm-simd.js';

import { ACT_STATS, BN_APPLY, BN_GRAD, BN_RUNNING, BN_STATS, RELU_GRAD } from './ops.js';

export { ACT_STATS, BN_APPLY, BN_GRAD, BN_RUNNING, BN_STATS, RELU_GRAD } from './ops.js';

type Info = tf.TensorInfo;
type AnyBackend = tf.KernelBackend;

interface CpuLike {
  readSync(dataId: object): unknown;
  makeTensorInfo(shape: number[], dtype: tf.DataType, values?: tf.backend_util.BackendValues): Info;
}

/**
 * Allocate float32 outputs, then take views of inputs and outputs. On wasm, allocation may grow
 * the heap (detaching earlier views), so every output is allocated before any view is taken.
 */
function buffers(backend: AnyBackend, ins: Info[], outShapes: number[][]): { ins: Float32Array[]; outs: Float32Array[]; infos: Info[] } {
  if (backend instanceof Object && 'typedArrayFromHeap' in backend) {
    const b = backend as unknown as BackendWasm;
    const infos = outShapes.map((s) => b.makeOutput(s, 'float32'));
    return {
      infos,
      outs: infos.map((i) => b.typedArrayFromHeap(i) as Float32Array),
      ins: ins.map((i) => b.typedArrayFromHeap(i) as Float32Array),
    };
  }
  const b = backend as unknown as CpuLike;
  const outs = outShapes.map((s) => new Float32Array(tf.util.sizeFromShape(s)));
  return {
    infos: outShapes.map((s, k) => b.makeTensorInfo(s, 'float32', outs[k])),
    outs,
    ins: ins.map((i) => b.readSync(i.dataId) as Float32Array),
  };
}

function checkFloat(name: string, ...infos: Info[]): void {
  for (const i of infos) if (i.dtype !== 'float32') throw new Error(`${name}: expects float32 inputs, got ${i.dtype}`);
}

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

interface WasmSimd {
  simd: SimdOps;
  b: BackendWasm;
  malloc(bytes: number): number;
  free(ptr: number): void;
  buffer(): ArrayBuffer;
  off(i: Info): number;
}

/** The SIMD copy and compare loops of ./wasm-simd.ts for this call (wasm backend only). */
function wasmSimd(backend: {}): WasmSimd | null {
  if (!('typedArrayFromHeap' in backend)) return null;
  const b = backend as BackendWasm;
  const mod = b.wasm as unknown as { asm?: { memory?: WebAssembly.Memory }; _malloc(n: number): number; _free(p: number): void };
  const memory = mod.asm?.memory;
  const simd = simdOps(memory);
  if (!simd || !memory) return null;
  return {
    simd,
    b,
    malloc: (bytes) => mod._malloc(bytes) >>> 0,
    free: (ptr) => mod._free(ptr),
    buffer: () => memory.buffer,
    off: (i) => b.getMemoryOffset(i.dataId),
  };
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
// wasm: Identity / Cast without copies, MaxPoolGrad
// ---------------------------------------------------------------------------

function shareData(backend: BackendWasm, x: Info): Info {
  backend.incRef(x.dataId);
  return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
}

/** Stock wasm kernels that a replacement here delegates to, by kernel name. */
const stock = new Map<string, tf.KernelConfig>();

function callStock(name: string, args: { inputs: tf.NamedTensorInfoMap; backend: {}; attrs?: tf.NamedAttrMap }): Info {
  return stock.get(name)!.kernelFunc(args as Parameters<tf.KernelFunc>[0]) as Info;
}

function wasmIdentity(args: { inputs: tf.NamedTensorInfoMap; backend: {}; attrs?: tf.NamedAttrMap }): Info {
  const { x } = args.inputs as { x: Info };
  if (x.dtype === 'string') return callStock(tf.Identity, args);
  return shareData(args.backend as BackendWasm, x);
}

function wasmCast(args: { inputs: tf.NamedTensorInfoMap; backend: {}; attrs?: tf.NamedAttrMap }): Info {
  const { x } = args.inputs as { x: Info };
  const dtype = (args.attrs as unknown as tf.CastAttrs).dtype;
  if (dtype === x.dtype && dtype !== 'string') return shareData(args.backend as BackendWasm, x);
  return callStock(tf.Cast, args);
}

function wasmMaxPoolGrad(args: { inputs: tf.NamedTensorInfoMap; backend: {}; attrs?: tf.NamedAttrMap }): Info {
  const { dy, input } = args.inputs as { dy: Info; input: Info };
  checkFloat('MaxPoolGrad', dy, input);
  const { filterSize, strides, pad, dimRoundingMode } = args.attrs as unknown as tf.MaxPoolGradAttrs;
  const info = tf.backend_util.computePool2DInfo(input.shape as [number, number, number, number], filterSize, strides, 1, pad, dimRoundingMode);
  const compiled = fastMaxPoolGrad(args.backend as BackendWasm, dy, input, info);
  if (compiled) return compiled;
  const { ins, outs, infos } = buffers(args.backend as AnyBackend, [dy, input], [input.shape]);
  const [dyv, xv] = ins as [Float32Array, Float32Array];
  const dx = outs[0]!;
  dx.fill(0);
  const { batchSize: B, inHeight: H, inWidth: W, inChannels: C, outHeight: OH, outWidth: OW } = info;
  const { strideHeight: sh, strideWidth: sw, effectiveFilterHeight: fh, effectiveFilterWidth: fw } = info;
  const { top, left } = info.padInfo;
  const best = new Float32Array(C);
  const pos = new Int32Array(C);
  let o = 0;
  for (let b = 0; b < B; b++) {
    for (let yr = 0; yr < OH; yr++) {
      const r0 = yr * sh - top;
      const rMin = Math.max(0, r0);
      const rMax = Math.min(H, r0 + fh);
      for (let yc = 0; yc < OW; yc++, o += C) {
        const c0 = yc * sw - left;
        const cMin = Math.max(0, c0);
        const cMax = Math.min(W, c0 + fw);
        best.fill(-Infinity);
        pos.fill(-1);
        for (let r = rMin; r < rMax; r++) {
          for (let cc = cMin; cc < cMax; cc++) {
            const base = ((b * H + r) * W + cc) * C;
            for (let d = 0; d < C; d++) {
              const v = xv[base + d]!;
              if (v > best[d]!) {
                best[d] = v;
                pos[d] = base + d;
              }
            }
          }
        }
        for (let d = 0; d < C; d++) if (pos[d]! >= 0) dx[pos[d]!] += dyv[o + d]!;
      }
    }
  }
  return infos[0]!;
}

/**
 * Transpose as one strided copy (./wasm-simd.ts copy3/copy3v): size-1 axes dropped, axes that
 * stay adjacent merged, then any permutation of <= 3 axes reads its input sequentially and writes
 * a few sequential streams (or copies whole 16-byte rows when the last axis stays last). Stock
 * wasm's Transpose computes every element's index separately (5-10x slower on the
 * Conv2DBackpropFilter reshuffles). 4-byte dtypes only; anything else goes to the stock kernel.
 */
function wasmTranspose(args: { inputs: tf.NamedTensorInfoMap; backend: {}; attrs?: tf.NamedAttrMap }): Info {
  const { x } = args.inputs as { x: Info };
  const perm = (args.attrs as unknown as tf.TransposeAttrs).perm;
  const fallback = () => callStock(tf.Transpose, args);
  const w = x.dtype === 'float32' || x.dtype === 'int32' ? wasmSimd(args.backend) : null;
  const size = tf.util.sizeFromShape(x.shape);
  if (!w || size === 0) return fallback();
  const outShape = perm.map((i) => x.shape[i]!);
  // Drop size-1 axes, then merge runs of output axes that read consecutive input axes.
  const kept = perm.filter((i) => x.shape[i]! > 1);
  const runs: number[][] = [];
  for (const i of kept) {
    const last = runs[runs.length - 1];
    if (last && last[last.length - 1]! + 1 === i) last.push(i);
    else runs.push([i]);
  }
  if (runs.length > 3) return fallback();
  const byInput = [...runs].sort((a, b) => a[0]! - b[0]!);
  const D = byInput.map((r) => r.reduce((p, i) => p * x.shape[i]!, 1));
  let p = runs.map((r) => byInput.indexOf(r));
  while (D.length < 3) {
    D.unshift(1);
    p = [0, ...p.map((i) => i + 1)];
  }
  const O = p.map((i) => D[i]!);
  const OS = [4 * O[1]! * O[2]!, 4 * O[2]!, 4];
  const IS = [4 * D[1]! * D[2]!, 4 * D[2]!, 4];
  const ds = [0, 1, 2].map((i) => OS[p.indexOf(i)]!);
  const out = w.b.makeOutput(outShape, x.dtype);
  const src = w.off(x);
  const dst = w.off(out);
  if (p[2] === 2) {
    const [o, m] = [p[0]!, p[1]!];
    if (D[2]! % 4 === 0) w.simd.copy3v(src, dst, D[o]!, IS[o]!, ds[o]!, D[m]!, IS[m]!, ds[m]!, D[2]! / 4, 16, 16);
    else w.simd.copy3(src, dst, D[o]!, IS[o]!, ds[o]!, D[m]!, IS[m]!, ds[m]!, D[2]!, 4, 4);
  } else {
    // Output's last axis m comes from input axis 0 or 1. Blocks of 16 along m: the inner loop
    // writes 16 consecutive values (a whole cache line), the middle loop walks the input's last
    // axis, so the 16 input lines of a block stay cached across it. (Walking the input in order
    // instead writes C streams whose strides are often multiples of 4 KiB: cache-set conflicts.)
    const m = p[2]!;
    const o = 1 - m; // the axis that is neither 2 nor m
    for (let a0 = 0; a0 < D[m]!; a0 += 16) {
      const na = Math.min(16, D[m]! - a0);
      w.simd.copy3(src + a0 * IS[m]!, dst + a0 * 4, D[o]!, IS[o]!, ds[o]!, D[2]!, 4, ds[2]!, na, IS[m]!, 4);
    }
  }
  return out;
}

/**
 * Slice as one strided copy (./wasm-simd.ts copy3/copy3v): trailing axes taken whole merge into
 * one contiguous run, axes of extent 1 drop out; up to two other axes are loops. Stock wasm's
 * Slice first copies the WHOLE input out of the wasm heap (readSync) and then slices in JS.
 */
function wasmSlice(args: { inputs: tf.NamedTensorInfoMap; backend: {}; attrs?: tf.NamedAttrMap }): Info {
  const { x } = args.inputs as { x: Info };
  const { begin, size } = args.attrs as unknown as tf.SliceAttrs;
  const fallback = () => callStock(tf.Slice, args);
  const w = x.dtype === 'float32' || x.dtype === 'int32' ? wasmSimd(args.backend) : null;
  if (!w) return fallback();
  const [b0, s0] = tf.slice_util.parseSliceParams(x as unknown as tf.TensorInfo & { rank: number }, begin, size);
  const n = tf.util.sizeFromShape(s0);
  if (n === 0) return fallback();
  const shape = x.shape;
  const strides = [...tf.util.computeStrides(shape), 1];
  // k: last axis not taken whole; the run below it is contiguous.
  let k = shape.length - 1;
  while (k >= 0 && s0[k] === shape[k]) k--;
  const run = k < 0 ? n : s0[k]! * strides[k]!;
  let offset = 0;
  for (let i = 0; i < shape.length; i++) offset += b0[i]! * strides[i]!;
  const loops: { n: number; s: number }[] = [];
  for (let i = 0; i < k; i++) if (s0[i]! > 1) loops.push({ n: s0[i]!, s: strides[i]! });
  if (loops.length > 2) return fallback();
  while (loops.length < 2) loops.unshift({ n: 1, s: 0 });
  const [l1, l2] = loops as [{ n: number; s: number }, { n: number; s: number }];
  const out = w.b.makeOutput(s0, x.dtype);
  const src = w.off(x) + 4 * offset;
  const dst = w.off(out);
  const d2 = 4 * run;
  const d1 = d2 * l2.n;
  if (run % 4 === 0) w.simd.copy3v(src, dst, l1.n, 4 * l1.s, d1, l2.n, 4 * l2.s, d2, run / 4, 16, 16);
  else w.simd.copy3(src, dst, l1.n, 4 * l1.s, d1, l2.n, 4 * l2.s, d2, run, 4, 4);
  return out;
}

/**
 * GatherV2 along axis 0 (no batch dims): each index copies one contiguous row (./wasm-simd.ts
 * copy3v). Stock wasm's computes every element's source index separately (~12 ms to gather 4
 * taps of a 3x3x256x256 filter). Other axes, other dtypes and out-of-range indices (to keep the
 * stock error) go to the stock kernel.
 */
function wasmGather(args: { inputs: tf.NamedTensorInfoMap; backend: {}; attrs?: tf.NamedAttrMap }): Info {
  const { x, indices } = args.inputs as { x: Info; indices: Info };
  const { axis, batchDims } = args.attrs as unknown as tf.GatherV2Attrs;
  const w = (x.dtype === 'float32' || x.dtype === 'int32') && indices.dtype === 'int32' ? wasmSimd(args.backend) : null;
  const ax = tf.util.parseAxisParam(axis, x.shape)[0];
  if (!w || ax !== 0 || (batchDims ?? 0) !== 0 || x.shape.length === 0) return callStock(tf.GatherV2, args);
  const rows = x.shape[0]!;
  const rowSize = tf.util.sizeFromShape(x.shape.slice(1));
  const ids = w.b.typedArrayFromHeap(indices) as Int32Array;
  for (let i = 0; i < ids.length; i++) if (ids[i]! < 0 || ids[i]! >= rows) return callStock(tf.GatherV2, args);
  const idx = Int32Array.from(ids); // the output allocation below may move the heap views
  const out = w.b.makeOutput([...indices.shape, ...x.shape.slice(1)], x.dtype);
  if (rowSize === 0 || idx.length === 0) return out;
  const src = w.off(x);
  const dst = w.off(out);
  const bytes = 4 * rowSize;
  for (let i = 0; i < idx.length; i++) {
    if (rowSize % 4 === 0) w.simd.copy3v(src + idx[i]! * bytes, dst + i * bytes, 1, 0, 0, 1, 0, 0, rowSize / 4, 16, 16);
    else w.simd.copy3(src + idx[i]! * bytes, dst + i * bytes, 1, 0, 0, 1, 0, 0, rowSize, 4, 4);
  }
  return out;
}

/**
 * Reductions (Max, Min, Sum, Mean) over axes that are not the innermost: stock wasm transposes
 * them innermost with its own slow Transpose first; here the fast one above does that, then the
 * stock kernel reduces the inner axes (the same arithmetic in the same order as stock).
 */
function innerReduce(name: string): tf.KernelFunc {
  return ((args: { inputs: tf.NamedTensorInfoMap; backend: {}; attrs?: tf.NamedAttrMap }) => {
    const { x } = args.inputs as { x: Info };
    const { reductionIndices, keepDims } = args.attrs as unknown as { reductionIndices: number | number[]; keepDims: boolean };
    const rank = x.shape.length;
    const axes = tf.util.parseAxisParam(reductionIndices, x.shape);
    const perm = tf.backend_util.getAxesPermutation(axes, rank);
    if (perm === null || tf.util.sizeFromShape(x.shape) === 0 || !wasmSimd(args.backend)) return callStock(name, args);
    const t = wasmTranspose({ inputs: { x }, backend: args.backend, attrs: { perm } as unknown as tf.NamedAttrMap });
    const inner = tf.backend_util.getInnerMostAxes(axes.length, rank);
    const out = callStock(name, { inputs: { x: t }, backend: args.backend, attrs: { reductionIndices: inner, keepDims: false } as unknown as tf.NamedAttrMap });
    (args.backend as BackendWasm).disposeData(t.dataId);
    if (keepDims) out.shape = tf.backend_util.expandShapeToKeepDim(out.shape, axes);
    return out;
  }) as unknown as tf.KernelFunc;
}

function lessEqualLoop(o: Uint8Array, a: Float32Array, s: number): void {
  for (let i = 0; i < a.length; i++) o[i] = a[i]! <= s ? 1 : 0;
}

function greaterLoop(o: Uint8Array, a: Float32Array, s: number): void {
  for (let i = 0; i < a.length; i++) o[i] = a[i]! > s ? 1 : 0;
}

/**
 * Comparisons of a float32 tensor with a scalar (PReLU masks, dead-unit counts): WebAssembly
 * SIMD, 16 values a step (the tail in TypeScript), instead of stock wasm's broadcasting binary op.
 */
function scalarCompare(name: string, loop: (o: Uint8Array, a: Float32Array, s: number) => void, simdOp: 'cmple' | 'cmpgt'): tf.KernelFunc {
  return ((args: { inputs: tf.NamedTensorInfoMap; backend: {}; attrs?: tf.NamedAttrMap }) => {
    const { a, b } = args.inputs as { a: Info; b: Info };
    if (a.dtype !== 'float32' || b.dtype !== 'float32' || tf.util.sizeFromShape(b.shape) !== 1 || b.shape.length > a.shape.length || !('typedArrayFromHeap' in args.backend)) {
      return callStock(name, args);
    }
    const be = args.backend as BackendWasm;
    const out = be.makeOutput(a.shape, 'bool');
    const o = be.typedArrayFromHeap(out) as Uint8Array;
    const av = be.typedArrayFromHeap(a) as Float32Array;
    const w = wasmSimd(args.backend);
    const blocks = w ? Math.floor(av.length / 16) : 0;
    if (w && blocks > 0) w.simd[simdOp](w.off(a), w.off(out), blocks, w.off(b));
    const rest = av.length - 16 * blocks;
    if (rest > 0) loop(o.subarray(16 * blocks), av.subarray(16 * blocks), (be.typedArrayFromHeap(b) as Float32Array)[0]!);
    return out;
  }) as unknown as tf.KernelFunc;
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
// Registration
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

const BN_KERNELS: ReadonlyArray<{ name: string; func: tf.KernelFunc }> = [
  { name: BN_STATS, func: bnStats as unknown as tf.KernelFunc },
  { name: BN_APPLY, func: bnApply as unknown as tf.KernelFunc },
  { name: BN_GRAD, func: bnGrad as unknown as tf.KernelFunc },
  { name: ACT_STATS, func: actStats as unknown as tf.KernelFunc },
  { name: RELU_GRAD, func: reluGrad as unknown as tf.KernelFunc },
  { name: BN_RUNNING, func: bnRunning as unknown as tf.KernelFunc },
];

const WASM_REPLACEMENTS: ReadonlyArray<{ name: string; func: tf.KernelFunc }> = [
  { name: tf.Identity, func: wasmIdentity as unknown as tf.KernelFunc },
  { name: tf.Cast, func: wasmCast as unknown as tf.KernelFunc },
  { name: tf.MaxPoolGrad, func: wasmMaxPoolGrad as unknown as tf.KernelFunc },
  { name: tf.Transpose, func: wasmTranspose as unknown as tf.KernelFunc },
  { name: tf.Slice, func: wasmSlice as unknown as tf.KernelFunc },
  { name: tf.GatherV2, func: wasmGather as unknown as tf.KernelFunc },
  ...[tf.Max, tf.Min, tf.Sum, tf.Mean].map((name) => ({ name, func: innerReduce(name) })),
  { name: tf.LessEqual, func: scalarCompare(tf.LessEqual, lessEqualLoop, 'cmple') },
  { name: tf.Greater, func: scalarCompare(tf.Greater, greaterLoop, 'cmpgt') },
];

function put(name: string, backendName: string, func: tf.KernelFunc): void {
  const current = tf.getKernel(name, backendName);
  if (current !== undefined && current.kernelFunc === func) return;
  const config: tf.KernelConfig = { kernelName: name, backendName, kernelFunc: func };
  if (current !== undefined) {
    if (backendName === 'wasm' && !stock.has(name)) stock.set(name, current);
    // Keep the stock kernel's setupFunc (it binds the wasm export the stock kernel calls).
    if (current.setupFunc !== undefined) config.setupFunc = current.setupFunc;
    tf.unregisterKernel(name, backendName);
  }
  tf.registerKernel(config);
}

/**
 * Register the kernels above for 'wasm' (call after importing @tensorflow/tfjs-backend-wasm) and
 * 'cpu'. Idempotent. Returns the kernel names registered for `backendName`.
 */
export function registerFastKernels(backendName: 'wasm' | 'cpu'): string[] {
  for (const { name, func } of BN_KERNELS) put(name, backendName, func);
  registerReluGradient();
  if (backendName === 'wasm') for (const { name, func } of WASM_REPLACEMENTS) put(name, backendName, func);
  return [...BN_KERNELS, ...(backendName === 'wasm' ? WASM_REPLACEMENTS : [])].map((k) => k.name);
}

/** Whether the fused BatchNorm kernels can run on the current backend. */
export function hasFastBatchNorm(): boolean {
  const b = tf.getBackend();
  return tf.getKernel(BN_GRAD, b) !== undefined && tf.getKernel(BN_STATS, b) !== undefined && tf.getKernel(BN_APPLY, b) !== undefined;
}
