/**
 * Step decay of the model LR: the seed's adjust_learning_rate is decay_epochs [20, 40] with factors
 * [0.5, 0.1] (lr, lr/2 from epoch 20, lr/10 from epoch 40). Factors are relative to the base lr.
 */
export interface Schedule {
  lr: number;
  alpha: number;
  decay_epochs: number[];
  decay_factors: number[];
  center_lr_coupled: boolean;
}

export function lrFactor(s: Schedule, epoch: number): number {
  let f = 1;
  s.decay_epochs.forEach((d, i) => {
    if (epoch >= d) f = s.decay_factors[i]!;
  });
  return f;
}

export function modelLr(s: Schedule, epoch: number): number {
  return s.lr * lrFactor(s, epoch);
}

/** The centers' LR: alpha, never decayed unless the config couples it to the schedule. */
export function centerLr(s: Schedule, epoch: number): number {
  return s.center_lr_coupled ? s.alpha * lrFactor(s, epoch) : s.alpha;
}

/** Decay epochs that fall inside a run of `epochs` epochs. */
export function decaysWithin(s: Schedule, epochs: number): number[] {
  return s.decay_epochs.filter((d) => d > 0 && d < epochs);
}
