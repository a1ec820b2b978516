import * as tf from '@tensorflow/tfjs';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ModelSchema } from '../src/config/schema.js';
import { centerGradient, centerLoss } from '../src/model/centerloss.js';
import { createModel, disposeModel, forward, lastActivation } from '../src/model/resnet.js';
import { crossEntropy } from '../src/train/trainer.js';
import { expectClose, TEST_BACKENDS, useBackend } from './helpers.js';

interface LsCase {
  b: number;
  k: number;
  eps: number;
  logits: number[];
  labels: number[];
  loss: number;
  grad: number[];
}

const LS = JSON.parse(readFileSync(join(import.meta.dirname, 'fixtures', 'label_smoothing.json'), 'utf8')) as { torch: string; cases: LsCase[] };

for (const backend of TEST_BACKENDS) {
  describe(`label smoothing against nn.CrossEntropyLoss(label_smoothing=) of PyTorch ${LS.torch} (${backend})`, () => {
    it('loss and logit gradient match on every case', async () => {
      await useBackend(backend);
      for (const c of LS.cases) {
        const logits = tf.tensor2d(c.logits, [c.b, c.k]);
        const labels = tf.tensor1d(c.labels, 'int32');
        const g = tf.grad((l: tf.Tensor) => crossEntropy(l as tf.Tensor2D, labels, c.eps));
        const loss = crossEntropy(logits, labels, c.eps).dataSync()[0]!;
        expect(loss).toBeCloseTo(c.loss, 5);
        expectClose(g(logits).dataSync(), c.grad, 1e-4, 1e-6, `grad eps=${c.eps}`);
        tf.dispose([logits, labels]);
      }
    });
  });
}

describe('center_on: fitted — the center loss and the centers step over the masked samples only', () => {
  it('equals the seed computation on the subset (B kept as the divisor)', async () => {
    await useBackend('cpu');
    const x = tf.tensor2d([1, 2, 3, 4, 5, 6, 7, 8, -1, 0], [5, 2]);
    const y = tf.tensor1d([0, 1, 0, 1, 1], 'int32');
    const c = tf.tensor2d([0, 1, 2, 2], [2, 2]);
    const mask = tf.tensor1d([1, 0, 1, 1, 0]);
    const keep = [0, 2, 3];
    const xs = tf.gather(x, keep) as tf.Tensor2D;
    const ys = tf.gather(y, keep) as tf.Tensor1D;
    const full = centerLoss(x, y, c, true, mask).dataSync()[0]!;
    const sub = centerLoss(xs, ys, c, true).dataSync()[0]!;
    expect(full).toBeCloseTo((sub * 3) / 5, 6);
    expectClose(centerGradient(x, y, c, mask).dataSync(), centerGradient(xs, ys, c).dataSync(), 1e-6, 1e-7, 'center grad');
    // The feature gradient is zero on the samples left out.
    const gx = tf.grad((f: tf.Tensor) => centerLoss(f as tf.Tensor2D, y, c, true, mask))(x).arraySync() as number[][];
    expect(gx[1]!.map(Math.abs)).toEqual([0, 0]);
    expect(gx[4]!.map(Math.abs)).toEqual([0, 0]);
    expect(gx[0]![0]).toBeCloseTo((1 - 0) / 5, 6);
  });
});

describe('model.last_activation: the last block output only', () => {
  it('has one PReLU slope, on the last activation, and gives negative features where ReLU gives none', async () => {
    await useBackend('cpu');
    const m = createModel(ModelSchema.parse({ blocks: [1, 1], widths: [4, 8], stem: 'cifar', last_activation: 'prelu' }), 1, 3, 1);
    const slopes = m.params.filter((p) => p.kind === 'act_slope').map((p) => p.name);
    expect(slopes).toEqual([`${lastActivation(m).name}.weight`]);
    expect(lastActivation(m).kind).toBe('prelu');
    expect(m.blocks[0]!.act2.kind).toBe('relu');
    const x = tf.randomNormal([6, 8, 8, 1], 0, 1, 'float32', 3) as tf.Tensor4D;
    const out = forward(m, x, { training: true, keepActivations: true });
    const feats = out.features.dataSync();
    expect(Math.min(...feats)).toBeLessThan(0);
    // every activation before the last is a ReLU: nothing negative
    for (const a of out.activations!.slice(0, -1)) expect(Math.min(...a.t.dataSync())).toBeGreaterThanOrEqual(0);
    disposeModel(m);
  });
});
