/**
 * The compiled module's kernels behind tfjs kernels (./replaced-kernels.ts, ./added-kernels.ts):
 * forward, input gradient and filter gradient of an NHWC 2-D convolution on one register-blocked
 * GEMM micro-kernel (4 rows x 8 columns), MaxPoolGrad, per-channel activation statistics, ReLU's
 * gradient and a fused SGD step. Inside the module a conv takes one of three loops (conv_path):
 * 3x3 stride-1 'same' convs on maps of 4x4 and more take Winograd F(4x4, 3x3) for the forward, the
 * input and the filter gradient (4x fewer multiplies; max error relative to the largest value
 * ~2e-6-1e-5 against the cpu backend at batch 32); the others run on gathered rows (im2col chunks;
 * dy rows per stride phase for the input gradient) or, on maps of at most 16 positions, on the
 * live taps only. Which shapes take which loop: `node dist/bench/conv-tiers.js`
 * (docs/benchmarks.md). Large convs are split over the thread pool (./pool.ts) so that results do
 * not depend on the thread count.
 */
import * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { SGD_STEP } from './ops.js';
import { OP_BWD_FILTER, OP_BWD_INPUT, OP_FWD, splitRange } from './pool.js';
import { noteConvTier, tracingConvTiers, type ConvOp } from './tiers.js';
import { addr, convPool, kernelsOf, runOnPool, splitUnits, withScratch, type ConvExports, type Geometry, type WasmModuleLike } from './compiled.js';

const PATHS = ['winograd', 'rows', 'tiny'] as const;
const OPS: ConvOp[] = ['fwd', 'dx', 'dw'];

/** Count which loops conv_path picks for this geometry (./tiers.ts; nothing when tracing is off). */
function notePath(ko: { k: ConvExports }, op: 0 | 1 | 2, g: Geometry): void {
  if (!tracingConvTiers()) return;
  const [, H, W, Ci, OH, OW, Co, KH, KW, sh, sw, pt, pl] = g;
  noteConvTier(OPS[op]!, PATHS[ko.k.conv_path(op, H, W, Ci, OH, OW, Co, KH, KW, sh, sw, pt, pl)]!, [g[0], H, W, Ci], [KH, KW, Ci, Co], sh);
}

/** Below this many multiply-adds a conv stays on the calling thread (hand-off costs ~0.1 ms). */
const MIN_PARALLEL_MACS = 8e6;

/** Multiply-adds per float copied to and from a worker below which a forward/dx split does not pay. */
const MIN_MACS_PER_COPIED_FLOAT = 32;

let splitCalls = 0;
/** How many convs were split over the pool so far (for tests and benches). */
export function convSplitCalls(): number {
  return splitCalls;
}


type Shape4 = [number, number, number, number];

const align4 = (n: number) => (n + 3) & ~3;

/**
 * Run a forward conv or input gradient split by images over the pool: `a` is the batched input
 * (aPer floats per image), `b` the filter (copied whole), `out` the batched output (oPer per
 * image). Returns false (nothing done) where a split does not apply.
 */
function imageSplit(backend: BackendWasm, ko: { k: ConvExports; mod: WasmModuleLike }, op: number,
  a: tf.TensorInfo, b: tf.TensorInfo, out: tf.TensorInfo, g: Geometry, aPer: number, oPer: number, scratchBytes: number): boolean {
  const p = convPool(ko.mod);
  const N = g[0];
  if (!p || N < 2) return false;
  const T = g[7] * g[8];
  const macs = N * g[4] * g[5] * g[6] * T * g[3];
  if (macs < MIN_PARALLEL_MACS) return false;
  const parts = splitRange(N, p.threads).filter(([n0, n1]) => n1 > n0);
  const fn = op === OP_FWD ? ko.k.conv_fwd : ko.k.conv_bwd_input;
  const rest = g.slice(1) as [number, number, number, number, number, number, number, number, number, number, number, number];
  if (p.inPlace) {
    // Shared heap: every thread reads its images and writes its outputs where they live.
    splitCalls++;
    const per = Math.ceil(scratchBytes / 64) * 64 + 64;
    return withScratch(ko.mod, per * parts.length, (s) => {
      const [aA, bA, oA] = [addr(backend, a), addr(backend, b), addr(backend, out)];
      runOnPool(ko, p, op === OP_FWD ? 'conv_fwd' : 'conv_bwd_input',
        parts.map(([n0, n1], j) => [[aA + 4 * n0 * aPer, bA, oA + 4 * n0 * oPer, n1 - n0, ...rest, s + j * per]]));
      return true;
    });
  }
  // A worker's images and outputs are copied in and out on this thread; where that is more than
  // MIN_MACS_PER_COPIED_FLOAT's share of the work (the stems: 1 input channel, 16 outputs), the
  // split was slower than one thread, measured.
  if (macs < MIN_MACS_PER_COPIED_FLOAT * (N / 2) * (aPer + oPer)) return false;
  const bSize = tf.util.sizeFromShape(b.shape);
  const scr = align4(Math.ceil(scratchBytes / 4) + 4);
  // The pool's heap (floats): the workers' stacks, 16, then per worker [a part | b | out part | scratch].
  const layout: { a: number; b: number; o: number; s: number }[] = [];
  let cur = p.base / 4 + 16;
  for (let j = 1; j < parts.length; j++) {
    const n = parts[j]![1] - parts[j]![0];
    const l = { a: cur, b: cur + align4(n * aPer), o: 0, s: 0 };
    l.o = l.b + align4(bSize);
    l.s = l.o + align4(n * oPer);
    cur = l.s + scr;
    layout.push(l);
  }
  p.reserve(cur * 4);
  splitCalls++;
  return withScratch(ko.mod, scratchBytes, (s) => {
    const heap = p.f32();
    const av = backend.typedArrayFromHeap(a) as Float32Array;
    const bv = backend.typedArrayFromHeap(b) as Float32Array;
    for (let j = 1; j < parts.length; j++) {
      const [n0, n1] = parts[j]!;
      const l = layout[j - 1]!;
      heap.set(av.subarray(n0 * aPer, n1 * aPer), l.a);
      heap.set(bv, l.b);
      p.post(j - 1, op, [4 * l.a, 4 * l.b, 4 * l.o, n1 - n0, ...g.slice(1), 4 * l.s]);
    }
    fn(addr(backend, a), addr(backend, b), addr(backend, out), parts[0]![1], ...rest, s);
    const ov = backend.typedArrayFromHeap(out) as Float32Array;
    for (let j = 1; j < parts.length; j++) {
      p.wait(j - 1);
      const [m0, m1] = parts[j]!;
      const l = layout[j - 1]!;
      ov.set(heap.subarray(l.o, l.o + (m1 - m0) * oPer), m0 * oPer);
    }
    return true;
  });
}

/**
 * The filter gradient is always the ordered sum of DW_PARTS partial gradients over contiguous
 * image ranges, dw = ((p0 + p1) + p2) + p3, whatever the thread count: threads take whole parts
 * (and copy only their images), and the sum is the same float32 additions in the same order, so
 * results are bit-identical for 1..DW_PARTS threads.
 */
const DW_PARTS = 4;

const isF32 = (...infos: tf.TensorInfo[]) => infos.every((i) => i.dtype === 'float32');

function filterParts(backend: BackendWasm, ko: { k: ConvExports; mod: WasmModuleLike }, x: tf.TensorInfo, dy: tf.TensorInfo,
  out: tf.TensorInfo, g: Geometry): void {
  const [N, H, W, Ci, OH, OW, Co, KH, KW] = g;
  const rest = g.slice(1) as number[];
  const RC = KH * KW * Ci * Co;
  const xPer = H * W * Ci;
  const dyPer = OH * OW * Co;
  const scratchBytes = ko.k.filter_scratch(KH * KW, Ci, Co);
  const parts = splitRange(N, Math.min(DW_PARTS, N));
  if (parts.length === 1) {
    withScratch(ko.mod, scratchBytes, (s) => ko.k.conv_bwd_filter(addr(backend, x), addr(backend, dy), addr(backend, out), ...g, s, 0, Co / 8));
    return;
  }
  const p = convPool(ko.mod);
  const big = N * OH * OW * Co * KH * KW * Ci >= MIN_PARALLEL_MACS;
  // Parts per thread: thread 0 (this one) takes the first group, workers the others.
  const groups = splitRange(parts.length, p && big ? Math.min(p.threads, parts.length) : 1);
  const scr = align4(Math.ceil(scratchBytes / 4) + 4);
  const slot = (q: number) => (q - 1) * align4(RC) * 4; // byte offset of partial q >= 1
  const ownBytes = (parts.length - 1) * align4(RC) * 4;
  if (p && groups.length > 1 && p.inPlace) {
    // Shared heap: workers read x and dy in place and write their partials next to ours.
    splitCalls++;
    withScratch(ko.mod, ownBytes + groups.length * scr * 4, (base) => {
      const [xa, dya, o] = [addr(backend, x), addr(backend, dy), addr(backend, out)];
      const call = (q: number, scratch: number) => {
        const [a, b] = parts[q]!;
        return [xa + 4 * a * xPer, dya + 4 * a * dyPer, q === 0 ? o : base + slot(q), b - a, ...rest, scratch, 0, Co / 8];
      };
      runOnPool(ko, p, 'conv_bwd_filter',
        groups.map(([q0, q1], j) => Array.from({ length: q1 - q0 }, (_, i) => call(q0 + i, base + ownBytes + j * scr * 4))));
      for (let q = 1; q < parts.length; q++) ko.k.add_into(o, base + slot(q), RC);
    });
    return;
  }
  // Worker j: [x of its images | dy of its images | its partials | scratch] in the pool's heap,
  // after the workers' stacks.
  const layout: { x: number; dy: number; o: number; s: number; n0: number; n1: number }[] = [];
  let cur = p ? p.base / 4 + 16 : 16;
  for (let j = 1; j < groups.length; j++) {
    const [q0, q1] = groups[j]!;
    const n0 = parts[q0]![0];
    const n1 = parts[q1 - 1]![1];
    const l = { x: cur, dy: cur + align4((n1 - n0) * xPer), o: 0, s: 0, n0, n1 };
    l.o = l.dy + align4((n1 - n0) * dyPer);
    l.s = l.o + (q1 - q0) * align4(RC);
    cur = l.s + scr;
    layout.push(l);
  }
  if (p && groups.length > 1) {
    p.reserve(cur * 4);
    splitCalls++;
  }
  // Partials 1.. (part 0 goes straight into `out`; workers' are copied here) + scratch.
  const [m0, m1] = groups[0]!;
  withScratch(ko.mod, ownBytes + scr * 4, (base) => {
    if (p && groups.length > 1) {
      const heap = p.f32();
      const xv = backend.typedArrayFromHeap(x) as Float32Array;
      const dyv = backend.typedArrayFromHeap(dy) as Float32Array;
      for (let j = 1; j < groups.length; j++) {
        const l = layout[j - 1]!;
        const [q0, q1] = groups[j]!;
        heap.set(xv.subarray(l.n0 * xPer, l.n1 * xPer), l.x);
        heap.set(dyv.subarray(l.n0 * dyPer, l.n1 * dyPer), l.dy);
        const calls: number[][] = [];
        for (let q = q0; q < q1; q++) {
          const [a, b] = parts[q]!;
          calls.push([4 * (l.x + (a - l.n0) * xPer), 4 * (l.dy + (a - l.n0) * dyPer), 4 * (l.o + (q - q0) * align4(RC)),
            b - a, ...rest, 4 * l.s, 0, Co / 8]);
        }
        p.post(j - 1, OP_BWD_FILTER, ...calls);
      }
    }
    const s = base + ownBytes;
    const xa = addr(backend, x);
    const dya = addr(backend, dy);
    for (let q = m0; q < m1; q++) {
      const [a, b] = parts[q]!;
      const dst = q === 0 ? addr(backend, out) : base + slot(q);
      ko.k.conv_bwd_filter(xa + 4 * a * xPer, dya + 4 * a * dyPer, dst, b - a, ...(rest as [number, number, number, number, number, number, number, number, number, number, number, number]), s, 0, Co / 8);
    }
    for (let j = 1; j < groups.length; j++) {
      p!.wait(j - 1);
      const l = layout[j - 1]!;
      const [q0, q1] = groups[j]!;
      const mine = new Float32Array(ko.mod.asm!.memory!.buffer, base, (parts.length - 1) * align4(RC));
      mine.set(p!.f32().subarray(l.o, l.o + (q1 - q0) * align4(RC)), slot(q0) / 4);
    }
    // dw = ((p0 + p1) + p2) + ...: float32 adds in part order.
    const o = addr(backend, out);
    for (let q = 1; q < parts.length; q++) ko.k.add_into(o, base + slot(q), RC);
  });
}

/**
 * conv2d forward (NHWC, dilation 1, Co % 8 == 0); null where it does not apply. `info` is the
 * engine's conv geometry (tf.backend_util.computeConv2DInfo).
 */
export function fastConv2D(backend: BackendWasm, x: tf.TensorInfo, filter: tf.TensorInfo, info: tf.backend_util.Conv2DInfo): tf.TensorInfo | null {
  if (info.dataFormat !== 'channelsLast' || info.dilationHeight !== 1 || info.dilationWidth !== 1) return null;
  if (info.outChannels % 8 !== 0 || !isF32(x, filter) || info.inChannels !== filter.shape[2]) return null;
  const ko = kernelsOf(backend);
  if (!ko) return null;
  const out = backend.makeOutput(info.outShape, 'float32');
  if (tf.util.sizeFromShape(info.outShape) === 0) return out;
  const T = info.filterHeight * info.filterWidth;
  const g: Geometry = [info.batchSize, info.inHeight, info.inWidth, info.inChannels, info.outHeight, info.outWidth,
    info.outChannels, info.filterHeight, info.filterWidth, info.strideHeight, info.strideWidth, info.padInfo.top, info.padInfo.left];
  notePath(ko, 0, g);
  const scratch = ko.k.fwd_scratch(T, info.inChannels, info.outChannels);
  if (imageSplit(backend, ko, OP_FWD, x, filter, out, g, g[1] * g[2] * g[3], g[4] * g[5] * g[6], scratch)) return out;
  withScratch(ko.mod, scratch, (s) => ko.k.conv_fwd(addr(backend, x), addr(backend, filter), addr(backend, out), ...g, s));
  return out;
}

/**
 * Conv2DBackpropInput (NHWC, Ci % 8 == 0); null where it does not apply. OH/OW come from dy.
 */
export function fastConv2DBackpropInput(backend: BackendWasm, dy: tf.TensorInfo, filter: tf.TensorInfo, inputShape: Shape4,
  info: tf.backend_util.Conv2DInfo): tf.TensorInfo | null {
  if (info.dataFormat !== 'channelsLast' || info.dilationHeight !== 1 || info.dilationWidth !== 1) return null;
  const [N, H, W, Ci] = inputShape;
  if (Ci % 8 !== 0 || !isF32(dy, filter) || dy.shape.length !== 4) return null;
  const ko = kernelsOf(backend);
  if (!ko) return null;
  const [, OH, OW, Co] = dy.shape as Shape4;
  const out = backend.makeOutput(inputShape, 'float32');
  if (tf.util.sizeFromShape(inputShape) === 0) return out;
  if (OH * OW === 0) {
    backend.typedArrayFromHeap(out).fill(0);
    return out;
  }
  const T = info.filterHeight * info.filterWidth;
  const g: Geometry = [N, H, W, Ci, OH, OW, Co, info.filterHeight, info.filterWidth, info.strideHeight, info.strideWidth,
    info.padInfo.top, info.padInfo.left];
  notePath(ko, 1, g);
  const scratch = ko.k.fwd_scratch(T, Ci, Co);
  if (imageSplit(backend, ko, OP_BWD_INPUT, dy, filter, out, g, OH * OW * Co, H * W * Ci, scratch)) return out;
  withScratch(ko.mod, scratch, (s) => ko.k.conv_bwd_input(addr(backend, dy), addr(backend, filter), addr(backend, out), ...g, s));
  return out;
}

/**
 * Conv2DBackpropFilter (NHWC, Co % 8 == 0); null where it does not apply. OH/OW come from dy.
 */
export function fastConv2DBackpropFilter(backend: BackendWasm, x: tf.TensorInfo, dy: tf.TensorInfo, filterShape: Shape4,
  info: tf.backend_util.Conv2DInfo): tf.TensorInfo | null {
  if (info.dataFormat !== 'channelsLast' || info.dilationHeight !== 1 || info.dilationWidth !== 1) return null;
  const [KH, KW, Ci, Co] = filterShape;
  if (Co % 8 !== 0 || !isF32(x, dy) || dy.shape.length !== 4 || x.shape.length !== 4) return null;
  const ko = kernelsOf(backend);
  if (!ko) return null;
  const [N, H, W] = x.shape as Shape4;
  const [, OH, OW] = dy.shape as Shape4;
  const out = backend.makeOutput(filterShape, 'float32');
  if (tf.util.sizeFromShape(filterShape) === 0) return out;
  if (N * OH * OW === 0) {
    backend.typedArrayFromHeap(out).fill(0);
    return out;
  }
  const g: Geometry = [N, H, W, Ci, OH, OW, Co, KH, KW, info.strideHeight, info.strideWidth, info.padInfo.top, info.padInfo.left];
  notePath(ko, 2, g);
  filterParts(backend, ko, x, dy, out, g);
  return out;
}


/**
 * MaxPoolGrad (NHWC, float32) in the compiled module, same semantics as replaced-kernels.ts' loop
 * (the first maximum of each window in row-major order gets the gradient), split by images over
 * the pool; null where the module cannot run.
 */
export function fastMaxPoolGrad(backend: BackendWasm, dy: tf.TensorInfo, input: tf.TensorInfo, info: tf.backend_util.Conv2DInfo): tf.TensorInfo | null {
  if (!isF32(dy, input) || input.shape.length !== 4) return null;
  const ko = kernelsOf(backend);
  if (!ko) return null;
  const out = backend.makeOutput(input.shape, 'float32');
  if (tf.util.sizeFromShape(input.shape) === 0) return out;
  const [xPer, yPer] = [info.inHeight * info.inWidth * info.inChannels, info.outHeight * info.outWidth * info.inChannels];
  const per = 8 * info.inChannels + 64;
  withScratch(ko.mod, per * 4, (s) => {
    const [dya, xa, oa] = [addr(backend, dy), addr(backend, input), addr(backend, out)];
    splitUnits(ko, 'maxpool_grad', info.batchSize, tf.util.sizeFromShape(input.shape), (a, b, j) => [dya + 4 * a * yPer, xa + 4 * a * xPer,
      oa + 4 * a * xPer, b - a, info.inHeight, info.inWidth, info.inChannels, info.outHeight, info.outWidth, info.strideHeight,
      info.strideWidth, info.effectiveFilterHeight, info.effectiveFilterWidth, info.padInfo.top, info.padInfo.left, s + j * per]);
  });
  return out;
}

/**
 * Per-channel max of x (last axis) and how many elements are <= 0, in one pass of the compiled
 * module (the dead-units instrument's statistics); null where the module cannot run.
 */
export function fastActStats(backend: BackendWasm, x: tf.TensorInfo): { max: tf.TensorInfo; count: number } | null {
  if (!isF32(x) || x.shape.length < 1) return null;
  const ko = kernelsOf(backend);
  if (!ko) return null;
  const C = x.shape[x.shape.length - 1]!;
  const max = backend.makeOutput([C], 'float32');
  const n = tf.util.sizeFromShape(x.shape);
  if (C === 0) return { max, count: 0 };
  const count = ko.k.act_stats(addr(backend, x), n, C, addr(backend, max));
  return { max, count };
}

/** ReLU's gradient dy * step(x) in one pass of the compiled module; null where it cannot run. */
export function fastReluGrad(backend: BackendWasm, dy: tf.TensorInfo, x: tf.TensorInfo): tf.TensorInfo | null {
  if (!isF32(dy, x) || tf.util.sizeFromShape(dy.shape) !== tf.util.sizeFromShape(x.shape)) return null;
  const ko = kernelsOf(backend);
  if (!ko) return null;
  const out = backend.makeOutput(x.shape, 'float32');
  const n = tf.util.sizeFromShape(x.shape);
  if (n > 0) ko.k.relu_grad(addr(backend, dy), addr(backend, x), addr(backend, out), n);
  return out;
}


/**
 * One torch.optim.SGD step of one parameter (src/train/sgd.ts), fused: inputs p, buf (any tensor
 * on the first step), g; attrs lr, momentum, weightDecay, first; outputs [p', buf']. Bit-identical
 * to the unfused tfjs ops (tested).
 */
export function sgdStepKernel(args: { inputs: tf.NamedTensorInfoMap; backend: {}; attrs?: tf.NamedAttrMap }): tf.TensorInfo[] {
  const backend = args.backend as BackendWasm;
  const { p, buf, g } = args.inputs as { p: tf.TensorInfo; buf: tf.TensorInfo; g: tf.TensorInfo };
  const { lr, momentum, weightDecay, first } = args.attrs as unknown as { lr: number; momentum: number; weightDecay: number; first: boolean };
  const ko = kernelsOf(backend);
  if (!ko || !isF32(p, buf, g)) throw new Error(`${SGD_STEP}: needs float32 tensors and the compiled wasm module`);
  const n = tf.util.sizeFromShape(p.shape);
  if (tf.util.sizeFromShape(g.shape) !== n || (!first && tf.util.sizeFromShape(buf.shape) !== n)) throw new Error(`${SGD_STEP}: shapes differ`);
  const pOut = backend.makeOutput(p.shape, 'float32');
  const bufOut = backend.makeOutput(p.shape, 'float32');
  if (n === 0) return [pOut, bufOut];
  // Large parameters are split in blocks of 4 over the pool (the scalars go through memory: the
  // pool passes integers only).
  withScratch(ko.mod, 16, (params) => {
    const heap = ko.mod.asm!.memory!.buffer;
    new Float32Array(heap, params, 3).set([lr, momentum, weightDecay]);
    new Int32Array(heap, params + 12, 1)[0] = first ? 1 : 0;
    const [pa, ba, ga, po, bo] = [addr(backend, p), addr(backend, buf), addr(backend, g), addr(backend, pOut), addr(backend, bufOut)];
    const blocks = Math.ceil(n / 4);
    splitUnits(ko, 'sgd_step_p', blocks, n, (a, b) => {
      const [i0, i1] = [4 * a, Math.min(n, 4 * b)];
      return [pa + 4 * i0, ba + 4 * i0, ga + 4 * i0, po + 4 * i0, bo + 4 * i0, i1 - i0, params];
    });
  });
  return [pOut, bufOut];
}
