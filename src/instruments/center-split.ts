import { ClassMoments } from './classstats.js';
import type { Instrument, Values } from './types.js';

/**
 * The center loss split into within-class variance and center lag, which add up to it:
 *   0.5 mean ||x - c_y||^2 = 0.5 mean ||x - m_y||^2 (within) + 0.5 mean_y ||m_y - c_y||^2 (lag)
 * Train: per batch (batch class means, pre-step centers), averaged over the epoch like the logged
 * center loss (cl_within + cl_lag = center). Eval: over the whole split with its class means.
 * Also the spread around the EPOCH's class means (epoch_within), the between-class spread, the
 * scale-free NC1-style ratio within/between, and the mean center-to-feature distance per class.
 */
export function centerSplit(): Instrument {
  let acc: { within: number; lag: number; n: number; perW: number[]; perL: number[]; perN: number[] };
  let epochMoments: ClassMoments | undefined;
  let dist: { sum: number[]; n: number[] };
  let split = 'train';
  let lastCenters: Float32Array | undefined;
  let scale = 1;
  return {
    name: 'center-split',
    description: 'center loss = within-class variance (cl_within) + center lag (cl_lag); NC1 ratio; center-to-feature distance',
    needs: ['features', 'centers'],
    begin(s) {
      split = s;
      acc = { within: 0, lag: 0, n: 0, perW: [], perL: [], perN: [] };
      epochMoments = undefined;
      dist = { sum: [], n: [] };
    },
    batch(v) {
      const f = v.features();
      const c = v.centersBefore();
      const d = v.featDim;
      // The recorded center loss divides by the batch size (size_average); otherwise by 1.
      scale = v.centerScale;
      epochMoments ??= new ClassMoments(v.numClasses, d);
      epochMoments.add(f, v.labels);
      lastCenters = c;
      for (let i = 0; i < v.batchSize; i++) {
        const y = v.labels[i]!;
        let s = 0;
        for (let j = 0; j < d; j++) s += (f[i * d + j]! - c[y * d + j]!) ** 2;
        dist.sum[y] = (dist.sum[y] ?? 0) + Math.sqrt(s);
        dist.n[y] = (dist.n[y] ?? 0) + 1;
      }
      if (v.split !== 'train') return;
      const bm = new ClassMoments(v.numClasses, d);
      bm.add(f, v.labels);
      const sp = bm.centerSplit(c);
      const nb = v.batchSize;
      acc.within += sp.within * scale * nb;
      acc.lag += sp.lag * scale * nb;
      acc.n += nb;
      sp.perClass.forEach((p, k) => {
        if (p.n === 0) return;
        acc.perW[k] = (acc.perW[k] ?? 0) + p.within * scale * p.n;
        acc.perL[k] = (acc.perL[k] ?? 0) + p.lag * scale * p.n;
        acc.perN[k] = (acc.perN[k] ?? 0) + p.n;
      });
      if (v.record) return { cl_within: sp.within * scale, cl_lag: sp.lag * scale };
    },
    end() {
      const out: Values = {};
      if (!epochMoments || !lastCenters) return out;
      const em = epochMoments.centerSplit(lastCenters);
      const between = epochMoments.between();
      if (split === 'train' && acc.n > 0) {
        out.cl_within = acc.within / acc.n;
        out.cl_lag = acc.lag / acc.n;
        acc.perN.forEach((n, k) => {
          if (!n) return;
          out[`cl_within/c${k}`] = acc.perW[k]! / n;
          out[`cl_lag/c${k}`] = acc.perL[k]! / n;
        });
      } else {
        out.cl_within = em.within * scale;
        out.cl_lag = em.lag * scale;
        em.perClass.forEach((p, k) => {
          if (p.n === 0) return;
          out[`cl_within/c${k}`] = p.within * scale;
          out[`cl_lag/c${k}`] = p.lag * scale;
        });
      }
      out.epoch_within = em.within;
      out.between = between;
      out.nc1 = between > 0 ? em.within / between : NaN;
      let tot = 0;
      let cnt = 0;
      dist.n.forEach((n, k) => {
        if (!n) return;
        out[`center_dist/c${k}`] = dist.sum[k]! / n;
        tot += dist.sum[k]!;
        cnt += n;
      });
      if (cnt > 0) out.center_dist = tot / cnt;
      return out;
    },
  };
}
