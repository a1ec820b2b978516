import * as tf from '@tensorflow/tfjs';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Config } from '../config/schema.js';
import type { DataConfig, DataSplits, Dataset } from '../data/types.js';
import { loadData, gatherBatch, augmentBatch, backgroundValue } from '../data/index.js';
import type { BatchView, Instrument, Need, Values } from '../instruments/types.js';
import { centerLoss, centerGradient } from '../model/centerloss.js';
import { forward, updateBnRunningStats, countParams, type ForwardResult } from '../model/resnet.js';
import { backendRecord, type BackendInfo } from '../backend/index.js';
import { MANIFEST } from '../store/run-store.js';
import type { MetricRecord, RunManifest, Split } from '../store/types.js';
import { RunRecorder } from '../store/recorder.js';
import { centerLr, decaysWithin, modelLr } from './schedule.js';
import { createState, disposeState, restore, snapshot, type TrainState } from './state.js';
import { versions, gitCommit } from './provenance.js';

export interface EpochSummary {
  epoch: number;
  lr: number;
  centerLr: number;
  seconds: number;
  train: Values;
  valid: Values;
  test: Values;
}

export interface Progress {
  epoch: number;
  epochs: number;
  iter: number;
  iters: number;
  step: number;
  loss: number;
}

export interface TrainOptions {
  config: Config;
  backend: BackendInfo;
  /** Directory that relative data paths are resolved against. */
  baseDir?: string;
  /** Run directory; without it nothing is written. */
  outDir?: string;
  name?: string;
  variant?: string;
  suite?: string;
  instruments?: Instrument[];
  /** Pre-loaded data (a suite shares it across runs). */
  data?: DataSplits;
  /** Continue the run in outDir from its last checkpoint. */
  resume?: boolean;
  /** Stop (status stays 'running') after this many epochs in this call: for tests and sharding. */
  maxEpochs?: number;
  onProgress?: (p: Progress) => void;
  onEpoch?: (e: EpochSummary) => void;
  /** Polled between steps: true stops the run at that safe point, status 'interrupted' (a signal). */
  shouldStop?: () => boolean;
  /** Take the run directory's lock even where another writer seems to hold it. */
  breakLock?: boolean;
  /** One-line notices (a stale lock taken over, a damaged checkpoint fallen back from). */
  notice?: (msg: string) => void;
}

export interface TrainResult {
  status: RunManifest['status'];
  epochs: EpochSummary[];
  dir?: string;
  divergedAt?: RunManifest['divergedAt'];
  params: number;
}

/** The data config the loader expects: `classes` as a list. */
export function dataConfigOf(cfg: Config): DataConfig {
  const d = cfg.data;
  const classes = typeof d.classes === 'number' ? Array.from({ length: d.classes }, (_, i) => i) : d.classes;
  return { ...d, classes, train_per_class: d.train_per_class ?? 3000 } as DataConfig;
}

export function loadDataFor(cfg: Config, baseDir = process.cwd()): DataSplits {
  return loadData(dataConfigOf(cfg), baseDir);
}

/**
 * Mean cross-entropy with integer labels (PyTorch nn.CrossEntropyLoss); with label smoothing eps
 * the target is (1 - eps) one-hot + eps / K (nn.CrossEntropyLoss(label_smoothing=eps)).
 */
export function crossEntropy(logits: tf.Tensor2D, labels: tf.Tensor1D, smoothing = 0): tf.Scalar {
  const k = logits.shape[1];
  const onehot = tf.cast(tf.oneHot(labels, k), 'float32'); // int32 one-hot, then cast (wasm)
  const target = smoothing > 0 ? tf.add(tf.mul(onehot, 1 - smoothing), smoothing / k) : onehot;
  return tf.neg(tf.mean(tf.sum(tf.mul(target, tf.logSoftmax(logits)), 1))) as tf.Scalar;
}

/** The seed's per-batch quantities: cross-entropy, center loss, and the count of correct predictions. */
function batchLosses(o: Pick<ForwardResult, 'features' | 'logits'>, y: tf.Tensor1D, centers: tf.Tensor2D, cfg: Config, mask?: tf.Tensor1D) {
  return {
    ce: crossEntropy(o.logits, y, cfg.label_smoothing),
    cl: centerLoss(o.features, y, centers, cfg.size_average, mask),
    correct: tf.sum(tf.cast(tf.equal(tf.argMax(o.logits, 1), y), 'float32')) as tf.Scalar,
  };
}

/** center_on: fitted: 1 for the samples the model predicts as their label (a constant of the step), else undefined. */
function centerMask(cfg: Config, logits: tf.Tensor2D, y: tf.Tensor1D): tf.Tensor1D | undefined {
  return cfg.center_on === 'fitted' ? (tf.cast(tf.equal(tf.argMax(logits, 1), y), 'float32') as tf.Tensor1D) : undefined;
}

/** Whether the step is recorded: inside a decay's window, or every `instruments.every` steps. */
export function inDenseWindow(cfg: Config, epoch: number, step: number): boolean {
  const w = cfg.instruments.window;
  for (const d of cfg.decay_epochs) if (epoch >= d - w && epoch <= d + w) return true;
  return cfg.instruments.every > 0 && step % cfg.instruments.every === 0;
}

interface PassTotals {
  n: number;
  ce: number;
  center: number;
  correct: number;
}

/** Train one run: the seed's loop (adjust LR, train, validate, test) per epoch, recorded durably. */
export async function train(opts: TrainOptions): Promise<TrainResult> {
  const cfg = opts.config;
  const insts = opts.instruments ?? [];
  const needs = new Set<Need>(insts.flatMap((i) => i.needs));
  const data = opts.data ?? loadDataFor(cfg, opts.baseDir);
  const numClasses = data.train.numClasses;
  const state = createState(cfg, data.train.channels, numClasses);
  const dir = opts.outDir ? resolve(opts.outDir) : undefined;
  const notice = opts.notice ?? ((m: string) => process.stderr.write(`spikeprobe: ${m}\n`));
  const decays = decaysWithin(cfg, cfg.epochs);
  // End-of-epoch checkpoints kept for forks: the epoch before each decay, and those the config lists.
  const keepAfter = new Set([...decays.map((d) => d - 1), ...cfg.keep_checkpoints]);
  let rec: RunRecorder | undefined;

  try {
    if (dir) {
      rec = RunRecorder.open(dir, { resume: opts.resume === true, breakLock: opts.breakLock, notice });
      const backend = backendRecord(opts.backend);
      if (rec.previous) {
        if (rec.checkpoint) restore(state, rec.checkpoint.meta, rec.checkpoint.tensors);
        rec.resume(state.epoch, backend);
      } else {
        rec.start({
          format: 1,
          name: opts.name ?? 'run',
          variant: opts.variant ?? '',
          suite: opts.suite,
          seed: cfg.seed,
          ...backend,
          config: cfg as unknown as Record<string, unknown>,
          decayEpochs: decays,
          baseDir: resolve(opts.baseDir ?? process.cwd()),
          versions: versions(),
          gitCommit: gitCommit(),
          startedAt: new Date().toISOString(),
          status: 'running',
          epochsDone: 0,
        });
      }
    }

    const epochs: EpochSummary[] = [];
    const stopAt = opts.maxEpochs !== undefined ? Math.min(cfg.epochs, state.epoch + opts.maxEpochs) : cfg.epochs;
    let divergedAt: RunManifest['divergedAt'];
    let interrupted = false;
    while (state.epoch < stopAt) {
      if (opts.shouldStop?.()) {
        interrupted = true;
        break;
      }
      const epoch = state.epoch;
      const t0 = Date.now();
      const lr = modelLr(cfg, epoch);
      const clr = centerLr(cfg, epoch);
      state.sgd.lr = lr;
      const records: MetricRecord[] = [];
      const base = { lr, center_lr: clr };

      const ctx: EpochContext = { state, cfg, insts, needs, lr, clr, opts, stopAt };
      const tr = await trainEpoch(ctx, data.train, records, backgroundValue(data));
      if (tr.interrupted) {
        // A signal mid-epoch: the partial epoch is not recorded; the last completed one stays.
        interrupted = true;
        break;
      }
      const trainVals = { ...base, ...summarize(tr.totals, cfg.lamb), ...tr.inst };
      records.push({ kind: 'epoch', epoch, split: 'train', ...trainVals });
      if (tr.diverged) {
        divergedAt = tr.diverged;
        rec?.partialRecords(records);
        break;
      }
      const evalVals: Partial<Record<Split, Values>> = {};
      for (const split of ['valid', 'test'] as const) {
        const ds = data[split];
        if (ds.n === 0) continue;
        const ev = evalPass(ctx, ds, split);
        evalVals[split] = { ...base, ...summarize(ev.totals, cfg.lamb), ...ev.inst };
        records.push({ kind: 'epoch', epoch, split, ...evalVals[split] });
      }
      const seconds = (Date.now() - t0) / 1000;
      for (const r of records) if (r.kind === 'epoch' && r.split === 'train') r.seconds = seconds;
      state.epoch = epoch + 1;
      rec?.epochDone(state.epoch, records, snapshot(state), keepAfter.has(epoch) ? epoch : undefined);
      const summary: EpochSummary = { epoch, lr, centerLr: clr, seconds, train: trainVals, valid: evalVals.valid ?? {}, test: evalVals.test ?? {} };
      epochs.push(summary);
      opts.onEpoch?.(summary);
      await new Promise((r) => setImmediate(r)); // let signals and progress output through
    }

    let status: RunManifest['status'] = state.epoch >= cfg.epochs ? 'done' : interrupted ? 'interrupted' : 'running';
    if (divergedAt) status = 'diverged';
    rec?.finish(status, divergedAt);
    return { status, epochs, dir, divergedAt, params: countParams(state.model) };
  } catch (e) {
    rec?.fail(e);
    throw e;
  } finally {
    rec?.close();
    for (const i of insts) i.dispose?.();
    disposeState(state);
  }
}

function summarize(t: PassTotals, lamb: number): Values {
  const ce = t.ce / Math.max(1, t.n);
  const center = t.center / Math.max(1, t.n);
  return { ce, center, lamb_center: lamb * center, total: ce + lamb * center, acc: t.correct / Math.max(1, t.n), n: t.n };
}

function makeView(
  base: Omit<BatchView, 'features' | 'logits' | 'centersBefore' | 'centersAfter' | 'activations' | 'grads'>,
  out: ForwardResult,
  before: Float32Array | undefined,
  after: Float32Array | undefined,
  grads: Record<string, tf.Tensor>,
): BatchView {
  let f: Float32Array | undefined;
  let l: Float32Array | undefined;
  return {
    ...base,
    features: () => (f ??= out.features.dataSync() as Float32Array),
    logits: () => (l ??= out.logits.dataSync() as Float32Array),
    centersBefore: () => before ?? new Float32Array(0),
    centersAfter: () => after ?? before ?? new Float32Array(0),
    activations: () => out.activations ?? [],
    grads: () => grads,
  };
}

/** What one epoch's passes work with: the run's state and settings, and this epoch's learning rates. */
interface EpochContext {
  state: TrainState;
  cfg: Config;
  insts: Instrument[];
  /** What the enabled instruments read back (features, activations, ...). */
  needs: Set<Need>;
  /** Model and centers learning rates of this epoch. */
  lr: number;
  clr: number;
  opts: TrainOptions;
  /** The last epoch this call trains (progress reports count towards it). */
  stopAt: number;
}

/** One training pass over `ds`; step records go into `records`. */
async function trainEpoch(
  ctx: EpochContext,
  ds: Dataset,
  records: MetricRecord[],
  background: number,
): Promise<{ totals: PassTotals; inst: Values; diverged?: RunManifest['divergedAt']; interrupted?: boolean }> {
  const { state, cfg, insts, needs, lr, clr, opts, stopAt } = ctx;
  const epoch = state.epoch;
  const bs = cfg.batch_size;
  const order = new Int32Array(ds.n);
  for (let i = 0; i < ds.n; i++) order[i] = i;
  state.shuffleRng.shuffle(order);
  let nb = Math.ceil(ds.n / bs);
  // A last batch of one breaks BatchNorm (PyTorch raises there): fold it into the batch before.
  if (ds.n % bs === 1 && nb > 1) nb--;
  const totals: PassTotals = { n: 0, ce: 0, center: 0, correct: 0 };
  const trainInsts = insts.filter((i) => !i.splits || i.splits.includes('train'));
  for (const i of trainInsts) i.begin('train', epoch);
  const aug = cfg.data.augment;
  const augOn = aug.shift > 0 || aug.flip || aug.noise > 0;
  const varNameToParam = new Map(state.model.params.map((p) => [p.v.name, p.name]));
  const trainable = state.model.params.map((p) => p.v);

  let lastYield = Date.now();
  for (let it = 0; it < nb; it++) {
    if (Date.now() - lastYield > 250) {
      // Keep the event loop alive (signals, progress rendering, test runners' heartbeats).
      await new Promise((r) => setImmediate(r));
      lastYield = Date.now();
      if (opts.shouldStop?.()) {
        for (const i of trainInsts) i.end('train', epoch);
        return { totals, inst: {}, interrupted: true };
      }
    }
    const start = it * bs;
    const end = it === nb - 1 ? ds.n : Math.min(ds.n, start + bs);
    const b = gatherBatch(ds, order, start, end);
    const n = end - start;
    const xArr = augOn ? augmentBatch(b.x, n, ds.height, ds.width, ds.channels, aug, background, state.augmentRng) : b.x;
    const step = state.step;
    const record = inDenseWindow(cfg, epoch, step);

    const x = tf.tensor4d(xArr, [n, ds.height, ds.width, ds.channels]);
    const y = tf.tensor1d(b.y, 'int32');
    let out!: ForwardResult;
    let scal!: tf.Tensor;
    let mask: tf.Tensor1D | undefined;
    const { value: lossValue, grads } = tf.variableGrads(() => {
      const o = forward(state.model, x, { training: true, keepActivations: needs.has('activations') });
      const m = centerMask(cfg, o.logits, y);
      if (m) mask = tf.keep(m);
      const { ce, cl, correct } = batchLosses(o, y, state.centers.centers, cfg, m);
      scal = tf.keep(tf.stack([ce, cl, correct]));
      out = {
        features: tf.keep(o.features),
        logits: tf.keep(o.logits),
        activations: o.activations?.map((a) => ({ name: a.name, t: tf.keep(a.t) })),
        bnStats: o.bnStats!.map((s) => ({ ...s, mean: tf.keep(s.mean), variance: tf.keep(s.variance) })),
      };
      return tf.add(ce, tf.mul(cl, cfg.lamb)) as tf.Scalar;
    }, trainable);
    const [ce, center, correct] = scal.dataSync() as Float32Array as unknown as [number, number, number];
    const named: Record<string, tf.Tensor> = {};
    for (const [k, g] of Object.entries(grads)) named[varNameToParam.get(k) ?? k] = g;

    // Centers: plain SGD with the seed's gradient, computed from the pre-step centers.
    const before = needs.has('centers') ? (state.centers.centers.dataSync() as Float32Array).slice() : undefined;
    tf.tidy(() => {
      const g = centerGradient(out.features, y, state.centers.centers, mask);
      state.centers.centers.assign(tf.sub(state.centers.centers, tf.mul(g, clr)) as tf.Tensor2D);
    });
    const after = needs.has('centers') ? (state.centers.centers.dataSync() as Float32Array).slice() : undefined;

    const stepVals: Values = {};
    if (trainInsts.length > 0) {
      const view = makeView(
        { split: 'train', epoch, iter: it, iters: nb, step, record, batchSize: n, numClasses: ds.numClasses, featDim: state.model.featDim, lr, centerLr: clr, lamb: cfg.lamb, centerScale: cfg.size_average ? 1 : n, labels: b.y, ...(b.yTrue ? { trueLabels: b.yTrue } : {}), model: state.model, ce, center, acc: correct / n },
        out,
        before,
        after,
        named,
      );
      for (const inst of trainInsts) {
        const v = inst.batch(view);
        if (v && record) Object.assign(stepVals, v);
      }
    }

    state.sgd.step(named);
    updateBnRunningStats(out.bnStats!);
    tf.dispose([x, y, scal, lossValue, ...(mask ? [mask] : []), out.features, out.logits, ...(out.activations ?? []).map((a) => a.t), ...out.bnStats!.flatMap((s) => [s.mean, s.variance]), ...Object.values(grads)]);

    totals.n += n;
    totals.ce += ce * n;
    totals.center += center * n;
    totals.correct += correct;
    state.step++;
    if (record) {
      records.push({ kind: 'step', epoch, split: 'train', step, iter: it, lr, center_lr: clr, ce, center, lamb_center: cfg.lamb * center, total: ce + cfg.lamb * center, acc: correct / n, ...stepVals });
    }
    opts.onProgress?.({ epoch, epochs: stopAt, iter: it + 1, iters: nb, step, loss: ce + cfg.lamb * center });
    if (!Number.isFinite(ce) || !Number.isFinite(center)) {
      const what = !Number.isFinite(ce) ? `cross-entropy ${ce}` : `center loss ${center}`;
      return { totals, inst: {}, diverged: { epoch, step, what } };
    }
  }
  const inst: Values = {};
  for (const i of trainInsts) Object.assign(inst, i.end('train', epoch));
  return { totals, inst };
}

/** One eval-mode pass over a valid or test split. */
function evalPass(ctx: EpochContext, ds: Dataset, split: Split): { totals: PassTotals; inst: Values } {
  const { state, cfg, insts, needs, lr, clr } = ctx;
  const epoch = state.epoch;
  const ev = insts.filter((i) => !i.splits || i.splits.includes(split));
  for (const i of ev) i.begin(split, epoch);
  const totals: PassTotals = { n: 0, ce: 0, center: 0, correct: 0 };
  const bs = cfg.eval_batch_size;
  const order = new Int32Array(ds.n);
  for (let i = 0; i < ds.n; i++) order[i] = i;
  const nb = Math.ceil(ds.n / bs);
  const centers = needs.has('centers') ? (state.centers.centers.dataSync() as Float32Array).slice() : undefined;
  for (let it = 0; it < nb; it++) {
    const start = it * bs;
    const end = Math.min(ds.n, start + bs);
    const n = end - start;
    const b = gatherBatch(ds, order, start, end);
    const x = tf.tensor4d(b.x, [n, ds.height, ds.width, ds.channels]);
    const y = tf.tensor1d(b.y, 'int32');
    const keepActs = needs.has('activations') && ev.length > 0;
    const kept = tf.tidy(() => {
      const o = forward(state.model, x, { training: false, keepActivations: keepActs });
      return { features: o.features, logits: o.logits, acts: (o.activations ?? []).map((a) => a.t) };
    });
    const out: ForwardResult = {
      features: kept.features,
      logits: kept.logits,
      activations: kept.acts.map((t, i) => ({ name: state.model.activationNames[i]!, t })),
    };
    const scal = tf.tidy(() => {
      const { ce, cl, correct } = batchLosses(out, y, state.centers.centers, cfg, centerMask(cfg, out.logits, y));
      return tf.stack([ce, cl, correct]);
    });
    const [ce, center, correct] = scal.dataSync() as unknown as [number, number, number];
    if (ev.length > 0) {
      const view = makeView(
        { split, epoch, iter: it, iters: nb, step: -1, record: false, batchSize: n, numClasses: ds.numClasses, featDim: state.model.featDim, lr, centerLr: clr, lamb: cfg.lamb, centerScale: cfg.size_average ? 1 : n, labels: b.y, model: state.model, ce, center, acc: correct / n },
        out,
        centers,
        centers,
        {},
      );
      for (const inst of ev) inst.batch(view);
    }
    totals.n += n;
    totals.ce += ce * n;
    totals.center += center * n;
    totals.correct += correct;
    tf.dispose([x, y, scal, out.features, out.logits, ...(out.activations ?? []).map((a) => a.t)]);
  }
  const inst: Values = {};
  for (const i of ev) Object.assign(inst, i.end(split, epoch));
  return { totals, inst };
}

/** Read a resolved config back from a run directory (for --resume). */
export function configOfRun(dir: string): Config {
  const m = JSON.parse(readFileSync(join(dir, MANIFEST), 'utf8')) as RunManifest;
  return m.config as unknown as Config;
}
