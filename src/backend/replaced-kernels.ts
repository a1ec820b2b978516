/**
 * Stock tfjs-backend-wasm kernels (4.22) that spikeprobe replaces or supplies, with the same
 * semantics, for training speed; each falls back to the stock kernel where its fast path does not
 * apply.
 *
 *  - Conv2D, Conv2DBackpropInput: the compiled kernels (./compiled-kernels.ts) where they apply
 *    (NHWC, dilation 1, output / input channels % 8 == 0), else stock (XNNPACK forward; stock dx
 *    is a plain loop, reached by no shipped model: src/bench/conv-tiers.ts).
 *  - Conv2DBackpropFilter: missing in stock wasm. The compiled kernel where it applies, else a
 *    composition of stock kernels (a stride-1 conv with the roles permuted), reached where the
 *    output channels are not a multiple of 8 or the engine has no wasm SIMD.
 *  - UnsortedSegmentSum: missing in stock wasm (the gradient of tf.gather).
 *  - Identity and same-dtype Cast: share the input's data (reference count) as the cpu and webgl
 *    backends do, instead of copying it. The engine clones every tensor it saves for the backward
 *    pass through Identity, so stock wasm copied every conv/mul/relu input of a step.
 *  - Transpose: one strided-copy loop in WebAssembly (./simd-module.ts) after merging axes; stock
 *    wasm's is 5-10x slower and the composed Conv2DBackpropFilter transposes x and dy.
 *  - Slice: a strided copy in WebAssembly; stock wasm's copies the whole input out of the heap
 *    first (a 9 MB copy to take the centre tap of a 3x3x512x512 filter).
 *  - GatherV2 along axis 0: one row copy per index (stock computes every element's index).
 *  - Max/Min/Sum/Mean over non-inner axes: the fast Transpose, then the stock reduction.
 *  - LessEqual/Greater against a scalar: SIMD compare (PReLU masks, dead-unit counts).
 *  - MaxPoolGrad: compiled (split over the pool) or a TypeScript loop; stock wasm's is ~10x slower
 *    than the forward pool; same semantics (each output's gradient goes to the first maximum of
 *    its window in row-major scan order, '>' comparisons as tfjs' cpu kernel).
 *
 * Known wasm pitfall (not a kernel here): OneHot with dtype 'float32' writes wrong values; build
 * one-hot labels as int32 and cast.
 */
import * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { fastConv2D, fastConv2DBackpropFilter, fastConv2DBackpropInput, fastMaxPoolGrad } from './compiled-kernels.js';
import { buffers, callStock, checkFloat, put, wasmSimd, type AnyBackend, type Info } from './kernel-io.js';
import { noteConvTier } from './tiers.js';

type ExplicitPad = [[number, number], [number, number], [number, number], [number, number]];
type PadAttr = 'valid' | 'same' | number | ExplicitPad;
type RoundingMode = 'floor' | 'round' | 'ceil' | undefined;

const BACKEND = 'wasm';

/** Look up a kernel function the wasm backend registered (stock or ours). */
function wasmKernelFunc(kernelName: string): tf.KernelFunc {
  const config = tf.getKernel(kernelName, BACKEND);
  if (config === undefined) {
    throw new Error(`replaced-kernels: kernel '${kernelName}' is not registered for 'wasm'`);
  }
  return config.kernelFunc;
}

/** Run a wasm kernel that returns a single Info. */
function run(
  kernelName: string,
  backend: BackendWasm,
  inputs: tf.NamedTensorInfoMap,
  attrs: tf.NamedAttrMap = {},
): Info {
  const out = wasmKernelFunc(kernelName)({ inputs, backend, attrs });
  if (Array.isArray(out)) {
    throw new Error(`replaced-kernels: kernel '${kernelName}' returned several outputs`);
  }
  return out;
}

function free(backend: BackendWasm, ...infos: Info[]): void {
  for (const info of infos) backend.disposeData(info.dataId);
}

function asShape4(shape: number[], what: string): [number, number, number, number] {
  if (shape.length !== 4) throw new Error(`replaced-kernels: ${what} must be rank 4, got [${shape.join(',')}]`);
  return [shape[0], shape[1], shape[2], shape[3]];
}

/** The first of a per-axis attribute given as one number or a list (the stride traced by ./tiers.ts). */
const firstOf = (v: number | number[]): number => (Array.isArray(v) ? v[0]! : v);

function explicitPad(top: number, bottom: number, left: number, right: number): ExplicitPad {
  return [[0, 0], [top, bottom], [left, right], [0, 0]];
}

/**
 * Keep the leading [a, b, c, d] corner of a rank-4 tensor; disposes `x`. Only
 * uncommon shapes need it. Trailing dims that are kept whole are merged into
 * the last cropped one, so wasm's (JS) Slice copies long contiguous rows.
 */
function crop4(backend: BackendWasm, x: Info, size: [number, number, number, number]): Info {
  let last = 3;
  while (last >= 0 && x.shape[last] === size[last]) last--;
  if (last < 0) return x;
  const inner = tf.util.sizeFromShape(size.slice(last + 1));
  const view = run('Reshape', backend, { x }, { shape: [...x.shape.slice(0, last), x.shape[last] * inner] });
  const sliced = run('Slice', backend, { x: view }, {
    begin: new Array<number>(last + 1).fill(0), size: [...size.slice(0, last), size[last] * inner],
  });
  const out = run('Reshape', backend, { x: sliced }, { shape: size });
  free(backend, x, view, sliced);
  return out;
}

// ---------------------------------------------------------------------------
// Conv2DBackpropFilter
// ---------------------------------------------------------------------------

/**
 * dW[kh,kw,ci,co] = sum_{b,oh,ow} xpad[b, oh*sh+kh, ow*sw+kw, ci] * dy[b,oh,ow,co]: the compiled
 * kernel where it applies, else the composition below.
 *
 * dW is itself a stride-1 convolution with the roles permuted, which lets
 * XNNPACK's (indirect) GEMM do the work without materialising an im2col matrix:
 *   input  x'  = x  transposed to [Ci, H, W, N]        ("batch" = Ci, "channels" = N)
 *   filter dy' = dy transposed to [OH, OW, N, Co]      (dilated by the stride)
 *   out        = conv2d(x', dy', stride 1, dilation (sh,sw), pad (top,bottom',left,right'))
 *              = [Ci, KH, KW, Co]  -> transposed to [KH, KW, Ci, Co].
 * bottom'/right' are chosen so that the output is exactly KH x KW; rows/cols of
 * padding that no output position reads are dropped. Measured 3-60x faster than
 * an im2col (StridedSlice per tap + Concat + BatchMatMul) composition.
 */
function conv2DBackpropFilter(args: {
  inputs: tf.NamedTensorInfoMap;
  backend: {};
  attrs?: tf.NamedAttrMap;
}): Info {
  const backend = args.backend as BackendWasm;
  const { x, dy } = args.inputs as { x: Info; dy: Info };
  const attrs = (args.attrs ?? {}) as unknown as tf.Conv2DBackpropFilterAttrs;
  const filterShape = attrs.filterShape;
  const channelsLast = attrs.dataFormat !== 'NCHW';

  const info = tf.backend_util.computeConv2DInfo(
    asShape4(x.shape, 'x'), filterShape, attrs.strides, 1, attrs.pad as PadAttr,
    attrs.dimRoundingMode as RoundingMode, false, channelsLast ? 'channelsLast' : 'channelsFirst');
  const { inHeight: H, inWidth: W, inChannels: Ci, outChannels: Co } = info;
  const { filterHeight: KH, filterWidth: KW } = info;
  const { strideHeight: sh, strideWidth: sw } = info;
  const { top, left } = info.padInfo;
  // Output extent from dy itself: tfjs' conv2d gradient drops dimRoundingMode,
  // so with 'ceil' the attrs would imply a smaller dy than the one we get.
  const [OH, OW] = channelsLast ? [dy.shape[1], dy.shape[2]] : [dy.shape[2], dy.shape[3]];
  const fast = fastConv2DBackpropFilter(backend, x, dy, asShape4(filterShape, 'filterShape'), info);
  if (fast) return fast;
  noteConvTier('dw', 'composed', x.shape, filterShape, sh);

  // Transpose straight from the input layout: NHWC or NCHW -> [Ci, H, W, N].
  const xT = run('Transpose', backend, { x }, { perm: channelsLast ? [3, 1, 2, 0] : [1, 2, 3, 0] });
  // Padding after the input that makes the conv output exactly KH x KW. May be
  // larger than the forward's (ceil rounding reads implicit zeros) or negative
  // (trailing rows that no output reads); negative is handled by cropping below.
  const bottom = (OH - 1) * sh + KH - top - H;
  const right = (OW - 1) * sw + KW - left - W;

  // A 1x1 kernel with rows left over (ResNet's 1x1 stride-2 shortcut on an even
  // size) would compute a 2x2 output to keep 1 value: a conv stride past the
  // extra outputs skips them (XNNPACK takes stride and dilation together).
  const convStrides = [KH === 1 && bottom < 0 ? 1 - bottom : 1, KW === 1 && right < 0 ? 1 - right : 1];

  const dyT = run('Transpose', backend, { x: dy }, { perm: channelsLast ? [1, 2, 0, 3] : [2, 3, 0, 1] });
  const conv = run('Conv2D', backend, { x: xT, filter: dyT }, {
    strides: convStrides,
    dilations: [sh, sw],
    pad: explicitPad(top, Math.max(bottom, 0), left, Math.max(right, 0)),
    dataFormat: 'NHWC',
    dimRoundingMode: 'floor',
  });
  free(backend, xT, dyT);
  const cropped = crop4(backend, conv, [Ci, KH, KW, Co]);
  const dW = run('Transpose', backend, { x: cropped }, { perm: [1, 2, 0, 3] });
  free(backend, cropped);
  return dW;
}

// ---------------------------------------------------------------------------
// Conv2DBackpropInput
// ---------------------------------------------------------------------------

/**
 * dx: the compiled kernel where it applies (NHWC, dilation 1, Ci % 8 == 0: every conv of the
 * shipped models that needs dx, measured by src/bench/conv-tiers.ts), else the stock kernel.
 */
function conv2DBackpropInput(args: { inputs: tf.NamedTensorInfoMap; backend: {}; attrs?: tf.NamedAttrMap }): Info {
  const backend = args.backend as BackendWasm;
  const { dy, filter } = args.inputs as { dy: Info; filter: Info };
  const attrs = (args.attrs ?? {}) as unknown as tf.Conv2DBackpropInputAttrs;
  if (attrs.dataFormat !== 'NCHW') {
    const info = tf.backend_util.computeConv2DInfo(
      attrs.inputShape, asShape4(filter.shape, 'filter'), attrs.strides, 1, attrs.pad as PadAttr,
      attrs.dimRoundingMode as RoundingMode, false, 'channelsLast');
    const fast = fastConv2DBackpropInput(backend, dy, filter, asShape4(attrs.inputShape, 'inputShape'), info);
    if (fast) return fast;
  }
  noteConvTier('dx', 'stock', attrs.inputShape, filter.shape, firstOf(attrs.strides));
  return callStock(tf.Conv2DBackpropInput, args);
}

// ---------------------------------------------------------------------------
// UnsortedSegmentSum
// ---------------------------------------------------------------------------

/**
 * out[s, ...] = sum over i with segmentIds[i] == s of x[i, ...]; ids outside
 * [0, numSegments) are dropped (same as the cpu backend). segmentIds' shape is
 * a prefix of x's shape. Uses wasm's ScatterNd (which sums duplicate indices)
 * after checking the ids, since ScatterNd does not bounds-check; with
 * out-of-range ids a plain typed-array loop is used instead.
 */
function unsortedSegmentSum(args: {
  inputs: tf.NamedTensorInfoMap;
  backend: {};
  attrs?: tf.NamedAttrMap;
}): Info {
  const backend = args.backend as BackendWasm;
  const { x, segmentIds } = args.inputs as { x: Info; segmentIds: Info };
  const { numSegments } = (args.attrs ?? {}) as unknown as tf.UnsortedSegmentSumAttrs;
  const numIds = tf.util.sizeFromShape(segmentIds.shape);
  const rest = x.shape.slice(segmentIds.shape.length);
  const outShape = [numSegments, ...rest];

  const ids = backend.readSync(segmentIds.dataId) as Int32Array;
  let allValid = true;
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i];
    if (id < 0 || id >= numSegments) {
      allValid = false;
      break;
    }
  }

  if (allValid && numIds > 0) {
    const indices = run('Reshape', backend, { x: segmentIds }, { shape: [numIds, 1] });
    const updates = run('Reshape', backend, { x }, { shape: [numIds, ...rest] });
    const out = run('ScatterNd', backend, { indices, updates }, { shape: outShape });
    free(backend, indices, updates);
    return out;
  }

  const out = backend.makeOutput(outShape, x.dtype);
  const outVals = backend.typedArrayFromHeap(out);
  outVals.fill(0);
  const xVals = backend.typedArrayFromHeap(x);
  const inner = tf.util.sizeFromShape(rest);
  for (let i = 0; i < numIds; i++) {
    const id = ids[i];
    if (id < 0 || id >= numSegments) continue;
    const src = i * inner;
    const dst = id * inner;
    for (let j = 0; j < inner; j++) outVals[dst + j] += xVals[src + j];
  }
  return out;
}

// ---------------------------------------------------------------------------
// Conv2D
// ---------------------------------------------------------------------------

/** conv2d: the compiled kernel where it applies (NHWC, dilation 1, Co % 8 == 0), else stock XNNPACK. */
function conv2D(args: { inputs: tf.NamedTensorInfoMap; backend: {}; attrs?: tf.NamedAttrMap }): Info {
  const backend = args.backend as BackendWasm;
  const { x, filter } = args.inputs as { x: Info; filter: Info };
  const attrs = (args.attrs ?? {}) as unknown as tf.Conv2DAttrs;
  if (attrs.dataFormat !== 'NCHW' && x.shape.length === 4 && filter.shape.length === 4) {
    const info = tf.backend_util.computeConv2DInfo(
      asShape4(x.shape, 'x'), asShape4(filter.shape, 'filter'), attrs.strides, attrs.dilations ?? 1,
      attrs.pad as PadAttr, attrs.dimRoundingMode as RoundingMode, false, 'channelsLast');
    const fast = fastConv2D(backend, x, filter, info);
    if (fast) return fast;
  }
  noteConvTier('fwd', 'xnnpack', x.shape, filter.shape, firstOf(attrs.strides));
  return callStock(tf.Conv2D, args);
}

// ---------------------------------------------------------------------------
// Identity / Cast without copies, MaxPoolGrad, copies, reductions, compares
// ---------------------------------------------------------------------------

function shareData(backend: BackendWasm, x: Info): Info {
  backend.incRef(x.dataId);
  return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
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
 * Transpose as one strided copy (./simd-module.ts copy3/copy3v): size-1 axes dropped, axes that
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
 * Slice as one strided copy (./simd-module.ts copy3/copy3v): trailing axes taken whole merge into
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
 * GatherV2 along axis 0 (no batch dims): each index copies one contiguous row (./simd-module.ts
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
// Registration
// ---------------------------------------------------------------------------

const REPLACED: ReadonlyArray<{ name: string; func: tf.KernelFunc }> = [
  { name: tf.Conv2D, func: conv2D },
  { name: tf.Conv2DBackpropInput, func: conv2DBackpropInput as unknown as tf.KernelFunc },
  { name: tf.Conv2DBackpropFilter, func: conv2DBackpropFilter },
  { name: tf.UnsortedSegmentSum, func: unsortedSegmentSum },
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

/**
 * Register the kernels above for 'wasm' (after importing @tensorflow/tfjs-backend-wasm, before or
 * after tf.setBackend('wasm')). Idempotent; returns their names.
 */
export function registerReplacedKernels(): string[] {
  for (const { name, func } of REPLACED) put(name, 'wasm', func);
  return REPLACED.map((k) => k.name);
}
