/**
 * The compiled module (./native/conv.c, built by scripts/build-wasm.mjs into ./native/conv-wasm.ts):
 * compiling the best build this engine runs, binding it to the wasm backend's heap, its scratch
 * and shadow stack there, and the thread pool (./pool.ts) its kernels run on
 * (./compiled-kernels.ts, ./compiled-bn.ts).
 *
 * Node 20's V8 ships relaxed SIMD behind --experimental-wasm-relaxed-simd; it is switched on at
 * run time (v8.setFlagsFromString) before the module compiles, and the kernels multiply and add in
 * one fused instruction (f32x4.relaxed_madd), which XNNPACK's build inside tfjs-backend-wasm
 * cannot use. SPIKEPROBE_WASM_FMA=0 keeps the plain-SIMD build (multiply, then add: the rounding of
 * XNNPACK's kernels). Which one ran is part of the backend record (BackendInfo.convBuild, the
 * manifest's `kernels`), since fused and unfused sums round apart.
 *
 * The module imports the backend's own WebAssembly.Memory (its shared-memory build where that heap
 * is shared, ./shared-heap.ts) and works on tensors where they live; its scratch comes from the
 * backend's malloc and is freed before the kernel returns.
 */
import v8 from 'node:v8';
import * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { ConvPool, opIndex, splitRange, STACK_BYTES, wantedThreads, type PoolOp } from './pool.js';
import { CONV_WASM_RELAXED, CONV_WASM_RELAXED_SHARED, CONV_WASM_SIMD, CONV_WASM_SIMD_SHARED } from './native/conv-wasm.js';

export type ConvFlavor = 'relaxed-simd-fma' | 'simd128';

export type Geometry = [
  N: number, H: number, W: number, Ci: number, OH: number, OW: number, Co: number,
  KH: number, KW: number, sh: number, sw: number, pt: number, pl: number,
];

export interface ConvExports {
  /** The module's shadow-stack pointer (set per instance to a region of its own: STACK_BYTES). */
  __stack_pointer: WebAssembly.Global;
  flavor(): number;
  fwd_scratch(T: number, Ci: number, Co: number): number;
  filter_scratch(T: number, Ci: number, Co: number): number;
  conv_path(op: number, ...rest: Geometry extends [number, ...infer G] ? G : never): number;
  conv_fwd(x: number, w: number, y: number, ...rest: [...Geometry, number]): void;
  conv_bwd_input(dy: number, w: number, dx: number, ...rest: [...Geometry, number]): void;
  conv_bwd_filter(x: number, dy: number, dw: number, ...rest: [...Geometry, number, number, number]): void;
  add_into(dst: number, src: number, n: number): void;
  maxpool_grad(dy: number, x: number, dx: number, B: number, H: number, W: number, C: number, OH: number, OW: number,
    sh: number, sw: number, fh: number, fw: number, top: number, left: number, scratch: number): void;
  sgd_step(p: number, buf: number, g: number, pOut: number, bufOut: number, n: number, lr: number, m: number, wd: number, first: number): void;
  sgd_step_p(p: number, buf: number, g: number, pOut: number, bufOut: number, n: number, params: number): void;
  act_stats(x: number, n: number, C: number, mx: number): number;
  relu_grad(dy: number, x: number, out: number, n: number): void;
  bn_sum(x: number, rows: number, C: number, acc: number): void;
  bn_sumsq(x: number, rows: number, C: number, mean: number, acc: number): void;
  bn_apply(x: number, r: number, y: number, rows: number, C: number, a: number, b: number, relu: number): void;
  bn_gsums(dy: number, y: number, x: number, g: number, rows: number, C: number, mean: number, s: number, d: number): void;
  bn_gdx(g: number, x: number, dx: number, rows: number, C: number, mean: number, gm: number, k: number, sc: number): void;
}

let compiled: { module: WebAssembly.Module; flavor: ConvFlavor } | null | undefined;
/** Whether this engine needed --experimental-wasm-relaxed-simd (Node 20; Node 22+ ship relaxed SIMD). */
let relaxedFlag = false;
const instances = new WeakMap<WebAssembly.Memory, ConvExports>();

/** Compile the best build this engine runs (once per process); null without wasm SIMD. */
export function convModule(): { module: WebAssembly.Module; flavor: ConvFlavor } | null {
  if (compiled !== undefined) return compiled;
  compiled = null;
  if (process.env.SPIKEPROBE_WASM_FMA !== '0') {
    const relaxed = Buffer.from(CONV_WASM_RELAXED, 'base64');
    if (!WebAssembly.validate(relaxed)) {
      try {
        relaxedFlag = true;
        v8.setFlagsFromString('--experimental-wasm-relaxed-simd');
      } catch {
        // not V8 or flags locked: the plain build below
      }
    }
    if (WebAssembly.validate(relaxed)) compiled = { module: new WebAssembly.Module(relaxed), flavor: 'relaxed-simd-fma' };
  }
  if (compiled === null) {
    const simd = Buffer.from(CONV_WASM_SIMD, 'base64');
    if (WebAssembly.validate(simd)) compiled = { module: new WebAssembly.Module(simd), flavor: 'simd128' };
  }
  return compiled;
}

let sharedBuild: WebAssembly.Module | undefined;

/** The shared-memory build of the flavor convModule() chose (for a shared heap and the pool's workers). */
function sharedModule(): WebAssembly.Module | null {
  const c = convModule();
  if (!c) return null;
  sharedBuild ??= new WebAssembly.Module(Buffer.from(c.flavor === 'relaxed-simd-fma' ? CONV_WASM_RELAXED_SHARED : CONV_WASM_SIMD_SHARED, 'base64'));
  return sharedBuild;
}

const isShared = (memory: WebAssembly.Memory) => typeof SharedArrayBuffer !== 'undefined' && memory.buffer instanceof SharedArrayBuffer;

/** The kernels bound to `memory` (the wasm backend's heap, shared or not), or null where they cannot run. */
export function convKernels(memory: WebAssembly.Memory | undefined): ConvExports | null {
  if (!memory) return null;
  const hit = instances.get(memory);
  if (hit) return hit;
  const c = convModule();
  if (!c) return null;
  const module = isShared(memory) ? sharedModule() : c.module;
  if (!module) return null;
  const exports = new WebAssembly.Instance(module, { env: { memory } }).exports as unknown as ConvExports;
  instances.set(memory, exports);
  return exports;
}

let pool: ConvPool | null | undefined;
let threadsOverride: number | undefined;

/**
 * The conv thread pool (null: one thread, or threads unavailable). Started on first use; where the
 * backend's `heap` is shared (./shared-heap.ts) its workers compute on it in place.
 */
export function convPool(mod?: WasmModuleLike): ConvPool | null {
  const heap = mod?.asm?.memory;
  if (pool !== undefined && (pool === null || !heap || !isShared(heap) || pool.memory === heap)) return pool;
  pool?.close();
  pool = null;
  const threads = threadsOverride ?? wantedThreads();
  const c = convModule();
  if (!c || threads < 2 || typeof SharedArrayBuffer === 'undefined') return pool;
  try {
    const inPlace = heap && isShared(heap) ? heap : undefined;
    // The workers' stacks, in the heap they share (kept for the process: a pool lives as long).
    const stacks = inPlace ? align16(mod!._malloc((threads - 1) * STACK_BYTES + 16) >>> 0) : 0;
    pool = new ConvPool(threads, sharedModule()!, c.flavor === 'relaxed-simd-fma' && relaxedFlag, inPlace, stacks);
  } catch {
    pool = null; // no shared wasm memory or no worker_threads: one thread
  }
  return pool;
}

/** Threads the conv kernels use (1 without a pool). */
export function convThreads(): number {
  return convPool()?.threads ?? 1;
}

/** Stop the pool and use `threads` from the next conv on (undefined: SPIKEPROBE_THREADS again). */
export function setConvThreads(threads: number | undefined): void {
  pool?.close();
  pool = undefined;
  threadsOverride = threads;
}


export interface WasmModuleLike {
  asm?: { memory?: WebAssembly.Memory };
  _malloc(n: number): number;
  _free(p: number): void;
}

export const align16 = (p: number) => (p + 15) & ~15;
const stacked = new WeakSet<ConvExports>();

/** The kernels on the backend's heap, their shadow stack (STACK_BYTES) allocated there on first use. */
export function kernelsOf(backend: BackendWasm): { k: ConvExports; mod: WasmModuleLike } | null {
  const mod = backend.wasm as unknown as WasmModuleLike;
  const k = convKernels(mod.asm?.memory);
  if (!k) return null;
  if (!stacked.has(k)) {
    const p = mod._malloc(STACK_BYTES + 16) >>> 0;
    if (p === 0) throw new Error('compiled: malloc for the kernels\' stack failed');
    k.__stack_pointer.value = align16(p) + STACK_BYTES; // grows down; kept for the process
    stacked.add(k);
  }
  return { k, mod };
}

/** Byte offset of a tensor's data in the wasm heap. */
export function addr(backend: BackendWasm, info: tf.TensorInfo): number {
  return backend.typedArrayFromHeap(info).byteOffset;
}

export function withScratch<T>(mod: WasmModuleLike, bytes: number, f: (p: number) => T): T {
  const p = mod._malloc(bytes) >>> 0;
  if (p === 0) throw new Error(`compiled: malloc(${bytes}) failed`);
  try {
    return f(p);
  } finally {
    mod._free(p);
  }
}


/** Floats below which an element-wise kernel (SGD step, MaxPoolGrad) stays on the calling thread. */
const MIN_PARALLEL_FLOATS = 1 << 16;

let unitSplits = 0;
/** How many SGD steps and MaxPoolGrads were split over the pool so far (for tests). */
export function unitSplitCalls(): number {
  return unitSplits;
}

/**
 * Run `op` once per entry of calls[j] on thread j (j = 0: this one, the others on the pool's
 * workers, all at once); calls[j] are the integer arguments of each call, in order.
 */
export function runOnPool(ko: { k: ConvExports; mod: WasmModuleLike }, p: ConvPool | null, op: PoolOp, calls: number[][][]): void {
  const fn = ko.k[op] as (...a: number[]) => void;
  for (let j = 1; j < calls.length; j++) p!.post(j - 1, opIndex(op), ...calls[j]!);
  try {
    for (const a of calls[0] ?? []) fn(...a);
  } finally {
    for (let j = 1; j < calls.length; j++) p!.wait(j - 1);
  }
}

/**
 * Run `op` over [0, units) in contiguous ranges, one per thread (this one the first), where the
 * heap is shared and `floats` is large enough; else in one call here. args(a, b, j) are the
 * integer arguments of the call for units [a, b) on thread j. Every unit is computed by the same
 * code whatever the split, so results do not depend on the thread count.
 */
export function splitUnits(ko: { k: ConvExports; mod: WasmModuleLike }, op: PoolOp, units: number, floats: number,
  args: (a: number, b: number, j: number) => number[]): void {
  const p = floats >= MIN_PARALLEL_FLOATS ? convPool(ko.mod) : null;
  const parts = splitRange(units, p && p.inPlace ? Math.min(p.threads, units) : 1).filter(([a, b]) => b > a);
  if (parts.length > 1) unitSplits++;
  runOnPool(ko, p, op, parts.map(([a, b], j) => [args(a, b, j)]));
}


/** Which build the compiled kernels use in this process (null: none; stock XNNPACK convs only). */
export function convFlavor(): ConvFlavor | null {
  return convModule()?.flavor ?? null;
}
