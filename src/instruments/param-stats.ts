import * as tf from '@tensorflow/tfjs';
import type { Instrument, Values } from './types.js';

/**
 * Parameters and gradients per layer (train split): weight norms, BatchNorm gamma/beta norms,
 * gradient norms, the effective learning rate lr/||w||^2 of conv weights (which feed a BatchNorm,
 * so only their direction matters), and the angular update of conv weights over the epoch
 * (angle between the epoch's first and last weights, degrees). PReLU slopes' mean.
 * Step values (inside the dense windows): gradient norm and update ratio lr*||g||/||w|| per layer.
 */
export function paramStats(): Instrument {
  let startW = new Map<string, tf.Tensor>();
  let gradSq = new Map<string, number>();
  let batches = 0;
  let lastLr = 0;
  let model: import('../model/resnet.js').Model | undefined;
  const clear = () => {
    for (const t of startW.values()) t.dispose();
    startW = new Map();
  };
  return {
    name: 'param-stats',
    description: 'per layer weight/BN/grad norms, effective LR lr/||w||^2, angular update, PReLU slopes',
    needs: ['params', 'grads'],
    splits: ['train'],
    begin() {
      clear();
      gradSq = new Map();
      batches = 0;
    },
    batch(v) {
      model = v.model;
      lastLr = v.lr;
      if (startW.size === 0) for (const p of v.model.params) if (p.kind === 'conv') startW.set(p.name, tf.clone(p.v));
      const grads = v.grads();
      const names = Object.keys(grads);
      const sq = names.length === 0 ? new Float32Array(0) : tf.tidy(() => tf.stack(names.map((k) => tf.sum(tf.square(grads[k]!)))).dataSync() as Float32Array);
      names.forEach((k, i) => gradSq.set(k, (gradSq.get(k) ?? 0) + sq[i]!));
      batches++;
      if (!v.record) return;
      const out: Values = {};
      let total = 0;
      names.forEach((k, i) => (total += sq[i]!));
      out.grad_norm = Math.sqrt(total);
      return out;
    },
    end() {
      const out: Values = {};
      if (!model) return out;
      const m = model;
      const ps = m.params;
      const norms = tf.tidy(() => tf.stack(ps.map((p) => tf.sqrt(tf.sum(tf.square(p.v))))).dataSync() as Float32Array);
      let totalGrad = 0;
      ps.forEach((p, i) => {
        const w = norms[i]!;
        const g = Math.sqrt((gradSq.get(p.name) ?? 0) / Math.max(1, batches));
        totalGrad += (gradSq.get(p.name) ?? 0) / Math.max(1, batches);
        if (p.kind === 'conv') {
          out[`w_norm/${p.name}`] = w;
          out[`eff_lr/${p.name}`] = lastLr / (w * w);
          out[`grad_norm/${p.name}`] = g;
          const s = startW.get(p.name);
          if (s) {
            const cos = tf.tidy(() => {
              const a = tf.sum(tf.mul(s, p.v));
              const b = tf.mul(tf.norm(s), tf.norm(p.v));
              return tf.div(a, b).dataSync()[0]!;
            });
            out[`angle/${p.name}`] = (Math.acos(Math.max(-1, Math.min(1, cos))) * 180) / Math.PI;
          }
        } else if (p.kind === 'bn_gamma') out[`bn_gamma_norm/${p.name.replace(/\.weight$/, '')}`] = w;
        else if (p.kind === 'bn_beta') out[`bn_beta_norm/${p.name.replace(/\.bias$/, '')}`] = w;
        else if (p.kind === 'fc_w') {
          out.fc_w_norm = w;
          out['grad_norm/fc.weight'] = g;
        } else if (p.kind === 'act_slope') out[`prelu_slope/${p.name.replace(/\.weight$/, '')}`] = tf.tidy(() => tf.mean(p.v).dataSync()[0]!);
      });
      out.grad_norm = Math.sqrt(totalGrad);
      const effs = Object.entries(out).filter(([k]) => k.startsWith('eff_lr/')).map(([, v]) => v);
      if (effs.length) out.eff_lr = effs.reduce((a, b) => a + b, 0) / effs.length;
      const angs = Object.entries(out).filter(([k]) => k.startsWith('angle/')).map(([, v]) => v);
      if (angs.length) out.angle = angs.reduce((a, b) => a + b, 0) / angs.length;
      clear();
      return out;
    },
    dispose: clear,
  };
}
