/**
 * The wasm backend on a shared heap (src/backend/shared-heap.ts): the binary rewrite, the backend
 * loading on it under selectBackend when conv threads are on, and the conv pool computing in place
 * with the same bits as one thread and the cpu backend's values.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import * as tf from '@tensorflow/tfjs';
import { afterAll, describe, expect, it } from 'vitest';
import { selectBackend } from '../src/backend/select.js';
import { importSharedMemory, sharedHeap, SHARED_HEAP_MAX_PAGES } from '../src/backend/shared-heap.js';
import { convPool, setConvThreads, unitSplitCalls, type WasmModuleLike } from '../src/backend/compiled.js';
import { convSplitCalls } from '../src/backend/compiled-kernels.js';
import { SGD_STEP } from '../src/backend/ops.js';
import { BN_APPLY, BN_GRAD, BN_STATS, hasFastBatchNorm } from '../src/backend/added-kernels.js';
import { bnSplitPasses } from '../src/backend/compiled-bn.js';
import { simdOps } from '../src/backend/simd-module.js';
import { CONV_WASM_RELAXED } from '../src/backend/native/conv-wasm.js';
import { randomValues, relErr } from './helpers.js';

const require = createRequire(import.meta.url);
const SIMD_WASM = readFileSync(require.resolve('@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-simd.wasm'));

describe('importSharedMemory', () => {
  it("turns tfjs-wasm's defined memory into a shared import, nothing else changed", () => {
    const { bytes, minPages } = importSharedMemory(SIMD_WASM, SHARED_HEAP_MAX_PAGES);
    expect(minPages).toBeGreaterThan(0);
    const before = new WebAssembly.Module(SIMD_WASM);
    const after = new WebAssembly.Module(bytes);
    expect(WebAssembly.Module.exports(after)).toEqual(WebAssembly.Module.exports(before));
    const imports = WebAssembly.Module.imports(after);
    expect(imports.filter((i) => i.kind === 'memory')).toEqual([{ module: 'env', name: 'memory', kind: 'memory' }]);
    expect(imports.filter((i) => i.kind !== 'memory')).toEqual(WebAssembly.Module.imports(before));
    expect(bytes.length).toBeLessThan(SIMD_WASM.length + 32);
  });

  it('refuses a module whose memory is imported already', () => {
    expect(() => importSharedMemory(Buffer.from(CONV_WASM_RELAXED, 'base64'), 100)).toThrow(/memory/);
    expect(() => importSharedMemory(new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]), 100)).toThrow(/not a wasm binary/);
  });
});

describe('wasm backend on a shared heap (2 conv threads)', () => {
  afterAll(() => setConvThreads(undefined));

  it('loads on it, with the compiled conv and BatchNorm kernels; 1 and 2 threads give the same bits, and cpu values', async () => {
    process.env.SPIKEPROBE_THREADS = '2';
    const info = await selectBackend('wasm');
    expect(info.heap).toBe('shared');
    const memory = (tf.backend() as unknown as { wasm: { asm: { memory: WebAssembly.Memory } } }).wasm.asm.memory;
    expect(memory).toBe(sharedHeap());
    expect(memory.buffer).toBeInstanceOf(SharedArrayBuffer);
    expect(hasFastBatchNorm()).toBe(true);
    expect(simdOps(memory)).not.toBeNull();
    const cases: [number[], number[], number][] = [
      [[5, 16, 16, 32], [3, 3, 32, 40], 1], // Winograd
      [[7, 28, 28, 32], [3, 3, 32, 24], 2], // gathered rows
      [[37, 2, 2, 128], [3, 3, 128, 128], 1], // tiny maps
    ];
    const run = (xs: number[], ws: number[], st: number, seed: number) =>
      tf.tidy(() => {
        const size = (s: number[]) => s.reduce((a, b) => a * b, 1);
        const x = tf.tensor(randomValues(size(xs), seed), xs) as tf.Tensor4D;
        const w = tf.tensor(randomValues(size(ws), seed + 1), ws) as tf.Tensor4D;
        const pad: [[number, number], [number, number], [number, number], [number, number]] = [[0, 0], [1, 1], [1, 1], [0, 0]];
        const y = tf.conv2d(x, w, st, pad);
        const r = tf.tensor(randomValues(size(y.shape), seed + 2), y.shape);
        const [dx, dw] = tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, st, pad), r)))([x, w]);
        return [y, dx!, dw!].map((t) => t.dataSync() as Float32Array);
      });
    for (const [k, [xs, ws, st]] of cases.entries()) {
      setConvThreads(1);
      const one = run(xs, ws, st, 70 + k);
      setConvThreads(2);
      const before = convSplitCalls();
      const two = run(xs, ws, st, 70 + k);
      expect(convSplitCalls() - before, `${xs}`).toBeGreaterThan(0);
      expect(convPool((tf.backend() as unknown as { wasm: WasmModuleLike }).wasm)?.inPlace).toBe(true);
      two.forEach((t, j) => expect(Buffer.from(t.buffer).equals(Buffer.from(one[j]!.buffer)), `${xs} output ${j}`).toBe(true));
      await selectBackend('cpu');
      const want = run(xs, ws, st, 70 + k);
      await selectBackend('wasm');
      want.forEach((t, j) => expect(relErr(two[j]!, t), `${xs} output ${j}`).toBeLessThan(1e-5));
    }
  });

  it('splits the BatchNorm passes (stats, fused apply, fused grad) over 2 threads with the same bits as 1, and cpu values', async () => {
    process.env.SPIKEPROBE_THREADS = '2';
    await selectBackend('wasm');
    const shape = [9, 16, 16, 32] as [number, number, number, number]; // 2304 rows x 32: over the split threshold
    const size = 9 * 16 * 16 * 32;
    const run = () =>
      tf.tidy(() => {
        const x = tf.add(tf.mul(tf.tensor4d(randomValues(size, 81), shape), 2), 0.5);
        const gamma = tf.tensor1d(randomValues(32, 82));
        const beta = tf.tensor1d(randomValues(32, 83));
        const r = tf.tensor4d(randomValues(size, 84), shape);
        const dy = tf.tensor4d(randomValues(size, 85), shape);
        const [mean, variance] = tf.engine().runKernel(BN_STATS, { x }) as unknown as tf.Tensor[];
        const y = tf.engine().runKernel(BN_APPLY, { x, mean: mean!, variance: variance!, gamma, beta, r }, { eps: 1e-5, relu: true } as unknown as tf.NamedAttrMap) as tf.Tensor;
        const grads = tf.engine().runKernel(BN_GRAD, { dy, x, mean: mean!, variance: variance!, gamma, y }, { eps: 1e-5, g: true } as unknown as tf.NamedAttrMap) as tf.Tensor[];
        return [mean!, variance!, y, ...grads].map((t) => t.dataSync() as Float32Array);
      });
    setConvThreads(1);
    const before1 = bnSplitPasses();
    const one = run();
    expect(bnSplitPasses()).toBe(before1);
    setConvThreads(2);
    const before = bnSplitPasses();
    const two = run();
    expect(bnSplitPasses() - before).toBe(5); // sum, sumsq, apply, gsums, gdx
    two.forEach((t, j) => expect(Buffer.from(t.buffer).equals(Buffer.from(one[j]!.buffer)), `output ${j}`).toBe(true));
    await selectBackend('cpu');
    const want = run();
    await selectBackend('wasm');
    want.forEach((t, j) => expect(relErr(two[j]!, t), `output ${j}`).toBeLessThan(1e-5));
  });

  it('splits the SGD step and MaxPoolGrad over 2 threads with the same bits as 1', async () => {
    process.env.SPIKEPROBE_THREADS = '2';
    await selectBackend('wasm');
    const run = () =>
      tf.tidy(() => {
        const n = 3 * 3 * 64 * 130 + 3; // over the split threshold, not a multiple of 4
        const [p, buf, g] = [91, 92, 93].map((seed) => tf.tensor1d(randomValues(n, seed)));
        const attrs = (first: boolean) => ({ lr: 0.05, momentum: 0.9, weightDecay: 5e-4, first }) as unknown as tf.NamedAttrMap;
        const first = tf.engine().runKernel(SGD_STEP, { p: p!, buf: p!, g: g! }, attrs(true)) as tf.Tensor[];
        const next = tf.engine().runKernel(SGD_STEP, { p: first[0]!, buf: buf!, g: g! }, attrs(false)) as tf.Tensor[];
        const x = tf.relu(tf.tensor4d(randomValues(6 * 14 * 14 * 64, 94), [6, 14, 14, 64]));
        const r = tf.tensor4d(randomValues(6 * 7 * 7 * 64, 95), [6, 7, 7, 64]);
        const dx = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(tf.maxPool(t as tf.Tensor4D, 3, 2, 1), r)))(x);
        return [...first, ...next, dx].map((t) => t.dataSync() as Float32Array);
      });
    setConvThreads(1);
    const before1 = unitSplitCalls();
    const one = run();
    expect(unitSplitCalls()).toBe(before1);
    setConvThreads(2);
    const before = unitSplitCalls();
    const two = run();
    expect(unitSplitCalls() - before).toBe(3); // two SGD steps, one MaxPoolGrad
    two.forEach((t, j) => expect(Buffer.from(t.buffer).equals(Buffer.from(one[j]!.buffer)), `output ${j}`).toBe(true));
  });
});
