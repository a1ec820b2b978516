/**
 * The run store's record types. One directory per run:
 *
 *   RUN_DIR/manifest.json      RunManifest (rewritten atomically on every status change)
 *   RUN_DIR/metrics.jsonl      MetricRecord, one JSON object per line, append-only
 *   RUN_DIR/checkpoint/        weights, optimiser buffers, centers, RNG state (latest completed epoch)
 *
 * A suite's output directory holds one run directory per variant x seed, named `<variant>-s<seed>`.
 */

/** 'interrupted': stopped by a signal at a safe point (resume it like a running one). */
export type RunStatus = 'running' | 'done' | 'diverged' | 'failed' | 'interrupted';
export type Split = 'train' | 'valid' | 'test';

export interface RunManifest {
  /** Format version of the store. */
  format: 1;
  name: string;
  /** Suite variant this run belongs to ('' for a plain `spikeprobe train`). */
  variant: string;
  suite?: string;
  seed: number;
  backend: string;
  /** wasm: which build of the compiled conv kernels ran (see BackendInfo.convBuild). */
  kernels?: string;
  /** wasm: threads the conv kernels ran on (results are the same for any count). */
  threads?: number;
  /** Fully resolved configuration (see config/schema.ts). */
  config: Record<string, unknown>;
  /** Epochs (0-based) at which the model LR changes. */
  decayEpochs: number[];
  /** Directory relative data paths were resolved against. */
  baseDir?: string;
  versions: Record<string, string>;
  gitCommit?: string;
  startedAt: string;
  endedAt?: string;
  status: RunStatus;
  /** Completed epochs (0..epochsDone-1 are in metrics.jsonl). */
  epochsDone: number;
  divergedAt?: { epoch: number; step: number; what: string };
  error?: string;
  /** A twin started from its parent's checkpoint at the end of epoch at-1, with `set` changed. */
  fork?: ForkInfo;
}

export interface ForkInfo {
  /** The parent's run name and directory. */
  parent: string;
  parentDir: string;
  /** The first epoch the twin trains itself (0-based); epochs before it are the parent's. */
  at: number;
  /** The changed keys (dotted for nested ones) and their values. */
  set: Record<string, unknown>;
}

/**
 * One line of metrics.jsonl. Every line has `kind`, `epoch` and `split`; the rest are flat numeric
 * keys. Always present in epoch records: lr, center_lr, ce, center, lamb_center, total, acc.
 * Instruments add keys such as feat_norm_mean, cl_within, cl_lag, center_drift, dead_frac/<layer>.
 *  - kind 'epoch': epoch aggregate for a split (train: mean over the epoch's steps as the seed's
 *    AverageMeter; valid/test: over the whole split in eval mode).
 *  - kind 'step': one training step (train split only), `step` = global step index (0-based),
 *    `iter` = index within the epoch. Dense inside the windows around decay epochs, sparse elsewhere.
 */
export interface MetricRecord {
  kind: 'epoch' | 'step';
  epoch: number;
  split: Split;
  step?: number;
  iter?: number;
  [key: string]: number | string | undefined;
}
