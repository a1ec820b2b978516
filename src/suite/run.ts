import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { BackendInfo } from '../backend/index.js';
import type { DataSplits } from '../data/types.js';
import { makeInstruments } from '../instruments/index.js';
import { listRunDirs, readManifest, readMetrics, MANIFEST } from '../store/run-store.js';
import { prepareFork } from '../train/fork.js';
import { loadDataFor, train, type Progress, type TrainResult } from '../train/trainer.js';
import { writeFileAtomic } from '../util/atomic.js';
import { InputError } from '../util/errors.js';
import type { RunData } from '../analysis/types.js';
import type { Job, Suite } from './load.js';

/** What a runs directory remembers of the suite that produced it (for check/report on RUNS_DIR). */
export interface SuiteRecord {
  name: string;
  file: string;
  description?: string;
  variants: string[];
  seeds: number[];
  expect: Suite['expect'];
  thresholds: Suite['thresholds'];
  jobs: string[];
  /** Variant or fork -> role (absent in records written before roles existed). */
  roles?: Suite['roles'];
}

export const SUITE_RECORD = 'suite.json';

export function suiteRecordOf(s: Suite): SuiteRecord {
  return { name: s.name, file: s.file, description: s.description, variants: s.variants, seeds: s.seeds, expect: s.expect, thresholds: s.thresholds, jobs: s.jobs.map((j) => j.id), roles: s.roles };
}

export function writeSuiteRecord(outDir: string, s: Suite): void {
  writeFileAtomic(join(outDir, SUITE_RECORD), JSON.stringify(suiteRecordOf(s), null, 1) + '\n');
}

export function readSuiteRecord(dir: string): SuiteRecord | undefined {
  const p = join(dir, SUITE_RECORD);
  if (!existsSync(p)) return undefined;
  return JSON.parse(readFileSync(p, 'utf8')) as SuiteRecord;
}

export type JobState = 'missing' | 'done' | 'incomplete' | 'diverged' | 'failed';

export function jobState(outDir: string, job: Job): JobState {
  const d = join(outDir, job.id);
  if (!existsSync(join(d, MANIFEST))) return 'missing';
  const m = readManifest(d);
  if (m.status === 'done') return 'done';
  if (m.status === 'diverged') return 'diverged';
  if (m.status === 'failed') return 'failed';
  return 'incomplete'; // running (killed) or interrupted (stopped by a signal)
}

export interface SuiteRunEvents {
  onJobStart?: (job: Job, index: number, total: number, resumed: boolean) => void;
  onProgress?: (job: Job, p: Progress, stepsDone: number, stepsTotal: number) => void;
  onJobEnd?: (job: Job, r: TrainResult) => void;
  onSkip?: (job: Job, state: JobState) => void;
}

/**
 * Run the given jobs of a suite into outDir/<variant>-s<seed>. Finished (and diverged) runs are
 * skipped; interrupted ones are continued with `resume`, else refused.
 */
/**
 * Everything that can refuse a suite's jobs before any training: interrupted runs without
 * `resume`, and data that does not load (one InputError naming the suite file). Returns the
 * states, the jobs to train and their data.
 */
export function preflightJobs(suite: Suite, jobs: Job[], outDir: string, resume: boolean): { states: JobState[]; todo: Job[]; datas: DataSplits[] } {
  const out = resolve(outDir);
  const states = jobs.map((j) => jobState(out, j));
  states.forEach((s, i) => {
    if ((s === 'incomplete' || s === 'failed') && !resume) {
      throw new InputError(`run ${jobs[i]!.id} is ${s}: continue it with --resume`, join(out, jobs[i]!.id));
    }
  });
  const dataCache = new Map<string, DataSplits>();
  const todo = jobs.filter((_, i) => states[i] !== 'done' && states[i] !== 'diverged');
  const datas: DataSplits[] = [];
  for (const j of todo) {
    const key = JSON.stringify(j.config.data);
    let d = dataCache.get(key);
    if (!d) {
      try {
        d = loadDataFor(j.config, suite.baseDir);
      } catch (e) {
        if (e instanceof InputError) throw new InputError(`variant ${j.variant}: data: ${e.message}`, suite.file);
        throw e;
      }
      dataCache.set(key, d);
    }
    datas.push(d);
  }
  return { states, todo, datas };
}

export interface RunJobsOptions {
  /** Polled between steps: true stops the current run at a safe point and trains no further run. */
  shouldStop?: () => boolean;
  breakLock?: boolean;
}

export async function runJobs(suite: Suite, jobs: Job[], outDir: string, backend: BackendInfo, resume: boolean, ev: SuiteRunEvents = {}, ro: RunJobsOptions = {}): Promise<void> {
  const out = resolve(outDir);
  // Refuse before training anything.
  const { states, todo, datas } = preflightJobs(suite, jobs, out, resume);
  writeSuiteRecord(out, suite);
  const stepsOf = (j: Job, d: DataSplits) => j.config.epochs * Math.max(1, Math.ceil(d.train.n / j.config.batch_size));
  let stepsDone = 0;
  let stepsTotal = 0;
  todo.forEach((j, k) => (stepsTotal += stepsOf(j, datas[k]!)));
  jobs.forEach((j, i) => {
    if (states[i] === 'done' || states[i] === 'diverged') ev.onSkip?.(j, states[i]!);
  });
  for (const [k, j] of todo.entries()) {
    if (ro.shouldStop?.()) break;
    const d = datas[k]!;
    if (j.fork && jobState(out, j) === 'missing') prepareFork(join(out, j.fork.parent), join(out, j.id), j.fork.at, j.fork.set, j.id, j.variant);
    const resumed = jobState(out, j) !== 'missing';
    ev.onJobStart?.(j, k, todo.length, resumed);
    const perEpoch = Math.max(1, Math.ceil(d.train.n / j.config.batch_size));
    const base = stepsDone;
    const r = await train({
      config: j.config,
      backend,
      baseDir: suite.baseDir,
      outDir: join(out, j.id),
      name: j.id,
      variant: j.variant,
      suite: suite.name,
      data: d,
      instruments: makeInstruments(j.config.instruments.enable),
      resume: resumed,
      onProgress: (p) => ev.onProgress?.(j, p, base + p.epoch * perEpoch + p.iter, stepsTotal),
      shouldStop: ro.shouldStop,
      breakLock: ro.breakLock,
    });
    stepsDone = base + stepsOf(j, d);
    ev.onJobEnd?.(j, r);
  }
}

/** Load every run under a directory (or the run directory itself) as plain data. */
export function loadRuns(dir: string): RunData[] {
  return listRunDirs(dir).map((d) => ({ dir: d, manifest: readManifest(d), records: readMetrics(d) }));
}
