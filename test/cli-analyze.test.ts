import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
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
