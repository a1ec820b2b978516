import { z } from 'zod';

/**
 * A probe suite (YAML in probes/): a base config, named variants as overrides, seeds, and
 * expectations per variant that `spikeprobe check` enforces.
 *
 *   name: relu-vs-prelu
 *   config: ../examples/config.yaml   # optional; or --config; `base` keys override it
 *   preset: tiny                      # optional: tiny | small | seed
 *   base: { epochs: 12, decay_epochs: [4, 8], ... }
 *   seeds: 3                          # a count (1..N) or a list
 *   variants:                         # role: baseline | cause | fix | control (optional; the report's answer uses it)
 *     relu: { role: baseline }
 *     prelu: { role: fix, model: { activation: prelu } }
 *   forks:                            # twins from a parent's checkpoint (spikeprobe fork)
 *     relu-no-decay8: { parent: relu, at: 8, set: { decay_epochs: [16], decay_factors: [0.1] }, role: cause }
 *   expect:
 *     - { variant: relu, verdict: spike }
 *     - { variant: prelu, verdict: no-spike, split: train, resolution: epoch }
 *     - { variant: relu, ratio: { min: 1.05 }, split: test, decay: 8 }
 *   thresholds: { spikeRatio: 1.2, confidence: 0.95, preWindow: 4, postWindow: 3 }
 */

/**
 * What a variant is in the investigation: the run to explain (baseline), a suspected cause added or
 * removed (cause; a fork's effect is the size of its cause), a candidate fix (fix), or a setting where
 * the effect should be absent (control).
 */
export const ROLES = ['baseline', 'cause', 'fix', 'control'] as const;
export const RoleSchema = z.enum(ROLES);
export type Role = z.infer<typeof RoleSchema>;

const variantName = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/, 'variant names: letters, digits, _ . - (max 64)');

export const ExpectSchema = z
  .object({
    variant: variantName,
    verdict: z.enum(['spike', 'no-spike']).optional(),
    ratio: z
      .object({ min: z.number().positive().optional(), max: z.number().positive().optional() })
      .strict()
      .optional(),
    split: z.enum(['train', 'valid', 'test']).default('train'),
    resolution: z.enum(['epoch', 'step']).default('epoch'),
    decay: z.number().int().nonnegative().optional(),
    metric: z.string().optional(),
  })
  .strict()
  .refine((e) => (e.verdict === undefined) !== (e.ratio === undefined), { message: 'give exactly one of verdict or ratio' });

export const ForkSchema = z
  .object({
    parent: variantName,
    at: z.number().int().positive(),
    set: z.record(z.string(), z.unknown()),
    role: RoleSchema.optional(),
  })
  .strict();

export const ThresholdsSchema = z
  .object({
    spikeRatio: z.number().gt(1).max(100).optional(),
    confidence: z.number().gt(0.5).lt(1).optional(),
    preWindow: z.number().int().min(2).max(100).optional(),
    postWindow: z.number().int().min(1).max(100).optional(),
  })
  .strict();

export const SuiteSchema = z
  .object({
    name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/, 'suite names: letters, digits, _ . - (max 64)'),
    description: z.string().optional(),
    config: z.string().min(1).optional(),
    preset: z.enum(['tiny', 'small', 'seed']).optional(),
    base: z.record(z.string(), z.unknown()).default({}),
    seeds: z.union([z.number().int().min(1).max(100), z.array(z.number().int().nonnegative()).min(1)]).default(3),
    /** Config overrides per variant; the key `role` is the variant's role, not a config key. */
    variants: z
      .record(variantName, z.record(z.string(), z.unknown()).nullable())
      .refine((v) => Object.keys(v).length > 0, 'at least one variant')
      .superRefine((v, ctx) => {
        for (const [name, over] of Object.entries(v)) {
          if (over && 'role' in over && !RoleSchema.safeParse(over.role).success) {
            ctx.addIssue({ code: 'custom', path: [name, 'role'], message: `one of ${ROLES.join(', ')}` });
          }
        }
      }),
    /** Twins of a variant's runs from epoch `at` with keys changed (see spikeprobe fork); run after their parent, in its shard. */
    forks: z.record(variantName, ForkSchema).default({}),
    expect: z.array(ExpectSchema).default([]),
    thresholds: ThresholdsSchema.default({}),
  })
  .strict();

export type SuiteFile = z.infer<typeof SuiteSchema>;
export type ExpectItem = z.infer<typeof ExpectSchema>;
