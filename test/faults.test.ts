/**
 * Faults survived (fault injection): a process killed inside each kind of durable write resumes to
 * the numbers of an uninterrupted run; a full disk gives one line and resumes once there is space;
 * damaged checkpoints fall back to the previous generation or say what to do; two writers of one run
 * are refused; SIGTERM stops at a safe point. Counts are printed (FAULTS ...) for the notes.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readMetrics } from '../src/store/run-store.js';
import type { MetricRecord } from '../src/store/types.js';
import { FAULT_SITES } from '../src/util/fault.js';

const CLI = join(import.meta.dirname, '..', 'dist', 'cli', 'main.js');
const ENV = { ...process.env, SPIKEPROBE_BACKEND: 'wasm', SPIKEPROBE_THREADS: '1' };
const dir = mkdtempSync(join(tmpdir(), 'sp-faults-'));
const cfg = join(dir, 'c.yaml');
writeFileSync(cfg, 'lr: 0.05\nepochs: 6\ndecay_epochs: [2, 4]\ndecay_factors: [0.5, 0.1]\n');

function cli(args: string[], env: NodeJS.ProcessEnv = {}) {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env: { ...ENV, ...env } });
  return { code: r.status, signal: r.signal, out: r.stdout, err: r.stderr };
}
const train = (out: string, name: string, env: NodeJS.ProcessEnv = {}, extra: string[] = []) => cli(['train', '--config', cfg, '--preset', 'tiny', '--out', out, '--name', name, '--quiet', ...extra], env);
const strip = (rs: MetricRecord[]) => rs.map((r) => ({ ...r, seconds: 0 }));
const temps = (d: string): string[] => (existsSync(d) ? readdirSync(d, { recursive: true }).map(String).filter((n) => n.endsWith('.tmp')) : []);
// The error lines, without the progress lines and the notice of a dead writer's lock taken over.
const oneLine = (s: string) => s.trim().split('\n').filter((l) => !/^spikeprobe: (backend|data|run directory|.*taking over the lock)/.test(l));

let reference: MetricRecord[];
const counts = { injected: 0, survived: 0, lost: 0 };

beforeAll(() => {
  const r = train(dir, 'reference');
  expect(r.code, r.err).toBe(0);
  reference = strip(readMetrics(join(dir, 'reference')));
});
afterAll(() => {
  console.log(`FAULTS injected ${counts.injected}, survived ${counts.survived}, records lost ${counts.lost}`);
});

describe('a kill inside each write site, then --resume: the numbers of an uninterrupted run', () => {
  for (const site of FAULT_SITES) {
    it(`${site}: killed at 4 different moments, each resumed to identical records`, () => {
      for (const n of [1, 2, 3, 5]) {
        const name = `${site}-${n}`;
        const killed = train(dir, name, { SPIKEPROBE_FAULT: `${site}:${n}` });
        expect(killed.signal, `${name}: ${killed.err}`).toBe('SIGKILL');
        counts.injected++;
        const runDir = join(dir, name);
        // Killed before its first manifest: nothing to resume, so the same command starts it again.
        const again = existsSync(join(runDir, 'manifest.json')) ? cli(['train', '--resume', runDir, '--quiet']) : train(dir, name);
        expect(again.code, `${name}: ${again.err}`).toBe(0);
        const got = strip(readMetrics(runDir));
        expect(got, name).toEqual(reference);
        expect(temps(runDir), `${name}: temp files left`).toEqual([]);
        expect(JSON.parse(readFileSync(join(runDir, 'manifest.json'), 'utf8')).status).toBe('done');
        expect(existsSync(join(runDir, '.lock')), `${name}: lock left`).toBe(false);
        counts.survived++;
        counts.lost += Math.max(0, reference.length - got.length);
      }
    });
  }
});

describe('checkpoints that prove themselves', () => {
  // Killed after epoch 3's records, before its checkpoint: checkpoint.bin holds epoch 2's end, .prev epoch 1's.
  const mid = (name: string) => {
    const k = train(dir, name, { SPIKEPROBE_FAULT: 'epoch-commit:4' });
    expect(k.signal).toBe('SIGKILL');
    return join(dir, name);
  };

  it('a corrupted newest checkpoint falls back to the previous one with a notice, and resumes to identical numbers', () => {
    const d = mid('corrupt');
    const p = join(d, 'checkpoint.bin');
    const buf = readFileSync(p);
    buf[buf.length - 100] = buf[buf.length - 100]! ^ 0xff;
    writeFileSync(p, buf);
    const r = cli(['train', '--resume', d, '--quiet']);
    expect(r.code, r.err).toBe(0);
    expect(r.err).toMatch(/checkpoint\.bin: damaged: its checksum does not match; resuming from the previous checkpoint checkpoint\.prev\.bin \(epoch 2/);
    expect(strip(readMetrics(d))).toEqual(reference);
  });

  it('a truncated one too; both damaged: one line saying which file and what to do, exit 2, no stack trace', () => {
    const d = mid('truncated');
    truncateSync(join(d, 'checkpoint.bin'), 2235);
    const r = cli(['train', '--resume', d, '--quiet']);
    expect(r.code, r.err).toBe(0);
    expect(r.err).toMatch(/checkpoint\.bin: truncated.*resuming from the previous checkpoint/);
    expect(strip(readMetrics(d))).toEqual(reference);
    const e = mid('both');
    truncateSync(join(e, 'checkpoint.bin'), 100);
    truncateSync(join(e, 'checkpoint.prev.bin'), 5000);
    const b = cli(['train', '--resume', e, '--quiet']);
    expect(b.code).toBe(2);
    expect(oneLine(b.err)).toHaveLength(1);
    expect(b.err).toMatch(/checkpoint\.bin: truncated.*the previous one too.*no checkpoint to resume from: restart the run/);
    expect(b.err).not.toMatch(/\n\s+at /);
  });
});

describe('one writer per run directory', () => {
  it('two trainings of the same --name started at once: one trains, the other is refused naming the owner', async () => {
    const start = () =>
      new Promise<{ code: number | null; err: string }>((res) => {
        const c = spawn(process.execPath, [CLI, 'train', '--config', cfg, '--preset', 'tiny', '--out', dir, '--name', 'same', '--quiet', '--seed', String(1 + Math.floor(Math.random() * 1000))], { env: ENV });
        let err = '';
        c.stderr.on('data', (d: Buffer) => (err += d.toString()));
        c.on('close', (code) => res({ code, err }));
      });
    const [a, b] = await Promise.all([start(), start()]);
    const codes = [a.code, b.code].sort();
    expect(codes, a.err + b.err).toEqual([0, 2]);
    const loser = a.code === 2 ? a : b;
    expect(oneLine(loser.err)).toHaveLength(1);
    expect(loser.err).toMatch(/another spikeprobe is writing this run \(pid \d+ on .*--break-lock|a run already exists there/);
    // The records are one run's: each epoch once, the manifest's seed.
    const recs = readMetrics(join(dir, 'same')).filter((r) => r.kind === 'epoch' && r.split === 'train');
    expect(recs.map((r) => r.epoch)).toEqual([0, 1, 2, 3, 4, 5]);
  });

  it('a stale lock (its process gone) is taken over with a notice; --resume of a run being written is refused', async () => {
    mkdirSync(join(dir, 'stale'), { recursive: true });
    writeFileSync(join(dir, 'stale', '.lock'), JSON.stringify({ pid: 999999, host: (await import('node:os')).hostname(), token: 'x', startedAt: '2026-01-01T00:00:00Z', heartbeat: new Date().toISOString() }));
    const r = train(dir, 'stale');
    expect(r.code, r.err).toBe(0);
    expect(r.err).toMatch(/taking over the lock of pid 999999 .*that process is gone/);
    // A live owner (this test process): refused, unless --break-lock.
    writeFileSync(join(dir, 'stale', '.lock'), JSON.stringify({ pid: process.pid, host: (await import('node:os')).hostname(), token: 'y', startedAt: 'now', heartbeat: new Date().toISOString() }));
    const m = JSON.parse(readFileSync(join(dir, 'stale', 'manifest.json'), 'utf8'));
    writeFileSync(join(dir, 'stale', 'manifest.json'), JSON.stringify({ ...m, status: 'running' }));
    const refused = cli(['train', '--resume', join(dir, 'stale'), '--quiet']);
    expect(refused.code).toBe(2);
    expect(refused.err).toMatch(new RegExp(`another spikeprobe is writing this run \\(pid ${process.pid}`));
    const forced = cli(['train', '--resume', join(dir, 'stale'), '--quiet', '--break-lock']);
    expect(forced.code, forced.err).toBe(0);
    expect(forced.err).toMatch(/taking over the lock .*--break-lock/);
  });
});

describe('signals', () => {
  it('SIGTERM during an epoch stops at a safe point (exit 143, interrupted), and --resume continues to identical numbers', async () => {
    const long = join(dir, 'long.yaml');
    writeFileSync(long, 'lr: 0.05\nepochs: 14\ndecay_epochs: [2, 4]\ndecay_factors: [0.5, 0.1]\n');
    expect(cli(['train', '--config', long, '--preset', 'tiny', '--out', dir, '--name', 'long-ref', '--quiet']).code).toBe(0);
    const runDir = join(dir, 'long');
    const c = spawn(process.execPath, [CLI, 'train', '--config', long, '--preset', 'tiny', '--out', dir, '--name', 'long', '--quiet'], { env: ENV });
    let err = '';
    c.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const closed = new Promise<number | null>((r) => c.on('close', (code) => r(code)));
    const t0 = Date.now();
    while (!(existsSync(join(runDir, 'manifest.json')) && JSON.parse(readFileSync(join(runDir, 'manifest.json'), 'utf8')).epochsDone >= 2)) {
      if (Date.now() - t0 > 120_000) throw new Error('no progress');
      await new Promise((r) => setTimeout(r, 20));
    }
    const sentAt = Date.now();
    c.kill('SIGTERM');
    const code = await closed;
    expect(code, err).toBe(143);
    expect(Date.now() - sentAt).toBeLessThan(5000);
    const man = JSON.parse(readFileSync(join(runDir, 'manifest.json'), 'utf8'));
    expect(man.status).toBe('interrupted');
    expect(err).toMatch(/SIGTERM: stopping at the next safe point/);
    const r = cli(['train', '--resume', runDir, '--quiet']);
    expect(r.code, r.err).toBe(0);
    expect(strip(readMetrics(runDir))).toEqual(strip(readMetrics(join(dir, 'long-ref'))));
  });
});

describe('signals: a second one, and a suite with --jobs', () => {
  it('a second SIGINT stops at once (exit 130) and tears nothing', async () => {
    const long = join(dir, 'long2.yaml');
    writeFileSync(long, 'lr: 0.05\nepochs: 30\ndecay_epochs: [2, 4]\ndecay_factors: [0.5, 0.1]\n');
    const runDir = join(dir, 'twice');
    const c = spawn(process.execPath, [CLI, 'train', '--config', long, '--preset', 'tiny', '--out', dir, '--name', 'twice', '--quiet'], { env: ENV });
    const closed = new Promise<number | null>((r) => c.on('close', (code) => r(code)));
    const t0 = Date.now();
    while (!(existsSync(join(runDir, 'manifest.json')) && JSON.parse(readFileSync(join(runDir, 'manifest.json'), 'utf8')).epochsDone >= 1)) {
      if (Date.now() - t0 > 120_000) throw new Error('no progress');
      await new Promise((r) => setTimeout(r, 20));
    }
    c.kill('SIGINT');
    await new Promise((r) => setTimeout(r, 5));
    c.kill('SIGINT');
    expect(await closed).toBe(130);
    for (const line of readFileSync(join(runDir, 'metrics.jsonl'), 'utf8').split('\n').filter(Boolean)) expect(() => JSON.parse(line)).not.toThrow();
    expect(temps(runDir)).toEqual([]);
    const r = cli(['train', '--resume', runDir, '--quiet', '--epochs', '1']);
    expect(r.code === 0 || r.code === null, r.err).toBe(true);
  });

  it('SIGTERM to a suite with --jobs 2 reaches its runners: they stop at a safe point and --resume finishes the suite', async () => {
    const suite = join(dir, 'sig.yaml');
    writeFileSync(suite, 'name: sig\npreset: tiny\nbase: { lr: 0.05, epochs: 20, decay_epochs: [2, 4], decay_factors: [0.5, 0.1] }\nseeds: 1\nvariants:\n  a: {}\n  b: { lamb: 0.1 }\n');
    const out = join(dir, 'sig-runs');
    const c = spawn(process.execPath, [CLI, 'run', suite, '--jobs', '2', '--out', out, '--no-report', '--quiet'], { env: ENV });
    let err = '';
    c.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const closed = new Promise<number | null>((r) => c.on('close', (code) => r(code)));
    const t0 = Date.now();
    const epochs = (id: string) => (existsSync(join(out, id, 'manifest.json')) ? JSON.parse(readFileSync(join(out, id, 'manifest.json'), 'utf8')).epochsDone : 0);
    while (!(epochs('a-s1') >= 1 && epochs('b-s1') >= 1)) {
      if (Date.now() - t0 > 120_000) throw new Error(`no progress: ${err}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    c.kill('SIGTERM');
    expect(await closed, err).toBe(143);
    for (const id of ['a-s1', 'b-s1']) expect(JSON.parse(readFileSync(join(out, id, 'manifest.json'), 'utf8')).status, id).toBe('interrupted');
    expect(existsSync(join(out, '.lock'))).toBe(false);
    const again = cli(['run', suite, '--jobs', '2', '--out', out, '--no-report', '--quiet', '--resume']);
    expect(again.code, again.err).toBe(0);
    for (const id of ['a-s1', 'b-s1']) expect(JSON.parse(readFileSync(join(out, id, 'manifest.json'), 'utf8')).status).toBe('done');
  });
});

const canMount = process.getuid?.() === 0 && spawnSync('bash', ['-c', 'd=$(mktemp -d) && mount -t tmpfs -o size=64k tmpfs "$d" && umount "$d"']).status === 0;
if (!canMount) console.warn('SKIPPED full-disk tests: mounting a tmpfs needs root (CAP_SYS_ADMIN) here');

describe.skipIf(!canMount)('a full disk (a tmpfs too small for the run)', () => {
  const mounts: string[] = [];
  afterAll(() => {
    for (const m of mounts) spawnSync('umount', [m]);
  });
  it('fails with one line naming the file and what to do (exit 1), leaves no temp file, and resumes once there is space', () => {
    const kinds = new Set<string>();
    for (const size of ['24k', '72k', '160k', '240k']) {
      const m = mkdtempSync(join(tmpdir(), 'sp-full-'));
      expect(spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', m]).status).toBe(0);
      mounts.push(m);
      const r = train(m, 'r');
      expect(r.code, `${size}: ${r.err}`).toBe(1);
      const lines = oneLine(r.err);
      expect(lines, r.err).toHaveLength(1);
      expect(lines[0]).toMatch(/^spikeprobe: .*: no space left on the device \(ENOSPC.*; free some space .*continue with --resume$/);
      const file = /^spikeprobe: (\S+): no space/.exec(lines[0]!)![1]!.split('/').pop()!;
      kinds.add(file.replace(/^\./, '').replace(/\.\d+\.tmp$/, ''));
      expect(temps(m)).toEqual([]);
      const man = join(m, 'r', 'manifest.json');
      if (existsSync(man)) expect(['failed', 'running']).toContain(JSON.parse(readFileSync(man, 'utf8')).status);
      expect(spawnSync('mount', ['-o', 'remount,size=20m', m]).status).toBe(0);
      const again = existsSync(man) ? cli(['train', '--resume', join(m, 'r'), '--quiet']) : train(m, 'r');
      expect(again.code, `${size}: ${again.err}`).toBe(0);
      expect(strip(readMetrics(join(m, 'r')))).toEqual(reference);
      counts.injected++;
      counts.survived++;
    }
    console.log(`FULL DISK: the write that hit ENOSPC: ${[...kinds].join(', ')}`);
    expect(kinds.size).toBeGreaterThanOrEqual(2);
  });
});
