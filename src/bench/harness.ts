/**
 * Shared helpers of the training benches: a synthetic-data config per preset, and per-step wall
 * times of the REAL trainer (src/train/trainer.ts `train()`), taken from its onProgress callback,
 * so that the bench measures exactly the step a run executes (forward, cross-entropy + center
 * loss, tf.variableGrads, centers update, instruments, SGD, BN running stats, scalar read-back).
 */
import { performance } from 'node:perf_hooks';
import type { BackendInfo } from '../backend/select.js';
import { resolveConfig } from '../config/load.js';
import type { PresetName } from '../config/presets.js';
import type { Config } from '../config/schema.js';
import type { DataSplits } from '../data/types.js';
import { makeInstruments } from '../instruments/index.js';
import { loadDataFor, train } from '../train/trainer.js';

export const BENCH_CLASSES = 8;

/** The preset's model and batch on synthetic 28x28x1 data of exactly `steps` full batches. */
/** The benchmarked shapes: the presets, and 'fer' (the FER-like regime: ResNet18 layout at width 16, 48 px). */
export type BenchModel = PresetName | 'fer';
export const FER_BENCH = { model: { blocks: [2, 2, 2, 2], widths: [16, 32, 64, 128], stem: 'imagenet' }, batch_size: 128, side: 48 };

export function benchConfig(shape: BenchModel, steps: number, extra: Record<string, unknown> = {}): Config {
  const preset: PresetName = shape === 'fer' ? 'small' : shape;
  const side = shape === 'fer' ? FER_BENCH.side : 28;
  const raw = { lr: 0.05, momentum: 0.9, weight_decay: 5e-4, alpha: 0.5, lamb: 0.01, epochs: 1, ...(shape === 'fer' ? { model: FER_BENCH.model, batch_size: FER_BENCH.batch_size } : {}), ...extra };
  const base = resolveConfig(raw, preset);
  const perClass = Math.ceil((steps * base.batch_size) / BENCH_CLASSES);
  return resolveConfig(
    {
      ...raw,
      data: { source: 'synthetic', classes: BENCH_CLASSES, train_per_class: perClass, valid_per_class: 0, test_per_class: 0, synthetic: { height: side, width: side, noise: 0.3 }, ...((extra.data as object | undefined) ?? {}) },
    },
    preset,
  );
}

export function benchData(cfg: Config): DataSplits {
  return loadDataFor(cfg);
}

export interface StepTimes {
  /** Wall ms of each measured step (the first `warmup` steps excluded). */
  ms: number[];
  /**
   * CPU ms (user + system) of this process for each measured step. The training step is
   * single-threaded, so on an idle machine this equals the wall time; on a shared machine it
   * leaves out the time the process waited for a core.
   */
  cpuMs: number[];
  batch: number;
}

function cpuNow(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

/**
 * Run `train()` for one epoch over `data` and return the wall time of each step after the first
 * `warmup`. With warmup 0, step 0 is timed from the train() call (so it includes creating the
 * model and the first batch: only for backends too slow for more than one step).
 */
export async function timeTrainSteps(opts: {
  config: Config;
  data: DataSplits;
  backend: BackendInfo;
  instruments?: 'default' | 'all' | 'none';
  /** Steps at the start that are not reported (default 1). */
  warmup?: number;
  /** Called with the wall ms of every instrument batch() call (instruments are wrapped to time them). */
  wrap?: (ms: number) => void;
}): Promise<StepTimes> {
  const warmup = Math.max(0, opts.warmup ?? 1);
  const marks: number[] = [];
  const cpuMarks: number[] = [];
  const start = performance.now();
  const cpuStart = cpuNow();
  await train({
    config: opts.config,
    backend: opts.backend,
    data: opts.data,
    instruments: makeInstruments(opts.instruments ?? 'none').map((inst) => {
      const wrap = opts.wrap;
      if (!wrap) return inst;
      const batch = inst.batch.bind(inst);
      inst.batch = (v) => {
        const t = performance.now();
        const r = batch(v);
        wrap(performance.now() - t);
        return r;
      };
      return inst;
    }),
    maxEpochs: 1,
    onProgress: () => {
      marks.push(performance.now());
      cpuMarks.push(cpuNow());
    },
  });
  const ms: number[] = [];
  const cpuMs: number[] = [];
  for (let i = warmup; i < marks.length; i++) {
    ms.push(marks[i]! - (i === 0 ? start : marks[i - 1]!));
    cpuMs.push(cpuMarks[i]! - (i === 0 ? cpuStart : cpuMarks[i - 1]!));
  }
  return { ms, cpuMs, batch: opts.config.batch_size };
}

export function median(a: number[]): number {
  if (a.length === 0) return NaN;
  const s = [...a].sort((x, y) => x - y);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

export function sum(a: number[]): number {
  return a.reduce((x, y) => x + y, 0);
}

/** Fixed-width table for the terminal. */
export function table(head: string[], rows: (string | number)[][]): string {
  const cells = [head, ...rows.map((r) => r.map((c) => String(c)))];
  const w = head.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]) => r.map((c, i) => (i === 0 ? c.padEnd(w[i]!) : c.padStart(w[i]!))).join('  ');
  return [line(cells[0]!), w.map((x) => '-'.repeat(x)).join('  '), ...cells.slice(1).map(line)].join('\n');
}

export function fmt(x: number, digits = 1): string {
  return Number.isFinite(x) ? x.toFixed(digits) : String(x);
}
