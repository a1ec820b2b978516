/**
 * Training-mode BatchNorm on the 'wasm' backend with the compiled passes of ./native/conv.c
 * (bn_sum, bn_sumsq, bn_apply, bn_gsums, bn_gdx), optionally fused with the ReLU after it and the
 * residual added before that ReLU, and split over the conv thread pool (./pool.ts) where the
 * backend's heap is shared.
 *
 * Every pass walks the rows of a channels-last [rows, C] array (C % 4 == 0) in ROW_PARTS fixed
 * parts. Per-channel sums are float64 per part and added in part order, whatever the thread count,
 * so results are bit-identical for 1..4 threads; element-wise work is float32 in the order of the
 * unfused ops (BN apply, then + residual, then ReLU; ReLU's gradient dy * step(y), then BN's
 * gradient), so the fused kernels give the unfused kernels' bits (tested).
 */
import * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { splitRange, type PoolOp } from './pool.js';
import { addr, convPool, kernelsOf, runOnPool, withScratch, type ConvExports, type WasmModuleLike } from './compiled.js';

type Info = tf.TensorInfo;
type Ko = { k: ConvExports; mod: WasmModuleLike };

/** Fixed row parts of every pass (12: even shares for 1, 2, 3 and 4 threads). */
export const ROW_PARTS = 12;
/** Elements below which a pass stays on the calling thread (a hand-off costs ~10-100 us). */
const MIN_PARALLEL_ELEMENTS = 1 << 16;

let splitPasses = 0;
/** How many BatchNorm passes were split over the pool so far (for tests). */
export function bnSplitPasses(): number {
  return splitPasses;
}

/**
 * Run `op` over the ROW_PARTS parts of `rows` rows, args(r0, r1, part) for each: the threads take
 * contiguous groups of parts (this one the first) where the heap is shared and the work is large
 * enough; otherwise every part runs here, in order.
 */
function overParts(ko: Ko, op: PoolOp, rows: number, C: number, args: (r0: number, r1: number, part: number) => number[]): void {
  const parts = splitRange(rows, ROW_PARTS);
  const p = rows * C >= MIN_PARALLEL_ELEMENTS ? convPool(ko.mod) : null;
  const groups = splitRange(ROW_PARTS, p && p.inPlace ? Math.min(p.threads, ROW_PARTS) : 1);
  if (groups.length > 1) splitPasses++;
  const calls = groups.map(([q0, q1]) => Array.from({ length: q1 - q0 }, (_, i) => args(parts[q0 + i]![0], parts[q0 + i]![1], q0 + i)));
  runOnPool(ko, p, op, calls);
}

/**
 * Per-part float64 accumulators: part q's C values at base + q * stride, each block on cache
 * lines of its own (threads update theirs on every row: a shared line would bounce between cores).
 */
const accStride = (C: number) => Math.ceil((8 * C) / 64) * 64;
const accBytes = (C: number) => ROW_PARTS * accStride(C) + 64;
const accBase = (p: number) => Math.ceil(p / 64) * 64;

/** The sum of the parts' accumulators at `base` (accBase), in part order. */
function addParts(memory: ArrayBuffer, base: number, C: number): Float64Array {
  const out = new Float64Array(C);
  for (let q = 0; q < ROW_PARTS; q++) {
    const part = new Float64Array(memory, base + q * accStride(C), C);
    for (let c = 0; c < C; c++) out[c] += part[c]!;
  }
  return out;
}

/** Per-channel y = x * a + b of BatchNorm: a = gamma * invstd, b = beta - mean * a (float32 arrays a, b). */
export function bnApplyScales(mean: Float32Array, variance: Float32Array, gamma: Float32Array, beta: Float32Array, eps: number,
  a: Float32Array, b: Float32Array): void {
  for (let c = 0; c < a.length; c++) {
    const invstd = 1 / Math.sqrt(variance[c]! + eps);
    a[c] = invstd * gamma[c]!;
    b[c] = beta[c]! - mean[c]! * a[c]!;
  }
}

/**
 * Per-channel terms of PyTorch's BatchNorm backward from sum = sum(g) and dot = sum((x - mean) * g)
 * over M rows: dx = (g - gm - (x - mean) * k) * sc, dgamma = dot * invstd, dbeta = sum.
 */
export function bnGradScales(sum: Float64Array, dot: Float64Array, variance: Float32Array, gamma: Float32Array, eps: number, M: number,
  out: { gm: Float32Array | Float64Array; k: Float32Array | Float64Array; sc: Float32Array | Float64Array; dgamma: Float32Array; dbeta: Float32Array }): void {
  for (let c = 0; c < sum.length; c++) {
    const invstd = 1 / Math.sqrt(variance[c]! + eps);
    out.gm[c] = sum[c]! / M;
    out.k[c] = (dot[c]! * invstd * invstd) / M;
    out.sc[c] = invstd * gamma[c]!;
    out.dgamma[c] = dot[c]! * invstd;
    out.dbeta[c] = sum[c]!;
  }
}

function ready(backend: {}, ...infos: Info[]): { b: BackendWasm; ko: Ko } | null {
  if (!('typedArrayFromHeap' in backend)) return null;
  const x = infos[0]!;
  const C = x.shape[x.shape.length - 1]!;
  if (C % 4 !== 0 || tf.util.sizeFromShape(x.shape) === 0 || infos.some((i) => i.dtype !== 'float32')) return null;
  const b = backend as BackendWasm;
  const ko = kernelsOf(b);
  return ko ? { b, ko } : null;
}

const heapOf = (ko: Ko) => ko.mod.asm!.memory!.buffer;

/** Per-channel mean and biased variance of x (two passes: sum, then centred squares). */
export function wasmBnStats(backend: {}, x: Info): Info[] | null {
  const r = ready(backend, x);
  if (!r) return null;
  const { b, ko } = r;
  const C = x.shape[x.shape.length - 1]!;
  const rows = tf.util.sizeFromShape(x.shape) / C;
  const infos = [b.makeOutput([C], 'float32'), b.makeOutput([C], 'float32')];
  withScratch(ko.mod, accBytes(C), (scratch) => {
    const acc = accBase(scratch);
    const xa = addr(b, x);
    overParts(ko, 'bn_sum', rows, C, (r0, r1, q) => [xa + 4 * r0 * C, r1 - r0, C, acc + q * accStride(C)]);
    const s = addParts(heapOf(ko), acc, C);
    const mean = b.typedArrayFromHeap(infos[0]!) as Float32Array;
    for (let c = 0; c < C; c++) mean[c] = s[c]! / rows;
    const ma = addr(b, infos[0]!);
    overParts(ko, 'bn_sumsq', rows, C, (r0, r1, q) => [xa + 4 * r0 * C, r1 - r0, C, ma, acc + q * accStride(C)]);
    const v = addParts(heapOf(ko), acc, C);
    const variance = b.typedArrayFromHeap(infos[1]!) as Float32Array;
    for (let c = 0; c < C; c++) variance[c] = v[c]! / rows;
  });
  return infos;
}

/** y = x * a + b (a = gamma * invstd, b = beta - mean * a), + residual, then ReLU if `relu`. */
export function wasmBnApply(backend: {}, x: Info, mean: Info, variance: Info, gamma: Info, beta: Info, residual: Info | undefined,
  relu: boolean, eps: number): Info | null {
  const r = ready(backend, x, mean, variance, gamma, beta, ...(residual ? [residual] : []));
  if (!r) return null;
  const { b, ko } = r;
  const C = x.shape[x.shape.length - 1]!;
  const rows = tf.util.sizeFromShape(x.shape) / C;
  if (residual && tf.util.sizeFromShape(residual.shape) !== rows * C) throw new Error('BatchNorm apply: residual shape differs from x');
  const y = b.makeOutput(x.shape, 'float32');
  withScratch(ko.mod, 8 * C, (ab) => {
    const heap = (i: Info) => b.typedArrayFromHeap(i) as Float32Array;
    bnApplyScales(heap(mean), heap(variance), heap(gamma), heap(beta), eps, new Float32Array(heapOf(ko), ab, C), new Float32Array(heapOf(ko), ab + 4 * C, C));
    const [xa, ra, ya] = [addr(b, x), residual ? addr(b, residual) : 0, addr(b, y)];
    overParts(ko, 'bn_apply', rows, C, (r0, r1) => [xa + 4 * r0 * C, ra && ra + 4 * r0 * C, ya + 4 * r0 * C, r1 - r0, C, ab, ab + 4 * C, relu ? 1 : 0]);
  });
  return y;
}

/**
 * PyTorch's analytic BatchNorm backward of g = dy * step(y) (y: the ReLU's output; g = dy without
 * it): [dx, dgamma, dbeta], and g itself last where `wantG` (the residual's gradient).
 */
export function wasmBnGrad(backend: {}, dy: Info, x: Info, mean: Info, variance: Info, gamma: Info, y: Info | undefined,
  wantG: boolean, eps: number): Info[] | null {
  const r = ready(backend, x, dy, mean, variance, gamma, ...(y ? [y] : []));
  if (!r) return null;
  const { b, ko } = r;
  const C = x.shape[x.shape.length - 1]!;
  const n = tf.util.sizeFromShape(x.shape);
  const rows = n / C;
  if (tf.util.sizeFromShape(dy.shape) !== n || (y && tf.util.sizeFromShape(y.shape) !== n)) throw new Error('BatchNorm grad: dy/y shape differs from x');
  const infos = [b.makeOutput(x.shape, 'float32'), b.makeOutput([C], 'float32'), b.makeOutput([C], 'float32')];
  if (wantG) infos.push(b.makeOutput(x.shape, 'float32'));
  // scratch: per-part sums and dots (f64 accumulators), then gm, k, sc f32 [C]
  const P = ROW_PARTS * accStride(C);
  withScratch(ko.mod, 2 * P + 12 * C + 64, (scratch) => {
    const sc = accBase(scratch);
    const [dya, ya, xa, ma] = [addr(b, dy), y ? addr(b, y) : 0, addr(b, x), addr(b, mean)];
    // The masked gradient g the second pass reads: the output g where wanted, else dx itself
    // (bn_gdx reads g and writes dx at the same index), or dy where there is no mask.
    const ga = wantG ? addr(b, infos[3]!) : y ? addr(b, infos[0]!) : 0;
    const at = (p: number, r0: number) => p && p + 4 * r0 * C;
    overParts(ko, 'bn_gsums', rows, C, (r0, r1, q) => [dya + 4 * r0 * C, at(ya, r0), xa + 4 * r0 * C, at(ga, r0), r1 - r0, C, ma,
      sc + q * accStride(C), sc + P + q * accStride(C)]);
    const sum = addParts(heapOf(ko), sc, C);
    const dot = addParts(heapOf(ko), sc + P, C);
    const f32 = (i: Info) => b.typedArrayFromHeap(i) as Float32Array;
    bnGradScales(sum, dot, f32(variance), f32(gamma), eps, rows, {
      gm: new Float32Array(heapOf(ko), sc + 2 * P, C),
      k: new Float32Array(heapOf(ko), sc + 2 * P + 4 * C, C),
      sc: new Float32Array(heapOf(ko), sc + 2 * P + 8 * C, C),
      dgamma: f32(infos[1]!),
      dbeta: f32(infos[2]!),
    });
    const [src, dxa] = [ga || dya, addr(b, infos[0]!)];
    overParts(ko, 'bn_gdx', rows, C, (r0, r1) => [src + 4 * r0 * C, xa + 4 * r0 * C, dxa + 4 * r0 * C, r1 - r0, C, ma,
      sc + 2 * P, sc + 2 * P + 4 * C, sc + 2 * P + 8 * C]);
  });
  return infos;
}
