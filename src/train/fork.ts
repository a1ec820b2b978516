/**
 * Forks at a decay: a twin of a run that resumes from the parent's kept checkpoint at the end of
 * epoch D-1 with a few keys changed, on the same data order and RNG streams (they are in the
 * checkpoint). The twin's directory gets the parent's records of epochs < D (step records only
 * where the twin's own config records them, so that a twin equals a run trained from scratch with
 * its config wherever the change does not reach before D), the checkpoint, and a manifest that
 * names the parent and D; then it trains as a resumed run.
 */
import { existsSync, mkdirSync, readFileSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ConfigSchema, type Config } from '../config/schema.js';
import { CHECKPOINT, KEPT_DIR, keptCheckpoint, readManifest, readMetrics, MANIFEST } from '../store/run-store.js';
import type { MetricRecord, RunManifest } from '../store/types.js';
import { writeFileAtomic } from '../util/atomic.js';
import { InputError } from '../util/errors.js';
import { decaysWithin, modelLr } from './schedule.js';
import { inDenseWindow } from './trainer.js';

/** The keys a fork may change. `label_noise` only to 0 (clean labels from D on). */
export const FORK_KEYS = ['lamb', 'alpha', 'weight_decay', 'center_lr_coupled', 'decay_epochs', 'decay_factors', 'label_noise'] as const;

const ALIASES: Record<string, string> = { 'data.label_noise': 'label_noise' };

/** Parse `KEY=VALUE` (VALUE as YAML) pairs. */
export function parseSets(pairs: string[], parse: (text: string) => unknown, where = '--set'): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const p of pairs) {
    const at = p.indexOf('=');
    if (at <= 0) throw new InputError(`expected KEY=VALUE, got '${p}'`, undefined, where);
    out[p.slice(0, at).trim()] = parse(p.slice(at + 1));
  }
  return out;
}

/**
 * The twin's config: the parent's with `set` applied. Refuses keys outside FORK_KEYS, a label_noise
 * other than 0, and schedules that change the LR of an epoch before D.
 */
export function forkConfig(parent: Config, at: number, set: Record<string, unknown>, where = '--set'): Config {
  if (!Number.isInteger(at) || at < 1 || at >= parent.epochs) {
    throw new InputError(`must be an epoch from 1 to ${parent.epochs - 1} (the twin starts there), got ${at}`, undefined, '--at');
  }
  if (Object.keys(set).length === 0) throw new InputError('give at least one KEY=VALUE to change', undefined, where);
  const raw = JSON.parse(JSON.stringify(parent)) as Record<string, unknown>;
  for (const [k0, v] of Object.entries(set)) {
    const k = ALIASES[k0] ?? k0;
    if (!(FORK_KEYS as readonly string[]).includes(k)) {
      throw new InputError(`'${k0}' cannot be changed in a fork (allowed: ${FORK_KEYS.join(', ')})`, undefined, where);
    }
    if (k === 'label_noise') {
      if (v !== 0) throw new InputError(`label_noise can only be set to 0 (clean labels from the fork on), got ${JSON.stringify(v)}`, undefined, where);
      (raw.data as Record<string, unknown>).label_noise = 0;
    } else raw[k] = v;
  }
  if ('decay_epochs' in set !== 'decay_factors' in set) {
    // One without the other is allowed only where the lengths still agree.
    const de = raw.decay_epochs as unknown[];
    const df = raw.decay_factors as unknown[];
    if (!Array.isArray(de) || !Array.isArray(df) || de.length !== df.length) {
      throw new InputError('give decay_epochs and decay_factors together (the whole schedule)', undefined, where);
    }
  }
  const r = ConfigSchema.safeParse(raw);
  if (!r.success) {
    const i = r.error.issues[0]!;
    throw new InputError(i.message, undefined, `${where} ${i.path.join('.')}`);
  }
  const cfg = r.data;
  for (let e = 0; e < at; e++) {
    if (modelLr(cfg, e) !== modelLr(parent, e)) {
      throw new InputError(`the new schedule changes the LR of epoch ${e}, before the fork at ${at} (${modelLr(parent, e)} -> ${modelLr(cfg, e)})`, undefined, where);
    }
  }
  return cfg;
}

/** Epochs whose kept checkpoint a run directory holds (fork points are these + 1). */
export function keptEpochs(dir: string): number[] {
  const d = join(dir, KEPT_DIR);
  if (!existsSync(d)) return [];
  return readdirSync(d)
    .map((n) => /^after-epoch-(\d+)\.bin$/.exec(n))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => Number(m[1]))
    .sort((a, b) => a - b);
}

/**
 * Lay out the twin's directory from the parent (nothing is trained here): records of epochs < at,
 * the checkpoint at the end of epoch at-1, and a manifest with epochsDone = at and `fork`.
 */
export function prepareFork(parentDir: string, twinDir: string, at: number, set: Record<string, unknown>, name: string, variant = ''): RunManifest {
  const pdir = resolve(parentDir);
  const parent = readManifest(pdir);
  const pcfg = parent.config as unknown as Config;
  const cfg = forkConfig(pcfg, at, set);
  const ck = keptCheckpoint(pdir, at - 1);
  if (!existsSync(ck)) {
    const have = keptEpochs(pdir).map((e) => e + 1);
    throw new InputError(
      parent.epochsDone < at
        ? `the parent has finished ${parent.epochsDone} epochs, fewer than the ${at} the fork starts after`
        : `no checkpoint kept at the end of epoch ${at - 1} (forks can start at: ${have.join(', ') || 'none'}; keep more with keep_checkpoints)`,
      pdir,
      '--at',
    );
  }
  const out = resolve(twinDir);
  if (existsSync(join(out, MANIFEST))) throw new InputError(`a run already exists there: continue it with spikeprobe train --resume ${out}`, out);
  mkdirSync(out, { recursive: true });
  const records = readMetrics(pdir).filter((r: MetricRecord) => r.epoch < at && (r.kind === 'epoch' || inDenseWindow(cfg, r.epoch, r.step ?? -1)));
  writeFileAtomic(join(out, 'metrics.jsonl'), records.map((r) => JSON.stringify(r) + '\n').join(''));
  writeFileAtomic(join(out, CHECKPOINT), readFileSync(ck));
  const m: RunManifest = {
    ...parent,
    name,
    variant,
    config: cfg as unknown as Record<string, unknown>,
    decayEpochs: decaysWithin(cfg, cfg.epochs),
    startedAt: new Date().toISOString(),
    endedAt: undefined,
    status: 'running',
    epochsDone: at,
    divergedAt: undefined,
    error: undefined,
    fork: { parent: parent.name, parentDir: pdir, at, set },
  };
  writeFileAtomic(join(out, MANIFEST), JSON.stringify(m, null, 1) + '\n');
  return m;
}
