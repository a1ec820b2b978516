import { ClassMoments } from './classstats.js';
import type { Instrument, Values } from './types.js';

/**
 * Memorisation of flipped labels (train split of a run with label noise; nothing otherwise).
 * Samples are split into clean (label = true class) and flipped (label drawn from another class);
 * for each group g, over the labels trained on and the pre-step centers:
 *   center/g  = 0.5 mean_{i in g} ||x_i - c_{y_i}||^2 (times the recorded center loss's scale)
 *             = cl_within/g (around the group's batch class means) + cl_lag/g (those means to c_y)
 *   ce/g, acc/g (acc/flipped: the share of flipped samples predicted as their noisy label,
 *   i.e. memorised), flipped_true_acc (the share predicted as their true class),
 *   center_share_flipped (the flipped samples' share of the summed center loss).
 * Per step in the recorded windows and per epoch (sample-weighted over the epoch's batches).
 */
const GROUPS = ['clean', 'flipped'] as const;
const FIELDS = ['center', 'within', 'lag', 'ce', 'correct', 'n'] as const;
type Sums = Record<(typeof FIELDS)[number], number>;

function zero(): Sums {
  return { center: 0, within: 0, lag: 0, ce: 0, correct: 0, n: 0 };
}

export function memorisation(): Instrument {
  let epoch: Sums[] = [zero(), zero()];
  let trueHits = 0;
  return {
    name: 'memorisation',
    description: 'label noise: center loss (within + lag), CE and accuracy of clean vs flipped samples; flipped samples memorised / predicted as their true class',
    needs: ['features', 'logits', 'centers'],
    splits: ['train'],
    begin() {
      epoch = [zero(), zero()];
      trueHits = 0;
    },
    batch(v) {
      const yt = v.trueLabels;
      if (!yt) return;
      const f = v.features();
      const lg = v.logits();
      const c = v.centersBefore();
      const d = v.featDim;
      const k = v.numClasses;
      const scale = v.centerScale;
      const step: Sums[] = [zero(), zero()];
      const moments = [new ClassMoments(k, d), new ClassMoments(k, d)];
      let hits = 0;
      for (let i = 0; i < v.batchSize; i++) {
        const y = v.labels[i]!;
        const g = yt[i] === y ? 0 : 1;
        const s = step[g]!;
        let dist = 0;
        for (let j = 0; j < d; j++) dist += (f[i * d + j]! - c[y * d + j]!) ** 2;
        s.center += 0.5 * dist * scale;
        // Cross-entropy from the logits: logsumexp - logit of the label.
        let mx = -Infinity;
        let arg = 0;
        for (let j = 0; j < k; j++) {
          const l = lg[i * k + j]!;
          if (l > mx) {
            mx = l;
            arg = j;
          }
        }
        let se = 0;
        for (let j = 0; j < k; j++) se += Math.exp(lg[i * k + j]! - mx);
        s.ce += mx + Math.log(se) - lg[i * k + y]!;
        if (arg === y) s.correct++;
        if (g === 1 && arg === yt[i]) hits++;
        s.n++;
        moments[g]!.addRow(f, i, y);
      }
      GROUPS.forEach((_, g) => {
        const s = step[g]!;
        if (s.n === 0) return;
        const sp = moments[g]!.centerSplit(c);
        s.within = sp.within * scale * s.n;
        s.lag = sp.lag * scale * s.n;
        for (const fld of FIELDS) epoch[g]![fld] += s[fld];
      });
      trueHits += hits;
      if (v.record) return values(step, hits);
    },
    end() {
      return values(epoch, trueHits);
    },
  };
}

function values(sums: Sums[], trueHits: number): Values {
  const out: Values = {};
  const total = sums[0]!.center + sums[1]!.center;
  if (sums[0]!.n + sums[1]!.n === 0 || sums[1]!.n === 0) return out;
  GROUPS.forEach((name, g) => {
    const s = sums[g]!;
    if (s.n === 0) return;
    out[`center/${name}`] = s.center / s.n;
    out[`cl_within/${name}`] = s.within / s.n;
    out[`cl_lag/${name}`] = s.lag / s.n;
    out[`ce/${name}`] = s.ce / s.n;
    out[`acc/${name}`] = s.correct / s.n;
  });
  out.flipped_true_acc = trueHits / sums[1]!.n;
  out.flipped_share = sums[1]!.n / (sums[0]!.n + sums[1]!.n);
  out.center_share_flipped = total > 0 ? sums[1]!.center / total : NaN;
  return out;
}
