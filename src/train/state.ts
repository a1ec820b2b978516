import * as tf from '@tensorflow/tfjs';
import type { Config } from '../config/schema.js';
import { CenterLossModule } from '../model/centerloss.js';
import { createModel, disposeModel, modelState, type Model } from '../model/resnet.js';
import { Rng, type RngState } from '../util/rng.js';
import { TorchSGD } from './sgd.js';
import type { TensorEntry } from '../store/checkpoint.js';

/** Everything that evolves during training: restoring it restores the run exactly. */
export interface TrainState {
  model: Model;
  centers: CenterLossModule;
  sgd: TorchSGD;
  /** Data order across epochs. */
  shuffleRng: Rng;
  /** Augmentation draws. */
  augmentRng: Rng;
  /** Next epoch to run (0-based) and global step. */
  epoch: number;
  step: number;
}

export function createState(cfg: Config, inChannels: number, numClasses: number): TrainState {
  const model = createModel(cfg.model, inChannels, numClasses, cfg.seed);
  const centers = new CenterLossModule({
    numClasses,
    featDim: model.featDim,
    sizeAverage: cfg.size_average,
    alpha: cfg.alpha,
    seed: cfg.seed,
  });
  const noDecay = new Set(['bn_gamma', 'bn_beta', 'act_slope']);
  const sgd = new TorchSGD(
    model.params.map((p) => ({ name: p.name, v: p.v, weightDecay: cfg.no_wd_bn && noDecay.has(p.kind) ? 0 : undefined })),
    { lr: cfg.lr, momentum: cfg.momentum, weightDecay: cfg.weight_decay },
  );
  return {
    model,
    centers,
    sgd,
    shuffleRng: Rng.derive(cfg.seed, 'shuffle'),
    augmentRng: Rng.derive(cfg.seed, 'augment'),
    epoch: 0,
    step: 0,
  };
}

export function disposeState(s: TrainState): void {
  disposeModel(s.model);
  s.centers.dispose();
  s.sgd.dispose();
}

/** Snapshot as named arrays + JSON meta (for a checkpoint). */
export function snapshot(s: TrainState): { meta: Record<string, unknown>; tensors: TensorEntry[] } {
  const tensors: TensorEntry[] = [];
  const add = (name: string, t: tf.Tensor) => tensors.push({ name, shape: t.shape.slice(), data: t.dataSync() as Float32Array });
  for (const [name, v] of modelState(s.model)) add(`model/${name}`, v);
  for (const [name, v] of s.sgd.buffers) add(`momentum/${name}`, v);
  add('centers', s.centers.centers);
  const meta = {
    epoch: s.epoch,
    step: s.step,
    shuffleRng: s.shuffleRng.state(),
    augmentRng: s.augmentRng.state(),
    lr: s.sgd.lr,
  };
  return { meta, tensors };
}

/** Restore a snapshot into a freshly created state of the same configuration. */
export function restore(s: TrainState, meta: Record<string, unknown>, tensors: Map<string, TensorEntry>): void {
  const put = (name: string, v: tf.Variable) => {
    const e = tensors.get(name);
    if (!e) throw new Error(`checkpoint lacks ${name}`);
    if (e.data.length !== v.size) throw new Error(`checkpoint ${name} has ${e.data.length} values, model expects ${v.size}`);
    tf.tidy(() => v.assign(tf.tensor(e.data, v.shape)));
  };
  for (const [name, v] of modelState(s.model)) put(`model/${name}`, v);
  put('centers', s.centers.centers);
  s.sgd.dispose();
  for (const p of s.sgd.params) {
    const e = tensors.get(`momentum/${p.name}`);
    if (e) s.sgd.buffers.set(p.name, tf.tidy(() => tf.variable(tf.tensor(e.data, e.shape), false, `${p.v.name}.momentum_buffer.r`)));
  }
  s.epoch = meta.epoch as number;
  s.step = meta.step as number;
  s.shuffleRng = new Rng(meta.shuffleRng as RngState);
  s.augmentRng = new Rng(meta.augmentRng as RngState);
}
