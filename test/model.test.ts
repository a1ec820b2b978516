import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { ModelSchema } from '../src/config/schema.js';
import { createModel, disposeModel, forward, updateBnRunningStats } from '../src/model/resnet.js';
import { expectClose, useBackend } from './helpers.js';

describe('ResNet', () => {
  it('shapes: the seed\'s ResNet18 (1 channel, 8 classes) gives 512-d features; PReLU has one shared slope per layer at 0.25', async () => {
    await useBackend('wasm');
    const m = createModel(ModelSchema.parse({ activation: 'prelu' }), 1, 8, 1);
    expect(m.featDim).toBe(512);
    const slopes = m.params.filter((p) => p.kind === 'act_slope');
    expect(slopes.length).toBe(m.activationNames.length);
    expect(slopes.every((p) => p.v.size === 1 && p.v.dataSync()[0] === 0.25)).toBe(true);
    // torchvision resnet18 with a 1-channel 7x7 stem and 8 classes: 11,174,344 parameters with one
    // PReLU slope per activation (17) on top.
    expect(m.params.reduce((s, p) => s + p.v.size, 0)).toBe(11_174_344 + 17);
    tf.tidy(() => {
      const out = forward(m, tf.zeros([2, 28, 28, 1]), { training: false });
      expect(out.features.shape).toEqual([2, 512]);
      expect(out.logits.shape).toEqual([2, 8]);
    });
    disposeModel(m);
  });

  it('bn_devices: DataParallel-style BatchNorm normalises each device chunk on its own; running stats follow chunk 0', async () => {
    await useBackend('wasm');
    const cfg = ModelSchema.parse({ widths: [4, 8], blocks: [1, 1], stem: 'cifar', bn_devices: 2 });
    const m = createModel(cfg, 1, 3, 2);
    const base = tf.randomNormal([3, 8, 8, 1], 0, 1, 'float32', 7);
    // Chunk 1 is chunk 0 scaled by 3: per-chunk BatchNorm removes the scale, so features match.
    const x = tf.concat([base, tf.mul(base, 3)], 0) as tf.Tensor4D;
    const out = forward(m, x, { training: true });
    const f = out.features.arraySync();
    for (let i = 0; i < 3; i++) expectClose(f[i + 3]!, f[i]!, 1e-3, 1e-4, `sample ${i}`);
    // The stem's running mean after one update is 0.1 * chunk 0's batch mean.
    const stemMean = out.bnStats![0]!.mean.dataSync().slice();
    updateBnRunningStats(out.bnStats!);
    expectClose(m.bns[0]!.runMean.dataSync(), stemMean.map((v) => 0.1 * v), 1e-5, 1e-7, 'running mean');
    // One device: the same batch normalised together gives different features for the pairs.
    const m1 = createModel({ ...cfg, bn_devices: 1 }, 1, 3, 2);
    const f1 = forward(m1, x, { training: true }).features.arraySync();
    expect(Math.abs(f1[3]![0]! - f1[0]![0]!) + Math.abs(f1[4]![1]! - f1[1]![1]!)).toBeGreaterThan(1e-3);
    disposeModel(m);
    disposeModel(m1);
  });
});
