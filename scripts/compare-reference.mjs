#!/usr/bin/env node
/**
 * Cross-check: spikeprobe's runs of a variant against PyTorch reference runs of the same config,
 * epoch by epoch (train center loss, CE, accuracy, feature norm; test accuracy).
 *
 *   node scripts/compare-reference.mjs --runs runs/fer-like --variant relu \
 *        --ref ref/fer48_w16_n2_relu_s1.log,ref/...s2.log [--epochs 0,5,9,10,...] [--markdown]
 *
 * Reference logs are train_cl.py's stdout (one line per epoch: CL=, CE=, acc=, |f|=, testacc=).
 * Agreement rule: spikeprobe's seed mean lies inside the reference seeds' min-max band widened by
 * 5% of the reference mean on each side ("in band"); Welch's t statistic is printed beside it.
 */
import { readFileSync, readdirSync, existsSync } from 'node:fs';
import { join } from 'node:path';

const argv = process.argv.slice(2);
const opt = (k, d) => (argv.includes(k) ? argv[argv.indexOf(k) + 1] : d);
const runsDir = opt('--runs');
const variant = opt('--variant');
const refs = (opt('--ref', '') || '').split(',').filter(Boolean);
const epochs = opt('--epochs', '0,5,9,10,11,12,15,19,20,21,22,25,29').split(',').map(Number);
const md = argv.includes('--markdown');
if (!runsDir || !variant || refs.length === 0) {
  console.error('usage: compare-reference.mjs --runs DIR --variant NAME --ref LOG[,LOG...] [--epochs ...] [--markdown]');
  process.exit(2);
}

const KEYS = [
  ['CL', 'train', 'center'],
  ['CE', 'train', 'ce'],
  ['acc', 'train', 'acc'],
  ['|f|', 'train', 'feat_norm_mean'],
  ['test acc', 'test', 'acc'],
];

/** spikeprobe: per run, epoch -> {CL, CE, ...}. */
function spRuns() {
  const out = [];
  for (const d of readdirSync(runsDir)) {
    const m = join(runsDir, d, 'manifest.json');
    if (!existsSync(m)) continue;
    const man = JSON.parse(readFileSync(m, 'utf8'));
    if (man.variant !== variant) continue;
    const byEpoch = new Map();
    for (const line of readFileSync(join(runsDir, d, 'metrics.jsonl'), 'utf8').split('\n')) {
      if (!line) continue;
      const r = JSON.parse(line);
      if (r.kind !== 'epoch') continue;
      const e = byEpoch.get(r.epoch) ?? {};
      for (const [label, split, key] of KEYS) if (r.split === split && typeof r[key] === 'number') e[label] = r[key];
      byEpoch.set(r.epoch, e);
    }
    out.push({ name: d, byEpoch });
  }
  return out;
}

function refRuns() {
  return refs.map((f) => {
    const byEpoch = new Map();
    for (const line of readFileSync(f, 'utf8').split('\n')) {
      const m = /\] ep\s*(\d+) .*?CL=([\d.]+).*?CE=([\d.]+) acc=([\d.]+) \|f\|=([\d.]+).*?testacc=([\d.]+)/.exec(line);
      if (m) byEpoch.set(Number(m[1]), { CL: +m[2], CE: +m[3], acc: +m[4], '|f|': +m[5], 'test acc': +m[6] });
    }
    return { name: f, byEpoch };
  });
}

const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;
const sd = (xs) => (xs.length > 1 ? Math.sqrt(xs.reduce((a, b) => a + (b - mean(xs)) ** 2, 0) / (xs.length - 1)) : 0);
const f3 = (x) => (Number.isFinite(x) ? x.toFixed(3) : '-');

const sp = spRuns();
const rf = refRuns();
console.log(`spikeprobe ${variant}: ${sp.length} runs (${sp.map((r) => r.name).join(', ')}); reference: ${rf.length} logs`);
const rows = [];
let inBand = 0;
let total = 0;
for (const e of epochs) {
  const cells = [String(e)];
  for (const [label] of KEYS) {
    const a = sp.map((r) => r.byEpoch.get(e)?.[label]).filter((v) => v !== undefined);
    const b = rf.map((r) => r.byEpoch.get(e)?.[label]).filter((v) => v !== undefined);
    if (a.length === 0 || b.length === 0) {
      cells.push(a.length ? `${f3(mean(a))} / -` : '-');
      continue;
    }
    const lo = Math.min(...b) - 0.05 * mean(b);
    const hi = Math.max(...b) + 0.05 * mean(b);
    const ok = mean(a) >= lo && mean(a) <= hi;
    total++;
    if (ok) inBand++;
    const se = Math.sqrt((a.length > 1 ? sd(a) ** 2 / a.length : 0) + (b.length > 1 ? sd(b) ** 2 / b.length : 0));
    const t = se > 0 ? (mean(a) - mean(b)) / se : NaN;
    cells.push(
      md
        ? `${f3(mean(a))} / ${f3(mean(b))} (${f3(Math.min(...b))}-${f3(Math.max(...b))})${ok ? '' : ' *'}`
        : `${f3(mean(a))} / ${f3(mean(b))} (${f3(Math.min(...b))}-${f3(Math.max(...b))}, n=${b.length})${ok ? '' : ' *'} t=${Number.isFinite(t) ? t.toFixed(1) : '-'}`,
    );
  }
  rows.push(cells);
}
const head = ['epoch', ...KEYS.map(([l]) => `${l === '|f|' ? 'feature norm' : l}: spikeprobe / reference (ref min-max)`)];
if (md) {
  console.log(`| ${head.join(' | ')} |`);
  console.log(`|${head.map(() => '---').join('|')}|`);
  for (const r of rows) console.log(`| ${r.join(' | ')} |`);
} else for (const r of rows) console.log(r.join('  '));
console.log(`in band (reference min-max widened by 5% of its mean): ${inBand}/${total}; '*' marks the others`);
