/**
 * The data room: load a configured source, split it per class into train/valid/test with a seed,
 * inject label noise, normalise with the train split's statistics, resize; plus batching and
 * augmentation.
 */
import { resolve } from 'node:path';
import { InputError } from '../util/errors.js';
import { Rng } from '../util/rng.js';
import { loadIdxSource } from './idx.js';
import { loadNpmSource } from './npm.js';
import type { LoadedSource } from './pool.js';
import { loadPngFolderSource } from './pngfolder.js';
import { resizeBilinear } from './resize.js';
import { applyLabelNoise, meanStd, normalise, sampleSplits } from './split.js';
import { loadSyntheticSource } from './synthetic.js';
import type { DataConfig, DataSplits } from './types.js';

export type { AugmentConfig, DataConfig, DataSource, DataSplits, Dataset, SyntheticConfig } from './types.js';
export { augmentBatch, epochOrder, gatherBatch } from './batch.js';
export { FASHION_CLASS_NAMES, MNIST_CLASS_NAMES, FASHION_TEST_ROWS, MNIST_TEST_ROWS } from './npm.js';
export { parseIdx } from './idx.js';
export { decodePng } from './png.js';
export { applyLabelNoise, meanStd } from './split.js';
export { resizeBilinear } from './resize.js';

const WHERE = 'data';

function checkConfig(cfg: DataConfig): void {
  const cls = cfg.classes;
  if (!Array.isArray(cls) || cls.length === 0) throw new InputError('must list at least one class', WHERE, 'classes');
  const seen = new Set<number>();
  for (const c of cls) {
    if (!Number.isInteger(c) || c < 0) throw new InputError(`class ${c} is not a non-negative integer`, WHERE, 'classes');
    if (seen.has(c)) throw new InputError(`class ${c} is listed twice`, WHERE, 'classes');
    seen.add(c);
  }
  for (const f of ['train_per_class', 'valid_per_class', 'test_per_class'] as const) {
    const v = cfg[f];
    if (!Number.isInteger(v) || v < 0) throw new InputError(`must be a non-negative integer, got ${v}`, WHERE, f);
  }
  if (cfg.train_per_class < 1) throw new InputError('must be at least 1', WHERE, 'train_per_class');
  if (cfg.train_counts !== undefined) {
    if (cfg.train_counts.length !== cls.length) {
      throw new InputError(`has ${cfg.train_counts.length} entries but classes names ${cls.length}`, WHERE, 'train_counts');
    }
    cfg.train_counts.forEach((v, i) => {
      if (!Number.isInteger(v) || v < 1) throw new InputError(`must be a positive integer, got ${v}`, WHERE, `train_counts[${i}]`);
    });
  }
  if (cfg.image_size !== undefined && !(Number.isInteger(cfg.image_size) && cfg.image_size >= 8 && cfg.image_size <= 256)) {
    throw new InputError(`must be an integer in 8..256, got ${cfg.image_size}`, WHERE, 'image_size');
  }
  if (!Number.isInteger(cfg.split_seed)) throw new InputError(`must be an integer, got ${cfg.split_seed}`, WHERE, 'split_seed');
  if (!(cfg.label_noise >= 0 && cfg.label_noise <= 1)) throw new InputError(`must be in [0, 1], got ${cfg.label_noise}`, WHERE, 'label_noise');
  if (cfg.label_noise > 0 && cls.length < 2) throw new InputError('needs at least 2 classes', WHERE, 'label_noise');
  const a = cfg.augment;
  if (!Number.isInteger(a.shift) || a.shift < 0) throw new InputError(`must be a non-negative integer, got ${a.shift}`, WHERE, 'augment.shift');
  if (!(a.noise >= 0) || !Number.isFinite(a.noise)) throw new InputError(`must be >= 0, got ${a.noise}`, WHERE, 'augment.noise');
}

function dirFromConfig(cfg: DataConfig, baseDir: string): string {
  if (!cfg.path) throw new InputError(`source '${cfg.source}' needs a path`, WHERE, 'path');
  return resolve(baseDir, cfg.path);
}

/** Load, split, noise and normalise the configured data. Relative `path` resolves against baseDir. */
export function loadData(cfg: DataConfig, baseDir: string): DataSplits {
  checkConfig(cfg);
  let src: LoadedSource;
  switch (cfg.source) {
    case 'fashion-mnist':
    case 'mnist':
      src = loadNpmSource(cfg.source, cfg.classes);
      break;
    case 'synthetic':
      src = loadSyntheticSource(cfg.synthetic, cfg.classes, cfg.split_seed, Math.max(cfg.train_per_class, ...(cfg.train_counts ?? [])) + cfg.valid_per_class, cfg.test_per_class);
      break;
    case 'idx':
      src = loadIdxSource(dirFromConfig(cfg, baseDir), cfg.classes, cfg.test_per_class);
      break;
    case 'png-folder':
      src = loadPngFolderSource(dirFromConfig(cfg, baseDir), cfg.classes, cfg.test_per_class);
      break;
    default:
      throw new InputError(`unknown source '${String((cfg as { source: unknown }).source)}'`, WHERE, 'source');
  }
  const { train, valid, test } = sampleSplits(
    src,
    { train: cfg.train_counts ?? cfg.train_per_class, valid: cfg.valid_per_class, test: cfg.test_per_class },
    cfg.split_seed,
  );
  if (cfg.label_noise > 0) {
    train.yClean = train.y;
    train.y = applyLabelNoise(train.y, train.numClasses, cfg.label_noise, Rng.derive(cfg.split_seed, 'label-noise'));
  }
  const { mean, std } = meanStd(train.x);
  if (!(std > 1e-8)) throw new InputError(`the train images are constant (std ${std}); cannot normalise`, src.source, 'data');
  for (const ds of [train, valid, test]) normalise(ds.x, mean, std);
  const size = cfg.image_size;
  if (size !== undefined && (size !== train.height || size !== train.width)) {
    for (const ds of [train, valid, test]) {
      ds.x = resizeBilinear(ds.x, ds.n, ds.height, ds.width, ds.channels, size, size);
      ds.height = size;
      ds.width = size;
    }
  }
  return { train, valid, test, mean, std, source: src.source, classNames: src.pools.map((p) => p.name) };
}

/** The normalised value of a 0 pixel (the background that augmentation pads with). */
export function backgroundValue(splits: Pick<DataSplits, 'mean' | 'std'>): number {
  return (0 - splits.mean) / splits.std;
}
