import { z } from 'zod';

/**
 * The configuration of one training run. The seed's config.yaml keys (lr, momentum, weight_decay,
 * alpha, lamb, epochs) are top-level exactly as the seed's script reads them; everything else is
 * optional and filled by a preset (tiny | small | seed) or by these defaults.
 */

export const ACTIVATIONS = ['relu', 'prelu', 'prelu_channel', 'leaky_relu', 'elu'] as const;
export type Activation = (typeof ACTIVATIONS)[number];

const posInt = z.number().int().positive();
const nonNegInt = z.number().int().nonnegative();

export const ModelSchema = z
  .object({
    /** Residual blocks per stage; ResNet18 = [2,2,2,2]. */
    blocks: z.array(posInt).min(1).default([2, 2, 2, 2]),
    /** Channels per stage; the last one is the feature dimension. */
    widths: z.array(posInt).min(1).default([64, 128, 256, 512]),
    /** 'imagenet': 7x7/2 conv + 3x3/2 max-pool (torchvision resnet18); 'cifar': one 3x3 conv. */
    stem: z.enum(['imagenet', 'cifar']).default('imagenet'),
    stem_stride: z.union([z.literal(1), z.literal(2)]).default(1),
    activation: z.enum(ACTIVATIONS).default('relu'),
    /** The activation of the last block's output only (the one the features are pooled from). */
    last_activation: z.enum(ACTIVATIONS).optional(),
    /** Slope for leaky_relu (fixed), initial slope for prelu. */
    negative_slope: z.number().min(0).max(1).optional(),
    /** If given, must equal the last width (the seed's CenterLoss(8, 512) check). */
    feat_dim: posInt.optional(),
    /**
     * BatchNorm statistics per device as under nn.DataParallel over N devices (the seed's setup):
     * the batch is split into N chunks (torch.chunk), each normalised with its own statistics;
     * running statistics come from the first chunk (device 0's replica).
     */
    bn_devices: z.number().int().min(1).max(64).default(1),
    /** L2-normalise features (times feature_scale) before center loss and FC: a candidate fix. */
    feature_norm: z.boolean().default(false),
    feature_scale: z.number().positive().default(1),
  })
  .strict();

export const DataSchema = z
  .object({
    source: z.enum(['fashion-mnist', 'mnist', 'synthetic', 'idx', 'png-folder']).default('fashion-mnist'),
    /** Original class ids to keep (relabelled 0..K-1), or a count K meaning classes 0..K-1. */
    classes: z.union([posInt, z.array(nonNegInt).min(2)]).default(8),
    /** Training images per class (3000 when neither this nor train_counts is given). */
    train_per_class: posInt.optional(),
    /** Training images of each class, in `classes` order (imbalanced sets); replaces train_per_class. */
    train_counts: z.array(posInt).min(2).optional(),
    valid_per_class: nonNegInt.default(250),
    test_per_class: nonNegInt.default(250),
    split_seed: nonNegInt.default(1234),
    path: z.string().min(1).optional(),
    synthetic: z
      .object({
        height: posInt.default(28),
        width: posInt.default(28),
        noise: z.number().min(0).default(0.3),
        seed: nonNegInt.optional(),
      })
      .strict()
      .default({ height: 28, width: 28, noise: 0.3 }),
    augment: z
      .object({
        shift: nonNegInt.max(8).default(0),
        flip: z.boolean().default(false),
        noise: z.number().min(0).default(0),
      })
      .strict()
      .default({ shift: 0, flip: false, noise: 0 }),
    /** Exactly round(label_noise * n) train labels flipped to a uniformly drawn other class. */
    label_noise: z.number().min(0).max(0.9).default(0),
    /** Resize to image_size x image_size (PyTorch bilinear, align_corners=False), after normalising. */
    image_size: z.number().int().min(8).max(256).optional(),
  })
  .strict();

export const InstrumentsSchema = z
  .object({
    /** Instrument names to enable, 'default', 'all' or 'none'. */
    enable: z.union([z.enum(['default', 'all', 'none']), z.array(z.string().min(1))]).default('default'),
    /** Epochs on each side of a decay epoch in which every step is recorded. */
    window: nonNegInt.default(2),
    /** Elsewhere, record every N-th step (0: none). */
    every: nonNegInt.default(0),
  })
  .strict();

export const ConfigSchema = z
  .object({
    // --- the seed's config.yaml ---
    lr: z.number().positive().max(10),
    momentum: z.number().min(0).max(0.999).default(0.9),
    weight_decay: z.number().min(0).max(1).default(5e-4),
    alpha: z.number().min(0).max(10).default(0.5),
    lamb: z.number().min(0).max(100).default(0.01),
    /** Cross-entropy label smoothing (nn.CrossEntropyLoss(label_smoothing=)): a candidate fix. */
    label_smoothing: z.number().min(0).max(1).default(0),
    /**
     * Which samples the center loss and the centers' update use: 'all' (the seed), or 'fitted'
     * (only those the model predicts as their label at that step: a candidate fix against noisy labels).
     */
    center_on: z.enum(['all', 'fitted']).default('all'),
    epochs: posInt.max(10000),
    // --- schedule ---
    /** Epochs (0-based) at which the model LR changes; default: the seed's adjust_learning_rate. */
    decay_epochs: z.array(nonNegInt).default([20, 40]),
    /** LR multiplier (relative to lr) from each decay epoch on; default lr/2 then lr/10. */
    decay_factors: z.array(z.number().positive().max(100)).default([0.5, 0.1]),
    /** Decay the centers' LR (alpha) with the model's (Caffe's original behaviour). */
    center_lr_coupled: z.boolean().default(false),
    /**
     * Epochs (0-based) whose end-of-epoch checkpoint is kept in checkpoints/ (for forks), besides
     * the epoch before each decay, which is always kept.
     */
    keep_checkpoints: z.array(nonNegInt).default([]),
    /** Skip weight decay on BatchNorm and PReLU parameters (a candidate fix). */
    no_wd_bn: z.boolean().default(false),
    // --- run ---
    batch_size: posInt.max(65536).default(128),
    size_average: z.boolean().default(true),
    seed: nonNegInt.default(1),
    eval_batch_size: posInt.default(500),
    model: ModelSchema.default(ModelSchema.parse({})),
    data: DataSchema.default(DataSchema.parse({})),
    instruments: InstrumentsSchema.default(InstrumentsSchema.parse({})),
  })
  .strict()
  .superRefine((c, ctx) => {
    if (c.decay_factors.length !== c.decay_epochs.length) {
      ctx.addIssue({
        code: 'custom',
        path: ['decay_factors'],
        message: `has ${c.decay_factors.length} entries but decay_epochs has ${c.decay_epochs.length}`,
      });
    }
    for (let i = 1; i < c.decay_epochs.length; i++) {
      if (c.decay_epochs[i]! <= c.decay_epochs[i - 1]!) {
        ctx.addIssue({ code: 'custom', path: ['decay_epochs', i], message: 'must be strictly increasing' });
      }
    }
    if (c.model.blocks.length !== c.model.widths.length) {
      ctx.addIssue({
        code: 'custom',
        path: ['model', 'blocks'],
        message: `has ${c.model.blocks.length} stages but model.widths has ${c.model.widths.length}`,
      });
    }
    const last = c.model.widths[c.model.widths.length - 1];
    if (c.model.feat_dim !== undefined && c.model.feat_dim !== last) {
      ctx.addIssue({
        code: 'custom',
        path: ['model', 'feat_dim'],
        message: `Center's dim: ${c.model.feat_dim} should be equal to input feature's dim: ${last} (the last of model.widths)`,
      });
    }
    if (c.data.train_counts !== undefined) {
      if (c.data.train_per_class !== undefined) {
        ctx.addIssue({ code: 'custom', path: ['data', 'train_counts'], message: 'replaces data.train_per_class: give one of them, not both' });
      }
      const k = typeof c.data.classes === 'number' ? c.data.classes : c.data.classes.length;
      if (c.data.train_counts.length !== k) {
        ctx.addIssue({ code: 'custom', path: ['data', 'train_counts'], message: `has ${c.data.train_counts.length} entries but data.classes names ${k} classes` });
      }
    }
    if ((c.data.source === 'idx' || c.data.source === 'png-folder') && !c.data.path) {
      ctx.addIssue({ code: 'custom', path: ['data', 'path'], message: `is required for data.source '${c.data.source}'` });
    }
  });

export type Config = z.infer<typeof ConfigSchema>;
export type ConfigInput = z.input<typeof ConfigSchema>;
export type ModelConfig = Config['model'];
