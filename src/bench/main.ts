/**
 * `npm run bench`: the project's speed figures, measured in one process.
 *
 *   node dist/bench/main.js [--small-steps N] [--seed-steps N] [--rounds N] [--cpu-batch N] [--no-cpu] [--no-report]
 *
 *  (a) training images/second of the real trainer step (src/train/trainer.ts train(), synthetic
 *      28x28x1 data, 8 classes) per backend: wasm for the 'small' and 'seed' presets (batch 128);
 *      cpu for 'small' only, at a small batch and one step (it is several hundred times slower);
 *      the native tfjs-node backends as selectBackend('auto') found them;
 *  (b) the step-time overhead of the default and of all instruments against none: interleaved
 *      rounds (none/default/all, order rotated per round) of the small preset on wasm with every
 *      step recorded (instruments.every = 1), ratio of median step times;
 *  (c) the report bench (src/bench/report.ts, spawned: it runs on import): build time and file
 *      size for 4 runs x 50k points.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import { convThreads } from '../backend/compiled.js';
import { selectBackend, type BackendInfo } from '../backend/select.js';
import type { PresetName } from '../config/presets.js';
import { benchConfig, benchData, fmt, median, table, timeTrainSteps } from './harness.js';

const argv = process.argv.slice(2);
function num(name: string, fallback: number): number {
  const i = argv.indexOf(name);
  return i >= 0 && argv[i + 1] !== undefined ? Number(argv[i + 1]) : fallback;
}
const has = (name: string) => argv.includes(name);

interface Row {
  backend: string;
  model: string;
  batch: number;
  steps: number;
  msPerStep: number;
  cpuMsPerStep: number;
}

async function throughput(backend: BackendInfo, preset: PresetName, steps: number, warmup: number, batch?: number): Promise<Row> {
  const extra = batch ? { batch_size: batch } : {};
  const cfg = benchConfig(preset, steps + warmup, extra);
  const data = benchData(cfg);
  const r = await timeTrainSteps({ config: cfg, data, backend, warmup });
  return { backend: backend.name, model: preset, batch: cfg.batch_size, steps: r.ms.length, msPerStep: median(r.ms), cpuMsPerStep: median(r.cpuMs) };
}

const KINDS = ['none', 'default', 'all'] as const;
type Kind = (typeof KINDS)[number];

/**
 * Interleaved rounds; per variant the median CPU time per step (the step is single-threaded, and
 * CPU time leaves out the waits for a core on a shared machine), plus the time spent inside the
 * instruments' batch() calls measured directly (a noise-free lower bound of the overhead).
 */
async function instrumentOverhead(
  backend: BackendInfo,
  rounds: number,
  steps: number,
): Promise<{ cpu: Record<Kind, number>; wall: Record<Kind, number>; direct: Record<Kind, number>; paired: Record<Kind, number>; n: number }> {
  // 20% flipped labels, so that the memorisation instrument (default) does its work every step.
  const cfg = benchConfig('small', steps + 1, { instruments: { every: 1 }, data: { label_noise: 0.2 } });
  const data = benchData(cfg);
  const cpu: Record<Kind, number[]> = { none: [], default: [], all: [] };
  const wall: Record<Kind, number[]> = { none: [], default: [], all: [] };
  const direct: Record<Kind, number> = { none: 0, default: 0, all: 0 };
  const perRound: Record<Kind, number[]> = { none: [], default: [], all: [] };
  await timeTrainSteps({ config: cfg, data, backend, instruments: 'all' }); // warm-up: XNNPACK, JIT
  for (let r = 0; r < rounds; r++) {
    for (let k = 0; k < KINDS.length; k++) {
      const kind = KINDS[(k + r) % KINDS.length]!;
      const t = await timeTrainSteps({
        config: cfg,
        data,
        backend,
        instruments: kind,
        wrap: (ms) => {
          direct[kind] += ms;
        },
      });
      cpu[kind].push(...t.cpuMs);
      wall[kind].push(...t.ms);
      perRound[kind].push(median(t.cpuMs));
    }
  }
  // Paired per round (the machine's load drifts between rounds more than within one).
  const paired = Object.fromEntries(KINDS.map((k) => [k, median(perRound[k].map((v, r) => v / perRound.none[r]!))])) as Record<Kind, number>;
  const med = (x: Record<Kind, number[]>) => Object.fromEntries(KINDS.map((k) => [k, median(x[k])])) as Record<Kind, number>;
  const stepsPerKind = rounds * (steps + 1); // every step of a run calls the instruments
  const perStep = Object.fromEntries(KINDS.map((k) => [k, direct[k] / stepsPerKind])) as Record<Kind, number>;
  return { cpu: med(cpu), wall: med(wall), direct: perStep, paired, n: cpu.none.length };
}

function reportBench(): { lines: string[]; ok: boolean } {
  const here = dirname(fileURLToPath(import.meta.url));
  const out = mkdtempSync(join(tmpdir(), 'spikeprobe-bench-'));
  try {
    const r = spawnSync(process.execPath, [join(here, 'report.js'), '--out', out, '--runs', '4', '--points', '50000'], { encoding: 'utf8' });
    const lines = (r.stdout ?? '').split('\n').filter((l) => /build/.test(l) || /^generated/.test(l));
    if (r.status !== 0) return { lines: [...lines, `report bench failed (exit ${r.status}): ${(r.stderr ?? '').split('\n')[0]}`], ok: false };
    return { lines: lines.map((l) => l.replace(/ -> \S+$/, '')), ok: true };
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const t0 = performance.now();
  const auto = await selectBackend('auto');
  console.log(`spikeprobe bench (node ${process.version}, ${process.platform}/${process.arch})`);
  console.log(`selectBackend('auto') -> ${auto.name} (${auto.provider})`);
  const native = ['node-gpu', 'node'].map((c) => {
    const s = auto.skipped.find((k) => k.choice === c);
    return s ? `${c}: not available (${s.reason.slice(0, 100)})` : `${c}: ${auto.provider.includes(c === 'node' ? 'tfjs-node' : 'tfjs-node-gpu') ? 'in use' : 'not tried'}`;
  });
  for (const n of native) console.log(`  ${n}`);

  // (a) throughput
  const rows: Row[] = [];
  const wasm = await selectBackend('wasm');
  console.log(`wasm: conv kernels ${wasm.convBuild ?? 'xnnpack'} on ${convThreads()} thread(s) (SPIKEPROBE_THREADS; other ops on 1), heap ${wasm.heap ?? '?'}; kernels added: ${wasm.shims.length}`);
  rows.push(await throughput(wasm, 'small', num('--small-steps', 8), 1));
  rows.push(await throughput(wasm, 'seed', num('--seed-steps', 3), 1));
  if (!has('--no-cpu')) {
    const cpu = await selectBackend('cpu');
    rows.push(await throughput(cpu, 'small', 1, 0, num('--cpu-batch', 8)));
    await selectBackend('wasm');
  }
  console.log('\n(a) training throughput, real trainer step (forward, CE + center loss, backward, centers, SGD, BN stats)');
  console.log(
    table(
      ['backend', 'model', 'batch', 'steps', 'ms/step', 'img/s', 'cpu ms/step', 'img/s (cpu time)'],
      [
        ...rows.map((r) => [r.backend, r.model, r.batch, r.steps, fmt(r.msPerStep), fmt((r.batch * 1000) / r.msPerStep), fmt(r.cpuMsPerStep), fmt((r.batch * 1000) / r.cpuMsPerStep)]),
        ...native.map((n) => [n.split(':')[0]!, 'small/seed', '-', '-', '-', 'not available', '-', '-']),
      ],
    ),
  );
  if (rows.some((r) => r.backend === 'cpu')) console.log('  (cpu: one step at a small batch, timed from the train() call; img/s scales about linearly with the batch there)');

  // (b) instrument overhead
  const rounds = num('--rounds', 5);
  const ov = await instrumentOverhead(wasm, rounds, num('--overhead-steps', 4));
  const ratio = (k: Kind) => ov.paired[k];
  const directRatio = (k: Kind) => 1 + ov.direct[k] / ov.cpu.none;
  const target: Record<Kind, number> = { none: 1, default: 1.03, all: 1.15 };
  console.log(`\n(b) instrument overhead: small preset (batch 128) on wasm, every step recorded, ${rounds} interleaved rounds, ${ov.n} steps per variant`);
  console.log(
    table(
      ['instruments', 'wall ms/step', 'cpu ms/step', 'ratio (cpu time)', 'instrument ms/step', 'ratio (direct)', 'target', 'ok'],
      KINDS.map((k) => [
        k,
        fmt(ov.wall[k]),
        fmt(ov.cpu[k]),
        ratio(k).toFixed(3),
        fmt(ov.direct[k], 2),
        directRatio(k).toFixed(3),
        k === 'none' ? '' : `<= ${target[k].toFixed(2)}`,
        k === 'none' ? '' : ratio(k) <= target[k] ? 'yes' : directRatio(k) <= target[k] ? 'yes (direct; measured within noise)' : 'NO',
      ]),
    ),
  );
  console.log(
    "  ratio (cpu time): per round, median CPU ms/step vs none's in the same round, median over rounds; ratio (direct): 1 + time inside the instruments' batch() calls / none's CPU ms/step",
  );

  // (c) report
  if (!has('--no-report')) {
    console.log('\n(c) report bench: 4 runs x 50,000 step records (src/bench/report.ts)');
    for (const l of reportBench().lines) console.log(`  ${l}`);
  }
  console.log(`\nbench total ${((performance.now() - t0) / 1000).toFixed(1)} s`);
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
