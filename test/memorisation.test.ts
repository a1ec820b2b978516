import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { ModelSchema } from '../src/config/schema.js';
import { makeInstruments } from '../src/instruments/index.js';
import type { BatchView } from '../src/instruments/types.js';
import { createModel, disposeModel, lastActivation } from '../src/model/resnet.js';
import { useBackend } from './helpers.js';

beforeAll(() => useBackend('cpu'));

/** A train BatchView over hand-made numbers. */
function view(p: Partial<BatchView> & { features: Float32Array; labels: Int32Array; featDim: number; numClasses: number }): BatchView {
  const { features, ...rest } = p;
  return {
    split: 'train', epoch: 0, iter: 0, iters: 1, step: 0, record: true, batchSize: p.labels.length,
    lr: 0.1, centerLr: 0.5, lamb: 0.01, centerScale: 1,
    logits: () => new Float32Array(p.labels.length * p.numClasses),
    centersBefore: () => new Float32Array(p.numClasses * p.featDim),
    centersAfter: () => new Float32Array(p.numClasses * p.featDim),
    activations: () => [], grads: () => ({}), model: undefined as never, ce: 0, center: 0, acc: 0,
    ...rest,
    features: () => features,
  };
}

describe('memorisation (clean vs flipped samples) on hand-made numbers', () => {
  // 2 classes in 1-d, centers c0 = 0, c1 = 10. Samples (feature, label trained on, true class):
  //   clean:   (1, 0, 0), (3, 0, 0), (9, 1, 1)
  //   flipped: (4, 1, 0) -> label 1, true 0;  (2, 0, 1) -> label 0, true 1
  const features = Float32Array.from([1, 3, 9, 4, 2]);
  const labels = Int32Array.from([0, 0, 1, 1, 0]);
  const trueLabels = Int32Array.from([0, 0, 1, 0, 1]);
  const centers = Float32Array.from([0, 10]);
  // Logits: predicts class 0, 0, 1 (clean all right), then 1 (flipped memorised), 1 (flipped: true class).
  const logits = Float32Array.from([2, 0, 2, 0, 0, 2, 0, 2, 0, ln(3)]);
  function ln(x: number) {
    return Math.log(x);
  }

  it('splits center loss (within + lag), CE and accuracy by group, and counts memorised flips', () => {
    const inst = makeInstruments(['memorisation'])[0]!;
    inst.begin('train', 0);
    const v = inst.batch(view({ features, labels, trueLabels, featDim: 1, numClasses: 2, centersBefore: () => centers, logits: () => logits }))!;
    // clean: 0.5*(1 + 9 + 1)/3 = 11/6; within: class 0 {1,3} mean 2 -> 0.5*1 each; class 1 {9} -> 0;
    // within = (0.5*2 + 0)/3 = 1/3; lag: class 0 0.5*(2-0)^2 = 2 (x2 samples), class 1 0.5*1 = 0.5 -> (4 + 0.5)/3 = 1.5
    expect(v['center/clean']).toBeCloseTo(11 / 6, 6);
    expect(v['cl_within/clean']).toBeCloseTo(1 / 3, 6);
    expect(v['cl_lag/clean']).toBeCloseTo(1.5, 6);
    // flipped: (4 vs c1=10): 18, (2 vs c0=0): 2 -> mean 10; each alone in its class: within 0, lag 10.
    expect(v['center/flipped']).toBeCloseTo(10, 6);
    expect(v['cl_within/flipped']).toBeCloseTo(0, 6);
    expect(v['cl_lag/flipped']).toBeCloseTo(10, 6);
    // CE: logits (2,0) label 0 -> log(1+e^-2); (0,2) label 1 -> same; flipped (0,2) label 1 -> same; (0, ln3) label 0 -> ln 4.
    const a = Math.log(1 + Math.exp(-2));
    expect(v['ce/clean']).toBeCloseTo(a, 6);
    expect(v['ce/flipped']).toBeCloseTo((a + Math.log(4)) / 2, 6);
    expect(v['acc/clean']).toBe(1);
    expect(v['acc/flipped']).toBe(0.5); // memorised: predicted as the noisy label
    expect(v.flipped_true_acc).toBe(0.5); // predicted as the true class
    expect(v.flipped_share).toBeCloseTo(0.4, 12);
    expect(v.center_share_flipped).toBeCloseTo(20 / (20 + 5.5), 6);
    // The groups add up to the whole center loss of the batch: 0.5*(1+9+1+36+4)/5 = 5.1.
    expect((v['center/clean']! * 3 + v['center/flipped']! * 2) / 5).toBeCloseTo(5.1, 6);
    const e = inst.end('train', 0);
    expect(e['center/flipped']).toBeCloseTo(10, 6);
  });

  it('reports nothing without label noise', () => {
    const inst = makeInstruments(['memorisation'])[0]!;
    inst.begin('train', 0);
    expect(inst.batch(view({ features, labels, featDim: 1, numClasses: 2 }))).toBeUndefined();
    expect(inst.end('train', 0)).toEqual({});
  });
});

describe('gated-share on hand-made numbers', () => {
  function model(activation: 'relu' | 'prelu') {
    // featDim 2: the last block's output has 2 channels.
    return createModel(ModelSchema.parse({ blocks: [1], widths: [2], stem: 'cifar', activation }), 1, 2, 1);
  }

  it('ReLU: share of (x - c)^2 on zero features; gradient passing over arriving', () => {
    const m = model('relu');
    const name = lastActivation(m).name;
    // One sample, 2 channels, a 2x1 map: channel 0 = [3, 1] (mean 2, both pass), channel 1 = [0, 0] (feature 0, blocked).
    const a = tf.tensor4d([3, 0, 1, 0], [1, 2, 1, 2]);
    const features = Float32Array.from([2, 0]);
    const centers = Float32Array.from([1, 2, 0, 0]); // class 0 center (1, 2)
    const inst = makeInstruments(['gated-share'])[0]!;
    inst.begin('train', 0);
    const v = inst.batch(view({ features, labels: Int32Array.from([0]), featDim: 2, numClasses: 2, centersBefore: () => centers, activations: () => [{ name, t: a }], model: m }))!;
    // (x - c) = (1, -2): total 5, on the zero feature 4 -> 0.8.
    expect(v.gated_share).toBeCloseTo(0.8, 12);
    // G = (1, -2); mean f^2: channel 0 = 1, channel 1 = 0 -> pass^2 = 1, arrive^2 = 5.
    expect(v.gated_pass).toBeCloseTo(Math.sqrt(1 / 5), 6);
    a.dispose();
    disposeModel(m);
  });

  it('PReLU: the negative side passes times the slope (0.25 at init)', () => {
    const m = model('prelu');
    const name = lastActivation(m).name;
    // channel 0 = [2, 2] (passes), channel 1 = [-0.5, 0.5]: f = 0.25 and 1 -> mean f^2 = (0.0625 + 1) / 2
    const a = tf.tensor4d([2, -0.5, 2, 0.5], [1, 2, 1, 2]);
    const features = Float32Array.from([2, 0]);
    const centers = Float32Array.from([0, 1, 0, 0]);
    const inst = makeInstruments(['gated-share'])[0]!;
    inst.begin('train', 0);
    const v = inst.batch(view({ features, labels: Int32Array.from([0]), featDim: 2, numClasses: 2, centersBefore: () => centers, activations: () => [{ name, t: a }], model: m }))!;
    // (x - c) = (2, -1): total 5; feature 1 is exactly 0 -> share 1/5.
    expect(v.gated_share).toBeCloseTo(0.2, 12);
    expect(v.gated_pass).toBeCloseTo(Math.sqrt((4 * 1 + 1 * (0.0625 + 1) / 2) / 5), 6);
    a.dispose();
    disposeModel(m);
  });
});

describe('memorisation and gated-share in a real tiny FER-like run (wasm)', () => {
  it('split the recorded center loss exactly, per epoch and per step, and keep tensors flat', async () => {
    const { resolveConfig } = await import('../src/config/load.js');
    const { loadDataFor, train } = await import('../src/train/trainer.js');
    const { selectBackend } = await import('../src/backend/select.js');
    for (const activation of ['relu', 'prelu'] as const) {
      const cfg = resolveConfig(
        {
          lr: 0.05, epochs: 3, decay_epochs: [1, 2], decay_factors: [0.5, 0.1], batch_size: 32,
          model: { activation },
          data: { train_counts: [60, 40, 30, 20, 20, 10, 10, 10], valid_per_class: 5, test_per_class: 5, image_size: 20, label_noise: 0.3 },
          instruments: { enable: ['memorisation', 'gated-share'] },
        },
        'tiny',
      );
      const backend = await selectBackend('wasm');
      const data = loadDataFor(cfg);
      const tensorsAt: number[] = [];
      const r = await train({ config: cfg, backend, data, instruments: makeInstruments(cfg.instruments.enable), onEpoch: () => tensorsAt.push(tf.memory().numTensors) });
      expect(r.status).toBe('done');
      expect(new Set(tensorsAt).size, `numTensors per epoch ${tensorsAt}`).toBe(1);
      const nFlip = Math.round(0.3 * 200);
      for (const e of r.epochs) {
        const t = e.train;
        const mix = (t['center/clean']! * (200 - nFlip) + t['center/flipped']! * nFlip) / 200;
        expect(mix).toBeCloseTo(t.center!, 4);
        for (const g of ['clean', 'flipped']) expect(t[`cl_within/${g}`]! + t[`cl_lag/${g}`]!).toBeCloseTo(t[`center/${g}`]!, 6);
        expect(t.flipped_share).toBeCloseTo(nFlip / 200, 12);
        expect(t['acc/flipped']! + t.flipped_true_acc!).toBeLessThanOrEqual(1);
        expect(t.gated_share).toBeGreaterThanOrEqual(0);
        expect(t.gated_share).toBeLessThanOrEqual(1);
        expect(t.gated_pass).toBeGreaterThan(0);
        expect(t.gated_pass).toBeLessThanOrEqual(1);
        // valid/test have no flipped labels: no memorisation values there.
        expect(e.valid['center/flipped']).toBeUndefined();
        if (activation === 'prelu') expect(t.gated_share).toBe(0); // PReLU features are never exactly 0
      }
    }
  });
});
