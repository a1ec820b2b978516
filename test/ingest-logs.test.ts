/**
 * Log directories as runs and variants, what is analysed (--metric, names, splits), per-step logs,
 * MLflow / W&B / Lightning formats, and spikeprobe's own runs (read as a suite, exported to event
 * files and read back).
 */
import { cpSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { inputError } from './helpers.js';
import { describe, expect, it } from 'vitest';
import { ingestPaths, ingestTexts } from '../src/ingest/index.js';
import { analyzeSuite } from '../src/analysis/index.js';
import { analyzeDecay } from '../src/analysis/spike.js';
import { runEventFiles } from '../src/cli/export.js';
import type { RunData } from '../src/analysis/types.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const TFE = path.join(HERE, 'fixtures', 'tfevents');
const tmp = () => mkdtempSync(path.join(tmpdir(), 'sp-logs-'));

/** The generator's formulas (scripts/gen-tfevents.py): relu jumps x1.3 at decays 10 and 20, prelu does not. */
const RELU_JUMP = 1.3;

describe('log directories as variants', () => {
  it('logs/<variant>/<seed>: two variants of two seeds, compared side by side', () => {
    const { runs } = ingestPaths([path.join(TFE, 'logs')]);
    expect(runs.map((r) => [r.manifest.variant, r.manifest.seed, r.manifest.name, r.manifest.decayEpochs])).toEqual([
      ['prelu', 0, 'prelu_s1', [10, 20]],
      ['prelu', 1, 'prelu_s2', [10, 20]],
      ['relu', 0, 'relu_s1', [10, 20]],
      ['relu', 1, 'relu_s2', [10, 20]],
    ]);
    const a = analyzeSuite('logs', runs);
    const at = (v: string, split: string, d: number) => a.results.find((r) => r.variant === v && r.split === split && r.decayEpoch === d && r.resolution === 'epoch')!;
    for (const d of [10, 20]) {
      expect(at('relu', 'train', d).n).toBe(2);
      expect(at('relu', 'train', d).ratioMean).toBeCloseTo(RELU_JUMP, 5);
      expect(at('relu', 'train', d).verdict).toBe('spike');
      expect(at('prelu', 'train', d).ratioMean).toBeCloseTo(1, 5);
      expect(at('prelu', 'train', d).verdict).toBe('no-spike');
      expect(at('relu', 'valid', d).verdict).toBe('no-spike');
    }
    // relu/s1's add_hparams subfolder joined its run; its 'hparam/L_center' is not a series
    expect(runs[2]!.manifest.config.importedFrom).toHaveLength(2);
    expect(Object.keys(runs[2]!.records[0]!)).not.toContain('hparam/L_center');
    // ce came along under its store key
    expect(runs[0]!.records.find((r) => r.split === 'train' && r.epoch === 0)!.ce).toBeCloseTo(1.5, 6);
  });

  it('--group overrides; runs not two deep are one variant each; --variant puts all under one', () => {
    let { runs } = ingestPaths([path.join(TFE, 'logs')], { group: '/(s\\d)$' });
    expect(runs.map((r) => [r.manifest.variant, r.manifest.seed])).toEqual([
      ['s1', 0],
      ['s2', 0],
      ['s1', 1],
      ['s2', 1],
    ]);
    ({ runs } = ingestPaths([path.join(TFE, 'logs', 'relu'), path.join(TFE, 'tf2')]));
    expect(runs.map((r) => [r.manifest.variant, r.manifest.seed])).toEqual([
      ['s1', 0],
      ['s2', 0],
      ['tf2', 0],
    ]);
    ({ runs } = ingestPaths([path.join(TFE, 'logs', 'relu')], { variant: 'mine' }));
    expect(runs.map((r) => [r.manifest.variant, r.manifest.seed])).toEqual([
      ['mine', 0],
      ['mine', 1],
    ]);
    let e = inputError(() => ingestPaths([path.join(TFE, 'logs')], { group: 'nomatch(x)' }));
    expect(e.message).toContain('does not match --group');
    e = inputError(() => ingestPaths([path.join(TFE, 'logs')], { group: '(' }));
    expect(e.message).toContain('--group');
  });

  it('Keras train/ and validation/ folders are the splits of one run (TF2 tensor scalars)', () => {
    const { runs } = ingestPaths([path.join(TFE, 'tf2')]);
    expect(runs).toHaveLength(1);
    const r = runs[0]!;
    expect(r.manifest.decayEpochs).toEqual([10, 20]);
    expect(r.records.filter((x) => x.split === 'train')).toHaveLength(30);
    expect(r.records.filter((x) => x.split === 'valid')).toHaveLength(30);
    const res = analyzeDecay(runs);
    expect(res.find((x) => x.split === 'train' && x.decayEpoch === 20)!.seeds[0]!.ratio).toBeCloseTo(RELU_JUMP, 5);
    expect(res.find((x) => x.split === 'valid' && x.decayEpoch === 20)!.seeds[0]!.ratio).toBeCloseTo(1, 5);
  });

  it("PyTorch add_scalars folders (<run>/<tag>_<split>/) join the run above with the folder's split", () => {
    const dir = tmp();
    const run = path.join(dir, 'run1');
    // The parent holds lr; L_center_train/ and L_center_valid/ each hold the tag 'L_center'.
    const src = path.join(TFE, 'logs', 'relu', 's1');
    mkdirSync(path.join(run, 'L_center_train'), { recursive: true });
    mkdirSync(path.join(run, 'L_center_valid'), { recursive: true });
    const f = readdirSync(src).find((n) => n.includes('tfevents'))!;
    cpSync(path.join(src, f), path.join(run, f));
    cpSync(path.join(TFE, 'tf2', 'train', readdirSync(path.join(TFE, 'tf2', 'train'))[0]!), path.join(run, 'L_center_train', 'events.out.tfevents.1'));
    cpSync(path.join(TFE, 'tf2', 'validation', readdirSync(path.join(TFE, 'tf2', 'validation'))[0]!), path.join(run, 'L_center_valid', 'events.out.tfevents.1'));
    const { runs } = ingestPaths([dir], { metric: 'epoch_center_loss' });
    expect(runs).toHaveLength(1);
    expect(runs[0]!.manifest.name).toBe('run1');
    const e25 = runs[0]!.records.filter((r) => r.epoch === 25 && r.kind === 'epoch');
    expect(e25.find((r) => r.split === 'train')!.center).toBeCloseTo(2.0 * 0.9 ** 25, 5);
    expect(e25.find((r) => r.split === 'valid')!.center).toBeCloseTo(2.2 * 0.9 ** 25, 5);
  });
});

describe('what is analysed', () => {
  it('--metric picks a tag; its split comes from the tag', () => {
    const { runs } = ingestPaths([path.join(TFE, 'logs', 'relu')], { metric: 'L_center/valid' });
    const r = runs[0]!;
    expect(r.records.filter((x) => typeof x.center === 'number').every((x) => x.split === 'valid')).toBe(true);
    // the other center-loss series keeps its tag as key
    expect(r.records.find((x) => x.split === 'train' && x.epoch === 3)!['L_center/train']).toBeCloseTo(2 * 0.9 ** 3, 5);
    const e = inputError(() => ingestPaths([path.join(TFE, 'logs', 'relu')], { metric: 'center' }));
    expect(e.message).toContain("no series 'center' (found: L_center/train, L_center/valid, loss/ce, lr)");
  });

  it('--metric names a Keras CSVLogger column too', async () => {
    const keras = path.join(HERE, 'fixtures', 'analysis', 'keras_log.csv');
    const run = ingestPaths([keras], { metric: 'val_center_loss' }).runs[0]!;
    const withCenter = run.records.filter((r) => typeof r.center === 'number');
    expect(withCenter.length).toBe(30);
    expect(withCenter.every((r) => r.split === 'valid')).toBe(true);
    expect(run.records.find((r) => r.split === 'train' && r.epoch === 3)!.center_loss).toBeCloseTo(2 * 0.9 ** 3, 5);
    expect(inputError(() => ingestPaths([keras], { metric: 'nope' })).message).toContain(`${keras}:1: --metric: no column 'nope' (found: epoch,`);
  });

  it('center-loss names people use', () => {
    for (const tag of ['center_loss', 'loss/center', 'L_center/train', 'Lsc', 'train/closs', 'CenterLoss']) {
      const [run] = ingestTexts([{ path: `x/run-a-tag-${tag.replace(/\//g, '_')}.csv`, text: 'Wall time,Step,Value\n1,0,1\n2,1,0.9\n' }], { decayEpochs: [1] });
      expect(run!.records.some((r) => r.center === 1), tag).toBe(true);
    }
  });
});

describe('per-step logs', () => {
  const S = 20;
  it("an 'epoch' scalar gives the epochs; the step verdict finds the planted x1.4", () => {
    const { runs } = ingestPaths([path.join(TFE, 'steps')]);
    const run = runs[0]!;
    expect(run.manifest.decayEpochs).toEqual([8]);
    const steps = run.records.filter((r) => r.kind === 'step');
    expect(steps).toHaveLength(12 * S);
    const s45 = steps.find((r) => r.step === 45)!;
    expect([s45.epoch, s45.iter]).toEqual([2, 5]);
    // valid logged once per epoch at its last step: epoch e
    expect(run.records.find((r) => r.split === 'valid' && r.epoch === 5)!.center).toBeCloseTo(2.2 * 0.9 ** 5, 5);
    const res = analyzeDecay([run]).find((r) => r.resolution === 'step')!;
    expect(res.seeds[0]!.ratio).toBeCloseTo(1.4, 4);
    expect(res.seeds[0]!.at).toBe(8 * S);
    expect(res.verdict).toBe('spike');
    // --steps-per-epoch gives the same epochs
    const viaSpe = ingestPaths([path.join(TFE, 'steps')], { stepsPerEpoch: S }).runs[0]!;
    expect(viaSpe.records.filter((r) => r.kind === 'step').map((r) => [r.epoch, r.iter])).toEqual(steps.map((r) => [r.epoch, r.iter]));
  });

  it("an 'epoch' scalar logged against the epoch itself keeps a per-epoch log per epoch", () => {
    const csv = (tag: string, f: (e: number) => number) => ({
      path: `x/run-a-tag-${tag}.csv`,
      text: 'Wall time,Step,Value\n' + Array.from({ length: 12 }, (_, e) => `${e},${e},${f(e)}`).join('\n') + '\n',
    });
    const [run] = ingestTexts([csv('epoch', (e) => e), csv('center_loss', (e) => 2 * 0.9 ** e * (e === 8 ? 1.3 : 1)), csv('lr', (e) => (e < 8 ? 0.1 : 0.01))]);
    expect(run!.records.filter((r) => r.kind === 'step')).toHaveLength(0);
    expect(run!.manifest.decayEpochs).toEqual([8]);
    expect(analyzeDecay([run!]).map((r) => r.resolution)).toEqual(['epoch']);
  });

  it('steps that look like global steps read as epochs: a warning naming --steps-per-epoch', () => {
    const dir = tmp();
    const f = path.join(dir, 'wandb-history.jsonl');
    writeFileSync(f, Array.from({ length: 1200 }, (_, s) => JSON.stringify({ _step: s, center_loss: 2 * 0.999 ** s, lr: s < 600 ? 0.1 : 0.01 })).join('\n') + '\n');
    const warnings: string[] = [];
    const asEpochs = ingestPaths([dir], {}, (m) => warnings.push(m)).runs[0]!;
    expect(asEpochs.manifest.decayEpochs).toEqual([600]);
    expect(warnings).toEqual([`${f}: 'center_loss' has steps up to 1199, read as epochs; if they are global steps, give --steps-per-epoch N or log an 'epoch' scalar`]);
    warnings.length = 0;
    const asSteps = ingestPaths([dir], { stepsPerEpoch: 100 }, (m) => warnings.push(m)).runs[0]!;
    expect(asSteps.manifest.decayEpochs).toEqual([6]);
    expect(warnings).toEqual([]);
  });

  it('--steps-per-epoch takes effect on event files logged per step', () => {
    // logs/ is per epoch (step = epoch); read as per step with 5 steps per epoch the decays move to 10/5 = 2 and 20/5 = 4.
    const { runs } = ingestPaths([path.join(TFE, 'logs', 'relu', 's1')], { stepsPerEpoch: 5 });
    expect(runs[0]!.manifest.decayEpochs).toEqual([2, 4]);
    expect(runs[0]!.records.filter((r) => r.kind === 'step')).toHaveLength(30);
  });
});

/** A falling center loss with a x1.5 jump at epochs 6, 7 and an lr decay at 6, over 10 epochs of 4 steps. */
const E = 10;
const SPE = 4;
const center = (e: number) => 2 * 0.9 ** e * (e === 6 || e === 7 ? 1.5 : 1);
const lr = (e: number) => (e < 6 ? 0.1 : 0.01);

describe('other formats', () => {
  it('MLflow run folders (metrics/<key>: timestamp value step)', () => {
    const dir = tmp();
    for (const [id, name] of [['a1b2', 'relu-run'], ['c3d4', 'prelu-run']] as const) {
      const run = path.join(dir, '0', id);
      mkdirSync(path.join(run, 'metrics', 'loss'), { recursive: true });
      mkdirSync(path.join(run, 'tags'), { recursive: true });
      writeFileSync(path.join(run, 'meta.yaml'), `run_id: ${id}\n`);
      writeFileSync(path.join(run, 'tags', 'mlflow.runName'), name);
      const jump = name.startsWith('relu');
      writeFileSync(path.join(run, 'metrics', 'loss', 'center'), Array.from({ length: E }, (_, e) => `${1700000000000 + e} ${jump ? center(e) : 2 * 0.9 ** e} ${e}`).join('\n') + '\n');
      writeFileSync(path.join(run, 'metrics', 'learning_rate'), Array.from({ length: E }, (_, e) => `${1700000000000 + e} ${lr(e)} ${e}`).join('\n') + '\n');
    }
    const { runs } = ingestPaths([dir]);
    expect(runs.map((r) => [r.manifest.name, r.manifest.variant, r.manifest.decayEpochs])).toEqual([
      ['relu-run', 'relu-run', [6]],
      ['prelu-run', 'prelu-run', [6]],
    ]);
    const res = analyzeDecay(runs).filter((r) => r.split === 'train');
    expect(res.find((r) => r.variant === 'relu-run')!.ratioMean).toBeCloseTo(1.5, 6);
    expect(res.find((r) => r.variant === 'prelu-run')!.ratioMean).toBeCloseTo(1, 6);
    writeFileSync(path.join(dir, '0', 'a1b2', 'metrics', 'learning_rate'), '1700000000000 0.1 zero\n');
    expect(inputError(() => ingestPaths([dir])).message).toContain(`${path.join(dir, '0', 'a1b2', 'metrics', 'learning_rate')}:1: step: step must be a non-negative integer`);
  });

  it('W&B history: CSV and JSON lines with _step', () => {
    const dir = tmp();
    const rows = Array.from({ length: E }, (_, e) => ({ _step: e, _runtime: e * 3.5, epoch: e, center_loss: center(e), lr: lr(e) }));
    writeFileSync(path.join(dir, 'wandb_export.csv'), '"_step","_runtime","epoch","center_loss","lr"\n' + rows.map((r) => `${r._step},${r._runtime},${r.epoch},${r.center_loss},${r.lr}`).join('\n') + '\n');
    mkdirSync(path.join(dir, 'files'));
    writeFileSync(path.join(dir, 'files', 'wandb-history.jsonl'), rows.map((r) => JSON.stringify({ ...r, _timestamp: 1.7e9 + r._step, _wandb: { runtime: 1 } })).join('\n') + '\n');
    const csv = ingestPaths([path.join(dir, 'wandb_export.csv')]).runs[0]!;
    const jsonl = ingestPaths([path.join(dir, 'files')]).runs[0]!;
    for (const run of [csv, jsonl]) {
      expect(run.manifest.decayEpochs).toEqual([6]);
      expect(analyzeDecay([run]).find((r) => r.split === 'train')!.seeds[0]!.ratio).toBeCloseTo(1.5, 6);
    }
    expect(jsonl.manifest.name).toBe('files');
    writeFileSync(path.join(dir, 'bad.jsonl'), '{"_step": 0, "center_loss": 1}\n{"center_loss": 2}\n');
    expect(inputError(() => ingestPaths([path.join(dir, 'bad.jsonl')])).message).toBe(`${path.join(dir, 'bad.jsonl')}:2: _step: no numeric _step (not a W&B history line)`);
  });

  it('Lightning CSVLogger metrics.csv: step rows and epoch rows mixed', () => {
    const dir = path.join(tmp(), 'lightning_logs', 'version_0');
    mkdirSync(dir, { recursive: true });
    // Step rows: train_center_step and lr-SGD every step; epoch rows: train_center_epoch and val_center.
    const lines = ['epoch,lr-SGD,step,train_center_epoch,train_center_step,val_center'];
    for (let e = 0; e < E; e++) {
      for (let i = 0; i < SPE; i++) {
        const step = e * SPE + i;
        lines.push(`${e},${lr(e)},${step},,${center(e) * (1 + 0.01 * (i - 1.5))},`);
      }
      lines.push(`${e},,${e * SPE + SPE - 1},${center(e)},,`);
      lines.push(`${e},,${e * SPE + SPE - 1},,,${2.2 * 0.9 ** e}`);
    }
    writeFileSync(path.join(dir, 'metrics.csv'), lines.join('\n') + '\n');
    writeFileSync(path.join(dir, 'hparams.yaml'), 'lr: 0.1\n');
    const { runs } = ingestPaths([path.dirname(dir)]);
    const run = runs[0]!;
    expect(run.manifest.name).toBe('version_0');
    expect(run.manifest.decayEpochs).toEqual([6]);
    const steps = run.records.filter((r) => r.kind === 'step');
    expect(steps).toHaveLength(E * SPE);
    expect(steps.find((r) => r.step === 9)).toMatchObject({ epoch: 2, iter: 1 });
    // the logged epoch value, not the mean of the steps, is the epoch record
    expect(run.records.find((r) => r.kind === 'epoch' && r.split === 'train' && r.epoch === 3)!.center).toBe(center(3));
    const res = analyzeDecay(runs);
    expect(res.find((r) => r.split === 'train' && r.resolution === 'epoch')!.seeds[0]!.ratio).toBeCloseTo(1.5, 6);
    expect(res.find((r) => r.split === 'valid')!.seeds[0]!.ratio).toBeCloseTo(1, 6);
  });
});

describe("spikeprobe's own runs", () => {
  /** A runs directory built from the recorded FER-like runs (test/fixtures/analysis/fer-like). */
  function runStore(): string {
    const dir = path.join(tmp(), 'fer-like');
    const fix = path.join(HERE, 'fixtures', 'analysis', 'fer-like');
    for (const f of readdirSync(fix)) {
      const run = JSON.parse(readFileSync(path.join(fix, f), 'utf8')) as RunData;
      const d = path.join(dir, run.manifest.name);
      mkdirSync(d, { recursive: true });
      writeFileSync(path.join(d, 'manifest.json'), JSON.stringify(run.manifest));
      writeFileSync(path.join(d, 'metrics.jsonl'), run.records.map((r) => JSON.stringify(r)).join('\n') + '\n');
    }
    return dir;
  }

  it('a runs directory is read as its suite, with the run store reader', () => {
    const dir = runStore();
    const { runs, suiteDir } = ingestPaths([dir]);
    expect(suiteDir).toBe(dir);
    expect([...new Set(runs.map((r) => r.manifest.variant))].sort()).toEqual(['relu', 'relu-clean']);
    expect(runs).toHaveLength(6);
  });

  it('exported as event files and analysed again: the same verdicts', () => {
    const dir = runStore();
    const { runs } = ingestPaths([dir]);
    const out = path.join(tmp(), 'tb');
    for (const run of runs) {
      for (const [rel, bytes] of runEventFiles(run)) {
        const p = path.join(out, run.manifest.variant, `s${run.manifest.seed}`, rel);
        mkdirSync(path.dirname(p), { recursive: true });
        writeFileSync(p, bytes);
      }
    }
    const back = ingestPaths([out]).runs;
    expect(back.map((r) => [r.manifest.variant, r.manifest.decayEpochs])).toEqual(runs.map((r) => [r.manifest.variant, r.manifest.decayEpochs]));
    const a = analyzeSuite('x', runs).results;
    const b = analyzeSuite('x', back).results;
    const key = (r: (typeof a)[number]) => `${r.variant}/${r.split}/${r.resolution}/${r.decayEpoch}/${r.metric}`;
    expect(b.map(key)).toEqual(a.map(key));
    expect(a.length).toBeGreaterThan(4);
    for (let i = 0; i < a.length; i++) {
      expect(b[i]!.verdict, key(a[i]!)).toBe(a[i]!.verdict);
      // float32 in the event file: ratios agree to float32 precision
      expect(Math.abs(b[i]!.ratioMean - a[i]!.ratioMean), key(a[i]!)).toBeLessThan(1e-5);
    }
  });
});
