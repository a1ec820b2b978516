import { dirname, resolve } from 'node:path';
import { ConfigSchema, type Config } from '../config/schema.js';
import { deepMerge } from '../config/presets.js';
import { parseWith, readYamlWithSource, withPreset, zodToInputError } from '../config/load.js';
import { InputError } from '../util/errors.js';
import { forkConfig } from '../train/fork.js';
import { SuiteSchema, type ExpectItem, type Role, type SuiteFile } from './schema.js';

/** One training run of a suite: a variant at a seed, with its fully resolved config. */
export interface Job {
  id: string; // `<variant>-s<seed>`
  variant: string;
  seed: number;
  /** A twin of job `parent` from epoch `at` with `set` changed (suite `forks:`). */
  fork?: { parent: string; at: number; set: Record<string, unknown> };
  config: Config;
}

export interface Suite {
  file: string;
  name: string;
  description?: string;
  /** Directory relative data paths are resolved against. */
  baseDir: string;
  variants: string[];
  seeds: number[];
  jobs: Job[];
  expect: ExpectItem[];
  thresholds: SuiteFile['thresholds'];
  /** Variant or fork -> its role (only those that state one). */
  roles: Record<string, Role>;
}

export interface SuiteLoadOptions {
  /** A config in the seed's format that replaces the suite's `config:` (its keys under `base`). */
  config?: string;
  /** Run only the first N seeds (or 1..N when seeds is a count). */
  seeds?: number;
}

/** Read, validate and expand a suite file. Every error names the file, line and field. */
export function loadSuite(file: string, opts: SuiteLoadOptions = {}): Suite {
  const { value, doc } = readYamlWithSource(file);
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new InputError('expected a mapping (name, variants, seeds, expect, ...)', file);
  const s = parseWith(SuiteSchema, value, file, doc);
  const dir = dirname(resolve(file));
  let raw: Record<string, unknown> = {};
  const cfgFile = opts.config ? resolve(opts.config) : s.config ? resolve(dir, s.config) : undefined;
  let baseDir = dir;
  if (cfgFile) {
    const c = readYamlWithSource(cfgFile);
    if (typeof c.value !== 'object' || c.value === null || Array.isArray(c.value)) throw new InputError('expected a mapping of keys (lr, momentum, ...)', cfgFile);
    raw = c.value as Record<string, unknown>;
    // Validate the config file on its own terms first (lr etc. must be valid there).
    const partial = ConfigSchema.safeParse(withPreset({ epochs: 1, ...raw }, s.preset));
    if (!partial.success) throw zodToInputError(partial.error, cfgFile, c.doc);
    if (opts.config) baseDir = dirname(cfgFile);
  }
  raw = deepMerge(raw, s.base);

  let seeds = typeof s.seeds === 'number' ? Array.from({ length: s.seeds }, (_, i) => i + 1) : s.seeds;
  if (opts.seeds !== undefined) {
    if (!Number.isInteger(opts.seeds) || opts.seeds < 1) throw new InputError(`expected a positive integer, got ${opts.seeds}`, undefined, '--seeds');
    seeds = typeof s.seeds === 'number' ? Array.from({ length: opts.seeds }, (_, i) => i + 1) : seeds.slice(0, opts.seeds);
  }
  if (new Set(seeds).size !== seeds.length) throw new InputError('seeds repeat', file, 'seeds');

  const variants = Object.keys(s.variants);
  const jobs: Job[] = [];
  const roles: Record<string, Role> = {};
  for (const v of variants) {
    const { role, ...over } = s.variants[v] ?? {};
    if (role !== undefined) roles[v] = role as Role;
    for (const seed of seeds) {
      // The preset goes under each variant's keys, so a variant's train_counts drops its train_per_class.
      const merged = withPreset(deepMerge(deepMerge(raw, over), { seed }), s.preset);
      const r = ConfigSchema.safeParse(merged);
      if (!r.success) {
        // Name where the bad key sits: in the variant if it set it, else in base.
        const issue = r.error.issues[0]!;
        const path = issue.path.map(String);
        const full = issue.code === 'unrecognized_keys' ? [...path, (issue as { keys: string[] }).keys[0]!] : path;
        const inVariant = hasPath(over, full);
        throw zodToInputError(r.error, file, doc, inVariant ? ['variants', v] : ['base']);
      }
      jobs.push({ id: `${v}-s${seed}`, variant: v, seed, config: r.data });
    }
  }
  for (const [f, spec] of Object.entries(s.forks)) {
    if (spec.role !== undefined) roles[f] = spec.role;
    const where = (field: string[]) => ['forks', f, ...field];
    if (variants.includes(f)) throw zodToInputError({ issues: [{ code: 'custom', path: where([]), message: `fork '${f}' has the name of a variant` }] } as never, file, doc);
    if (!variants.includes(spec.parent)) {
      throw zodToInputError({ issues: [{ code: 'custom', path: where(['parent']), message: `no variant '${spec.parent}' in this suite (variants: ${variants.join(', ')})` }] } as never, file, doc);
    }
    for (const seed of seeds) {
      const parent = jobs.find((j) => j.variant === spec.parent && j.seed === seed)!;
      let config: Config;
      try {
        config = forkConfig(parent.config, spec.at, spec.set, 'set');
      } catch (e) {
        if (!(e instanceof InputError)) throw e;
        const msg = e.message.replace(/^.*?: /, '');
        throw zodToInputError({ issues: [{ code: 'custom', path: where(e.message.includes('--at') ? ['at'] : ['set']), message: msg }] } as never, file, doc);
      }
      jobs.push({ id: `${f}-s${seed}`, variant: f, seed, config, fork: { parent: parent.id, at: spec.at, set: spec.set } });
    }
  }
  s.expect.forEach((e, i) => {
    if (!variants.includes(e.variant) && !(e.variant in s.forks)) {
      throw zodToInputError(
        { issues: [{ code: 'custom', path: ['expect', i, 'variant'], message: `no variant '${e.variant}' in this suite (variants: ${variants.join(', ')})` }] } as never,
        file,
        doc,
      );
    }
  });
  return { file: resolve(file), name: s.name, description: s.description, baseDir, variants: [...variants, ...Object.keys(s.forks)], seeds, jobs, expect: s.expect, thresholds: s.thresholds, roles };
}

function hasPath(o: unknown, path: string[]): boolean {
  let cur = o;
  for (const k of path) {
    if (typeof cur !== 'object' || cur === null || !(k in (cur as object))) return false;
    cur = (cur as Record<string, unknown>)[k];
  }
  return path.length > 0;
}

/** A deterministic slice of the jobs: shard i of n (0-based) takes jobs i, i+n, i+2n, ... */
export function shardJobs(jobs: Job[], shard?: string): Job[] {
  if (!shard) return jobs;
  const m = /^(\d+)\/(\d+)$/.exec(shard);
  if (!m) throw new InputError(`expected i/n with 0 <= i < n, got '${shard}'`, undefined, '--shard');
  const i = Number(m[1]);
  const n = Number(m[2]);
  if (n < 1 || i >= n) throw new InputError(`expected i/n with 0 <= i < n, got '${shard}'`, undefined, '--shard');
  return selectWithForks(jobs, (k) => k % n === i);
}

/**
 * Select jobs by their index among the suite's non-fork jobs; a fork goes wherever its parent goes
 * when it is in the list (forks come after every variant's job, so a selection trains the parent
 * first); a fork whose parent is not in the list counts as a job of its own.
 */
export function selectWithForks(jobs: readonly Job[], keep: (k: number) => boolean): Job[] {
  const ids = new Set(jobs.map((j) => j.id));
  const follows = (j: Job) => j.fork !== undefined && ids.has(j.fork.parent);
  const picked = new Set<string>();
  let k = 0;
  for (const j of jobs) if (!follows(j) && keep(k++)) picked.add(j.id);
  return jobs.filter((j) => picked.has(j.id) || (follows(j) && picked.has(j.fork!.parent)));
}
