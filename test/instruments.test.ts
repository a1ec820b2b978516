import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { ModelSchema } from '../src/config/schema.js';
import { createModel, disposeModel } from '../src/model/resnet.js';
import { makeInstruments } from '../src/instruments/index.js';
import { ClassMoments } from '../src/instruments/classstats.js';
import type { BatchView, Instrument } from '../src/instruments/types.js';
import { useBackend } from './helpers.js';

/** A BatchView over hand-made numbers. */
function view(p: Partial<BatchView> & { features: Float32Array; labels: Int32Array; featDim: number; numClasses: number }): BatchView {
  const { features, ...rest } = p;
  return {
    split: 'train',
    epoch: 0,
    iter: 0,
    iters: 1,
    step: 0,
    record: true,
    batchSize: p.labels.length,
    lr: 0.1,
    centerLr: 0.5,
    lamb: 0.01,
    centerScale: 1,
    logits: () => new Float32Array(p.labels.length * p.numClasses),
    centersBefore: () => new Float32Array(p.numClasses * p.featDim),
    centersAfter: () => new Float32Array(p.numClasses * p.featDim),
    activations: () => [],
    grads: () => ({}),
    model: undefined as never,
    ce: 0,
    center: 0,
    acc: 0,
    ...rest,
    features: () => features,
  };
}

function one(name: string): Instrument {
  return makeInstruments([name])[0]!;
}

describe('instruments on hand-made numbers with known answers', () => {
  // Two classes in 2-d. Class 0: (0,0),(2,0) -> mean (1,0), within 0.5*mean||x-m||^2 = 0.5.
  // Class 1: (0,3),(0,5) -> mean (0,4), within 0.5. Centers c0=(1,1), c1=(0,4): lag 0.5 and 0.
  const features = Float32Array.from([0, 0, 2, 0, 0, 3, 0, 5]);
  const labels = Int32Array.from([0, 0, 1, 1]);
  const centers = Float32Array.from([1, 1, 0, 4]);

  it('ClassMoments: the center-loss split adds up exactly', () => {
    const m = new ClassMoments(2, 2);
    m.add(features, labels);
    const s = m.centerSplit(centers);
    expect(s.perClass[0]).toEqual({ within: 0.5, lag: 0.5, n: 2 });
    expect(s.perClass[1]).toEqual({ within: 0.5, lag: 0, n: 2 });
    expect(s.within).toBeCloseTo(0.5, 12);
    expect(s.lag).toBeCloseTo(0.25, 12);
    // Direct center loss: 0.5*mean||x-c||^2 = 0.5*(2 + 2 + 1 + 1)/4 = 0.75 = within + lag.
    expect(s.within + s.lag).toBeCloseTo(0.75, 12);
    // Between: overall mean (0.5, 2); class means (1,0),(0,4): 0.5*mean(0.25+4, 0.25+4) = 2.125.
    expect(m.between()).toBeCloseTo(2.125, 12);
  });

  it('center-split: batch split, NC1 ratio, center distance', () => {
    const inst = one('center-split');
    inst.begin('train', 0);
    const v = inst.batch(view({ features, labels, featDim: 2, numClasses: 2, centersBefore: () => centers }))!;
    expect(v.cl_within).toBeCloseTo(0.5, 6);
    expect(v.cl_lag).toBeCloseTo(0.25, 6);
    const e = inst.end('train', 0);
    expect(e.cl_within! + e.cl_lag!).toBeCloseTo(0.75, 6);
    expect(e.nc1).toBeCloseTo(0.5 / 2.125, 6);
    // ||x-c||: class 0: sqrt(2), sqrt(2); class 1: 1, 1.
    expect(e['center_dist/c0']).toBeCloseTo(Math.SQRT2, 6);
    expect(e['center_dist/c1']).toBeCloseTo(1, 6);
  });

  it('feature-norms: mean, quantiles, per class, feature scale', () => {
    const inst = one('feature-norms');
    inst.begin('train', 0);
    inst.batch(view({ features, labels, featDim: 2, numClasses: 2 }));
    const e = inst.end('train', 0);
    // Norms 0, 2, 3, 5.
    expect(e.feat_norm_mean).toBeCloseTo(2.5, 6);
    expect(e['feat_norm/c0']).toBeCloseTo(1, 6);
    expect(e['feat_norm/c1']).toBeCloseTo(4, 6);
    expect(e.feat_sq).toBeCloseTo((0.5 * (0 + 4 + 9 + 25)) / 4, 6);
    expect(e.feat_norm_p50).toBeGreaterThanOrEqual(2);
    expect(e.feat_norm_p50).toBeLessThanOrEqual(3);
  });

  it('center-drift: per step and over the epoch', () => {
    const inst = one('center-drift');
    inst.begin('train', 0);
    const c1 = Float32Array.from([1, 1, 0, 4]);
    const c2 = Float32Array.from([4, 5, 0, 4]); // class 0 moved by (3,4): 5; class 1 still
    const c3 = Float32Array.from([4, 5, 0, 6]); // class 1 moved by 2
    const s1 = inst.batch(view({ features, labels, featDim: 2, numClasses: 2, centersBefore: () => c1, centersAfter: () => c2 }))!;
    expect(s1.center_step_drift).toBeCloseTo(2.5, 6);
    inst.batch(view({ features, labels, featDim: 2, numClasses: 2, centersBefore: () => c2, centersAfter: () => c3 }));
    const e = inst.end('train', 0);
    expect(e['center_drift/c0']).toBeCloseTo(5, 6);
    expect(e['center_drift/c1']).toBeCloseTo(2, 6);
    expect(e.center_step_drift).toBeCloseTo((2.5 + 1) / 2, 6);
    expect(e['center_norm/c1']).toBeCloseTo(6, 6);
  });

  it('dead-units: zero share per sample, dead channels, died/revived across epochs', async () => {
    await useBackend('wasm');
    const inst = one('dead-units');
    const before = tf.memory().numTensors;
    // [N=2, H=1, W=2, C=3]: channel 0 always 0 (dead), channel 1 negative-or-zero once, channel 2 positive.
    const a = tf.tensor4d([0, 1, 2, 0, -1, 3, 0, 0, 1, 0, 2, 1], [2, 1, 2, 3]);
    inst.begin('train', 0);
    const s = inst.batch(view({ features, labels, featDim: 2, numClasses: 2, activations: () => [{ name: 'l1', t: a }] }))!;
    // <= 0 entries: 0,0,-1,0,0,0 -> 6 of 12.
    expect(s['zero_frac/l1']).toBeCloseTo(0.5, 6);
    const e0 = inst.end('train', 0);
    expect(e0['dead_frac/l1']).toBeCloseTo(1 / 3, 6);
    // Next epoch: channel 0 revives, channel 2 dies.
    const b = tf.tensor4d([1, 1, 0, 0, 1, -2, 0, 1, 0, 0, 1, 0], [2, 1, 2, 3]);
    inst.begin('train', 1);
    inst.batch(view({ features, labels, featDim: 2, numClasses: 2, activations: () => [{ name: 'l1', t: b }] }));
    const e1 = inst.end('train', 1);
    expect(e1['died/l1']).toBe(1);
    expect(e1['revived/l1']).toBe(1);
    tf.dispose([a, b]);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('param-stats: weight norms, effective LR lr/||w||^2, angle after a known rotation', async () => {
    await useBackend('wasm');
    const m = createModel(ModelSchema.parse({ widths: [4], blocks: [1], stem: 'cifar', activation: 'prelu' }), 1, 2, 1);
    const inst = one('param-stats');
    inst.begin('train', 0);
    const conv = m.params.find((p) => p.kind === 'conv')!;
    const w0 = conv.v.dataSync().slice();
    inst.batch(view({ features, labels, featDim: 2, numClasses: 2, model: m, lr: 0.2 }));
    // Rotate the conv weight by 90 degrees in its own plane: w1 = orthogonal to w0 with the same norm.
    const n0 = Math.hypot(...w0);
    const u = new Float32Array(w0.length);
    u[0] = 1;
    const dot = w0[0]!;
    const orth = w0.map((_, i) => u[i]! - (dot * w0[i]!) / (n0 * n0));
    const no = Math.hypot(...orth);
    conv.v.assign(tf.tensor(orth.map((x) => (x / no) * n0), conv.v.shape));
    const e = inst.end('train', 0);
    expect(e[`w_norm/${conv.name}`]).toBeCloseTo(n0, 4);
    expect(e[`eff_lr/${conv.name}`]).toBeCloseTo(0.2 / (n0 * n0), 6);
    expect(e[`angle/${conv.name}`]).toBeCloseTo(90, 2);
    expect(e['prelu_slope/stem.act']).toBeCloseTo(0.25, 6);
    disposeModel(m);
  });
});
