/**
 * What a column or TensorBoard tag name means: which split it belongs to and which run-store key
 * it maps to. Names are split into lower-case tokens on anything not a letter or digit
 * ("val_center_loss", "train/center_loss", "epoch_learning_rate", "run-logs_valid-tag-acc").
 *
 * Split: a token val / valid / validation / eval / dev -> 'valid'; test / testing -> 'test';
 * otherwise 'train'.
 * Key: a name whose remaining tokens (split tokens and the noise tokens epoch, epochs, run, tag,
 * scalar(s), metric(s) removed) spell a store key exactly (lr, center_lr, ce, center, lamb_center,
 * total, acc, feat_norm_mean, feat_sq, cl_within, cl_lag, center_drift) keeps it, and a name
 * containing 'dead_frac/' or 'eff_lr/' keeps that per-layer key from there to its end; otherwise
 * the first alias rule that matches the remaining tokens:
 *   center and (lr or learning+rate)      -> center_lr
 *   center, centerloss, closs or lsc      -> center
 *   lamb / lambda                         -> lamb_center
 *   lr, learning+rate, learningrate       -> lr
 *   ce, xent, crossentropy, cross+entropy, softmax, nll, cls -> ce
 *   acc, accuracy, top1                   -> acc
 *   loss or total (and nothing above)     -> total
 *   otherwise, known = false and the key is the name itself when it names no split (and has no
 *   blank or comma), else the remaining tokens joined by '_'.
 */
import type { Split } from '../store/types.js';

export interface NameMeaning {
  key: string;
  split: Split;
  /** Whether the split came from a token in the name (rather than the 'train' default). */
  splitNamed: boolean;
  /** Whether the key is one of the store's standard keys recognised from an alias. */
  known: boolean;
}

const VALID = new Set(['val', 'valid', 'validation', 'eval', 'dev']);
const TEST = new Set(['test', 'testing']);
const TRAIN = new Set(['train', 'training', 'learn']);
const STORE_KEYS = new Set([
  'lr', 'center_lr', 'ce', 'center', 'lamb_center', 'total', 'acc',
  'feat_norm_mean', 'feat_sq', 'cl_within', 'cl_lag', 'center_drift',
]);
const NOISE = new Set(['epoch', 'epochs', 'run', 'tag', 'scalar', 'scalars', 'metric', 'metrics']);

export function tokens(name: string): string[] {
  return name
    .toLowerCase()
    .split(/[^a-z0-9]+/)
    .filter((t) => t !== '');
}

export function splitOf(name: string): Split | undefined {
  const ts = tokens(name);
  if (ts.some((t) => VALID.has(t))) return 'valid';
  if (ts.some((t) => TEST.has(t))) return 'test';
  if (ts.some((t) => TRAIN.has(t))) return 'train';
  return undefined;
}

export function classifyName(name: string): NameMeaning {
  const all = tokens(name);
  const named = splitOf(name);
  const rest = all.filter((t) => !VALID.has(t) && !TEST.has(t) && !TRAIN.has(t) && !NOISE.has(t));
  const has = (t: string) => rest.includes(t);
  const joined = rest.join('_');
  const lrLike = has('lr') || (has('learning') && has('rate')) || has('learningrate');
  let key: string | undefined;
  const layerKey = /(dead_frac|eff_lr)\/.+$/i.exec(name.trim());
  if (STORE_KEYS.has(joined)) key = joined;
  else if (layerKey) key = layerKey[0];
  else if (has('center') && lrLike) key = 'center_lr';
  else if (has('center') || has('centerloss') || has('closs') || has('lsc')) key = 'center';
  else if (has('lamb') || has('lambda')) key = 'lamb_center';
  else if (lrLike) key = 'lr';
  else if (has('ce') || has('xent') || has('crossentropy') || (has('cross') && has('entropy')) || has('softmax') || has('nll') || has('cls')) key = 'ce';
  else if (has('acc') || has('accuracy') || has('top1')) key = 'acc';
  else if (rest.length > 0 && rest.every((t) => t === 'loss' || t === 'total')) key = 'total';
  return {
    key: key ?? (named === undefined && !/[\s,]/.test(name.trim()) && name.trim() !== '' ? name.trim() : joined),
    split: named ?? 'train',
    splitNamed: named !== undefined,
    known: key !== undefined,
  };
}
