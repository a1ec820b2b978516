/**
 * `npm run bench:train`: the same model, batch and training step in TensorFlow.js and PyTorch,
 * interleaved in rounds.
 *
 *   node dist/bench/train.js [--rounds N] [--small-steps N] [--fer-steps N] [--seed-steps N]
 *                            [--small-batch N] [--models small,fer,seed] [--threads 1,2] [--cpu]
 *                            [--python PATH]
 *
 * Models: small (16/32/64 at 28 px), fer (the FER-like regime's ResNet18 layout at width 16 on
 * 48 px images, the investigation's base run), seed (the seed's ResNet18, 512-d, 28 px).
 * tfjs: the real trainer step (src/train/trainer.ts train(), synthetic 1-channel data, 8 classes) on
 * wasm with the conv kernels on 1 thread and on 2 (the conv thread pool, src/backend/pool.ts),
 * plus cpu with --cpu (hundreds of times slower: one step).
 * PyTorch: bench/torch_step.py (same ResNet, BN, CE + the seed's center loss, SGD momentum 0.9
 * wd 5e-4, centers SGD, the three scalars read back per step) at the same thread counts. Each
 * round runs every engine once per model, the order rotated per round; the figure per engine is
 * the median step time over all rounds' measured steps (the first step of every run is warm-up
 * and not counted). Ratios compare tfjs and PyTorch at the same thread count.
 *
 * --procs P (default 2 where there are 2+ cores; 0: off) adds 'P processes x 1 thread' for both:
 * P copies of the same step run at once in separate processes (how `spikeprobe run --jobs P`
 * uses the cores), and the figure is their summed images/second.
 */
import { spawn, spawnSync } from 'node:child_process';
import { availableParallelism, loadavg } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { selectBackend, type BackendInfo } from '../backend/select.js';
import { convThreads, setConvThreads } from '../backend/compiled.js';
import { benchConfig, benchData, fmt, median, table, timeTrainSteps, type BenchModel } from './harness.js';

const argv = process.argv.slice(2);
function opt(name: string, fallback: string): string {
  const i = argv.indexOf(name);
  return i >= 0 && argv[i + 1] !== undefined ? argv[i + 1]! : fallback;
}
const num = (name: string, fallback: number) => Number(opt(name, String(fallback)));

const here = dirname(fileURLToPath(import.meta.url));
const TORCH_SCRIPT = resolve(here, '..', '..', 'bench', 'torch_step.py');
const PYTHON = opt('--python', '/usr/bin/python3');

interface TorchResult {
  torch: string;
  threads: number;
  step_ms: number[];
}

function torchVersion(): string | undefined {
  const r = spawnSync(PYTHON, ['-c', 'import torch; print(torch.__version__)'], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : undefined;
}

function runTorch(preset: BenchModel, batch: number, steps: number, threads: number): TorchResult {
  const args = [TORCH_SCRIPT, '--preset', preset, '--batch', String(batch), '--steps', String(steps), '--warmup', '1', '--threads', String(threads)];
  const r = spawnSync(PYTHON, args, { encoding: 'utf8', env: { ...process.env, OMP_NUM_THREADS: String(threads) } });
  if (r.status !== 0) throw new Error(`torch_step.py failed (exit ${r.status}): ${(r.stderr ?? '').trim().split('\n').pop()}`);
  const line = r.stdout.trim().split('\n').pop()!;
  return JSON.parse(line) as TorchResult;
}

type Engine = string; // 'wasm-<n>t' | 'tfjs-cpu' | 'torch-<n>t' | 'wasm-<P>x1t' | 'torch-<P>x1t'

/** Run `n` copies of a command at once; each prints a JSON line with step_ms last. */
async function concurrently(n: number, cmd: string, args: string[], env: NodeJS.ProcessEnv): Promise<number[][]> {
  return Promise.all(
    Array.from({ length: n }, () =>
      new Promise<number[]>((res, rej) => {
        const c = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
        let out = '';
        let err = '';
        c.stdout.on('data', (d: Buffer) => (out += d.toString()));
        c.stderr.on('data', (d: Buffer) => (err += d.toString()));
        c.on('close', (code) => {
          if (code !== 0) return rej(new Error(`${cmd} ${args.join(' ')} failed (exit ${code}): ${err.trim().split('\n').pop()}`));
          res((JSON.parse(out.trim().split('\n').pop()!) as { step_ms: number[] }).step_ms);
        });
      }),
    ),
  );
}

async function main(): Promise<void> {
  const child = argv.indexOf('--child-wasm');
  if (child >= 0) {
    // One process of a 'P x 1 thread' engine: time the steps, print them as JSON.
    const [preset, n, b] = [argv[child + 1] as BenchModel, Number(argv[child + 2]), Number(argv[child + 3])];
    const backend = await selectBackend('wasm');
    const cfg = benchConfig(preset, n + 1, { batch_size: b });
    const ms = (await timeTrainSteps({ config: cfg, data: benchData(cfg), backend })).ms;
    process.stdout.write(JSON.stringify({ step_ms: ms }) + '\n');
    return;
  }
  const rounds = num('--rounds', 3);
  const models = opt('--models', 'small,fer,seed').split(',') as BenchModel[];
  const steps: Record<string, number> = { small: num('--small-steps', 5), seed: num('--seed-steps', 3), tiny: num('--small-steps', 5), fer: num('--fer-steps', 4) };
  const batch: Record<string, number> = { small: num('--small-batch', 128), seed: 128, tiny: 32, fer: 128 };
  const withCpu = argv.includes('--cpu');
  const threads = opt('--threads', '1,2').split(',').map(Number).filter((n) => Number.isInteger(n) && n >= 1);
  const procs = num('--procs', availableParallelism() >= 2 ? 2 : 0);

  const auto = await selectBackend('auto');
  const wasm = await selectBackend('wasm');
  const tv = torchVersion();
  console.log(`spikeprobe train bench: tfjs ${auto.name === 'wasm' ? 'wasm (native tfjs-node backends not available)' : auto.name}, node ${process.version}`);
  if (!tv) {
    console.log(`NOTICE: PyTorch not importable with ${PYTHON} (python3 -c 'import torch' failed): PyTorch columns skipped.`);
  } else {
    console.log(`PyTorch ${tv} via ${PYTHON} (${TORCH_SCRIPT})`);
  }
  console.log(`rounds ${rounds}; load average at start ${loadavg().map((l) => l.toFixed(2)).join(' ')} (${'2 cores'}; shared machines inflate every column alike within a round)`);

  const times: Record<string, Record<Engine, number[]>> = {};
  const multi = procs >= 2 ? [`wasm-${procs}x1t`, ...(tv ? [`torch-${procs}x1t`] : [])] : [];
  const engines: Engine[] = [...threads.map((n) => `wasm-${n}t`), ...(withCpu ? ['tfjs-cpu'] : []), ...(tv ? threads.map((n) => `torch-${n}t`) : []), ...multi];
  console.log(`threads: ${threads.join(', ')} (conv kernels: ${wasm.convBuild ?? 'n/a'}, heap ${wasm.heap ?? '?'}; convs, BatchNorm passes, SGD steps and MaxPoolGrad on the pool, other tfjs ops on the calling thread)`);
  const tfjsRun = async (backend: BackendInfo, preset: BenchModel, n: number, b: number) => {
    const cfg = benchConfig(preset, n + 1, { batch_size: b });
    return (await timeTrainSteps({ config: cfg, data: benchData(cfg), backend })).ms;
  };
  for (let r = 0; r < rounds; r++) {
    for (const preset of models) {
      const t = (times[preset] ??= Object.fromEntries(engines.map((e) => [e, [] as number[]])));
      const order = engines.map((_, i) => engines[(i + r) % engines.length]!);
      for (const e of order) {
        if (e.endsWith('x1t')) {
          // P processes at once, 1 thread each: effective step time = each one's / P.
          const runs = e.startsWith('wasm-')
            ? await concurrently(procs, process.execPath, [fileURLToPath(import.meta.url), '--child-wasm', preset, String(steps[preset]!), String(batch[preset]!)], { ...process.env, SPIKEPROBE_THREADS: '1' })
            : await concurrently(procs, PYTHON, [TORCH_SCRIPT, '--preset', preset, '--batch', String(batch[preset]!), '--steps', String(steps[preset]!), '--warmup', '1', '--threads', '1'], { ...process.env, OMP_NUM_THREADS: '1' });
          for (const ms of runs) t[e]!.push(...ms.map((m) => m / procs));
        } else if (e.startsWith('wasm-')) {
          await selectBackend('wasm');
          setConvThreads(parseInt(e.slice(5), 10));
          if (convThreads() !== parseInt(e.slice(5), 10)) throw new Error(`could not start ${e}`);
          t[e]!.push(...(await tfjsRun(wasm, preset, steps[preset]!, batch[preset]!)));
        } else if (e === 'tfjs-cpu') {
          if (r > 0 || preset !== models[0]) continue; // one step, once: it takes minutes
          const cpu = await selectBackend('cpu');
          const cfg = benchConfig(preset, 1, { batch_size: 8 });
          const ms = (await timeTrainSteps({ config: cfg, data: benchData(cfg), backend: cpu, warmup: 0 })).ms;
          t[e]!.push(...ms.map((m) => (m * batch[preset]!) / 8)); // scaled to the batch (cpu kernels are linear in it)
          await selectBackend('wasm');
        } else {
          const res = runTorch(preset, batch[preset]!, steps[preset]!, parseInt(e.slice(6), 10));
          t[e]!.push(...res.step_ms);
        }
      }
      process.stdout.write(`  round ${r + 1}/${rounds} ${preset}: ${order.map((e) => `${e} ${fmt(median(t[e]!), 0)} ms`).join(', ')}\n`);
    }
  }

  const rows: (string | number)[][] = [];
  for (const preset of models) {
    const t = times[preset]!;
    const ips = (e: Engine) => (t[e]?.length ? (batch[preset]! * 1000) / median(t[e]!) : NaN);
    for (const n of threads) {
      const row: (string | number)[] = [preset, batch[preset]!, n, fmt(median(t[`wasm-${n}t`]!)), fmt(ips(`wasm-${n}t`))];
      if (withCpu) row.push(n === 1 ? fmt(ips('tfjs-cpu'), 2) : '');
      if (tv) row.push(fmt(median(t[`torch-${n}t`]!)), fmt(ips(`torch-${n}t`)), (ips(`wasm-${n}t`) / ips(`torch-${n}t`)).toFixed(3));
      rows.push(row);
    }
    if (procs >= 2) {
      const w = `wasm-${procs}x1t`;
      const row: (string | number)[] = [preset, batch[preset]!, `${procs} procs x 1`, fmt(median(t[w]!)), fmt(ips(w))];
      if (withCpu) row.push('');
      if (tv) row.push(fmt(median(t[`torch-${procs}x1t`]!)), fmt(ips(`torch-${procs}x1t`)), (ips(w) / ips(`torch-${procs}x1t`)).toFixed(3));
      rows.push(row);
    }
  }
  const head = ['model', 'batch', 'threads', 'wasm ms/step', 'wasm img/s'];
  if (withCpu) head.push('cpu img/s*');
  if (tv) head.push('torch ms/step', 'torch img/s', 'tfjs/torch');
  console.log('\nimages/second, median step over all rounds; tfjs/torch at the same thread count');
  if (procs >= 2) console.log(`  '${procs} procs x 1': ${procs} processes at once, 1 thread each; ms/step is each one's divided by ${procs}, img/s their sum`);
  console.log(table(head, rows));
  if (withCpu) console.log('  * cpu: one step at batch 8, step time scaled to the batch');
  console.log(`load average at end ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
