import * as tf from '@tensorflow/tfjs';
import type { Activation, ModelConfig } from '../config/schema.js';
import { batchNormTrainFused, conv2dTorch, hasFastBatchNorm, hasFusedRunningStats, runningStatsFused } from '../backend/index.js';
import { Rng } from '../util/rng.js';

/**
 * A torchvision-style ResNet of BasicBlocks with BatchNorm, written with plain tfjs ops so that
 * every detail follows PyTorch: explicit padding (TF 'same' differs at stride 2), BatchNorm with
 * biased batch variance for normalisation and unbiased variance in the running estimate
 * (momentum 0.1, eps 1e-5), nn.PReLU with one shared slope starting at 0.25, kaiming_normal_
 * (fan_out, relu) conv init, nn.Linear's default uniform init. Data layout NHWC.
 *
 * Returns { features, logits }: features are the global average pool of the last block's output
 * (post-activation), as the seed's resnet18 that returns (feat, output).
 *
 * Training-mode BatchNorm runs as the backend's fused kernels with PyTorch's analytic backward
 * where it has them (batchNormTrainFused: the same arithmetic, test/added-kernels.test.ts checks
 * them against plain ops; plain ops elsewhere). Convs are PyTorch's Conv2d(k, stride, padding=k//2, bias=False) from the
 * backend's door (conv2dTorch), which picks its own speed path for each shape.
 */

export type ParamKind = 'conv' | 'bn_gamma' | 'bn_beta' | 'fc_w' | 'fc_b' | 'act_slope';

export interface Param {
  name: string;
  kind: ParamKind;
  v: tf.Variable;
}

export interface BnLayer {
  name: string;
  gamma: tf.Variable;
  beta: tf.Variable;
  runMean: tf.Variable;
  runVar: tf.Variable;
}

export interface ActLayer {
  name: string;
  kind: Activation;
  slope?: tf.Variable;
}

interface Block {
  conv1: tf.Variable;
  bn1: BnLayer;
  act1: ActLayer;
  conv2: tf.Variable;
  bn2: BnLayer;
  act2: ActLayer;
  stride: number;
  down?: { conv: tf.Variable; bn: BnLayer };
}

export interface Model {
  config: ModelConfig;
  inChannels: number;
  numClasses: number;
  featDim: number;
  /** Every trainable parameter in a fixed order (the order of PyTorch's model.parameters()). */
  params: Param[];
  bns: BnLayer[];
  /** Names of the activation layers, in forward order. */
  activationNames: string[];
  stem: { conv: tf.Variable; bn: BnLayer; act: ActLayer; k: number; stride: number; pool: boolean };
  blocks: Block[];
  fc: { w: tf.Variable; b: tf.Variable };
}

export interface ForwardOptions {
  training: boolean;
  /** Keep every activation layer's output (for instruments). */
  keepActivations?: boolean;
}

export interface ForwardResult {
  features: tf.Tensor2D;
  logits: tf.Tensor2D;
  activations?: { name: string; t: tf.Tensor4D }[];
  /** Batch statistics per BN layer (training mode), for the running-average update. */
  bnStats?: { bn: BnLayer; mean: tf.Tensor1D; variance: tf.Tensor1D; count: number }[];
}

let modelCounter = 0;

const BN_EPS = 1e-5;
const BN_MOMENTUM = 0.1;

export function createModel(cfg: ModelConfig, inChannels: number, numClasses: number, seed: number): Model {
  // tidy disposes the initial-value tensors; variables survive it.
  let m!: Model;
  tf.tidy(() => {
    m = buildModel(cfg, inChannels, numClasses, seed);
  });
  return m;
}

function buildModel(cfg: ModelConfig, inChannels: number, numClasses: number, seed: number): Model {
  const rng = Rng.derive(seed, 'model-init');
  // tfjs variable names are global: prefix them so that several models can live in one process.
  const uid = `m${++modelCounter}/`;
  const params: Param[] = [];
  const bns: BnLayer[] = [];
  const activationNames: string[] = [];

  const conv = (name: string, k: number, cin: number, cout: number): tf.Variable => {
    // kaiming_normal_(mode='fan_out', nonlinearity='relu'): std = sqrt(2 / (cout*k*k))
    const std = Math.sqrt(2 / (cout * k * k));
    const data = new Float32Array(k * k * cin * cout);
    // Draw in PyTorch's [cout][cin][kh][kw] order, store as [kh][kw][cin][cout].
    for (let o = 0; o < cout; o++)
      for (let i = 0; i < cin; i++)
        for (let y = 0; y < k; y++) for (let x = 0; x < k; x++) data[((y * k + x) * cin + i) * cout + o] = rng.normal() * std;
    const v = tf.variable(tf.tensor4d(data, [k, k, cin, cout]), true, uid + name);
    params.push({ name, kind: 'conv', v });
    return v;
  };
  const bn = (name: string, c: number): BnLayer => {
    const layer: BnLayer = {
      name,
      gamma: tf.variable(tf.ones([c]), true, uid + `${name}.weight`),
      beta: tf.variable(tf.zeros([c]), true, uid + `${name}.bias`),
      runMean: tf.variable(tf.zeros([c]), false, uid + `${name}.running_mean`),
      runVar: tf.variable(tf.ones([c]), false, uid + `${name}.running_var`),
    };
    params.push({ name: `${name}.weight`, kind: 'bn_gamma', v: layer.gamma });
    params.push({ name: `${name}.bias`, kind: 'bn_beta', v: layer.beta });
    bns.push(layer);
    return layer;
  };
  const act = (name: string, c: number, kind: Activation = cfg.activation): ActLayer => {
    activationNames.push(name);
    if (kind === 'prelu' || kind === 'prelu_channel') {
      const n = kind === 'prelu' ? 1 : c;
      const slope = tf.variable(tf.fill([n], cfg.negative_slope ?? 0.25), true, uid + `${name}.weight`);
      params.push({ name: `${name}.weight`, kind: 'act_slope', v: slope });
      return { name, kind, slope };
    }
    return { name, kind };
  };

  const w0 = cfg.widths[0]!;
  const imagenet = cfg.stem === 'imagenet';
  const k = imagenet ? 7 : 3;
  const stemConv = conv('stem.conv', k, inChannels, w0);
  const stemBn = bn('stem.bn', w0);
  const stemAct = act('stem.act', w0);
  const stem = { conv: stemConv, bn: stemBn, act: stemAct, k, stride: imagenet ? 2 : cfg.stem_stride, pool: imagenet };

  const blocks: Block[] = [];
  let cin = w0;
  cfg.widths.forEach((w, si) => {
    for (let bi = 0; bi < cfg.blocks[si]!; bi++) {
      const stride = si > 0 && bi === 0 ? 2 : 1;
      const p = `layer${si + 1}.${bi}`;
      const conv1 = conv(`${p}.conv1`, 3, cin, w);
      const bn1 = bn(`${p}.bn1`, w);
      const act1 = act(`${p}.act1`, w);
      const conv2 = conv(`${p}.conv2`, 3, w, w);
      const bn2 = bn(`${p}.bn2`, w);
      let down: Block['down'];
      if (stride !== 1 || cin !== w) down = { conv: conv(`${p}.downsample.0`, 1, cin, w), bn: bn(`${p}.downsample.1`, w) };
      const last = si === cfg.widths.length - 1 && bi === cfg.blocks[si]! - 1;
      // model.last_activation: the activation of the last block's output only (the features' own).
      const act2 = act(`${p}.act2`, w, last ? (cfg.last_activation ?? cfg.activation) : cfg.activation);
      blocks.push({ conv1, bn1, act1, conv2, bn2, act2, stride, down });
      cin = w;
    }
  });

  // nn.Linear default init: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weight and bias.
  const bound = 1 / Math.sqrt(cin);
  const wdata = new Float32Array(cin * numClasses);
  for (let o = 0; o < numClasses; o++) for (let i = 0; i < cin; i++) wdata[i * numClasses + o] = (rng.next() * 2 - 1) * bound;
  const bdata = new Float32Array(numClasses);
  for (let o = 0; o < numClasses; o++) bdata[o] = (rng.next() * 2 - 1) * bound;
  const fc = { w: tf.variable(tf.tensor2d(wdata, [cin, numClasses]), true, uid + 'fc.weight'), b: tf.variable(tf.tensor1d(bdata), true, uid + 'fc.bias') };
  params.push({ name: 'fc.weight', kind: 'fc_w', v: fc.w }, { name: 'fc.bias', kind: 'fc_b', v: fc.b });

  return { config: cfg, inChannels, numClasses, featDim: cin, params, bns, activationNames, stem, blocks, fc };
}

/** The activation layer the features are pooled from: the last block's output activation. */
export function lastActivation(m: Model): ActLayer {
  const b = m.blocks[m.blocks.length - 1];
  return b ? b.act2 : m.stem.act;
}

export function activate(x: tf.Tensor4D, a: ActLayer, cfg: ModelConfig): tf.Tensor4D {
  switch (a.kind) {
    case 'relu':
      return tf.relu(x);
    case 'prelu':
    case 'prelu_channel':
      return tf.prelu(x, a.slope as unknown as tf.Tensor4D);
    case 'leaky_relu':
      return tf.leakyRelu(x, cfg.negative_slope ?? 0.01);
    case 'elu':
      return tf.elu(x);
  }
}

/** Forward pass. Call inside tf.tidy / a gradient function. */
export function forward(m: Model, x: tf.Tensor4D, opts: ForwardOptions): ForwardResult {
  const acts: { name: string; t: tf.Tensor4D }[] | undefined = opts.keepActivations ? [] : undefined;
  const bnStats: NonNullable<ForwardResult['bnStats']> | undefined = opts.training ? [] : undefined;
  const cfg = m.config;
  const fastBn = opts.training && hasFastBatchNorm();

  const batchNorm = (h: tf.Tensor4D, bn: BnLayer): tf.Tensor4D => {
    if (!opts.training) {
      return tf.batchNorm4d(h, bn.runMean as tf.Tensor1D, bn.runVar as tf.Tensor1D, bn.beta as tf.Tensor1D, bn.gamma as tf.Tensor1D, BN_EPS);
    }
    const [n, hh, ww] = h.shape;
    if (cfg.bn_devices > 1 && n > 1) {
      // nn.DataParallel: each device normalises its chunk (torch.chunk sizes); device 0's
      // replica shares the module's buffers, so the running statistics follow chunk 0.
      const size = Math.ceil(n / Math.min(cfg.bn_devices, n));
      const sizes: number[] = [];
      for (let left = n; left > 0; left -= size) sizes.push(Math.min(size, left));
      const outs = tf.split(h, sizes, 0).map((part, i) => {
        const { mean, variance } = tf.moments(part, [0, 1, 2]);
        if (i === 0) bnStats!.push({ bn, mean: mean as tf.Tensor1D, variance: variance as tf.Tensor1D, count: sizes[0]! * hh * ww });
        const scale = tf.mul(tf.rsqrt(tf.add(variance, BN_EPS)), bn.gamma);
        return tf.add(tf.mul(tf.sub(part, mean), scale), bn.beta);
      });
      return tf.concat(outs, 0) as tf.Tensor4D;
    }
    if (fastBn) {
      const r = batchNormTrainFused(h, bn.gamma, bn.beta, BN_EPS);
      bnStats!.push({ bn, mean: r.mean, variance: r.variance, count: n * hh * ww });
      return r.y;
    }
    const { mean, variance } = tf.moments(h, [0, 1, 2]);
    bnStats!.push({ bn, mean: mean as tf.Tensor1D, variance: variance as tf.Tensor1D, count: n * hh * ww });
    const scale = tf.mul(tf.rsqrt(tf.add(variance, BN_EPS)), bn.gamma);
    return tf.add(tf.mul(tf.sub(h, mean), scale), bn.beta);
  };
  const act = (h: tf.Tensor4D, a: ActLayer): tf.Tensor4D => {
    const y = activate(h, a, cfg);
    acts?.push({ name: a.name, t: y });
    return y;
  };
  // activation(BatchNorm(h) [+ residual]): one fused kernel each way where it applies.
  const fuseRelu = fastBn && cfg.bn_devices <= 1;
  const bnAct = (h: tf.Tensor4D, bn: BnLayer, a: ActLayer, residual?: tf.Tensor4D): tf.Tensor4D => {
    if (!fuseRelu || a.kind !== 'relu') return act(residual ? tf.add(batchNorm(h, bn), residual) : batchNorm(h, bn), a);
    const [n, hh, ww] = h.shape;
    const r = batchNormTrainFused(h, bn.gamma, bn.beta, BN_EPS, true, residual);
    bnStats!.push({ bn, mean: r.mean, variance: r.variance, count: n * hh * ww });
    acts?.push({ name: a.name, t: r.y });
    return r.y;
  };

  let h = bnAct(conv2dTorch(x, m.stem.conv, m.stem.stride), m.stem.bn, m.stem.act);
  if (m.stem.pool) h = tf.maxPool(h, 3, 2, 1);
  for (const b of m.blocks) {
    const idt = b.down ? batchNorm(conv2dTorch(h, b.down.conv, b.stride), b.down.bn) : h;
    const o = bnAct(conv2dTorch(h, b.conv1, b.stride), b.bn1, b.act1);
    h = bnAct(conv2dTorch(o, b.conv2, 1), b.bn2, b.act2, idt);
  }
  let features = tf.mean(h, [1, 2]) as tf.Tensor2D;
  if (cfg.feature_norm) {
    const norm = tf.sqrt(tf.add(tf.sum(tf.square(features), 1, true), 1e-12));
    features = tf.mul(tf.div(features, norm), cfg.feature_scale);
  }
  const logits = tf.add(tf.matMul(features, m.fc.w as tf.Tensor2D), m.fc.b) as tf.Tensor2D;
  return { features, logits, activations: acts, bnStats };
}

/** PyTorch's running-average update of BN statistics (unbiased variance), after a training step. */
export function updateBnRunningStats(stats: NonNullable<ForwardResult['bnStats']>): void {
  const fused = hasFusedRunningStats();
  tf.tidy(() => {
    for (const { bn, mean, variance, count } of stats) {
      const factor = count / Math.max(1, count - 1);
      if (fused) {
        const [m, v] = runningStatsFused(bn.runMean, bn.runVar, mean, variance, BN_MOMENTUM, factor);
        bn.runMean.assign(m);
        bn.runVar.assign(v);
        continue;
      }
      const unbiased = tf.mul(variance, factor);
      bn.runMean.assign(tf.add(tf.mul(bn.runMean, 1 - BN_MOMENTUM), tf.mul(mean, BN_MOMENTUM)));
      bn.runVar.assign(tf.add(tf.mul(bn.runVar, 1 - BN_MOMENTUM), tf.mul(unbiased, BN_MOMENTUM)));
    }
  });
}

export function disposeModel(m: Model): void {
  for (const p of m.params) p.v.dispose();
  for (const bn of m.bns) {
    bn.runMean.dispose();
    bn.runVar.dispose();
  }
}

/** Every variable of the model by name (parameters and BN buffers), for checkpoints. */
export function modelState(m: Model): Map<string, tf.Variable> {
  const out = new Map<string, tf.Variable>();
  for (const p of m.params) out.set(p.name, p.v);
  for (const bn of m.bns) {
    out.set(`${bn.name}.running_mean`, bn.runMean);
    out.set(`${bn.name}.running_var`, bn.runVar);
  }
  return out;
}

export function countParams(m: Model): number {
  return m.params.reduce((s, p) => s + p.v.size, 0);
}
