import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import {
  classifyName,
  detectDecayEpochs,
  detectFormat,
  ingestFiles,
  ingestTexts,
  parseMetricsCsv,
  parseTensorBoardCsv,
  parseTensorBoardJson,
} from '../src/ingest/index.js';
import { analyzeDecay } from '../src/analysis/spike.js';
import { InputError } from '../src/util/errors.js';
import type { MetricRecord } from '../src/store/types.js';

const FIX = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures', 'analysis');
const fix = (...p: string[]) => path.join(FIX, ...p);

/**
 * The fixtures were written from these formulas (values printed with 6 significant digits):
 *  center(e) = scale·0.9^e, times 1.25 at epochs 10 and 20; lr 0.1 (e < 10), 0.01 (e < 20), 0.001.
 *  keras_log.csv and tb/run-relu_s0_*: scale 2; tb/run-relu_s1_*.json: scale 2.1;
 *  validation center loss 2.2·0.9^e (no spike).
 *  tbsteps/: 20 steps per epoch, center = 2·0.95^(step/20), times 1.4 for the first 4 steps of
 *  epoch 8; lr 0.1 before epoch 8, 0.01 from it.
 */
const PLANTED = 1.25;
const STEP_PLANTED = 1.4;

async function inputError(p: Promise<unknown> | (() => unknown)): Promise<InputError> {
  try {
    if (typeof p === 'function') p();
    else await p;
  } catch (e) {
    expect(e).toBeInstanceOf(InputError);
    return e as InputError;
  }
  throw new Error('expected an InputError');
}

describe('names', () => {
  it('maps column and tag names to split and key', () => {
    const cases: [string, string, string][] = [
      ['center_loss', 'train', 'center'],
      ['val_center_loss', 'valid', 'center'],
      ['train/center_loss', 'train', 'center'],
      ['epoch_learning_rate', 'train', 'lr'],
      ['lr', 'train', 'lr'],
      ['center_lr', 'train', 'center_lr'],
      ['center_drift', 'train', 'center_drift'],
      ['eff_lr/conv1', 'train', 'eff_lr/conv1'],
      ['dead_frac/conv2', 'train', 'dead_frac/conv2'],
      ['loss', 'train', 'total'],
      ['val_loss', 'valid', 'total'],
      ['test/ce', 'test', 'ce'],
      ['softmax_loss', 'train', 'ce'],
      ['val_accuracy', 'valid', 'acc'],
      ['cl_within', 'train', 'cl_within'],
      ['eval_feat_sq', 'valid', 'feat_sq'],
      ['grad_norm', 'train', 'grad_norm'],
    ];
    for (const [name, split, key] of cases) {
      const m = classifyName(name);
      expect([name, m.split, m.key]).toEqual([name, split, key]);
    }
  });
});

describe('plain per-epoch CSV', () => {
  it('reads a Keras CSVLogger file into train and valid epoch records', async () => {
    const [run] = await ingestFiles([fix('keras_log.csv')]);
    expect(run!.manifest.decayEpochs).toEqual([10, 20]);
    // one run, its own variant, named after the file
    expect(run!.manifest.variant).toBe('keras_log');
    expect(run!.manifest.epochsDone).toBe(30);
    const train = run!.records.filter((r) => r.split === 'train');
    const valid = run!.records.filter((r) => r.split === 'valid');
    expect(train).toHaveLength(30);
    expect(valid).toHaveLength(30);
    const e3 = train.find((r) => r.epoch === 3)!;
    expect(e3.kind).toBe('epoch');
    expect(e3.center).toBeCloseTo(2 * 0.9 ** 3, 5);
    expect(e3.total).toBeCloseTo(2 * 0.9 ** 3 + 1, 5);
    expect(e3.lr).toBe(0.1);
    expect(valid.find((r) => r.epoch === 3)!.center).toBeCloseTo(2.2 * 0.9 ** 3, 5);
  });

  it('the analysis finds the planted spikes in the imported log, and none in validation', async () => {
    const runs = await ingestFiles([fix('keras_log.csv')]);
    const results = analyzeDecay(runs);
    for (const d of [10, 20]) {
      const train = results.find((r) => r.split === 'train' && r.decayEpoch === d)!;
      expect(train.seeds[0]!.ratio).toBeCloseTo(PLANTED, 4);
      const valid = results.find((r) => r.split === 'valid' && r.decayEpoch === d)!;
      expect(valid.seeds[0]!.ratio).toBeCloseTo(1, 4);
      expect(valid.verdict).toBe('no-spike');
    }
  });

  it('split column, missing cells, given decay epochs, no epoch column', () => {
    const text = 'split,epoch,center,cl_within\ntrain,0,1.0,0.6\nvalid,0,1.1,\ntrain,1,0.9,nan\n';
    const recs = parseMetricsCsv(text, 'x.csv');
    expect(recs).toEqual<MetricRecord[]>([
      { kind: 'epoch', epoch: 0, split: 'train', center: 1.0, cl_within: 0.6 },
      { kind: 'epoch', epoch: 0, split: 'valid', center: 1.1 },
      { kind: 'epoch', epoch: 1, split: 'train', center: 0.9 },
    ]);
    const noEpoch = parseMetricsCsv('center;lr\n1.0;0.1\n0.9;0.1\n', 'y.csv');
    expect(noEpoch.map((r) => [r.epoch, r.center, r.lr])).toEqual([
      [0, 1.0, 0.1],
      [1, 0.9, 0.1],
    ]);
    const [run] = ingestTexts([{ path: 'z.csv', text: 'epoch,center\n0,1\n1,0.9\n2,0.8\n' }], { decayEpochs: [2, 1, 2], variant: 'mine' });
    expect(run!.manifest.decayEpochs).toEqual([1, 2]);
    expect(run!.manifest.variant).toBe('mine');
  });

  it('several files: each its own variant, or seeds of one with a variant name', () => {
    const mk = (scale: number) => Array.from({ length: 12 }, (_, e) => `${e},${(scale * 0.9 ** e * (e === 8 ? 1.3 : 1)).toFixed(8)},${e < 8 ? 0.1 : 0.01}`).join('\n');
    const runs = ingestTexts([
      { path: 'a/seed1.csv', text: `epoch,center_loss,lr\n${mk(1)}\n` },
      { path: 'a/seed2.csv', text: `epoch,center_loss,lr\n${mk(1.5)}\n` },
      { path: 'a/seed3.csv', text: `epoch,center_loss,lr\n${mk(0.8)}\n` },
    ], { variant: 'mine' });
    expect(runs.map((r) => [r.manifest.name, r.manifest.seed, r.manifest.decayEpochs])).toEqual([
      ['seed1', 0, [8]],
      ['seed2', 1, [8]],
      ['seed3', 2, [8]],
    ]);
    const res = analyzeDecay(runs).find((r) => r.split === 'train' && r.resolution === 'epoch')!;
    expect(res.variant).toBe('mine');
    expect(res.n).toBe(3);
    const apart = ingestTexts([
      { path: 'relu.csv', text: `epoch,center_loss,lr\n${mk(1)}\n` },
      { path: 'prelu.csv', text: `epoch,center_loss,lr\n${mk(1.5)}\n` },
    ]);
    expect(apart.map((r) => [r.manifest.variant, r.manifest.seed])).toEqual([
      ['relu', 0],
      ['prelu', 0],
    ]);
    expect(analyzeDecay(apart).filter((r) => r.split === 'train' && r.resolution === 'epoch').map((r) => [r.variant, r.n])).toEqual([
      ['relu', 1],
      ['prelu', 1],
    ]);
    expect(res.ratioMean).toBeCloseTo(1.3, 6);
    expect(res.verdict).toBe('spike');
  });
});

describe('TensorBoard exports', () => {
  it('parses the CSV and JSON forms', () => {
    const s = parseTensorBoardCsv('Wall time,Step,Value\n1.5,0,2\n2.5,1,1.8\n3.5,2,nan\n', 'run-a-tag-val_center_loss.csv');
    expect(s.key).toBe('center');
    expect(s.split).toBe('valid');
    expect(s.points).toEqual([
      { wall: 1.5, step: 0, value: 2, line: 2 },
      { wall: 2.5, step: 1, value: 1.8, line: 3 },
    ]);
    const j = parseTensorBoardJson('[[1.5, 0, 2], [2.5, 1, 1.8]]', 'run-b_train-tag-learning_rate.json');
    expect(j.key).toBe('lr');
    expect(j.split).toBe('train');
    expect(j.points.map((p) => [p.step, p.value])).toEqual([
      [0, 2],
      [1, 1.8],
    ]);
    expect(detectFormat('x.csv', 'Wall time,Step,Value\n')).toBe('tensorboard-csv');
    expect(detectFormat('x.txt', '[[1,2,3]]')).toBe('tensorboard-json');
    expect(detectFormat('x.csv', 'epoch,loss\n')).toBe('metrics-csv');
    expect(detectFormat('metrics.csv', 'epoch,step,train_loss_step\n')).toBe('step-table');
    expect(detectFormat('x.csv', 'split,epoch,step,center\n')).toBe('metrics-csv');
    expect(detectFormat('h.jsonl', '{"_step": 0}\n')).toBe('wandb-jsonl');
  });

  it('groups files by run (split tokens aside) and analyses them', async () => {
    const files = [
      'run-relu_s0_train-tag-center_loss.csv',
      'run-relu_s0_train-tag-learning_rate.csv',
      'run-relu_s0_validation-tag-center_loss.csv',
      'run-relu_s1_train-tag-center_loss.json',
      'run-relu_s1_train-tag-learning_rate.json',
    ].map((f) => fix('tb', f));
    const runs = await ingestFiles(files, { variant: 'relu' });
    expect(runs.map((r) => [r.manifest.name, r.manifest.seed, r.manifest.decayEpochs])).toEqual([
      ['relu_s0', 0, [10, 20]],
      ['relu_s1', 1, [10, 20]],
    ]);
    expect(runs[0]!.records.filter((r) => r.split === 'valid')).toHaveLength(30);
    expect(runs[1]!.records.filter((r) => r.split === 'valid')).toHaveLength(0);
    expect(runs[1]!.records.find((r) => r.epoch === 4)!.center).toBeCloseTo(2.1 * 0.9 ** 4, 5);
    const results = analyzeDecay(runs);
    const train20 = results.find((r) => r.split === 'train' && r.decayEpoch === 20)!;
    expect(train20.n).toBe(2);
    expect(train20.ratioMean).toBeCloseTo(PLANTED, 4);
    expect(train20.verdict).toBe('spike');
    expect(results.find((r) => r.split === 'valid' && r.decayEpoch === 20)!.seeds[0]!.ratio).toBeCloseTo(1, 4);
  });

  it('per-iteration Step: step records, epoch means and a step-resolution spike', async () => {
    const S = 20;
    const files = ['run-steps-tag-train_center_loss.csv', 'run-steps-tag-lr.csv'].map((f) => fix('tbsteps', f));
    const [run] = await ingestFiles(files, { stepUnit: 'step', stepsPerEpoch: S });
    expect(run!.manifest.decayEpochs).toEqual([8]);
    const steps = run!.records.filter((r) => r.kind === 'step');
    expect(steps).toHaveLength(12 * S);
    const s45 = steps.find((r) => r.step === 45)!;
    expect([s45.epoch, s45.iter]).toEqual([2, 5]);
    let sum = 0;
    for (let i = 0; i < S; i++) sum += 2 * 0.95 ** ((3 * S + i) / S);
    expect(run!.records.find((r) => r.kind === 'epoch' && r.epoch === 3)!.center).toBeCloseTo(sum / S, 5);
    const step = analyzeDecay([run!]).find((r) => r.resolution === 'step')!;
    expect(step.seeds[0]!.ratio).toBeCloseTo(STEP_PLANTED, 4);
    expect(step.seeds[0]!.at).toBe(8 * S);
    expect(step.verdict).toBe('spike');
  });
});

describe('decay detection from the lr series', () => {
  const recs = (lrs: number[]): MetricRecord[] => lrs.map((lr, e) => ({ kind: 'epoch', epoch: e, split: 'train', lr }));
  it('finds each drop, ignores rises and float noise', () => {
    expect(detectDecayEpochs(recs([0.1, 0.1, 0.1, 0.01, 0.01, 0.001]))).toEqual([3, 5]);
    // warm-up rise then a drop at 4
    expect(detectDecayEpochs(recs([0.01, 0.05, 0.1, 0.1, 0.01]))).toEqual([4]);
    // 0.1 printed as 0.09999999 is not a decay
    expect(detectDecayEpochs(recs([0.1, 0.09999999, 0.1, 0.05]))).toEqual([3]);
    expect(detectDecayEpochs(recs([0.1, 0.1]))).toEqual([]);
    expect(detectDecayEpochs(recs([0.1, 0.095, 0.09]), { minDrop: 0.2 })).toEqual([]);
  });
  it('uses train step records when there is no epoch lr, epoch of the first lowered step', () => {
    const steps: MetricRecord[] = [0, 1, 2, 3, 4, 5].map((s) => ({ kind: 'step', epoch: Math.floor(s / 2), split: 'train', step: s, iter: s % 2, lr: s < 3 ? 0.1 : 0.01 }));
    expect(detectDecayEpochs(steps)).toEqual([1]);
  });
});

describe('malformed input', () => {
  const bad = (f: string) => fix('bad', f);
  it('names the file and the line or field', async () => {
    let e = await inputError(ingestFiles([bad('short_row.csv')]));
    expect(e.message).toContain('short_row.csv:3');
    expect(e.message).toMatch(/expected 3 fields.*found 2/);

    e = await inputError(ingestFiles([bad('not_number.csv')]));
    expect(e.message).toContain('not_number.csv:3');
    expect(e.message).toContain('center_loss');
    expect(e.message).toContain("'abc'");

    e = await inputError(ingestFiles([bad('tb_fractional_step.csv')]));
    expect(e.message).toContain('tb_fractional_step.csv:3');
    expect(e.message).toContain('Step');

    e = await inputError(ingestFiles([bad('tb_not_array.json')]));
    expect(e.message).toContain('tb_not_array.json');
    expect(e.message).toContain('JSON array');

    e = await inputError(ingestFiles([bad('tb_bad_entry.json')]));
    expect(e.message).toContain('tb_bad_entry.json: [1]');

    e = await inputError(ingestFiles([bad('tb_broken.json')]));
    expect(e.message).toMatch(/tb_broken\.json: invalid JSON/);

    e = await inputError(ingestFiles([bad('empty.csv')]));
    expect(e.message).toContain('empty.csv');

    e = await inputError(ingestFiles([bad('dup_epoch.csv')]));
    expect(e.message).toContain('dup_epoch.csv:4');
    expect(e.message).toContain('line 3');

    e = await inputError(ingestFiles([bad('no_center.csv')]));
    expect(e.message).toContain('no_center.csv');
    expect(e.message).toContain('no center-loss series (found: acc, lr)');

    e = await inputError(ingestFiles([bad('no_lr.csv')]));
    expect(e.message).toContain('no_lr.csv');
    expect(e.message).toMatch(/learning-rate/);
    // ... which the decay epochs given explicitly resolve
    expect((await ingestFiles([bad('no_lr.csv')], { decayEpochs: [1] }))[0]!.manifest.decayEpochs).toEqual([1]);

    e = await inputError(ingestFiles([bad('does_not_exist.csv')]));
    expect(e.message).toContain('does_not_exist.csv');
  });

  it('rejects ambiguous columns, bad splits and options', async () => {
    let e = await inputError(() => parseMetricsCsv('epoch,loss,total_loss\n0,1,1\n', 'amb.csv'));
    expect(e.message).toContain("'loss' and 'total_loss'");
    e = await inputError(() => parseMetricsCsv('epoch,split,center\n0,holdout,1\n', 's.csv'));
    expect(e.message).toContain('s.csv:2');
    expect(e.message).toContain('holdout');
    e = await inputError(() => parseMetricsCsv('epoch,center\n-1,1\n', 'neg.csv'));
    expect(e.message).toContain('neg.csv:2');
    e = await inputError(() => parseMetricsCsv('epoch,center\n0,"1\n', 'q.csv'));
    expect(e.message).toContain('q.csv:2');
    const tb = { path: 'run-x-tag-center_loss.csv', text: 'Wall time,Step,Value\n1,0,1\n2,1,0.9\n' };
    e = await inputError(() => ingestTexts([tb], { stepUnit: 'step', decayEpochs: [1] }));
    expect(e.message).toContain('stepsPerEpoch');
    e = await inputError(() => ingestTexts([tb, tb], { decayEpochs: [1] }));
    expect(e.message).toContain('run-x-tag-center_loss.csv');
    e = await inputError(() => ingestTexts([{ path: 'run-x-tag-center_loss.csv', text: 'Wall time,Step,Value\n1,0,1\n2,0,0.9\n' }], { decayEpochs: [1] }));
    expect(e.message).toContain('Step 0 appears twice');
    await inputError(() => ingestTexts([]));
    e = await inputError(() => ingestTexts([{ path: 'run/metrics.jsonl', text: '{"kind":"epoch","epoch":0}\n' }]));
    expect(e.message).toContain('run/metrics.jsonl: unrecognised format');
  });
});
