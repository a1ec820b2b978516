/**
 * examples/slurm-array.sh on a real single-node Slurm cluster (Debian's slurm-wlm and munge,
 * started by test/slurm/cluster.sh under a temporary directory): an array of 2 tasks trains a tiny
 * suite in shards while one task is requeued mid-training; the merged runs must equal an unsharded
 * run of the same suite, and check must pass. Where Slurm is not installed the test is skipped and
 * says why (.ci/run installs it).
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readMetrics } from '../src/store/run-store.js';

const ROOT = join(import.meta.dirname, '..');
const CLI = join(ROOT, 'dist', 'cli', 'main.js');
const CLUSTER = join(ROOT, 'test', 'slurm', 'cluster.sh');
const TOOLS = ['slurmctld', 'slurmd', 'munged', 'sbatch', 'scontrol', 'squeue', 'sinfo'];
const missing = TOOLS.filter((t) => spawnSync('bash', ['-c', `command -v ${t}`]).status !== 0);
const asRoot = process.getuid?.() === 0;
const skipWhy = missing.length ? `not installed: ${missing.join(', ')} (apt-get install slurm-wlm munge)` : !asRoot ? 'needs root to run slurmctld and slurmd as the job user' : '';
if (skipWhy) console.warn(`SKIPPED slurm integration test: ${skipWhy}`);

const SUITE = `name: slurmy
preset: tiny
base: { lr: 0.05, epochs: 12, decay_epochs: [4, 8], decay_factors: [0.5, 0.1] }
seeds: 2
variants:
  relu: {}
  prelu: { model: { activation: prelu } }
thresholds: { postWindow: 2 }
expect:
  - { variant: relu, ratio: { min: 0.001, max: 1000 }, decay: 4 }
`;

describe.skipIf(skipWhy !== '')('Slurm: examples/slurm-array.sh on a single-node cluster', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sp-slurm-'));
  const state = join(dir, 'cluster');
  let env: NodeJS.ProcessEnv = {};
  afterAll(() => {
    spawnSync('bash', [CLUSTER, 'stop', state]);
  });

  it('trains the shards as an array, survives a requeue mid-training, and merges to the unsharded runs', async () => {
    // CPUs and memory that fit what the test asks per task (--cpus-per-task=1 --mem=1G).
    const up = spawnSync('bash', [CLUSTER, 'start', state, '2', '4096'], { encoding: 'utf8' });
    expect(up.status, up.stderr + up.stdout).toBe(0);
    env = { ...process.env, SLURM_CONF: join(state, 'slurm.conf'), SPIKEPROBE: `${process.execPath} ${CLI}`, SPIKEPROBE_BACKEND: 'wasm', SPIKEPROBE_THREADS: '1' };
    writeFileSync(join(dir, 'slurmy.yaml'), SUITE);
    const sb = spawn('sbatch', ['--wait', '--array=0-1', '--cpus-per-task=1', '--mem=1G', '-D', dir, '-o', join(dir, 'task-%A_%a.out'), '--open-mode=append', join(ROOT, 'examples', 'slurm-array.sh'), 'slurmy.yaml'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    sb.stdout.on('data', (d: Buffer) => (out += d.toString()));
    sb.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const done = new Promise<number>((r) => sb.on('close', (c) => r(c ?? 1)));
    // Requeue task 0 once its first run has finished two epochs (and before it is done).
    const shard0 = join(dir, 'runs', 'slurmy-shard-0');
    const t0 = Date.now();
    let requeued = false;
    while (!requeued) {
      if (Date.now() - t0 > 180_000) throw new Error(`task 0 did not start training: ${out}`);
      const runs = existsSync(shard0) ? readdirSync(shard0).filter((n) => existsSync(join(shard0, n, 'manifest.json'))) : [];
      const first = runs[0];
      if (first) {
        const man = JSON.parse(readFileSync(join(shard0, first, 'manifest.json'), 'utf8'));
        if (man.epochsDone >= 2 && man.status === 'running') {
          const job = /Submitted batch job (\d+)/.exec(out)?.[1];
          expect(job, out).toBeDefined();
          const rq = spawnSync('scontrol', ['requeue', `${job}_0`], { env, encoding: 'utf8' });
          expect(rq.status, rq.stderr).toBe(0);
          requeued = true;
        }
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    const code = await done;
    expect(code, out).toBe(0);
    const log0 = readdirSync(dir).filter((n) => /^task-\d+_0\.out$/.test(n)).map((n) => readFileSync(join(dir, n), 'utf8')).join('');
    expect(log0).toMatch(/DUE TO JOB REQUEUE/); // the task really was killed and started again
    const m = spawnSync(process.execPath, [CLI, 'merge', join(dir, 'runs', 'slurmy'), shard0, join(dir, 'runs', 'slurmy-shard-1')], { encoding: 'utf8', env });
    expect(m.status, m.stderr).toBe(0);
    const c = spawnSync(process.execPath, [CLI, 'check', join(dir, 'runs', 'slurmy')], { encoding: 'utf8', env });
    expect(c.status, c.stdout + c.stderr).toBe(0);
    const u = spawnSync(process.execPath, [CLI, 'run', join(dir, 'slurmy.yaml'), '--out', join(dir, 'unsharded'), '--no-report', '--quiet'], { encoding: 'utf8', env });
    expect(u.status, u.stderr).toBe(0);
    const strip = (d: string) => readMetrics(d).map((x) => ({ ...x, seconds: 0 }));
    for (const id of ['relu-s1', 'relu-s2', 'prelu-s1', 'prelu-s2']) {
      expect(strip(join(dir, 'runs', 'slurmy', id)), id).toEqual(strip(join(dir, 'unsharded', id)));
    }
  }, 300_000);
});
