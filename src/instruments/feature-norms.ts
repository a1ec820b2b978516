import { quantileSorted } from 'simple-statistics';
import type { Instrument, Values } from './types.js';

/** Feature norms (mean, quantiles, per class), the feature scale 0.5*mean||x||^2 and logit norms. */
export function featureNorms(): Instrument {
  let norms: number[] = [];
  let perClass: number[][] = [];
  let sq = 0;
  let logit = 0;
  let n = 0;
  return {
    name: 'feature-norms',
    description: 'feature L2 norm (mean, p10/p50/p90, per class), feature scale 0.5*mean||x||^2, logit norm',
    needs: ['features', 'logits'],
    begin() {
      norms = [];
      perClass = [];
      sq = 0;
      logit = 0;
      n = 0;
    },
    batch(v) {
      const f = v.features();
      const l = v.logits();
      const d = v.featDim;
      const k = v.numClasses;
      let bNorm = 0;
      let bSq = 0;
      let bLogit = 0;
      for (let i = 0; i < v.batchSize; i++) {
        let s = 0;
        for (let j = 0; j < d; j++) s += f[i * d + j]! ** 2;
        const nr = Math.sqrt(s);
        norms.push(nr);
        (perClass[v.labels[i]!] ??= []).push(nr);
        bNorm += nr;
        bSq += s;
        let ls = 0;
        for (let j = 0; j < k; j++) ls += l[i * k + j]! ** 2;
        bLogit += Math.sqrt(ls);
      }
      sq += bSq;
      logit += bLogit;
      n += v.batchSize;
      if (!v.record) return;
      return { feat_norm_mean: bNorm / v.batchSize, feat_sq: (0.5 * bSq) / v.batchSize, logit_norm: bLogit / v.batchSize };
    },
    end() {
      const out: Values = {};
      if (n === 0) return out;
      const sorted = Float64Array.from(norms).sort();
      const arr = Array.from(sorted);
      out.feat_norm_mean = arr.reduce((a, b) => a + b, 0) / n;
      out.feat_norm_p10 = quantileSorted(arr, 0.1);
      out.feat_norm_p50 = quantileSorted(arr, 0.5);
      out.feat_norm_p90 = quantileSorted(arr, 0.9);
      out.feat_sq = (0.5 * sq) / n;
      out.logit_norm = logit / n;
      perClass.forEach((a, c) => {
        if (a && a.length) out[`feat_norm/c${c}`] = a.reduce((x, y) => x + y, 0) / a.length;
      });
      return out;
    },
  };
}
