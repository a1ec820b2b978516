/**
 * Per-kernel profile of real training steps (src/train/trainer.ts) on one backend.
 *
 *   npx tsc && node dist/bench/profile.js [--preset small|seed] [--steps N] [--backend wasm] [--top N]
 *
 * Runs `steps` steps under tf.profile (the engine times every kernel it dispatches, forward and
 * backward; our composite wasm kernels count as one kernel each) and prints, per step, the
 * kernel time by kernel name and the biggest kernel+shape entries, next to the wall time. Wall
 * minus kernel time is JS: the op layer, the tape and gradient functions, the trainer itself.
 * Step 0 (XNNPACK/warm-up) is included; use several steps.
 */
import * as tf from '@tensorflow/tfjs';
import { performance } from 'node:perf_hooks';
import { selectBackend } from '../backend/select.js';
import type { PresetName } from '../config/presets.js';
import { benchConfig, benchData, fmt, table, timeTrainSteps } from './harness.js';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(name);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : fallback;
}

export interface KernelProfile {
  wallMs: number;
  kernelMs: number;
  steps: number;
  byName: { name: string; ms: number; calls: number }[];
  byShape: { key: string; ms: number; calls: number }[];
}

export async function profileSteps(preset: PresetName, steps: number): Promise<KernelProfile> {
  const cfg = benchConfig(preset, steps);
  const data = benchData(cfg);
  const backend = await selectBackend(arg('--backend', 'wasm'));
  // One unprofiled pass first: module and XNNPACK warm-up.
  await timeTrainSteps({ config: benchConfig(preset, 2), data: benchData(benchConfig(preset, 2)), backend });
  const t0 = performance.now();
  const info = await tf.profile(async () => {
    await timeTrainSteps({ config: cfg, data, backend });
  });
  const wallMs = performance.now() - t0;
  const byName = new Map<string, { ms: number; calls: number }>();
  const byShape = new Map<string, { ms: number; calls: number }>();
  let kernelMs = 0;
  const backendName = tf.getBackend();
  for (const k of info.kernels) {
    const ms = k.kernelTimeMs as number;
    // tf.customGrad ops are recorded under their scope's name and time the kernels they run,
    // which are recorded too: list them, but keep them out of the total.
    const wrapper = tf.getKernel(k.name, backendName) === undefined;
    if (!wrapper) kernelMs += ms;
    if (wrapper) k.name = `(customGrad op '${k.name}', incl. its kernels)`;
    const a = byName.get(k.name) ?? { ms: 0, calls: 0 };
    a.ms += ms;
    a.calls++;
    byName.set(k.name, a);
    const key = `${k.name} ${k.inputShapes.map((s) => `[${s ?? ''}]`).join('')}`;
    const b = byShape.get(key) ?? { ms: 0, calls: 0 };
    b.ms += ms;
    b.calls++;
    byShape.set(key, b);
  }
  const sortDesc = <T extends { ms: number }>(xs: T[]) => xs.sort((p, q) => q.ms - p.ms);
  return {
    wallMs,
    kernelMs,
    steps,
    byName: sortDesc([...byName].map(([name, v]) => ({ name, ...v }))),
    byShape: sortDesc([...byShape].map(([key, v]) => ({ key, ...v }))),
  };
}

export function printProfile(title: string, p: KernelProfile, top: number): void {
  const per = (x: number) => x / p.steps;
  console.log(`\n== ${title}: ${p.steps} steps, wall ${fmt(per(p.wallMs))} ms/step, kernels ${fmt(per(p.kernelMs))} ms/step (${fmt((100 * p.kernelMs) / p.wallMs, 0)}% of wall)`);
  console.log(
    table(
      ['kernel', 'ms/step', '%kern', 'calls/step'],
      p.byName.slice(0, top).map((k) => [k.name, fmt(per(k.ms)), fmt((100 * k.ms) / p.kernelMs), fmt(per(k.calls), 0)]),
    ),
  );
  console.log('');
  console.log(
    table(
      ['kernel [input shapes]', 'ms/step', 'calls/step'],
      p.byShape.slice(0, top).map((k) => [k.key.length > 90 ? k.key.slice(0, 87) + '...' : k.key, fmt(per(k.ms), 2), fmt(per(k.calls), 0)]),
    ),
  );
}

async function main(): Promise<void> {
  const presets = arg('--preset', 'small,seed').split(',') as PresetName[];
  const steps = Number(arg('--steps', '3'));
  const top = Number(arg('--top', '25'));
  for (const preset of presets) printProfile(`${preset} on ${arg('--backend', 'wasm')}`, await profileSteps(preset, steps), top);
}

if (process.argv[1]?.endsWith('profile.js')) {
  main().catch((e: unknown) => {
    console.error(e);
    process.exit(1);
  });
}
