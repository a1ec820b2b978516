/**
 * What the kernels spikeprobe adds (./added-kernels.ts) and the stock kernels it replaces
 * (./replaced-kernels.ts) share: views of inputs and outputs on the wasm heap or the cpu backend's
 * arrays, the float32 check, the SIMD copy and compare loops bound to the wasm heap
 * (./simd-module.ts), and registering a kernel over a stock one that stays callable.
 */
import * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { simdOps, type SimdOps } from './simd-module.js';

export type Info = tf.TensorInfo;
export type AnyBackend = tf.KernelBackend;

interface CpuLike {
  readSync(dataId: object): unknown;
  makeTensorInfo(shape: number[], dtype: tf.DataType, values?: tf.backend_util.BackendValues): Info;
}

/**
 * Allocate float32 outputs, then take views of inputs and outputs. On wasm, allocation may grow
 * the heap (detaching earlier views), so every output is allocated before any view is taken.
 */
export function buffers(backend: AnyBackend, ins: Info[], outShapes: number[][]): { ins: Float32Array[]; outs: Float32Array[]; infos: Info[] } {
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

export function checkFloat(name: string, ...infos: Info[]): void {
  for (const i of infos) if (i.dtype !== 'float32') throw new Error(`${name}: expects float32 inputs, got ${i.dtype}`);
}

export interface WasmSimd {
  simd: SimdOps;
  b: BackendWasm;
  malloc(bytes: number): number;
  free(ptr: number): void;
  buffer(): ArrayBuffer;
  off(i: Info): number;
}

/** The SIMD copy and compare loops of ./simd-module.ts for this call (wasm backend only). */
export function wasmSimd(backend: {}): WasmSimd | null {
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

/** Stock wasm kernels that a replacement delegates to, by kernel name (kept by put()). */
const stock = new Map<string, tf.KernelConfig>();

export function callStock(name: string, args: { inputs: tf.NamedTensorInfoMap; backend: {}; attrs?: tf.NamedAttrMap }): Info {
  return stock.get(name)!.kernelFunc(args as Parameters<tf.KernelFunc>[0]) as Info;
}

/**
 * Register `func` as kernel `name` of `backendName` (idempotent); a stock wasm kernel it replaces
 * stays callable through callStock, and its setupFunc (which binds its wasm export) is kept.
 */
export function put(name: string, backendName: string, func: tf.KernelFunc): void {
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
