import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const CLI = join(import.meta.dirname, '..', 'dist', 'cli', 'main.js');
const cli = (args: string[]) => spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8' });

describe('spikeprobe analyze: a user\'s own logs', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sp-an-'));
  // A falling center loss with a planted x1.5 jump at the decay epoch 10 (lr 0.05 -> 0.025).
  const rows = ['epoch,lr,center_loss'];
  for (let e = 0; e < 20; e++) rows.push(`${e},${e < 10 ? 0.05 : 0.025},${(2 * 0.97 ** e * (e === 10 || e === 11 ? 1.5 : 1)).toFixed(6)}`);
  const csv = join(dir, 'metrics.csv');
  writeFileSync(csv, rows.join('\n') + '\n');

  it('finds the decay from the lr column, measures the planted ratio and writes a report', () => {
    const out = join(dir, 'r.html');
    const r = cli(['analyze', csv, '--json', '--output', out]);
    expect(r.status, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout.slice(0, r.stdout.lastIndexOf('}') + 1));
    expect(j.decayEpochs).toEqual([10]);
    const res = j.results.find((x: { split: string; resolution: string }) => x.split === 'train' && x.resolution === 'epoch');
    // Trend 2*0.97^e is exact on a log fit: expected max over 10..11 = 1.5*2*0.97^10 vs trend 2*0.97^10.
    expect(res.ratioMean).toBeCloseTo(1.5, 3);
    expect(res.verdict).toBe('spike');
    expect(existsSync(out)).toBe(true);
  });

  it('bad input exits 2 naming the file', () => {
    const bad = join(dir, 'bad.csv');
    writeFileSync(bad, 'epoch,center_loss\n0,1.0\n1,abc\n');
    const r = cli(['analyze', bad]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/bad\.csv/);
    expect(cli(['analyze', join(dir, 'missing.csv')]).status).toBe(2);
  });
});

describe('spikeprobe analyze: log directories, event files, spikeprobe runs', () => {
  const TFE = join(import.meta.dirname, 'fixtures', 'tfevents');
  const work = mkdtempSync(join(tmpdir(), 'sp-an-logs-'));
  const oneLine = (r: ReturnType<typeof cli>) => {
    expect(r.status, r.stdout).toBe(2);
    expect(r.stderr.endsWith('\n')).toBe(true);
    expect(r.stderr.trimEnd().split('\n'), r.stderr).toHaveLength(1);
    expect(r.stderr).toMatch(/^spikeprobe: /);
    return r.stderr;
  };

  it('a PyTorch-style log directory: variants side by side, and the suite report', () => {
    const out = join(work, 'logs.html');
    const r = cli(['analyze', join(TFE, 'logs'), '--output', out]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain('4 run(s), 2 variant(s): prelu, relu');
    expect(r.stdout).toMatch(/relu\s+train\s+epoch\s+10\s+2\s+1\.3000.*spike/);
    expect(r.stdout).toMatch(/prelu\s+train\s+epoch\s+10\s+2\s+1\.0000.*no-spike/);
    expect(readFileSync(out, 'utf8')).toContain('prelu');
  });

  it('export writes event files that analyze reads back as the same variants and verdicts', () => {
    // A small runs directory from the recorded FER-like runs.
    const store = join(work, 'store');
    const fix = join(import.meta.dirname, 'fixtures', 'analysis', 'fer-like');
    for (const f of ['relu-s1.json', 'relu-s2.json', 'relu-clean-s1.json', 'relu-clean-s2.json']) {
      const run = JSON.parse(readFileSync(join(fix, f), 'utf8'));
      mkdirSync(join(store, run.manifest.name), { recursive: true });
      writeFileSync(join(store, run.manifest.name, 'manifest.json'), JSON.stringify(run.manifest));
      writeFileSync(join(store, run.manifest.name, 'metrics.jsonl'), run.records.map((x: object) => JSON.stringify(x)).join('\n') + '\n');
    }
    const tb = join(work, 'tb');
    const e = cli(['export', store, '--tensorboard', tb]);
    expect(e.status, e.stderr).toBe(0);
    expect(existsSync(join(tb, 'relu-clean', 's2'))).toBe(true);
    const a = JSON.parse(cli(['analyze', store, '--json']).stdout);
    const b = JSON.parse(cli(['analyze', tb, '--json']).stdout);
    const pick = (j: { results: { variant: string; split: string; resolution: string; decayEpoch: number; verdict: string }[] }) =>
      j.results.map((x) => [x.variant, x.split, x.resolution, x.decayEpoch, x.verdict]);
    expect(pick(b)).toEqual(pick(a));
    // again into the same folder: refused, nothing overwritten
    expect(oneLine(cli(['export', store, '--tensorboard', tb]))).toContain('already exported');
  });

  it('bad input: exit 2 and one line naming the file or option', () => {
    const empty = join(work, 'empty');
    mkdirSync(empty);
    expect(oneLine(cli(['analyze', empty]))).toContain(`${empty}: no event files`);
    expect(oneLine(cli(['analyze', join(work, 'nope')]))).toContain('nope: cannot read: no such file or directory');
    expect(oneLine(cli(['analyze', join(TFE, 'logs'), '--metric', 'xyz']))).toContain("no series 'xyz' (found: L_center/train, L_center/valid, loss/ce, lr)");
    expect(oneLine(cli(['analyze', join(TFE, 'logs'), '--group', '(']))).toContain('--group');
    expect(oneLine(cli(['analyze', join(TFE, 'logs'), '--steps-per-epoch', '0']))).toContain('--steps-per-epoch');
    const notEvents = join(work, 'junk');
    mkdirSync(notEvents);
    writeFileSync(join(notEvents, 'events.out.tfevents.1'), 'not a record file at all, just text\n');
    expect(oneLine(cli(['analyze', notEvents]))).toMatch(/events\.out\.tfevents\.1: corrupt record at byte 0/);
    expect(oneLine(cli(['export', join(TFE, 'logs')]))).toContain('--tensorboard');
    expect(oneLine(cli(['export', join(TFE, 'logs'), '--tensorboard', join(work, 'x')]))).toContain('no run directories');
  });
});
