/**
 * Training kernels for the TensorFlow.js wasm backend (tfjs 4.22).
 *
 * Stock @tensorflow/tfjs-backend-wasm 4.22 can run inference but not the
 * backward pass of a CNN. Kernels registered here for 'wasm':
 *
 *  - Conv2DBackpropFilter  MISSING in stock wasm; the conv2d weight gradient.
 *  - UnsortedSegmentSum    MISSING in stock wasm; the gradient of tf.gather.
 *  - Conv2DBackpropInput   present in stock wasm but a naive C++ loop; replaced
 *                          by an XNNPACK-backed version, 2-12x faster on
 *                          small-ResNet shapes (falls back to the stock kernel
 *                          for NCHW and paddings larger than the kernel).
 *
 * A full ResNet training step (conv2d with explicit padding, batch norm written
 * with mean/variance/sub/mul/rsqrt, relu, prelu, maxPool 3x3/2 pad 1, mean over
 * H,W, matMul, softmax cross-entropy / logSoftmax, oneHot + cast) needs no other
 * kernel missing on wasm: the remaining gradients (MaxPoolGrad, Prelu's
 * where/greater, Step, Sum, Tile, Exp, ...) are all registered by stock wasm.
 * Other kernels that stock wasm lacks (not needed for ResNet training and not
 * registered here): DepthwiseConv2dNativeBackpropFilter/Input, Einsum,
 * FFT/IFFT/Complex/Real/Imag/ComplexAbs, Ragged*, StaticRegexReplace, Draw.
 * Known wasm pitfall (not a missing kernel): OneHot with dtype 'float32'
 * writes wrong values; build one-hot labels as int32 and cast.
 *
 * Every kernel here is a composition of the wasm backend's own kernel
 * functions (Conv2D, Transpose, Reshape, GatherV2, Concat, Fill,
 * Slice, ScatterNd), called directly with {inputs, backend, attrs}; each
 * intermediate TensorInfo is released with backend.disposeData, so a call
 * leaks neither tensors nor wasm heap (XNNPACK operators cached on a
 * temporary filter are freed with it). Two wasm traps shaped the design:
 * BatchMatMul only uses XNNPACK when neither side is transposed, and
 * StridedSlice with strides > 1 and rank-5+ Transpose are ~50-100x slower
 * than a rank-4 Transpose, so neither im2col nor 6-D reshuffles are used.
 */
import * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { convModule, fastConv2D, fastConv2DBackpropFilter, fastConv2DBackpropInput, SGD_STEP, sgdStepKernel } from './wasm-conv.js';

type TensorInfo = tf.TensorInfo;
type ExplicitPad = [[number, number], [number, number], [number, number], [number, number]];
type PadAttr = 'valid' | 'same' | number | ExplicitPad;
type RoundingMode = 'floor' | 'round' | 'ceil' | undefined;

const BACKEND = 'wasm';

/** Look up a kernel function the wasm backend registered (stock or ours). */
function wasmKernelFunc(kernelName: string): tf.KernelFunc {
  const config = tf.getKernel(kernelName, BACKEND);
  if (config === undefined) {
    throw new Error(`wasm-kernels: kernel '${kernelName}' is not registered for 'wasm'`);
  }
  return config.kernelFunc;
}

/** Run a wasm kernel that returns a single TensorInfo. */
function run(
  kernelName: string,
  backend: BackendWasm,
  inputs: tf.NamedTensorInfoMap,
  attrs: tf.NamedAttrMap = {},
): TensorInfo {
  const out = wasmKernelFunc(kernelName)({ inputs, backend, attrs });
  if (Array.isArray(out)) {
    throw new Error(`wasm-kernels: kernel '${kernelName}' returned several outputs`);
  }
  return out;
}

function free(backend: BackendWasm, ...infos: TensorInfo[]): void {
  for (const info of infos) backend.disposeData(info.dataId);
}

function asShape4(shape: number[], what: string): [number, number, number, number] {
  if (shape.length !== 4) throw new Error(`wasm-kernels: ${what} must be rank 4, got [${shape.join(',')}]`);
  return [shape[0], shape[1], shape[2], shape[3]];
}

function explicitPad(top: number, bottom: number, left: number, right: number): ExplicitPad {
  return [[0, 0], [top, bottom], [left, right], [0, 0]];
}

/**
 * Keep the leading [a, b, c, d] corner of a rank-4 tensor; disposes `x`. Only
 * uncommon shapes need it. Trailing dims that are kept whole are merged into
 * the last cropped one, so wasm's (JS) Slice copies long contiguous rows.
 */
function crop4(backend: BackendWasm, x: TensorInfo, size: [number, number, number, number]): TensorInfo {
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
 * dW[kh,kw,ci,co] = sum_{b,oh,ow} xpad[b, oh*sh+kh, ow*sw+kw, ci] * dy[b,oh,ow,co]
 *
 * This is itself a stride-1 convolution with the roles permuted, which lets
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
}): TensorInfo {
  const backend = args.backend as BackendWasm;
  const { x, dy } = args.inputs as { x: TensorInfo; dy: TensorInfo };
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

/** The stock wasm Conv2DBackpropInput config, captured before we replace it. */
let stockBackpropInput: tf.KernelConfig | undefined;

/**
 * How one output phase of a strided transposed convolution reads the filter,
 * along one spatial dimension. Rows ih = s*i + a of dx (phase a) only receive
 * taps k = k0 + s*m (k0 = (a + padBefore) mod s), from dy row i + d - m; as a
 * stride-1 correlation of dy with those taps reversed, that is padding
 * `before` rows ahead of dy and `after` rows behind it (negative: crop).
 */
interface PhaseDim {
  taps: number; // how many filter taps the phase uses (0: the phase is all zeros)
  first: number; // index of its first tap in the 180-degree-rotated filter
  before: number;
  after: number;
}

function phaseDim(a: number, s: number, k: number, padBefore: number, outDy: number, outPhase: number): PhaseDim {
  const k0 = (a + padBefore) % s;
  if (k0 >= k) return { taps: 0, first: 0, before: 0, after: 0 };
  const taps = Math.ceil((k - k0) / s);
  const d = (a + padBefore - k0) / s;
  const before = taps - 1 - d;
  return { taps, first: k - 1 - k0 - s * (taps - 1), before, after: outPhase - outDy - before + taps - 1 };
}

/**
 * Interleave stride phases into one image: phases[a][c] is [N, Hm, Wm, C] and
 * holds rows a, a+sh, ... and columns c, c+sw, ... of the [N, Hm*sh, Wm*sw, C]
 * result. Uses only rank <= 4 transposes (wasm's rank-5+ Transpose is ~100x
 * slower). Disposes the phases.
 */
function interleavePhases(backend: BackendWasm, phases: TensorInfo[][], shape: [number, number, number, number],
  sh: number, sw: number): TensorInfo {
  const [N, Hm, Wm, C] = shape;
  const concat0 = (parts: TensorInfo[]): TensorInfo =>
    run('Concat', backend, parts as unknown as tf.NamedTensorInfoMap, { axis: 0 });
  const rows = phases.map((row) => {
    if (sw === 1) return row[0];
    const cat = concat0(row); // [sw*N, Hm, Wm, C]
    const r = run('Reshape', backend, { x: cat }, { shape: [sw, N * Hm, Wm, C] });
    const t = run('Transpose', backend, { x: r }, { perm: [1, 2, 0, 3] }); // [N*Hm, Wm, sw, C]
    free(backend, cat, r, ...row);
    return t;
  });
  const flat = rows.map((t) => run('Reshape', backend, { x: t }, { shape: [1, N * Hm, Wm * sw * C] }));
  free(backend, ...rows);
  let merged: TensorInfo;
  if (sh === 1) {
    merged = flat[0];
  } else {
    const cat = concat0(flat); // [sh, N*Hm, Wm*sw*C]
    merged = run('Transpose', backend, { x: cat }, { perm: [1, 0, 2] }); // [N*Hm, sh, Wm*sw*C]
    free(backend, cat, ...flat);
  }
  const out = run('Reshape', backend, { x: merged }, { shape: [N, Hm * sh, Wm * sw, C] });
  free(backend, merged);
  return out;
}

/**
 * dx = the transposed convolution of dy with the filter, as XNNPACK stride-1
 * convolutions, one per stride phase (sub-pixel decomposition):
 *   - the filter is rotated 180 degrees and its in/out channels swapped,
 *     W'[kh,kw,co,ci] = W[KH-1-kh, KW-1-kw, ci, co];
 *   - output phase (a, c) (rows a mod sh, cols c mod sw of dx) is a stride-1
 *     conv of dy with the taps of W' that reach it (GatherV2 picks them);
 *   - the phases are interleaved and cropped to H x W.
 * With stride 1 this is a single conv. Every multiply is useful, unlike
 * zero-inserting dy (4x the work at stride 2). Falls back to the stock kernel
 * for NCHW and for forward paddings larger than the kernel.
 */
function conv2DBackpropInput(args: {
  inputs: tf.NamedTensorInfoMap;
  backend: {};
  attrs?: tf.NamedAttrMap;
}): TensorInfo {
  const backend = args.backend as BackendWasm;
  const { dy, filter } = args.inputs as { dy: TensorInfo; filter: TensorInfo };
  const attrs = (args.attrs ?? {}) as unknown as tf.Conv2DBackpropInputAttrs;
  const fallback = (): TensorInfo => {
    if (stockBackpropInput === undefined) {
      throw new Error('wasm-kernels: stock Conv2DBackpropInput unavailable');
    }
    const out = stockBackpropInput.kernelFunc(args);
    if (Array.isArray(out)) throw new Error('wasm-kernels: unexpected outputs');
    return out;
  };
  if (attrs.dataFormat === 'NCHW') return fallback();

  const info = tf.backend_util.computeConv2DInfo(
    attrs.inputShape, asShape4(filter.shape, 'filter'), attrs.strides, 1, attrs.pad as PadAttr,
    attrs.dimRoundingMode as RoundingMode, false, 'channelsLast');
  const fast = fastConv2DBackpropInput(backend, dy, filter, asShape4(attrs.inputShape, 'inputShape'), info);
  if (fast) return fast;
  const { inHeight: H, inWidth: W, inChannels: Ci, filterHeight: KH, filterWidth: KW } = info;
  const { strideHeight: sh, strideWidth: sw } = info;
  // Extents from dy itself (see the note in conv2DBackpropFilter on 'ceil').
  const [N, OH, OW, Co] = asShape4(dy.shape, 'dy');
  const Hm = Math.ceil(H / sh);
  const Wm = Math.ceil(W / sw);
  const rowPlans = Array.from({ length: sh }, (_, a) => phaseDim(a, sh, KH, info.padInfo.top, OH, Hm));
  const colPlans = Array.from({ length: sw }, (_, c) => phaseDim(c, sw, KW, info.padInfo.left, OW, Wm));
  if ([...rowPlans, ...colPlans].some((p) => p.taps > 0 && p.before < 0)) return fallback();

  // W with in/out channels swapped, as [KH*KW, Co, Ci] in the filter's own tap order: tap t of
  // the rotated filter W' is tap KH*KW-1-t of W, so a phase's taps are one GatherV2 along axis 0
  // with mirrored indices (wasm's Reverse kernel is ~10x slower than a gather of whole taps).
  const swapped = run('Transpose', backend, { x: filter }, { perm: [0, 1, 3, 2] });
  const taps = run('Reshape', backend, { x: swapped }, { shape: [KH * KW, Co, Ci] });
  free(backend, swapped);
  const last = KH * KW - 1;

  const phases = rowPlans.map((rp) => colPlans.map((cp) => {
    if (rp.taps === 0 || cp.taps === 0) {
      return run('Fill', backend, {}, { shape: [N, Hm, Wm, Ci], value: 0, dtype: 'float32' });
    }
    let sub: TensorInfo;
    if (last === 0) {
      sub = run('Reshape', backend, { x: taps }, { shape: [KH, KW, Co, Ci] });
    } else {
      const idx: number[] = [];
      for (let u = 0; u < rp.taps; u++) {
        for (let v = 0; v < cp.taps; v++) idx.push(last - ((rp.first + sh * u) * KW + cp.first + sw * v));
      }
      const indices = backend.makeOutput([idx.length], 'int32', undefined, Int32Array.from(idx));
      const picked = run('GatherV2', backend, { x: taps, indices }, { axis: 0, batchDims: 0 });
      sub = run('Reshape', backend, { x: picked }, { shape: [rp.taps, cp.taps, Co, Ci] });
      free(backend, indices, picked);
    }
    const conv = run('Conv2D', backend, { x: dy, filter: sub }, {
      strides: 1,
      dilations: 1,
      pad: explicitPad(rp.before, Math.max(rp.after, 0), cp.before, Math.max(cp.after, 0)),
      dataFormat: 'NHWC',
      dimRoundingMode: 'floor',
    });
    free(backend, sub);
    return crop4(backend, conv, [N, Hm, Wm, Ci]); // negative `after`: drop the extra rows
  }));
  free(backend, taps);

  const dx = sh === 1 && sw === 1 ? phases[0][0] : interleavePhases(backend, phases, [N, Hm, Wm, Ci], sh, sw);
  return crop4(backend, dx, [N, H, W, Ci]);
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
}): TensorInfo {
  const backend = args.backend as BackendWasm;
  const { x, segmentIds } = args.inputs as { x: TensorInfo; segmentIds: TensorInfo };
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

/** The stock wasm Conv2D config (XNNPACK), captured before we replace it. */
let stockConv2D: tf.KernelConfig | undefined;

/** conv2d: ./wasm-conv.ts where it applies (NHWC, dilation 1, Co % 8 == 0), else stock XNNPACK. */
function conv2D(args: { inputs: tf.NamedTensorInfoMap; backend: {}; attrs?: tf.NamedAttrMap }): TensorInfo {
  const backend = args.backend as BackendWasm;
  const { x, filter } = args.inputs as { x: TensorInfo; filter: TensorInfo };
  const attrs = (args.attrs ?? {}) as unknown as tf.Conv2DAttrs;
  if (attrs.dataFormat !== 'NCHW' && x.shape.length === 4 && filter.shape.length === 4) {
    const info = tf.backend_util.computeConv2DInfo(
      asShape4(x.shape, 'x'), asShape4(filter.shape, 'filter'), attrs.strides, attrs.dilations ?? 1,
      attrs.pad as PadAttr, attrs.dimRoundingMode as RoundingMode, false, 'channelsLast');
    const fast = fastConv2D(backend, x, filter, info);
    if (fast) return fast;
  }
  if (stockConv2D === undefined) throw new Error('wasm-kernels: stock Conv2D unavailable');
  const out = stockConv2D.kernelFunc(args);
  if (Array.isArray(out)) throw new Error('wasm-kernels: unexpected outputs');
  return out;
}

// ---------------------------------------------------------------------------
// Registration
// ---------------------------------------------------------------------------

const OUR_KERNELS: ReadonlyArray<{ name: string; func: tf.KernelFunc }> = [
  { name: tf.Conv2DBackpropFilter, func: conv2DBackpropFilter },
  { name: tf.Conv2DBackpropInput, func: conv2DBackpropInput },
  { name: tf.UnsortedSegmentSum, func: unsortedSegmentSum },
  { name: tf.Conv2D, func: conv2D },
];

/**
 * Register the training kernels above for the 'wasm' backend. Call after
 * `import '@tensorflow/tfjs-backend-wasm'` (which registers the stock wasm
 * kernels); it works before or after `tf.setBackend('wasm')`.
 *
 * Idempotent: a repeated call changes nothing. Returns the names of the kernels
 * this module provides (the same list on every call).
 */
export function registerWasmTrainingKernels(): string[] {
  const kernels = convModule() ? [...OUR_KERNELS, { name: SGD_STEP, func: sgdStepKernel as tf.KernelFunc }] : OUR_KERNELS;
  for (const { name, func } of kernels) {
    const current = tf.getKernel(name, BACKEND);
    if (current !== undefined && current.kernelFunc === func) continue; // already ours
    const config: tf.KernelConfig = { kernelName: name, backendName: BACKEND, kernelFunc: func };
    if (current !== undefined) {
      if (name === tf.Conv2DBackpropInput || name === tf.Conv2D) {
        if (name === tf.Conv2D) stockConv2D = current;
        else stockBackpropInput = current;
        // The stock kernel's setupFunc binds its wasm export; keep it running on
        // backend (re)initialisation so the fallback path stays usable.
        if (current.setupFunc !== undefined) config.setupFunc = current.setupFunc;
      }
      tf.unregisterKernel(name, BACKEND);
    }
    tf.registerKernel(config);
  }
  return kernels.map((k) => k.name);
}
