import * as tf from '@tensorflow/tfjs';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CenterLossModule, centerGradient, centerLoss, initCenters } from '../src/model/centerloss.js';
import { TorchSGD } from '../src/train/sgd.js';
import { activate } from '../src/model/resnet.js';
import { ModelSchema } from '../src/config/schema.js';
import { TEST_BACKENDS, expectClose, flat, useBackend } from './helpers.js';

/** Reference numbers computed with PyTorch 1.13 (copied from ../shared/golden). */
const CL = JSON.parse(readFileSync(new URL('./fixtures/center_loss.json', import.meta.url), 'utf8'));
const SP = JSON.parse(readFileSync(new URL('./fixtures/sgd_prelu.json', import.meta.url), 'utf8'));

const inputSets = [
  { name: 'dyadic', features: CL.features, centers: CL.centers, cases: CL.cases },
  { name: 'nondyadic', features: CL.features_nondyadic, centers: CL.centers_nondyadic, cases: CL.cases_nondyadic },
];

describe.each(TEST_BACKENDS)('PyTorch golden vectors on %s', (backend) => {
  for (const set of inputSets) {
    for (const c of set.cases) {
      it(`center loss ${set.name} size_average=${c.size_average} grad_output=${c.grad_output}`, async () => {
        await useBackend(backend);
        const before = tf.memory().numTensors;
        tf.tidy(() => {
          const x = tf.tensor2d(set.features);
          const cen = tf.tensor2d(set.centers);
          const y = tf.tensor1d(CL.labels, 'int32');
          const loss = centerLoss(x, y, cen, c.size_average);
          expectClose([loss.dataSync()[0]!], [c.loss], 1e-6, 1e-6, 'loss');
          // Upstream gradient as loss = xent + lamb * center with lamb = grad_output.
          const g = tf.grad((f: tf.Tensor) => tf.mul(centerLoss(f as tf.Tensor2D, y, cen, c.size_average), c.grad_output))(x);
          expectClose(g.dataSync(), flat(c.grad_feature), 1e-6, 1e-7, 'grad_feature');
          const gc = centerGradient(x, y, cen);
          expectClose(gc.dataSync(), flat(c.grad_centers), 1e-6, 1e-7, 'grad_centers');
          const after = tf.sub(cen, tf.mul(gc, 0.5));
          expectClose(after.dataSync(), flat(c['centers_after_sgd_lr0.5']), 1e-6, 1e-7, 'centers_after');
        });
        expect(tf.memory().numTensors).toBe(before);
      });
    }
  }

  it('CenterLoss module: loss, step with alpha 0.5, feature-dim check', async () => {
    await useBackend(backend);
    for (const m of CL.module_check) {
      const mod = new CenterLossModule({ numClasses: CL.num_classes, featDim: CL.feat_dim, sizeAverage: m.size_average, alpha: 0.5, init: Float32Array.from(flat(CL.centers)) });
      tf.tidy(() => {
        const x = tf.tensor2d(CL.features);
        const y = tf.tensor1d(CL.labels, 'int32');
        expectClose([mod.loss(x, y).dataSync()[0]!], [m.loss], 1e-6, 1e-6, 'module loss');
        mod.step(x, y);
      });
      expectClose(mod.centers.dataSync(), flat(m['centers_after_sgd_lr0.5']), 1e-6, 1e-7, 'module centers');
      expect(() => tf.tidy(() => mod.loss(tf.zeros([6, 5]), tf.tensor1d(CL.labels, 'int32')))).toThrow(/Center's dim: 4 should be equal to input feature's dim: 5/);
      mod.dispose();
    }
  });

  for (const s of SP.sgd) {
    it(`SGD momentum=${s.momentum} wd=${s.weight_decay} lr ${s.lr} -> ${s.lr_after} before step ${s.lr_changes_before_step}`, async () => {
      await useBackend(backend);
      const v = tf.variable(tf.tensor2d(s.param_init));
      const opt = new TorchSGD([{ name: 'p', v }], { lr: s.lr, momentum: s.momentum, weightDecay: s.weight_decay });
      s.grads.forEach((g: number[][], k: number) => {
        if (k === s.lr_changes_before_step) opt.lr = s.lr_after;
        const gt = tf.tensor2d(g);
        opt.step({ p: gt });
        gt.dispose();
        expectClose(v.dataSync(), flat(s.param_after_each_step[k]), 2e-6, 1e-7, `step ${k}`);
      });
      opt.dispose();
      v.dispose();
    });
  }

  for (const p of SP.prelu) {
    it(`PReLU num_parameters=${p.num_parameters} (${p.layout}) forward/backward`, async () => {
      await useBackend(backend);
      const activation = p.num_parameters === 1 ? 'prelu' : 'prelu_channel';
      const cfg = ModelSchema.parse({ activation });
      // Our layout is NHWC: move the channel axis last.
      const x = tf.tensor(p.x);
      const up = tf.tensor(p.upstream);
      const toNhwc = (t: tf.Tensor) => (t.rank === 4 ? tf.transpose(t, [0, 2, 3, 1]) : t.reshape([t.shape[0]!, 1, 1, t.shape[1]!]));
      const fromNhwc = (t: tf.Tensor) => (p.x.length && x.rank === 4 ? tf.transpose(t, [0, 3, 1, 2]) : t.reshape(x.shape));
      const slope = tf.variable(tf.fill([p.num_parameters], p.init_weight));
      const xn = toNhwc(x) as tf.Tensor4D;
      const f = (a: tf.Tensor, s: tf.Tensor) => activate(a as tf.Tensor4D, { name: 'a', kind: cfg.activation, slope: s as tf.Variable }, cfg);
      const y = f(xn, slope);
      expectClose(fromNhwc(y).dataSync(), flat(p.y), 1e-6, 1e-7, 'y');
      const [gx, gw] = tf.grads((a: tf.Tensor, s: tf.Tensor) => tf.sum(tf.mul(f(a, s), toNhwc(up))))([xn, slope]);
      expectClose(fromNhwc(gx!).dataSync(), flat(p.grad_x), 1e-6, 1e-7, 'grad_x');
      expectClose(gw!.dataSync(), flat(p.grad_weight), 1e-5, 1e-6, 'grad_weight');
    });
  }

  it('centers init like kaiming_normal_(centers.t()): std = sqrt(2 / num_classes)', () => {
    const c = initCenters(8, 4096, 3);
    const mean = c.reduce((a, b) => a + b, 0) / c.length;
    const sd = Math.sqrt(c.reduce((a, b) => a + (b - mean) ** 2, 0) / c.length);
    expect(Math.abs(mean)).toBeLessThan(0.01);
    expect(sd).toBeGreaterThan(0.5 * 0.98);
    expect(sd).toBeLessThan(0.5 * 1.02);
  });
});
