import type { ConfigInput } from './schema.js';

/**
 * Presets fill the model/data keys that the seed's config.yaml does not have. Keys the user's
 * config sets always win over the preset.
 */
export const PRESETS = {
  /** A smoke run: a two-stage 8/16-wide ResNet on 8 x 40 Fashion-MNIST images; seconds per epoch. */
  tiny: {
    batch_size: 32,
    model: { blocks: [1, 1], widths: [8, 16], stem: 'cifar', stem_stride: 2 },
    data: { source: 'fashion-mnist', classes: 8, train_per_class: 40, valid_per_class: 10, test_per_class: 20 },
  },
  /** Minutes: the PyTorch reference's 3-stage 16/32/64 ResNet on 8 x 1500 Fashion-MNIST images. */
  small: {
    batch_size: 128,
    model: { blocks: [1, 1, 1], widths: [16, 32, 64], stem: 'cifar', stem_stride: 1 },
    data: { source: 'fashion-mnist', classes: 8, train_per_class: 1500, valid_per_class: 125, test_per_class: 250 },
  },
  /** The seed's model: 1-channel ResNet18, 512-d features, 8 classes. */
  seed: {
    batch_size: 128,
    model: { blocks: [2, 2, 2, 2], widths: [64, 128, 256, 512], stem: 'imagenet', feat_dim: 512 },
    data: { source: 'fashion-mnist', classes: 8, train_per_class: 3000, valid_per_class: 250, test_per_class: 500 },
  },
} satisfies Record<string, Partial<ConfigInput>>;

export type PresetName = keyof typeof PRESETS;
export const PRESET_NAMES = Object.keys(PRESETS) as PresetName[];

type Plain = Record<string, unknown>;

function isPlain(v: unknown): v is Plain {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Deep merge: `over` wins; arrays are replaced, not merged. Returns a new object. */
export function deepMerge(base: Plain, over: Plain): Plain {
  const out: Plain = { ...base };
  for (const [k, v] of Object.entries(over)) {
    const b = out[k];
    out[k] = isPlain(b) && isPlain(v) ? deepMerge(b, v) : v;
  }
  return out;
}
