import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { forkEffects } from '../src/analysis/forks.js';
import { loadSuite, shardJobs } from '../src/suite/load.js';
import { childShare } from '../src/cli/parallel.js';
import { readManifest, readMetrics } from '../src/store/run-store.js';
import type { MetricRecord } from '../src/store/types.js';

const CLI = join(import.meta.dirname, '..', 'dist', 'cli', 'main.js');

function cli(args: string[]) {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env: { ...process.env, SPIKEPROBE_BACKEND: 'wasm' } });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

const strip = (rs: MetricRecord[]) => rs.map((r) => ({ ...r, seconds: 0 }));
const BASE = 'lr: 0.05\nmomentum: 0.9\nweight_decay: 0.0005\nalpha: 0.5\nlamb: 0.01\n';

describe('spikeprobe fork: a twin from the checkpoint before a decay', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sp-fork-'));
  const parentCfg = join(dir, 'parent.yaml');
  writeFileSync(parentCfg, BASE + 'epochs: 7\ndecay_epochs: [2, 4]\ndecay_factors: [0.5, 0.1]\n');
  const freshCfg = join(dir, 'fresh.yaml');
  writeFileSync(freshCfg, BASE + 'epochs: 7\ndecay_epochs: [2]\ndecay_factors: [0.5]\n');

  it('a twin that drops the decay at 4 equals, record for record, a run trained from scratch without it', () => {
    const p = cli(['train', '--config', parentCfg, '--preset', 'tiny', '--out', dir, '--name', 'parent', '--quiet']);
    expect(p.code, p.err).toBe(0);
    // The parent keeps the checkpoint at the end of the epoch before each decay.
    expect(existsSync(join(dir, 'parent', 'checkpoints', 'after-epoch-1.bin'))).toBe(true);
    expect(existsSync(join(dir, 'parent', 'checkpoints', 'after-epoch-3.bin'))).toBe(true);
    const f = cli(['fork', join(dir, 'parent'), '--at', '4', '--set', 'decay_epochs=[2]', '--set', 'decay_factors=[0.5]', '--name', 'twin', '--quiet']);
    expect(f.code, f.err).toBe(0);
    const fresh = cli(['train', '--config', freshCfg, '--preset', 'tiny', '--out', dir, '--name', 'fresh', '--quiet']);
    expect(fresh.code, fresh.err).toBe(0);
    const twin = readMetrics(join(dir, 'twin'));
    const scratch = readMetrics(join(dir, 'fresh'));
    expect(twin.length).toBe(scratch.length);
    expect(strip(twin)).toEqual(strip(scratch));
    // Not a copy of the parent: from epoch 4 on the LR differs, and so do the numbers.
    const parent = readMetrics(join(dir, 'parent'));
    const at = (rs: MetricRecord[], e: number) => rs.find((r) => r.kind === 'epoch' && r.split === 'train' && r.epoch === e)!;
    expect(at(twin, 4).lr).toBe(0.025);
    expect(at(parent, 4).lr).toBeCloseTo(0.005, 12);
    expect(at(twin, 5).center).not.toBe(at(parent, 5).center);
    expect(at(twin, 3)).toEqual(at(parent, 3));
    const m = readManifest(join(dir, 'twin'));
    expect(m.fork).toMatchObject({ parent: 'parent', at: 4, set: { decay_epochs: [2], decay_factors: [0.5] } });
    expect(m.decayEpochs).toEqual([2]);
    expect(m.status).toBe('done');
    // The analysis pairs the twin with its parent: parent minus twin per seed, then across seeds.
    const runs = ['parent', 'twin'].map((n) => ({ dir: join(dir, n), manifest: readManifest(join(dir, n)), records: readMetrics(join(dir, n)) }));
    const eff = forkEffects(runs, 3);
    expect(eff).toHaveLength(1);
    const cl = eff[0]!.metrics.find((x) => x.split === 'train' && x.metric === 'center')!;
    const win = (rs: MetricRecord[]) => [4, 5, 6].map((e) => at(rs, e).center as number).reduce((a, b) => a + b) / 3;
    expect(cl.diff.mean).toBeCloseTo(win(parent) - win(twin), 10);
    expect(cl.perSeed).toHaveLength(1);
  });

  it('refuses keys a fork cannot change, schedules that reach before D, and fork points without a checkpoint (exit 2, one line)', () => {
    const cases: [string[], RegExp][] = [
      [['--at', '4', '--set', 'lr=0.1'], /'lr' cannot be changed in a fork \(allowed: lamb, alpha/],
      [['--at', '4', '--set', 'label_noise=0.3'], /label_noise can only be set to 0/],
      [['--at', '4', '--set', 'decay_epochs=[1]', '--set', 'decay_factors=[0.5]'], /changes the LR of epoch 1, before the fork at 4/],
      [['--at', '3', '--set', 'lamb=0'], /no checkpoint kept at the end of epoch 2 \(forks can start at: 2, 4/],
      [['--at', '4', '--set', 'lamb=0', '--name', '../x'], /--name: '..\/x' is not a run name/],
      [['--set', 'lamb=0'], /--at/],
    ];
    for (const [args, re] of cases) {
      const r = cli(['fork', join(dir, 'parent'), ...args, '--quiet']);
      expect(r.code, r.err).toBe(2);
      expect(r.err.trim().split('\n')).toHaveLength(1);
      expect(r.err).toMatch(re);
    }
  });

  it('a killed fork resumes to the numbers of an uninterrupted one', async () => {
    const cfg = join(dir, 'long.yaml');
    writeFileSync(cfg, BASE + 'epochs: 14\ndecay_epochs: [2, 4]\ndecay_factors: [0.5, 0.1]\n');
    expect(cli(['train', '--config', cfg, '--preset', 'tiny', '--out', dir, '--name', 'lp', '--quiet']).code).toBe(0);
    const args = (name: string) => ['fork', join(dir, 'lp'), '--at', '2', '--set', 'lamb=0.1', '--name', name, '--quiet'];
    expect(cli(args('full')).code).toBe(0);
    const runDir = join(dir, 'killed');
    const child = spawn(process.execPath, [CLI, ...args('killed')], { env: { ...process.env, SPIKEPROBE_BACKEND: 'wasm' }, stdio: 'ignore' });
    const exited = new Promise<void>((r) => child.on('exit', () => r()));
    const t0 = Date.now();
    for (;;) {
      const recs = existsSync(join(runDir, 'manifest.json')) ? readMetrics(runDir) : [];
      if (recs.filter((r) => r.kind === 'epoch' && r.split === 'test').length >= 4) break;
      if (Date.now() - t0 > 120_000) throw new Error('fork did not progress');
      await new Promise((r) => setTimeout(r, 20));
    }
    child.kill('SIGKILL');
    await exited;
    const m = JSON.parse(readFileSync(join(runDir, 'manifest.json'), 'utf8'));
    expect(m.status).toBe('running');
    const r = cli(['train', '--resume', runDir, '--quiet']);
    expect(r.code, r.err).toBe(0);
    expect(strip(readMetrics(runDir))).toEqual(strip(readMetrics(join(dir, 'full'))));
    expect(readManifest(runDir).fork?.at).toBe(2);
  });
});

describe('suite forks', () => {
  it('expand per seed after the variants, follow their parent into its shard and runner, and name bad fields', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sp-fork-suite-'));
    const f = join(dir, 's.yaml');
    const suite = (forks: string) =>
      `name: s\npreset: tiny\nbase: { lr: 0.05, epochs: 6, decay_epochs: [2, 4], decay_factors: [0.5, 0.1] }\nseeds: 2\nvariants:\n  a: {}\n  b: { lamb: 0.1 }\nforks:\n${forks}`;
    writeFileSync(f, suite('  a-nodecay4: { parent: a, at: 4, set: { decay_epochs: [2], decay_factors: [0.5] } }\n'));
    const s = loadSuite(f);
    expect(s.jobs.map((j) => j.id)).toEqual(['a-s1', 'a-s2', 'b-s1', 'b-s2', 'a-nodecay4-s1', 'a-nodecay4-s2']);
    expect(s.jobs[4]!.config.decay_epochs).toEqual([2]);
    expect(s.jobs[4]!.fork).toEqual({ parent: 'a-s1', at: 4, set: { decay_epochs: [2], decay_factors: [0.5] } });
    expect(shardJobs(s.jobs, '0/2').map((j) => j.id)).toEqual(['a-s1', 'b-s1', 'a-nodecay4-s1']);
    expect(shardJobs(s.jobs, '1/2').map((j) => j.id)).toEqual(['a-s2', 'b-s2', 'a-nodecay4-s2']);
    expect(childShare(s.jobs, 1, 2).map((j) => j.id)).toEqual(['a-s2', 'b-s2', 'a-nodecay4-s2']);
    writeFileSync(f, suite('  x: { parent: a, at: 4, set: { lr: 1 } }\n'));
    expect(() => loadSuite(f)).toThrow(/s\.yaml:\d+: forks\.x\.set: 'lr' cannot be changed/);
    writeFileSync(f, suite('  x: { parent: zz, at: 4, set: { lamb: 0 } }\n'));
    expect(() => loadSuite(f)).toThrow(/forks\.x\.parent: no variant 'zz'/);
  });
});
