/**
 * Named scalar series of one run (from event files, TensorBoard exports, MLflow, W&B, Lightning)
 * turned into the run store's records.
 *
 * Key and split of a series: the series named by `metric` (an exact tag) becomes 'center', the key
 * the analysis measures; otherwise names.ts reads the key from the tag (and a second series that
 * would also be 'center' keeps its tag as key). The split comes from the tag, else from the run's
 * folder (`tf2/validation`, `L_center_train`), else the run name, else 'train'. Two center-loss
 * series of the same split and unit are an error asking for --metric; for any other key the
 * first tag (in name order) keeps the key and the rest keep their tags.
 *
 * What a point's step counts: 'epoch' series are per epoch. 'step' series are per global step
 * with each point's epoch given (a CSV's epoch column). 'auto' series (event files, MLflow, W&B
 * `_step`, TensorBoard exports) are per global step when stepsPerEpoch is given (epoch =
 * floor(step / stepsPerEpoch)) or when an `epoch` scalar is logged in the same folder (a step's
 * epoch is the value of the last `epoch` point at or before it); otherwise per epoch. stepUnit
 * forces the choice; steps of 1000 and more read as epochs are reported through onWarn. A series
 * whose writer stated its key and split (spikeprobe's own export) keeps them.
 *
 * Per-step series give train step records (iter = step minus the epoch's first step: exact with
 * stepsPerEpoch, else the first logged step of the epoch) and epoch records: train the mean of the
 * epoch's points, valid/test the epoch's last point; an epoch series of the same key and split
 * takes precedence over such an aggregate.
 */
import type { MetricRecord, Split } from '../store/types.js';
import { InputError } from '../util/errors.js';
import { classifyName, splitOf, tokens } from './names.js';

export type SeriesUnit = 'epoch' | 'step' | 'auto';

export interface SeriesPoint {
  step: number;
  value: number;
  /** The point's epoch where the log states it (a CSV epoch column). */
  epoch?: number;
}

export interface Series {
  tag: string;
  source: string;
  unit: SeriesUnit;
  /** Split named by the run's folder or file name. */
  split?: Split;
  /** Key and split stated by the writer (spikeprobe's own export), used as they are. */
  exact?: { key: string; split: Split };
  /** The folder the series was logged in: an `epoch` scalar makes the 'auto' series of its own folder per step. */
  group?: string;
  points: SeriesPoint[];
}

export interface SeriesOptions {
  metric?: string;
  stepUnit?: 'epoch' | 'step';
  stepsPerEpoch?: number;
  /** Told (once per run) when steps read as epochs look like global steps. */
  onWarn?: (msg: string) => void;
}

/** Steps read as epochs from this on look like global steps (a warning, not an error). */
const MANY_EPOCHS = 1000;

const SPLIT_ORDER: Split[] = ['train', 'valid', 'test'];

/** Whether a tag is the epoch counter ('epoch', 'trainer/epoch'). */
export function isEpochTag(tag: string): boolean {
  const t = tokens(tag).filter((x) => x !== 'trainer');
  return t.length === 1 && (t[0] === 'epoch' || t[0] === 'epochs');
}

interface Placed {
  s: Series;
  key: string;
  split: Split;
  unit: 'epoch' | 'step';
}

export function seriesToRecords(series: readonly Series[], runName: string, opts: SeriesOptions = {}): MetricRecord[] {
  const spe = opts.stepsPerEpoch;
  if (spe !== undefined && !(Number.isInteger(spe) && spe > 0)) {
    throw new InputError(`steps per epoch must be a positive integer, got ${spe}`, 'options', 'stepsPerEpoch');
  }
  const epochSeries = series.filter((s) => isEpochTag(s.tag) && s.tag !== opts.metric && !s.exact);
  const epochPtsOf = new Map<string, SeriesPoint[]>();
  for (const s of epochSeries) {
    // An epoch counter logged against the epoch itself (step = epoch) says nothing about steps.
    if (s.points.every((p) => Math.round(p.value) === p.step)) continue;
    epochPtsOf.set(s.group ?? '', [...s.points].sort((a, b) => a.step - b.step));
  }
  const perStepOf = (s: Series) =>
    opts.stepUnit === 'step' || (opts.stepUnit !== 'epoch' && (spe !== undefined || epochPtsOf.has(s.group ?? '')));
  const runSplit = splitOf(runName);

  const placed: Placed[] = [];
  const sorted = [...series].filter((s) => !epochSeries.includes(s)).sort((a, b) => (a.tag < b.tag ? -1 : a.tag > b.tag ? 1 : 0));
  for (const s of sorted) {
    const m = s.exact ? { key: s.exact.key, split: s.exact.split, splitNamed: true } : classifyName(s.tag);
    let key = m.key;
    if (opts.metric !== undefined) key = s.tag === opts.metric ? 'center' : key === 'center' ? s.tag : key;
    if (key === '') key = s.tag;
    const split = m.splitNamed ? m.split : (s.split ?? runSplit ?? 'train');
    const unit = s.unit === 'auto' ? (perStepOf(s) ? 'step' : 'epoch') : s.unit;
    const clash = placed.find((p) => p.key === key && p.split === split && p.unit === unit);
    if (clash) {
      if (key === 'center') {
        throw new InputError(
          `'${clash.s.tag}' and '${s.tag}' both look like the ${split} center loss; pick one with --metric TAG`,
          s.source === clash.s.source ? s.source : `${clash.s.source}, ${s.source}`,
        );
      }
      key = s.tag;
    }
    placed.push({ s, key, split, unit });
  }
  const guessed = placed.find((p) => p.s.unit === 'auto' && p.unit === 'epoch' && p.s.points.some((pt) => pt.step >= MANY_EPOCHS));
  if (guessed && opts.stepUnit !== 'epoch') {
    const max = guessed.s.points.reduce((m, pt) => Math.max(m, pt.step), 0);
    opts.onWarn?.(
      `${guessed.s.source}: '${guessed.s.tag}' has steps up to ${max}, read as epochs; if they are global steps, give --steps-per-epoch N or log an 'epoch' scalar`,
    );
  }

  const epochOf = (p: SeriesPoint, s: Series): number => {
    if (p.epoch !== undefined) return p.epoch;
    if (spe !== undefined) return Math.floor(p.step / spe);
    const epochPts = epochPtsOf.get(s.group ?? '') ?? [];
    if (epochPts.length > 0) {
      let lo = 0;
      let hi = epochPts.length - 1;
      if (p.step < epochPts[0]!.step) return Math.round(epochPts[0]!.value);
      while (lo < hi) {
        const mid = (lo + hi + 1) >> 1;
        if (epochPts[mid]!.step <= p.step) lo = mid;
        else hi = mid - 1;
      }
      return Math.round(epochPts[lo]!.value);
    }
    throw new InputError(
      `'${s.tag}' is logged per step: give --steps-per-epoch N, or log an 'epoch' scalar`,
      s.source,
      'stepsPerEpoch',
    );
  };

  const epochRecs = new Map<string, MetricRecord>();
  const fromEpochSeries = new Set<string>();
  const stepRecs = new Map<number, MetricRecord>();
  const epochRec = (split: Split, epoch: number): MetricRecord => {
    const id = `${split}/${epoch}`;
    let r = epochRecs.get(id);
    if (!r) epochRecs.set(id, (r = { kind: 'epoch', epoch, split }));
    return r;
  };
  const checkEpoch = (e: number, s: Series) => {
    if (!Number.isInteger(e) || e < 0) throw new InputError(`epoch must be a non-negative integer, got ${e}`, s.source, s.tag);
  };
  // Epoch series first: they take precedence over per-step aggregates.
  for (const p of placed.filter((x) => x.unit === 'epoch')) {
    for (const pt of p.s.points) {
      const e = pt.epoch ?? pt.step;
      checkEpoch(e, p.s);
      epochRec(p.split, e)[p.key] = pt.value;
      fromEpochSeries.add(`${p.split}/${e}/${p.key}`);
    }
  }
  const firstStep = new Map<number, number>();
  const stepPlaced = placed.filter((x) => x.unit === 'step');
  const withEpoch = stepPlaced.map((p) => ({ p, pts: [...p.s.points].sort((a, b) => a.step - b.step).map((pt) => ({ pt, e: epochOf(pt, p.s) })) }));
  for (const { p, pts } of withEpoch) {
    for (const { pt, e } of pts) {
      checkEpoch(e, p.s);
      if (spe === undefined) firstStep.set(e, Math.min(firstStep.get(e) ?? Infinity, pt.step));
    }
  }
  for (const pt of [...epochPtsOf.values()].flat()) {
    const e = Math.round(pt.value);
    if (spe === undefined && e >= 0) firstStep.set(e, Math.min(firstStep.get(e) ?? Infinity, pt.step));
  }
  for (const { p, pts } of withEpoch) {
    const byEpoch = new Map<number, number[]>();
    for (const { pt, e } of pts) {
      let list = byEpoch.get(e);
      if (!list) byEpoch.set(e, (list = []));
      list.push(pt.value);
      if (p.split === 'train') {
        let r = stepRecs.get(pt.step);
        const iter = spe !== undefined ? pt.step - e * spe : pt.step - firstStep.get(e)!;
        if (!r) stepRecs.set(pt.step, (r = { kind: 'step', epoch: e, split: 'train', step: pt.step, iter: Math.max(0, iter) }));
        r[p.key] = pt.value;
      }
    }
    for (const [e, vals] of byEpoch) {
      if (fromEpochSeries.has(`${p.split}/${e}/${p.key}`)) continue;
      epochRec(p.split, e)[p.key] = p.split === 'train' ? vals.reduce((a, v) => a + v, 0) / vals.length : vals[vals.length - 1]!;
    }
  }
  const epochs = [...epochRecs.values()].sort((a, b) => SPLIT_ORDER.indexOf(a.split) - SPLIT_ORDER.indexOf(b.split) || a.epoch - b.epoch);
  const steps = [...stepRecs.values()].sort((a, b) => a.step! - b.step!);
  return [...epochs, ...steps];
}

/** Series names found, for the error that lists them. */
export function seriesTags(series: readonly Series[]): string[] {
  return [...new Set(series.map((s) => s.tag))];
}
