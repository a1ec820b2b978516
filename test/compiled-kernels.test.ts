/**
 * The compiled conv kernels (src/backend/native/conv.c via src/backend/compiled.ts): the
 * committed wasm matches its C source, writes nowhere but the buffers it is given (it shares the
 * backend's heap from address 0), and computes the forward conv, input gradient and filter
 * gradient of the ResNets' shapes as the cpu backend does, in both builds (fused multiply-add and
 * plain SIMD).
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import v8 from 'node:v8';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { registerWasmTrainingKernels } from '../src/backend/register.js';
import { TorchSGD } from '../src/train/sgd.js';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { STACK_BYTES } from '../src/backend/pool.js';
import { convFlavor, convKernels, kernelsOf, convThreads, setConvThreads, type ConvExports } from '../src/backend/compiled.js';
import { convSplitCalls } from '../src/backend/compiled-kernels.js';
import { SGD_STEP } from '../src/backend/ops.js';
import { randomValues, relErr } from './helpers.js';
import { CONV_SOURCE_SHA256, CONV_WASM_RELAXED, CONV_WASM_SIMD } from '../src/backend/native/conv-wasm.js';

type Shape4 = [number, number, number, number];
type Pad = [[number, number], [number, number], [number, number], [number, number]];

interface Case { name: string; x: Shape4; filter: Shape4; stride: number; pad: number }
// Channel counts that take the compiled path (Co % 8 for forward and filter gradient, Ci % 8 for
// the input gradient) with the ResNets' kernels, strides and paddings, plus odd sizes and Ci = 1.
const CASES: Case[] = [
  { name: '3x3 s1 p1 16->16', x: [2, 9, 9, 16], filter: [3, 3, 16, 16], stride: 1, pad: 1 },
  { name: '3x3 s2 p1 16->32, even', x: [3, 8, 8, 16], filter: [3, 3, 16, 32], stride: 2, pad: 1 },
  { name: '3x3 s2 p1 8->16, odd', x: [2, 7, 7, 8], filter: [3, 3, 8, 16], stride: 2, pad: 1 },
  { name: '1x1 s2 p0 16->32 (shortcut), odd', x: [2, 7, 7, 16], filter: [1, 1, 16, 32], stride: 2, pad: 0 },
  { name: '1x1 s1 p0 24->8', x: [1, 5, 5, 24], filter: [1, 1, 24, 8], stride: 1, pad: 0 },
  { name: '3x3 s1 p1 Ci=1 (stem)', x: [2, 10, 10, 1], filter: [3, 3, 1, 16], stride: 1, pad: 1 },
  { name: '7x7 s2 p3 Ci=3 (stem)', x: [2, 13, 13, 3], filter: [7, 7, 3, 8], stride: 2, pad: 3 },
  { name: '3x3 s1 p1 64->64 on 2x2', x: [5, 2, 2, 64], filter: [3, 3, 64, 64], stride: 1, pad: 1 },
  { name: '3x3 s1 p0, 1 output pixel', x: [3, 3, 3, 8], filter: [3, 3, 8, 8], stride: 1, pad: 0 },
  // Maps over 16 positions take gathered GEMM rows (im2col for the forward, dy rows per stride
  // phase for dx): stride 2 on even and odd maps, with a chunk boundary inside an image.
  { name: '3x3 s2 p1 16->32 on 14x14 (gathered rows)', x: [3, 14, 14, 16], filter: [3, 3, 16, 32], stride: 2, pad: 1 },
  { name: '3x3 s2 p1 8->16 on 13x13, odd (gathered rows)', x: [2, 13, 13, 8], filter: [3, 3, 8, 16], stride: 2, pad: 1 },
  // Winograd F(4x4, 3x3) shapes (maps of 4x4 and more): one tile per image, an odd map (tiles past
  // the edge) and tiles running over images and over several blocks of the kernel, with a partial
  // last block; maps of 16 positions or more with a side under 4 take the gathered rows.
  { name: '3x3 s1 p1 32->32 on 4x4 (Winograd F(4x4), 1 tile per image)', x: [3, 4, 4, 32], filter: [3, 3, 32, 32], stride: 1, pad: 1 },
  { name: '3x3 s1 p1 32->32 on 7x7 (Winograd F(4x4), odd)', x: [3, 7, 7, 32], filter: [3, 3, 32, 32], stride: 1, pad: 1 },
  { name: '3x3 s1 p1 16->24 on 14x14, batch 6 (Winograd F(4x4), blocks)', x: [6, 14, 14, 16], filter: [3, 3, 16, 24], stride: 1, pad: 1 },
  { name: '3x3 s1 p1 16->24 on 30x30, batch 3 (Winograd F(4x4), blocks over images)', x: [3, 30, 30, 16], filter: [3, 3, 16, 24], stride: 1, pad: 1 },
  { name: '3x3 s1 p1 16->32 on 3x7 (a side under 4: gathered rows)', x: [4, 3, 7, 16], filter: [3, 3, 16, 32], stride: 1, pad: 1 },
  { name: '3x3 s1 p1 32->16 on 2x9 (a side under 4: gathered rows)', x: [5, 2, 9, 32], filter: [3, 3, 32, 16], stride: 1, pad: 1 },
];

const size = (s: number[]) => s.reduce((a, b) => a * b, 1);
const padOf = (p: number): Pad => [[0, 0], [p, p], [p, p], [0, 0]];

async function use(b: 'cpu' | 'wasm'): Promise<void> {
  if (!(await tf.setBackend(b))) throw new Error(`backend ${b}`);
  await tf.ready();
}

/** Forward, dx and dW of sum(conv(x, w) * r) on the current backend. */
function convAll(c: Case, seed: number): Float32Array[] {
  return tf.tidy(() => {
    const x = tf.tensor4d(randomValues(size(c.x), seed), c.x);
    const w = tf.tensor4d(randomValues(size(c.filter), seed + 1), c.filter);
    const y = tf.conv2d(x, w, c.stride, padOf(c.pad));
    const r = tf.tensor(randomValues(size(y.shape), seed + 2), y.shape);
    const [dx, dw] = tf.grads((a: tf.Tensor, b: tf.Tensor) =>
      tf.sum(tf.mul(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, c.stride, padOf(c.pad)), r)))([x, w]);
    return [y, dx!, dw!].map((t) => t.dataSync() as Float32Array);
  });
}

beforeAll(async () => {
  registerWasmTrainingKernels();
  await use('wasm');
});
afterAll(async () => {
  await use('cpu');
});

describe('compiled conv module', () => {
  it('was compiled from the conv.c in the tree (run scripts/build-wasm.mjs after editing it)', () => {
    const sha = createHash('sha256').update(readFileSync('src/backend/native/conv.c')).digest('hex');
    expect(CONV_SOURCE_SHA256).toBe(sha);
  });

  it('uses relaxed SIMD fused multiply-add where the engine has it', () => {
    v8.setFlagsFromString('--experimental-wasm-relaxed-simd');
    const relaxedValid = WebAssembly.validate(Buffer.from(CONV_WASM_RELAXED, 'base64'));
    expect(convFlavor()).toBe(relaxedValid && process.env.SPIKEPROBE_WASM_FMA !== '0' ? 'relaxed-simd-fma' : 'simd128');
  });

  for (const [flavor, b64] of [['relaxed', CONV_WASM_RELAXED], ['simd', CONV_WASM_SIMD]] as const) {
    it(`${flavor}: writes nothing outside its output and scratch buffers`, () => {
      v8.setFlagsFromString('--experimental-wasm-relaxed-simd');
      const memory = new WebAssembly.Memory({ initial: 16 });
      const k = new WebAssembly.Instance(new WebAssembly.Module(Buffer.from(b64, 'base64')), { env: { memory } })
        .exports as unknown as ConvExports;
      const heap = new Float32Array(memory.buffer);
      heap.fill(12345.5); // sentinel everywhere, then the operands in the middle
      const [N, H, W, Ci, Co, K] = [2, 5, 5, 8, 16, 3];
      const x = 20000; const w = x + N * H * W * Ci; const y = w + K * K * Ci * Co; const s = y + N * H * W * Co;
      const scratch = Math.max(k.fwd_scratch(K * K, Ci, Co), k.filter_scratch(K * K, Ci, Co)) / 4;
      // The module's shadow stack: the region just below x, given to it as the caller must.
      k.__stack_pointer.value = 4 * x;
      const stackFloats = STACK_BYTES / 4;
      heap.set(randomValues(N * H * W * Ci, 1), x);
      heap.set(randomValues(K * K * Ci * Co, 2), w);
      heap.set(randomValues(N * H * W * Co, 3), y);
      const snapshot = Float32Array.from(heap);
      const g = [N, H, W, Ci, H, W, Co, K, K, 1, 1, 1, 1] as const;
      k.conv_fwd(4 * x, 4 * w, 4 * y, ...g, 4 * s);
      k.conv_bwd_filter(4 * x, 4 * y, 4 * w, ...g, 4 * s, 0, Co / 8);
      k.conv_bwd_input(4 * y, 4 * w, 4 * x, ...g, 4 * s);
      // Every word outside [its stack, end of scratch) is untouched (no static data, no default stack).
      expect(s + scratch).toBeLessThan(heap.length);
      for (let i = 0; i < heap.length; i++) {
        if (i >= x - stackFloats && i < s + scratch) continue;
        if (heap[i] !== snapshot[i]) throw new Error(`word ${i} changed`);
      }
    });
  }
});

describe('conv2d forward and gradients on wasm match cpu (compiled kernels)', () => {
  CASES.forEach((c, i) => {
    it(c.name, async () => {
      await use('cpu');
      const want = convAll(c, 900 + 11 * i);
      await use('wasm');
      const got = convAll(c, 900 + 11 * i);
      ['forward', 'dx', 'dW'].forEach((what, j) => expect(relErr(got[j]!, want[j]!), what).toBeLessThan(1e-5));
    });
  });

  it('the plain-SIMD build agrees with the fused build', async () => {
    await use('wasm');
    const backend = tf.backend() as unknown as { wasm: { asm: { memory: WebAssembly.Memory }; _malloc(n: number): number } };
    const active = kernelsOf(tf.backend() as unknown as BackendWasm)!.k;
    expect(active).toBe(convKernels(backend.wasm.asm.memory));
    const plain = new WebAssembly.Instance(new WebAssembly.Module(Buffer.from(CONV_WASM_SIMD, 'base64')),
      { env: { memory: backend.wasm.asm.memory } }).exports as unknown as ConvExports;
    plain.__stack_pointer.value = ((backend.wasm._malloc(STACK_BYTES + 16) + 15) & ~15) + STACK_BYTES;
    expect(plain.flavor()).toBe(0);
    const c = CASES[1]!;
    const run = (k: ConvExports): Float32Array[] => tf.tidy(() => {
      const x = tf.tensor4d(randomValues(size(c.x), 5), c.x);
      const w = tf.tensor4d(randomValues(size(c.filter), 6), c.filter);
      const [N, H, W, Ci] = c.x;
      const [KH, KW, , Co] = c.filter;
      const OH = Math.floor((H + 2 * c.pad - KH) / c.stride) + 1;
      const OW = Math.floor((W + 2 * c.pad - KW) / c.stride) + 1;
      const y = tf.zeros([N, OH, OW, Co]);
      const dw = tf.zeros(c.filter);
      const dx = tf.zeros(c.x);
      const b = tf.backend() as unknown as { typedArrayFromHeap(t: tf.TensorInfo): Float32Array; wasm: { _malloc(n: number): number; _free(p: number): void } };
      const at = (t: tf.Tensor) => b.typedArrayFromHeap(t as unknown as tf.TensorInfo).byteOffset;
      const s = b.wasm._malloc(Math.max(k.fwd_scratch(KH * KW, Ci, Co), k.filter_scratch(KH * KW, Ci, Co)));
      const g = [N, H, W, Ci, OH, OW, Co, KH, KW, c.stride, c.stride, c.pad, c.pad] as const;
      k.conv_fwd(at(x), at(w), at(y), ...g, s);
      k.conv_bwd_filter(at(x), at(y), at(dw), ...g, s, 0, Co / 8);
      k.conv_bwd_input(at(y), at(w), at(dx), ...g, s);
      b.wasm._free(s);
      return [y, dw, dx].map((t) => t.dataSync() as Float32Array);
    });
    const a = run(active);
    const p = run(plain);
    a.forEach((v, j) => expect(relErr(p[j]!, v), String(j)).toBeLessThan(1e-5));
  });
});

describe('conv thread pool', () => {
  // Large enough to be split (>= 8e6 multiply-adds), odd batch and odd block counts.
  const big: Case[] = [
    { name: '3x3 s1 32->40, batch 5', x: [5, 16, 16, 32], filter: [3, 3, 32, 40], stride: 1, pad: 1 },
    { name: '3x3 s2 32->24, batch 7', x: [7, 28, 28, 32], filter: [3, 3, 32, 24], stride: 2, pad: 1 },
    { name: '3x3 s1 128->128 on 2x2 maps (tiny-map loops), batch 37', x: [37, 2, 2, 128], filter: [3, 3, 128, 128], stride: 1, pad: 1 },
  ];
  afterAll(() => setConvThreads(undefined));

  big.forEach((c, i) => {
    it(`${c.name}: 1, 2 and 3 threads give bit-identical results, equal to cpu`, async () => {
      await use('cpu');
      const want = convAll(c, 300 + i);
      await use('wasm');
      const runs = [1, 2, 3].map((t) => {
        setConvThreads(t);
        const calls = convSplitCalls();
        const out = convAll(c, 300 + i);
        expect(convThreads()).toBe(t);
        // Every conv split over the pool when there is one: the forward (twice: alone and under
        // tf.grads), dx and dW.
        expect(convSplitCalls() - calls).toBe(t > 1 ? 4 : 0);
        return out;
      });
      for (const r of runs.slice(1)) r.forEach((v, j) => expect(Buffer.from(v.buffer).equals(Buffer.from(runs[0]![j]!.buffer)), `output ${j}`).toBe(true));
      ['forward', 'dx', 'dW'].forEach((what, j) => expect(relErr(runs[1]![j]!, want[j]!), what).toBeLessThan(1e-5));
    });
  });

  it('does not leak tensors or wasm heap across threaded calls', async () => {
    await use('wasm');
    setConvThreads(2);
    const c = big[0]!;
    convAll(c, 1);
    const before = tf.memory() as tf.MemoryInfo & { numBytesInWASM?: number };
    for (let i = 0; i < 3; i++) convAll(c, 1);
    const after = tf.memory() as tf.MemoryInfo & { numBytesInWASM?: number };
    expect(after.numTensors).toBe(before.numTensors);
    expect(after.numBytes).toBe(before.numBytes);
  });
});

describe('fused SGD step (SpikeprobeSgdStep)', () => {
  it('gives bit-identical parameters and momentum buffers to the unfused tfjs ops, 3 steps', async () => {
    await use('wasm');
    expect(tf.getKernel(SGD_STEP, 'wasm')).toBeDefined();
    const run = (fused: boolean): Float32Array[] => {
      const a = tf.tidy(() => tf.variable(tf.tensor(randomValues(1003, 71), [17, 59])));
      const b = tf.tidy(() => tf.variable(tf.tensor(randomValues(6, 72), [6])));
      const opt = new TorchSGD([{ name: 'a', v: a }, { name: 'b', v: b, weightDecay: 0 }], { lr: 0.05, momentum: 0.9, weightDecay: 5e-4 });
      opt.fused = fused;
      for (let s = 0; s < 3; s++) {
        const grads = { a: tf.tensor(randomValues(1003, 80 + s), [17, 59]), b: tf.tensor(randomValues(6, 90 + s), [6]) };
        opt.step(grads);
        tf.dispose(Object.values(grads));
        opt.lr *= 0.5;
      }
      const out = [a, b, opt.buffers.get('a')!, opt.buffers.get('b')!].map((t) => t.dataSync() as Float32Array);
      opt.dispose();
      tf.dispose([a, b]);
      return out;
    };
    const before = tf.memory().numTensors;
    const fused = run(true);
    const plain = run(false);
    expect(tf.memory().numTensors).toBe(before);
    fused.forEach((v, i) => expect(Buffer.from(v.buffer).equals(Buffer.from(plain[i]!.buffer)), `tensor ${i}`).toBe(true));
    expect(relErr(fused[0]!, randomValues(1003, 71))).toBeGreaterThan(0); // it moved
  });
});
