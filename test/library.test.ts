import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { CenterLossModule, TorchSGD, selectBackend } from '../src/index.js';

describe('library API: the seed center loss in your own tfjs loop (README example)', () => {
  it('trains a small dense net with CE + lambda * center loss; centers follow the features', async () => {
    await selectBackend('wasm');
    const k = 3;
    const d = 4;
    // Three separable Gaussian blobs in 8-d.
    const n = 96;
    const xs: number[] = [];
    const ys: number[] = [];
    let s = 1;
    const rnd = () => ((s = (s * 16807) % 2147483647) / 2147483647) * 2 - 1;
    for (let i = 0; i < n; i++) {
      const c = i % k;
      ys.push(c);
      for (let j = 0; j < 8; j++) xs.push((j === c ? 2 : 0) + 0.5 * rnd());
    }
    const x = tf.tensor2d(xs, [n, 8]);
    const y = tf.tensor1d(ys, 'int32');
    const w1 = tf.variable(tf.randomNormal([8, d], 0, 0.3, 'float32', 1));
    const w2 = tf.variable(tf.randomNormal([d, k], 0, 0.3, 'float32', 2));
    const opt = new TorchSGD([{ name: 'w1', v: w1 }, { name: 'w2', v: w2 }], { lr: 0.1, momentum: 0.9, weightDecay: 5e-4 });
    const cl = new CenterLossModule({ numClasses: k, featDim: d, alpha: 0.5, seed: 1 });
    const c0 = cl.centers.arraySync();
    const losses: number[] = [];
    for (let step = 0; step < 60; step++) {
      let feats!: tf.Tensor2D;
      const { value, grads } = tf.variableGrads(() => {
        const f = tf.relu(tf.matMul(x, w1));
        feats = tf.keep(f);
        const logits = tf.matMul(f, w2);
        const ce = tf.losses.softmaxCrossEntropy(tf.cast(tf.oneHot(y, k), 'float32'), logits);
        return tf.add(ce, tf.mul(0.01, cl.loss(f, y))) as tf.Scalar;
      });
      losses.push(value.dataSync()[0]!);
      cl.step(feats, y); // centers -= alpha * the seed's center gradient
      opt.step({ w1: grads[w1.name]!, w2: grads[w2.name]! });
      tf.dispose([value, feats, ...Object.values(grads)]);
    }
    expect(losses[losses.length - 1]!).toBeLessThan(losses[0]! * 0.5);
    // Centers moved toward the class means of the features.
    const centerLossNow = tf.tidy(() => cl.loss(tf.relu(tf.matMul(x, w1)), y).dataSync()[0]!);
    const centersInit = new CenterLossModule({ numClasses: k, featDim: d, init: Float32Array.from(c0.flat()) });
    const centerLossInit = tf.tidy(() => centersInit.loss(tf.relu(tf.matMul(x, w1)), y).dataSync()[0]!);
    expect(centerLossNow).toBeLessThan(centerLossInit);
    tf.dispose([x, y, w1, w2]);
    opt.dispose();
    cl.dispose();
    centersInit.dispose();
  });
});

describe('library API: your own TensorBoard logs', () => {
  it('ingestPaths reads a log directory as variants x seeds, and analyzeSuite compares them', async () => {
    const { ingestPaths, analyzeSuite } = await import('../src/index.js');
    const { runs } = ingestPaths([new URL('./fixtures/tfevents/logs', import.meta.url).pathname]);
    expect(runs.map((r) => `${r.manifest.variant}/${r.manifest.seed}`).sort()).toEqual(['prelu/0', 'prelu/1', 'relu/0', 'relu/1']);
    const a = analyzeSuite('logs', runs);
    const verdicts = new Set(a.results.filter((r) => r.split === 'train').map((r) => `${r.variant} ${r.verdict}`));
    expect(verdicts.has('relu spike')).toBe(true);
    expect(verdicts.has('prelu spike')).toBe(false);
  });
});
