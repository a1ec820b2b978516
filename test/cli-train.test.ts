import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readMetrics } from '../src/store/run-store.js';

const CLI = join(import.meta.dirname, '..', 'dist', 'cli', 'main.js');

function cli(args: string[], cwd = process.cwd()) {
  const r = spawnSync(process.execPath, [CLI, ...args], { cwd, encoding: 'utf8', env: { ...process.env, SPIKEPROBE_BACKEND: 'wasm' } });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

function configFile(dir: string, text: string, name = 'config.yaml'): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}

const SEED = 'lr: 0.05\nmomentum: 0.9\nweight_decay: 0.0005\nalpha: 0.5\nlamb: 0.01\nepochs: 50\n';

describe('spikeprobe train: bad input exits 2 with one line naming file and field, writing nothing', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sp-cli-'));
  const cases: [string, string, RegExp][] = [
    ['negative lr', SEED.replace('lr: 0.05', 'lr: -0.1'), /config\.yaml:1: lr: .*/],
    ['unknown key', SEED + 'learning_rate: 0.1\n', /config\.yaml:7: learning_rate: unknown key 'learning_rate'/],
    ['malformed YAML', 'lr: [0.05\nepochs: 3\n', /config\.yaml(:\d+)?: malformed YAML/],
    ['feature-dim mismatch', SEED + 'model:\n  widths: [8, 16]\n  blocks: [1, 1]\n  feat_dim: 512\n', /model\.feat_dim: Center's dim: 512 should be equal to input feature's dim: 16/],
    ['labels out of range', SEED + 'data:\n  classes: [0, 3, 12]\n', /classes/],
    ['missing data files', SEED + 'data:\n  source: idx\n  path: no-such-dir\n', /no-such-dir/],
    ['missing epochs', 'lr: 0.05\n', /epochs: is required/],
    ['mismatched decays', SEED + 'decay_epochs: [10, 20]\ndecay_factors: [0.5]\n', /decay_factors: has 1 entries but decay_epochs has 2/],
    ['train_counts of the wrong length', SEED + 'data:\n  classes: 8\n  train_counts: [10, 20]\n', /config\.yaml:9: data\.train_counts: has 2 entries but data\.classes names 8 classes/],
    ['train_counts with train_per_class', SEED + 'data:\n  train_per_class: 5\n  train_counts: [1, 1, 1, 1, 1, 1, 1, 1]\n', /config\.yaml:9: data\.train_counts: replaces data\.train_per_class/],
    ['a count above what the source holds', SEED + 'data:\n  train_counts: [6001, 1, 1, 1, 1, 1, 1, 1]\n', /config\.yaml: data: .*0\.json: train_counts\[0\]: class 0 \(T-shirt\/top\) has 6000 samples for train, but train_counts\[0\] = 6001/],
    ['image_size out of range', SEED + 'data:\n  image_size: 300\n', /config\.yaml:8: data\.image_size: /],
  ];
  for (const [what, text, re] of cases) {
    it(what, () => {
      const sub = mkdtempSync(join(dir, 'c-'));
      const cfg = configFile(sub, text);
      const r = cli(['train', '--config', cfg, '--preset', 'tiny', '--out', join(sub, 'runs'), '--quiet']);
      expect(r.code, r.err).toBe(2);
      const lines = r.err.trim().split('\n').filter((l) => l.startsWith('spikeprobe:') && !/backend|data |run directory/.test(l));
      expect(lines.length, r.err).toBe(1);
      expect(lines[0]).toMatch(re);
      const runs = join(sub, 'runs');
      const leftovers = existsSync(runs) ? readdirSync(runs).flatMap((n) => readdirSync(join(runs, n)).map((f) => `${n}/${f}`)) : [];
      expect(leftovers.filter((f) => /metrics|checkpoint/.test(f))).toEqual([]);
    });
  }

  it('missing config file and unknown flags', () => {
    expect(cli(['train', '--config', join(dir, 'nope.yaml')]).err).toMatch(/nope\.yaml: file not found/);
    expect(cli(['train', '--config', join(dir, 'nope.yaml')]).code).toBe(2);
    expect(cli(['train', '--bogus']).code).toBe(2);
    expect(cli(['train', '--config', configFile(dir, SEED, 'ok.yaml'), '--backend', 'tpu']).err).toMatch(/--backend: unknown backend 'tpu'/);
  });

  it('--help teaches: flags, presets, an example', () => {
    const r = cli(['train', '--help']);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/--preset/);
    expect(r.out).toMatch(/tiny/);
    expect(r.out).toMatch(/Examples:/);
  });
});

describe('a run killed with SIGKILL mid-epoch resumes to the same numbers', () => {
  it('keeps completed epochs, tears no line, and ends equal to an uninterrupted run', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sp-kill-'));
    // Enough epochs that the kill lands mid-run however fast an epoch of the tiny preset is.
    const cfg = configFile(dir, SEED.replace('epochs: 50', 'epochs: 12') + 'decay_epochs: [3, 5]\ndecay_factors: [0.5, 0.1]\n');
    const full = cli(['train', '--config', cfg, '--preset', 'tiny', '--out', dir, '--name', 'full', '--quiet']);
    expect(full.code, full.err).toBe(0);

    const runDir = join(dir, 'killed');
    const child = spawn(process.execPath, [CLI, 'train', '--config', cfg, '--preset', 'tiny', '--out', dir, '--name', 'killed', '--quiet'], {
      env: { ...process.env, SPIKEPROBE_BACKEND: 'wasm' },
      stdio: 'ignore',
    });
    const exited = new Promise<void>((r) => child.on('exit', () => r()));
    // Wait for two completed epochs, then kill during the next ones.
    const t0 = Date.now();
    for (;;) {
      const recs = existsSync(join(runDir, 'metrics.jsonl')) ? readMetrics(runDir) : [];
      if (recs.filter((r) => r.kind === 'epoch' && r.split === 'test').length >= 2) break;
      if (Date.now() - t0 > 120_000) throw new Error('run did not progress');
      await new Promise((r) => setTimeout(r, 20));
    }
    await new Promise((r) => setTimeout(r, 30));
    child.kill('SIGKILL');
    await exited;

    const manifest = JSON.parse(readFileSync(join(runDir, 'manifest.json'), 'utf8'));
    expect(manifest.status).toBe('running');
    expect(manifest.epochsDone).toBeGreaterThanOrEqual(2);
    const text = readFileSync(join(runDir, 'metrics.jsonl'), 'utf8');
    for (const line of text.split('\n').filter(Boolean)) expect(() => JSON.parse(line)).not.toThrow();
    const kept = readMetrics(runDir).filter((r) => r.epoch < manifest.epochsDone);
    const fullRecs = readMetrics(join(dir, 'full'));
    const strip = (rs: typeof kept) => rs.map((r) => ({ ...r, seconds: 0 }));
    expect(strip(kept)).toEqual(strip(fullRecs.filter((r) => r.epoch < manifest.epochsDone)));

    const resumed = cli(['train', '--resume', runDir, '--quiet']);
    expect(resumed.code, resumed.err).toBe(0);
    expect(strip(readMetrics(runDir))).toEqual(strip(fullRecs));
    expect(JSON.parse(readFileSync(join(runDir, 'manifest.json'), 'utf8')).status).toBe('done');
  });
});

describe('spikeprobe train --name stays inside --out', () => {
  it('refuses names that are paths (exit 2, one line, nothing written)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sp-name-'));
    const cfg = configFile(dir, SEED.replace('epochs: 50', 'epochs: 1'));
    for (const name of ['../x', 'a/b', '..', '/abs', 'a..b']) {
      const r = cli(['train', '--config', cfg, '--preset', 'tiny', '--out', join(dir, 'runs'), '--name', name, '--quiet']);
      expect(r.code, r.err).toBe(2);
      expect(r.err.trim().split('\n')).toHaveLength(1);
      expect(r.err).toMatch(/--name: .* is not a run name/);
    }
    expect(existsSync(join(dir, 'runs'))).toBe(false);
    expect(existsSync(join(dir, 'x'))).toBe(false);
  });
});
