/**
 * The speed paths of the model and backends (src/backend/added-kernels.ts, the cropped convs of
 * src/model/resnet.ts) against a plain-ops reference of the same PyTorch semantics: a ResNet
 * forward written here with tf.conv2d (full filters, symmetric padding) and tf.moments BatchNorm,
 * its loss and the gradient of every parameter, on cpu (reference) and on each test backend.
 */
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { ModelSchema } from '../src/config/schema.js';
import { createModel, disposeModel, forward, activate, type BnLayer, type Model } from '../src/model/resnet.js';
import { ACT_STATS, BN_APPLY, BN_GRAD, BN_RUNNING, BN_STATS, RELU_GRAD, hasFastBatchNorm } from '../src/backend/added-kernels.js';
import { simdOps } from '../src/backend/simd-module.js';
import { randomValues, relErr, TEST_BACKENDS, useBackend } from './helpers.js';

/** The model's training forward with plain ops: full 3x3/7x7 filters, tf.moments BatchNorm. */
function referenceForward(m: Model, x: tf.Tensor4D): { features: tf.Tensor2D; logits: tf.Tensor2D } {
  const conv = (h: tf.Tensor4D, w: tf.Variable, s: number) => {
    const p = (w.shape[0]! - 1) / 2;
    return tf.conv2d(h, w as tf.Tensor4D, s, p === 0 ? 'valid' : [[0, 0], [p, p], [p, p], [0, 0]]);
  };
  const bn = (h: tf.Tensor4D, l: BnLayer) => {
    const { mean, variance } = tf.moments(h, [0, 1, 2]);
    return tf.add(tf.mul(tf.sub(h, mean), tf.mul(tf.rsqrt(tf.add(variance, 1e-5)), l.gamma)), l.beta) as tf.Tensor4D;
  };
  let h = activate(bn(conv(x, m.stem.conv, m.stem.stride), m.stem.bn), m.stem.act, m.config);
  if (m.stem.pool) h = tf.maxPool(h, 3, 2, 1);
  for (const b of m.blocks) {
    const idt = b.down ? bn(conv(h, b.down.conv, b.stride), b.down.bn) : h;
    const o = activate(bn(conv(h, b.conv1, b.stride), b.bn1), b.act1, m.config);
    h = activate(tf.add(bn(conv(o, b.conv2, 1), b.bn2), idt), b.act2, m.config);
  }
  const features = tf.mean(h, [1, 2]) as tf.Tensor2D;
  return { features, logits: tf.add(tf.matMul(features, m.fc.w as tf.Tensor2D), m.fc.b) as tf.Tensor2D };
}

/** A loss that weights every logit and feature differently, and the gradients of all parameters. */
function lossAndGrads(m: Model, x: tf.Tensor4D, reference: boolean): { loss: number; grads: Float32Array[]; mean0: Float32Array; var0: Float32Array } {
  return tf.tidy(() => {
    let stats: { mean: Float32Array; variance: Float32Array } | undefined;
    const { value, grads } = tf.variableGrads(() => {
      const o = reference ? referenceForward(m, x) : forward(m, x, { training: true });
      if (!reference) stats = { mean: o.bnStats![0]!.mean.dataSync() as Float32Array, variance: o.bnStats![0]!.variance.dataSync() as Float32Array };
      const wl = tf.tensor(randomValues(o.logits.size, 11), o.logits.shape);
      const wf = tf.tensor(randomValues(o.features.size, 12), o.features.shape);
      return tf.add(tf.sum(tf.mul(o.logits, wl)), tf.sum(tf.mul(tf.square(o.features), wf))) as tf.Scalar;
    }, m.params.map((p) => p.v));
    if (reference) {
      // BN stats of the stem, for the running-average inputs.
      const { mean, variance } = tf.moments(tf.conv2d(x, m.stem.conv as tf.Tensor4D, m.stem.stride, m.stem.k === 7 ? [[0, 0], [3, 3], [3, 3], [0, 0]] : [[0, 0], [1, 1], [1, 1], [0, 0]]), [0, 1, 2]);
      stats = { mean: mean.dataSync() as Float32Array, variance: variance.dataSync() as Float32Array };
    }
    return {
      loss: value.dataSync()[0]!,
      grads: m.params.map((p) => grads[p.v.name]!.dataSync() as Float32Array),
      mean0: stats!.mean,
      var0: stats!.variance,
    };
  });
}

const MODELS = [
  // imagenet stem on 16x16: maps 8 -> 4 -> 4, 2, 1, 1: the last stages run cropped convs.
  { name: 'imagenet stem, 1x1 and 2x2 maps', cfg: { blocks: [1, 1, 1, 1], widths: [4, 8, 8, 12], stem: 'imagenet' }, hw: 16, batch: 3 },
  { name: 'cifar stem, prelu', cfg: { blocks: [1, 1], widths: [4, 8], stem: 'cifar', activation: 'prelu' }, hw: 8, batch: 4 },
];

describe.each(TEST_BACKENDS)('fast training paths on %s match plain ops on cpu', (backend) => {
  for (const spec of MODELS) {
    it(spec.name, async () => {
      const cfg = ModelSchema.parse(spec.cfg);
      await useBackend('cpu');
      const mc = createModel(cfg, 1, 5, 3);
      const x0 = randomValues(spec.batch * spec.hw * spec.hw, 5);
      const xc = tf.tensor4d(x0, [spec.batch, spec.hw, spec.hw, 1]);
      const want = lossAndGrads(mc, xc, true);
      tf.dispose(xc);
      disposeModel(mc);

      await useBackend(backend);
      expect(hasFastBatchNorm()).toBe(true);
      const m = createModel(cfg, 1, 5, 3);
      const x = tf.tensor4d(x0, [spec.batch, spec.hw, spec.hw, 1]);
      const before = tf.memory().numTensors;
      const got = lossAndGrads(m, x, false);
      expect(tf.memory().numTensors).toBe(before);
      expect(Math.abs(got.loss - want.loss)).toBeLessThan(1e-4 * Math.max(1, Math.abs(want.loss)));
      got.grads.forEach((g, i) => expect(relErr(g, want.grads[i]!), m.params[i]!.name).toBeLessThan(2e-4));
      expect(relErr(got.mean0, want.mean0)).toBeLessThan(1e-5);
      expect(relErr(got.var0, want.var0)).toBeLessThan(1e-5);
      tf.dispose(x);
      disposeModel(m);
    });
  }

  // C = 8 runs the compiled passes (src/backend/compiled-bn.ts) on wasm, C = 6 the TypeScript ones.
  it.each([8, 6])('BatchNorm kernels (C=%i): forward and analytic backward match tf.moments + ops', async (C) => {
    await useBackend(backend);
    if (backend === 'wasm') expect(simdOps((tf.backend() as unknown as { wasm: { asm: { memory: WebAssembly.Memory } } }).wasm.asm.memory)).not.toBeNull();
    const shape = [5, 3, 4, C];
    const size = 5 * 3 * 4 * C;
    const run = (fast: boolean) =>
      tf.tidy(() => {
        const x = tf.add(tf.mul(tf.tensor4d(randomValues(size, 21), shape as [number, number, number, number]), 3), 1.5);
        const g = tf.tensor1d(randomValues(C, 22));
        const b = tf.tensor1d(randomValues(C, 23));
        const r = tf.tensor(randomValues(size, 24), shape);
        const f = (xx: tf.Tensor, gg: tf.Tensor, bb: tf.Tensor): tf.Scalar => {
          let y: tf.Tensor;
          if (fast) {
            const [mean, variance] = tf.engine().runKernel(BN_STATS, { x: xx }) as unknown as tf.Tensor[];
            const attrs = { eps: 1e-5 } as unknown as tf.NamedAttrMap;
            const op = tf.customGrad(((a: tf.Tensor, c: tf.Tensor, d: tf.Tensor, save: tf.GradSaveFunc) => {
              // Intermediates of the forward are disposed before the backward: save what it reads.
              save([a, mean!, variance!, c]);
              return {
                value: tf.engine().runKernel(BN_APPLY, { x: a, mean: mean!, variance: variance!, gamma: c, beta: d }, attrs) as tf.Tensor,
                gradFunc: (dy: tf.Tensor, s: tf.Tensor[]) =>
                  tf.engine().runKernel(BN_GRAD, { dy, x: s[0]!, mean: s[1]!, variance: s[2]!, gamma: s[3]! }, attrs) as tf.Tensor[],
              };
            }) as unknown as Parameters<typeof tf.customGrad>[0]);
            y = op(xx, gg, bb);
          } else {
            const { mean, variance } = tf.moments(xx, [0, 1, 2]);
            y = tf.add(tf.mul(tf.sub(xx, mean), tf.mul(tf.rsqrt(tf.add(variance, 1e-5)), gg)), bb);
          }
          return tf.sum(tf.mul(y, r));
        };
        const { value, grads } = tf.valueAndGrads(f)([x, g, b]);
        return [value, ...grads].map((t) => t.dataSync() as Float32Array);
      });
    const got = run(true);
    const want = run(false);
    got.forEach((a, i) => expect(relErr(a, want[i]!), `output ${i}`).toBeLessThan(1e-4));
  });
});

describe.each(TEST_BACKENDS)('fused BatchNorm + residual + ReLU kernels on %s', (backend) => {
  // 5*3*5 = 75 rows: odd (the row pairs' remainder) and not a multiple of the 12 row parts.
  it.each([8, 6])('C=%i: the bits of BN apply, add and relu forward, of relu grad then BN grad backward (NaN and -0 included)', async (C) => {
    await useBackend(backend);
    const shape = [5, 3, 5, C] as [number, number, number, number];
    const size = 5 * 3 * 5 * C;
    const attrs = { eps: 1e-5 } as unknown as tf.NamedAttrMap;
    // The same float32 values, -0 apart from 0 (NaN's sign and payload are not compared).
    const same = (a: tf.Tensor, b: tf.Tensor) => {
      const [u, v] = [a.dataSync(), b.dataSync()];
      return u.length === v.length && u.every((e, i) => Object.is(e, v[i]));
    };
    tf.tidy(() => {
      const x = tf.add(tf.mul(tf.tensor4d(randomValues(size, 31), shape), 2), 0.5);
      const gamma = tf.tensor1d(randomValues(C, 32));
      const beta = tf.tensor1d(randomValues(C, 33));
      const rv = randomValues(size, 34);
      rv[3] = NaN;
      rv[7] = -0;
      const r = tf.tensor4d(rv, shape);
      const dyv = randomValues(size, 35);
      dyv[11] = -0;
      dyv[12] = NaN;
      const dy = tf.tensor4d(dyv, shape);
      const [mean, variance] = tf.engine().runKernel(BN_STATS, { x }) as unknown as tf.Tensor[];
      const inputs = { x, mean: mean!, variance: variance!, gamma, beta };
      const plainY = tf.relu(tf.add(tf.engine().runKernel(BN_APPLY, inputs, attrs) as tf.Tensor, r));
      const y = tf.engine().runKernel(BN_APPLY, { ...inputs, r }, { eps: 1e-5, relu: true } as unknown as tf.NamedAttrMap) as tf.Tensor;
      expect(same(y, plainY)).toBe(true);
      const yNoRes = tf.engine().runKernel(BN_APPLY, inputs, { eps: 1e-5, relu: true } as unknown as tf.NamedAttrMap) as tf.Tensor;
      expect(same(yNoRes, tf.relu(tf.engine().runKernel(BN_APPLY, inputs, attrs) as tf.Tensor))).toBe(true);
      // Gradients: relu's (dy * step(y), the kernel the Relu gradient uses), then BatchNorm's.
      const g = tf.engine().runKernel(RELU_GRAD, { dy, x: y }) as tf.Tensor;
      const gradIn = { x, mean: mean!, variance: variance!, gamma };
      const plain = tf.engine().runKernel(BN_GRAD, { ...gradIn, dy: g }, attrs) as tf.Tensor[];
      const withG = tf.engine().runKernel(BN_GRAD, { ...gradIn, dy, y }, { eps: 1e-5, g: true } as unknown as tf.NamedAttrMap) as tf.Tensor[];
      const noG = tf.engine().runKernel(BN_GRAD, { ...gradIn, dy, y }, attrs) as tf.Tensor[];
      expect(withG).toHaveLength(4);
      expect(noG).toHaveLength(3);
      for (let i = 0; i < 3; i++) {
        expect(same(withG[i]!, plain[i]!), `output ${i}`).toBe(true);
        expect(same(noG[i]!, plain[i]!), `output ${i}`).toBe(true);
      }
      expect(same(withG[3]!, g)).toBe(true);
      expect(Number.isNaN(y.dataSync()[3]!)).toBe(true); // the NaN went through
    });
  });
});

describe.each(TEST_BACKENDS)('BatchNorm running statistics kernel on %s', (backend) => {
  it('gives the bits of the ops it replaces (running mean and unbiased variance, momentum 0.1)', async () => {
    await useBackend(backend);
    tf.tidy(() => {
      const C = 37;
      const [rm, rv, m, v] = [41, 42, 43, 44].map((seed, i) => tf.tensor1d(randomValues(C, seed).map((x) => (i % 2 ? Math.abs(x) + 0.5 : x))));
      for (const count of [100352, 2, 7]) {
        const factor = count / (count - 1);
        const wantMean = tf.add(tf.mul(rm!, 1 - 0.1), tf.mul(m!, 0.1));
        const wantVar = tf.add(tf.mul(rv!, 1 - 0.1), tf.mul(tf.mul(v!, factor), 0.1));
        const [gm, gv] = tf.engine().runKernel(BN_RUNNING, { runMean: rm!, runVar: rv!, mean: m!, variance: v! }, { momentum: 0.1, factor } as unknown as tf.NamedAttrMap) as tf.Tensor[];
        expect(Array.from(gm!.dataSync()), `mean, count ${count}`).toEqual(Array.from(wantMean.dataSync()));
        expect(Array.from(gv!.dataSync()), `variance, count ${count}`).toEqual(Array.from(wantVar.dataSync()));
      }
    });
  });
});

describe.each(TEST_BACKENDS)('activation statistics kernel on %s', (backend) => {
  it('per-channel max and count <= 0 equal tf.max and sum(lessEqual) (zeros, negatives, a NaN channel, C % 4 and not)', async () => {
    await useBackend(backend);
    for (const shape of [[3, 5, 4, 16], [2, 3, 3, 3], [4, 1, 1, 8]] as const) {
      const n = shape.reduce((a, b) => a * b, 1);
      const C = shape[3];
      const v = randomValues(n, 41 + C);
      for (let i = 0; i < n; i += 7) v[i] = 0; // ReLU zeros
      for (let i = 1; i < n; i += C) v[i] = -Math.abs(v[i]!) - 1; // channel 1 never positive
      if (C === 16) v[5 * C + 2] = NaN; // channel 2 has a NaN
      const x = tf.tensor4d(v, [...shape]);
      const [mx, cnt] = tf.engine().runKernel(ACT_STATS, { x }) as unknown as [tf.Tensor, tf.Tensor];
      const wantMax = Array.from(tf.max(x, [0, 1, 2]).dataSync());
      const wantCount = Array.from(v).filter((y) => y <= 0).length;
      expect(Array.from(mx.dataSync()), `${shape}`).toEqual(wantMax);
      expect(cnt.dataSync()[0], `${shape}`).toBe(wantCount);
      if (C === 16) expect(Number.isNaN(mx.dataSync()[2])).toBe(true);
      expect(mx.dataSync()[1]!).toBeLessThan(0);
      tf.dispose([x, mx, cnt]);
    }
  });
});

describe.each(TEST_BACKENDS)('ReLU gradient kernel on %s', (backend) => {
  it("tf.grad of relu goes through it and equals tfjs' formula dy * step(x) to the bit (zeros, -0, NaN, odd sizes)", async () => {
    await useBackend(backend);
    expect(tf.getKernel(RELU_GRAD, backend)).toBeDefined();
    for (const n of [1, 7, 4 * 33, 1001]) {
      const v = randomValues(n, 90 + n);
      for (let i = 0; i < n; i += 5) v[i] = 0;
      if (n > 3) {
        v[1] = -0;
        v[2] = NaN;
      }
      const x = tf.tensor1d(v);
      const dy = tf.tensor1d(randomValues(n, 91 + n));
      const got = tf.grad((t: tf.Tensor) => tf.relu(t))(x, dy).dataSync() as Float32Array;
      const want = tf.mul(dy, tf.cast(tf.step(x), 'float32')).dataSync() as Float32Array;
      expect(Buffer.from(got.buffer).equals(Buffer.from(want.buffer)), `n=${n}`).toBe(true);
      if (n > 3) expect(Number.isNaN(got[2])).toBe(true);
      tf.dispose([x, dy]);
    }
  });
});

describe('wasm replacements', () => {
  // C = 8: 4 channels at a time; C = 5: one at a time.
  it.each([5, 8])('MaxPoolGrad (compiled, src/backend/native/conv.c, C=%i) matches cpu, ties included (ReLU zeros): same positions, same sums', async (C) => {
    const grad = () =>
      tf.tidy(() => {
        const x = tf.relu(tf.tensor4d(randomValues(2 * 9 * 7 * C, 31), [2, 9, 7, C]));
        const r = tf.tensor(randomValues(2 * 5 * 4 * C, 32), [2, 5, 4, C]);
        return tf.grad((t: tf.Tensor) => tf.sum(tf.mul(tf.maxPool(t as tf.Tensor4D, 3, 2, 1), r)))(x).dataSync() as Float32Array;
      });
    await useBackend('cpu');
    const want = grad();
    await useBackend('wasm');
    const got = grad();
    // Where the gradient goes (first maximum of each window) must be identical; where windows
    // overlap, the sums may differ in the last bit (cpu adds in float64 per input position).
    expect(Array.from(got).map((v) => v !== 0)).toEqual(Array.from(want).map((v) => v !== 0));
    expect(relErr(got, want)).toBeLessThan(1e-6);
  });

  it('Transpose matches cpu for every permutation of ranks 1-5 (size-1 axes, merged axes, int32, bool)', async () => {
    const perms = (n: number): number[][] => (n === 0 ? [[]] : perms(n - 1).flatMap((p) => Array.from({ length: n }, (_, k) => [...p.slice(0, k), n - 1, ...p.slice(k)])));
    const shapes = [[7], [3, 5], [4, 1, 6], [2, 3, 4, 8], [2, 1, 3, 5, 4], [3, 4, 5, 2, 1]];
    const cases: { shape: number[]; perm: number[]; dtype: 'float32' | 'int32' | 'bool' }[] = [];
    for (const shape of shapes) for (const perm of perms(shape.length)) cases.push({ shape, perm, dtype: 'float32' });
    cases.push({ shape: [2, 3, 4], perm: [2, 0, 1], dtype: 'int32' }, { shape: [2, 3, 4], perm: [1, 2, 0], dtype: 'bool' });
    const run = () =>
      cases.map((c) =>
        tf.tidy(() => {
          const v = Array.from(randomValues(c.shape.reduce((a, b) => a * b, 1), 41), (x) => (c.dtype === 'float32' ? x : Math.round(x * 100)));
          return Array.from(tf.transpose(tf.tensor(c.dtype === 'bool' ? v.map((x) => (x > 0 ? 1 : 0)) : v, c.shape, c.dtype), c.perm).dataSync());
        }),
      );
    await useBackend('cpu');
    const want = run();
    await useBackend('wasm');
    const got = run();
    cases.forEach((c, i) => expect(got[i], `${c.dtype} [${c.shape}] perm [${c.perm}]`).toEqual(want[i]));
    expect(cases.length).toBeGreaterThan(140);
  });

  it('Slice matches cpu (whole trailing axes, size-1 axes, strided rows, int32, 5-D fallback)', async () => {
    const cases: [number[], number[], number[], 'float32' | 'int32'][] = [
      [[3, 3, 8, 4], [1, 1, 0, 0], [1, 1, -1, -1], 'float32'],
      [[3, 3, 8, 4], [1, 0, 0, 0], [2, 2, 8, 4], 'float32'],
      [[3, 3, 8, 4], [0, 1, 2, 1], [3, 2, 5, 3], 'float32'],
      [[6, 7], [2, 1], [3, 5], 'int32'],
      [[10], [3], [6], 'float32'],
      [[4, 5, 6], [1, 2, 0], [2, 3, 6], 'float32'],
      [[2, 3, 4, 5, 6], [1, 1, 1, 1, 1], [1, 2, 3, 2, 4], 'float32'],
    ];
    const run = () =>
      cases.map(([shape, b, sz, dtype]) =>
        tf.tidy(() => {
          const n = shape.reduce((a, c) => a * c, 1);
          const v = Array.from(randomValues(n, 51), (x) => (dtype === 'int32' ? Math.round(x * 100) : x));
          return Array.from(tf.slice(tf.tensor(v, shape, dtype), b, sz).dataSync());
        }),
      );
    await useBackend('cpu');
    const want = run();
    await useBackend('wasm');
    const got = run();
    cases.forEach((c, i) => expect(got[i], JSON.stringify(c)).toEqual(want[i]));
  });

  it('Max/Min/Sum/Mean over leading and mixed axes, LessEqual/Greater with a scalar match cpu', async () => {
    const run = () =>
      tf.tidy(() => {
        const x = tf.tensor4d(randomValues(4 * 5 * 6 * 8, 61), [4, 5, 6, 8]);
        const outs: tf.Tensor[] = [];
        for (const axes of [[0, 1, 2], [1, 2], [0], [0, 2], [3], [1, 3]]) {
          outs.push(tf.max(x, axes), tf.min(x, axes), tf.sum(x, axes, true), tf.mean(x, axes));
        }
        outs.push(tf.cast(tf.lessEqual(x, 0), 'int32'), tf.cast(tf.greater(x, 0.25), 'int32'), tf.cast(tf.lessEqual(x, tf.zeros([8])), 'int32'));
        return outs.map((t) => ({ shape: t.shape, v: Array.from(t.dataSync()) }));
      });
    await useBackend('cpu');
    const want = run();
    await useBackend('wasm');
    const got = run();
    got.forEach((g, i) => {
      expect(g.shape, `output ${i}`).toEqual(want[i]!.shape);
      expect(relErr(g.v, want[i]!.v), `output ${i}`).toBeLessThan(1e-6);
    });
  });

  it('GatherV2 matches cpu (axis 0 rows, repeated indices, odd row sizes, int32, other axes)', async () => {
    const run = () =>
      tf.tidy(() => {
        const x = tf.tensor3d(randomValues(9 * 5 * 8, 71), [9, 5, 8]);
        const xi = tf.tensor2d(Array.from(randomValues(6 * 3, 72), (v) => Math.round(v * 50)), [6, 3], 'int32');
        const outs = [
          tf.gather(x, tf.tensor1d([8, 0, 3, 3], 'int32')),
          tf.gather(x, tf.tensor2d([1, 2, 7, 7], [2, 2], 'int32')),
          tf.gather(tf.reshape(x, [9, 40]), tf.tensor1d([4], 'int32')),
          tf.gather(tf.reshape(x, [15, 24]), tf.tensor1d([14, 0], 'int32')),
          tf.gather(xi, tf.tensor1d([5, 1], 'int32')),
          tf.gather(x, tf.tensor1d([4, 1], 'int32'), 1),
          tf.gather(tf.reshape(x, [45, 8]), tf.tensor1d([44, 2, 9], 'int32')),
        ];
        return outs.map((t) => ({ shape: t.shape, v: Array.from(t.dataSync()) }));
      });
    await useBackend('cpu');
    const want = run();
    await useBackend('wasm');
    const got = run();
    got.forEach((g, i) => expect(g, `output ${i}`).toEqual(want[i]));
  });

  it('Identity and same-dtype Cast share data; sharing survives disposal of either side', async () => {
    await useBackend('wasm');
    const a = tf.tensor1d([1, 2, 3]);
    const buffers = tf.memory().numDataBuffers;
    const b = tf.clone(a);
    const c = tf.cast(a, 'float32');
    expect(tf.memory().numDataBuffers).toBe(buffers);
    a.dispose();
    expect(Array.from(b.dataSync())).toEqual([1, 2, 3]);
    b.dispose();
    expect(Array.from(c.dataSync())).toEqual([1, 2, 3]);
    const d = tf.cast(c, 'int32');
    expect(d.dtype).toBe('int32');
    expect(Array.from(d.dataSync())).toEqual([1, 2, 3]);
    tf.dispose([c, d]);
  });
});
