// Writes test/fixtures/report/<suite>.json from a recorded runs directory: every run's manifest
// (config, versions, fork) and its epoch records (train/valid/test) with the keys the report's
// answer, attribution and lead panels read, values rounded to 5 significant digits (step records
// are left out: they would make the file four times larger). Used for the report's browser tests on real recorded runs.
//   node scripts/make-report-fixture.mjs runs/fer-demo test/fixtures/report/fer-demo.json
import { readFileSync, readdirSync, existsSync, writeFileSync } from 'node:fs';
import { join, basename } from 'node:path';

const [dir, out] = process.argv.slice(2);
const EPOCH_KEYS = ['lr', 'center_lr', 'ce', 'center', 'total', 'acc', 'feat_norm_mean', 'feat_sq', 'cl_within', 'cl_lag', 'center_drift', 'center/clean', 'center/flipped', 'acc/flipped', 'flipped_share'];
const round = (v) => (typeof v === 'number' && Number.isFinite(v) && !Number.isInteger(v) ? Number(v.toPrecision(5)) : v);
const runs = [];
for (const name of readdirSync(dir).sort()) {
  const d = join(dir, name);
  if (!existsSync(join(d, 'manifest.json'))) continue;
  const manifest = JSON.parse(readFileSync(join(d, 'manifest.json'), 'utf8'));
  delete manifest.baseDir;
  if (manifest.fork) delete manifest.fork.parentDir;
  const records = [];
  for (const line of readFileSync(join(d, 'metrics.jsonl'), 'utf8').split('\n')) {
    if (!line.trim()) continue;
    const r = JSON.parse(line);
    if (r.kind !== 'epoch') continue;
    const keys = EPOCH_KEYS;
    const o = { kind: r.kind, epoch: r.epoch, split: r.split };
    for (const k of keys) if (k in r) o[k] = round(r[k]);
    records.push(o);
  }
  runs.push({ dir: basename(d), manifest, records });
}
const suite = existsSync(join(dir, 'suite.json')) ? JSON.parse(readFileSync(join(dir, 'suite.json'), 'utf8')) : undefined;
writeFileSync(out, JSON.stringify({ source: `${basename(dir)}: ${runs.length} recorded runs (scripts/make-report-fixture.mjs)`, suite: suite && { name: suite.name, expect: suite.expect, thresholds: suite.thresholds }, runs }) + '\n');
console.log(`${out}: ${runs.length} runs, ${runs.reduce((a, r) => a + r.records.length, 0)} records`);
