import type * as tf from '@tensorflow/tfjs';
import type { Model } from '../model/resnet.js';
import type { Split } from '../store/types.js';

/**
 * The instrument interface. An instrument declares what it needs from a batch and returns plain
 * numbers; the trainer offers every batch (train steps and eval batches) through a BatchView whose
 * expensive parts are lazy, and reads back from the backend only what some enabled instrument
 * declared it needs. The trainer knows no single instrument.
 */

export type Need =
  | 'features' // features read back as Float32Array [B*D]
  | 'logits' // logits read back [B*K]
  | 'centers' // centers before (and after, for train) the center update [K*D]
  | 'activations' // per activation layer outputs (tensors, valid during the call only)
  | 'params' // model parameters (tensors)
  | 'grads'; // model gradients (tensors, train only)

export interface BatchView {
  split: Split;
  epoch: number;
  /** Batch index within this split's pass. */
  iter: number;
  /** Number of batches in this pass. */
  iters: number;
  /** Global train step (train split), or -1 for eval batches. */
  step: number;
  /** True when the trainer writes a step record for this batch (dense window or every N steps). */
  record: boolean;
  batchSize: number;
  numClasses: number;
  featDim: number;
  lr: number;
  centerLr: number;
  lamb: number;
  /** Recorded center loss / per-sample mean of 0.5||x-c||^2: 1 with size_average, else the batch size. */
  centerScale: number;
  /** The labels trained on (after label noise). */
  labels: Int32Array;
  /**
   * Train batches of a run with label noise: each sample's true class (differs from `labels` where
   * its label was flipped). Absent otherwise: every label is its true class.
   */
  trueLabels?: Int32Array;
  features(): Float32Array;
  logits(): Float32Array;
  centersBefore(): Float32Array;
  /** Centers after this step's update (train); equals centersBefore for eval batches. */
  centersAfter(): Float32Array;
  activations(): { name: string; t: tf.Tensor4D }[];
  model: Model;
  /** Gradients by parameter name (train only; empty for eval). */
  grads(): Record<string, tf.Tensor>;
  /** The seed's per-batch losses, already read: cross-entropy, center loss, accuracy. */
  ce: number;
  center: number;
  acc: number;
}

export type Values = Record<string, number>;

export interface Instrument {
  /** Unique, kebab-case; used in configs (`instruments.enable`). */
  readonly name: string;
  readonly description: string;
  readonly needs: readonly Need[];
  /** Splits it runs on (default: all). */
  readonly splits?: readonly Split[];
  /** Start of a pass over a split. */
  begin(split: Split, epoch: number): void;
  /** One batch. Return values to put into this batch's step record (used when view.record). */
  batch(view: BatchView): Values | void;
  /** End of the pass: epoch aggregates for the split. */
  end(split: Split, epoch: number): Values;
  /** Tensors it holds across batches (must be disposed by end()/dispose()). */
  dispose?(): void;
}

export type InstrumentFactory = () => Instrument;
