/**
 * Convolution kernels for the tfjs 'wasm' backend compiled from ./native/conv.c: forward,
 * input gradient and filter gradient of an NHWC 2-D convolution on one register-blocked GEMM
 * micro-kernel (4 rows x 8 columns) that reads the input through row pointers (no im2col for the
 * forward and the input gradient). Where the engine has relaxed SIMD, it multiplies and adds in one
 * fused instruction (f32x4.relaxed_madd), which XNNPACK's build inside tfjs-backend-wasm cannot
 * use; that, no repacking of dy as a filter, and stride phases for the input gradient make them
 * 1.3-2.3x faster than the XNNPACK-based paths on the ResNets' shapes (`npm run bench:train`).
 *
 * Node 20's V8 ships relaxed SIMD behind --experimental-wasm-relaxed-simd; it is switched on at
 * run time (v8.setFlagsFromString) before the module compiles. SPIKEPROBE_WASM_FMA=0 keeps the
 * plain-SIMD build (multiply, then add: the rounding of XNNPACK's kernels). Which one ran is
 * part of the backend record (BackendInfo.kernels), since fused and unfused sums round apart.
 *
 * The module imports the backend's own WebAssembly.Memory and works on tensors where they live;
 * its scratch (packed weights, row pointers, im2col chunks) comes from the backend's malloc and is
 * freed before the kernel returns.
 */
import v8 from 'node:v8';
import * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { CONV_WASM_RELAXED, CONV_WASM_SIMD } from './native/conv-wasm.js';

export type ConvFlavor = 'relaxed-simd-fma' | 'simd128';

type Geometry = [
  N: number, H: number, W: number, Ci: number, OH: number, OW: number, Co: number,
  KH: number, KW: number, sh: number, sw: number, pt: number, pl: number,
];

export interface ConvExports {
  flavor(): number;
  fwd_scratch(T: number, Ci: number, Co: number): number;
  filter_scratch(T: number, Ci: number, Co: number): number;
  conv_fwd(x: number, w: number, y: number, ...rest: [...Geometry, number]): void;
  conv_bwd_input(dy: number, w: number, dx: number, ...rest: [...Geometry, number]): void;
  conv_bwd_filter(x: number, dy: number, dw: number, ...rest: [...Geometry, number]): void;
}

let compiled: { module: WebAssembly.Module; flavor: ConvFlavor } | null | undefined;
const instances = new WeakMap<WebAssembly.Memory, ConvExports>();

/** Compile the best build this engine runs (once per process); null without wasm SIMD. */
export function convModule(): { module: WebAssembly.Module; flavor: ConvFlavor } | null {
  if (compiled !== undefined) return compiled;
  compiled = null;
  if (process.env.SPIKEPROBE_WASM_FMA !== '0') {
    const relaxed = Buffer.from(CONV_WASM_RELAXED, 'base64');
    if (!WebAssembly.validate(relaxed)) {
      try {
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

/** The kernels bound to `memory` (the wasm backend's heap), or null where they cannot run. */
export function convKernels(memory: WebAssembly.Memory | undefined): ConvExports | null {
  if (!memory || (typeof SharedArrayBuffer !== 'undefined' && memory.buffer instanceof SharedArrayBuffer)) return null;
  const hit = instances.get(memory);
  if (hit) return hit;
  const c = convModule();
  if (!c) return null;
  const exports = new WebAssembly.Instance(c.module, { env: { memory } }).exports as unknown as ConvExports;
  instances.set(memory, exports);
  return exports;
}

interface WasmModuleLike {
  asm?: { memory?: WebAssembly.Memory };
  _malloc(n: number): number;
  _free(p: number): void;
}

function kernelsOf(backend: BackendWasm): { k: ConvExports; mod: WasmModuleLike } | null {
  const mod = backend.wasm as unknown as WasmModuleLike;
  const k = convKernels(mod.asm?.memory);
  return k ? { k, mod } : null;
}

/** Byte offset of a tensor's data in the wasm heap. */
function addr(backend: BackendWasm, info: tf.TensorInfo): number {
  return backend.typedArrayFromHeap(info).byteOffset;
}

function withScratch<T>(mod: WasmModuleLike, bytes: number, f: (p: number) => T): T {
  const p = mod._malloc(bytes) >>> 0;
  if (p === 0) throw new Error(`wasm-conv: malloc(${bytes}) failed`);
  try {
    return f(p);
  } finally {
    mod._free(p);
  }
}

type Shape4 = [number, number, number, number];
const isF32 = (...infos: tf.TensorInfo[]) => infos.every((i) => i.dtype === 'float32');

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
  withScratch(ko.mod, ko.k.fwd_scratch(T, info.inChannels, info.outChannels), (s) =>
    ko.k.conv_fwd(addr(backend, x), addr(backend, filter), addr(backend, out), info.batchSize, info.inHeight, info.inWidth,
      info.inChannels, info.outHeight, info.outWidth, info.outChannels, info.filterHeight, info.filterWidth,
      info.strideHeight, info.strideWidth, info.padInfo.top, info.padInfo.left, s));
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
  withScratch(ko.mod, ko.k.fwd_scratch(T, Ci, Co), (s) =>
    ko.k.conv_bwd_input(addr(backend, dy), addr(backend, filter), addr(backend, out), N, H, W, Ci, OH, OW, Co,
      info.filterHeight, info.filterWidth, info.strideHeight, info.strideWidth, info.padInfo.top, info.padInfo.left, s));
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
  withScratch(ko.mod, ko.k.filter_scratch(KH * KW, Ci, Co), (s) =>
    ko.k.conv_bwd_filter(addr(backend, x), addr(backend, dy), addr(backend, out), N, H, W, Ci, OH, OW, Co, KH, KW,
      info.strideHeight, info.strideWidth, info.padInfo.top, info.padInfo.left, s));
  return out;
}

/** Which build the conv kernels use in this process (null: none, XNNPACK paths only). */
export function convFlavor(): ConvFlavor | null {
  return convModule()?.flavor ?? null;
}
