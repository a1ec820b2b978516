/**
 * `spikeprobe analyze FILE...`: a user's own logs from another framework, turned into RunData so
 * the same analysis applies.
 *
 * Formats (detectFormat): a .json file, or any file whose text starts with '[', is a TensorBoard
 * scalar JSON export; a delimited file whose header is `Wall time,Step,Value` a TensorBoard scalar
 * CSV export; any other delimited file a plain per-epoch metrics CSV (table.ts). A non-.json file
 * whose text starts with '{' (JSON objects, e.g. a metrics.jsonl) is refused as unrecognised.
 *
 * Runs: each plain metrics CSV is one run. TensorBoard files (one series each) are grouped into
 * runs by folder and run name (tensorboard.ts); a (split, key) given twice within a run is an error.
 * Runs are numbered seed 0, 1, ... in the order their first file was given, all under one variant
 * (default 'imported'), so several files of the same kind are seeds of one variant.
 *
 * TensorBoard `Step`: with stepUnit 'epoch' (the default) it is the epoch. With stepUnit 'step' it
 * is the global step and stepsPerEpoch is required: epoch = floor(step / stepsPerEpoch),
 * iter = step mod stepsPerEpoch; train series become step records plus epoch records holding the
 * mean of the epoch's logged steps (an approximation when steps are logged sparsely), valid/test
 * series epoch records holding the value at the epoch's last logged step.
 *
 * Decay epochs: `decayEpochs` if given, else found from the run's lr series (decay.ts). Each run
 * must carry `metric` (default 'center') and have at least one decay epoch; otherwise InputError.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { MetricRecord, RunManifest, Split } from '../store/types.js';
import type { RunData } from '../analysis/types.js';
import { InputError } from '../util/errors.js';
import { parseMetricsCsv } from './table.js';
import { parseTensorBoardCsv, parseTensorBoardJson, isTensorBoardCsvHeader, type ScalarSeries, type ScalarPoint } from './tensorboard.js';
import { detectDecayEpochs } from './decay.js';
import { splitCsvLine } from './csv.js';

export { parseCsv, parseCell, splitCsvLine, type CsvTable, type CsvRow } from './csv.js';
export { classifyName, splitOf, type NameMeaning } from './names.js';
export { parseMetricsCsv } from './table.js';
export {
  parseTensorBoardCsv,
  parseTensorBoardJson,
  describeTensorBoardName,
  isTensorBoardCsvHeader,
  type ScalarSeries,
  type ScalarPoint,
} from './tensorboard.js';
export { detectDecayEpochs, type DetectDecayOptions } from './decay.js';

export type InputFormat = 'tensorboard-csv' | 'tensorboard-json' | 'metrics-csv';

export interface InputText {
  path: string;
  text: string;
}

export interface IngestOptions {
  /** Decay epochs (in the files' epoch numbering); found from the lr series when absent. */
  decayEpochs?: number[];
  /** Variant name for every run (default 'imported'). */
  variant?: string;
  /** What TensorBoard's Step counts (default 'epoch'). */
  stepUnit?: 'epoch' | 'step';
  /** Required with stepUnit 'step'. */
  stepsPerEpoch?: number;
  /** Key each run must carry (default 'center'). */
  metric?: string;
  /** Smallest relative lr drop that counts as a decay (default 0.01). */
  minLrDrop?: number;
}

export function detectFormat(file: string, text: string): InputFormat {
  const t = text.replace(/^\uFEFF/, '').trimStart();
  if (/\.json$/i.test(file) || t.startsWith('[')) return 'tensorboard-json';
  const first = t.split(/\r?\n/, 1)[0] ?? '';
  const delim = first.includes('\t') && !first.includes(',') ? '\t' : first.includes(';') && !first.includes(',') ? ';' : ',';
  try {
    if (isTensorBoardCsvHeader(splitCsvLine(first, delim, file, 1))) return 'tensorboard-csv';
  } catch {
    // a malformed header is reported by the metrics-CSV parser
  }
  return 'metrics-csv';
}

const SPLIT_ORDER: Split[] = ['train', 'valid', 'test'];

function seriesToRecords(series: readonly ScalarSeries[], opts: IngestOptions): MetricRecord[] {
  const unit = opts.stepUnit ?? 'epoch';
  const spe = opts.stepsPerEpoch;
  if (unit === 'step' && !(spe !== undefined && Number.isInteger(spe) && spe > 0)) {
    throw new InputError(`stepUnit 'step' needs stepsPerEpoch, a positive integer (got ${spe})`, 'options', 'stepsPerEpoch');
  }
  const epochRecs = new Map<string, MetricRecord>();
  const stepRecs = new Map<number, MetricRecord>();
  const epochRec = (split: Split, epoch: number): MetricRecord => {
    const id = `${split}/${epoch}`;
    let r = epochRecs.get(id);
    if (!r) epochRecs.set(id, (r = { kind: 'epoch', epoch, split }));
    return r;
  };
  for (const s of series) {
    const seen = new Map<number, number>();
    for (const p of s.points) {
      const prev = seen.get(p.step);
      if (prev !== undefined) {
        throw new InputError(`Step ${p.step} appears twice (also at ${prev})`, `${s.source}:${p.line}`, 'Step');
      }
      seen.set(p.step, p.line);
    }
    if (unit === 'epoch') {
      for (const p of s.points) epochRec(s.split, p.step)[s.key] = p.value;
      continue;
    }
    const byEpoch = new Map<number, ScalarPoint[]>();
    for (const p of [...s.points].sort((a, b) => a.step - b.step)) {
      const e = Math.floor(p.step / spe!);
      let list = byEpoch.get(e);
      if (!list) byEpoch.set(e, (list = []));
      list.push(p);
      if (s.split === 'train') {
        let r = stepRecs.get(p.step);
        if (!r) stepRecs.set(p.step, (r = { kind: 'step', epoch: e, split: 'train', step: p.step, iter: p.step % spe! }));
        r[s.key] = p.value;
      }
    }
    for (const [e, pts] of byEpoch) {
      epochRec(s.split, e)[s.key] =
        s.split === 'train' ? pts.reduce((a, p) => a + p.value, 0) / pts.length : pts[pts.length - 1]!.value;
    }
  }
  const epochs = [...epochRecs.values()].sort((a, b) => SPLIT_ORDER.indexOf(a.split) - SPLIT_ORDER.indexOf(b.split) || a.epoch - b.epoch);
  const steps = [...stepRecs.values()].sort((a, b) => a.step! - b.step!);
  return [...epochs, ...steps];
}

function buildRun(
  name: string,
  dir: string,
  sources: string[],
  format: InputFormat,
  records: MetricRecord[],
  seed: number,
  opts: IngestOptions,
): RunData {
  const metric = opts.metric ?? 'center';
  const where = sources.join(', ');
  if (!records.some((r) => typeof r[metric] === 'number')) {
    const keys = [...new Set(records.flatMap((r) => Object.keys(r).filter((k) => !['kind', 'epoch', 'split', 'step', 'iter'].includes(k))))];
    throw new InputError(
      `no '${metric}' series (found: ${keys.join(', ') || 'nothing'}); name the column or tag after the center loss (center, center_loss)`,
      where,
    );
  }
  let decayEpochs: number[];
  if (opts.decayEpochs !== undefined) {
    for (const d of opts.decayEpochs) {
      if (!Number.isInteger(d) || d < 0) throw new InputError(`decay epoch must be a non-negative integer, got ${d}`, 'options', 'decayEpochs');
    }
    decayEpochs = [...new Set(opts.decayEpochs)].sort((a, b) => a - b);
  } else {
    decayEpochs = detectDecayEpochs(records, opts.minLrDrop !== undefined ? { minDrop: opts.minLrDrop } : {});
    if (decayEpochs.length === 0) {
      const hasLr = records.some((r) => typeof r.lr === 'number');
      throw new InputError(
        hasLr
          ? 'the learning rate never drops, so there is no decay to analyse; give the decay epochs explicitly'
          : "no learning-rate series ('lr', 'learning_rate') to find the decay epochs from; give them explicitly",
        where,
      );
    }
  }
  const maxEpoch = records.reduce((m, r) => Math.max(m, r.epoch), -1);
  const manifest: RunManifest = {
    format: 1,
    name,
    variant: opts.variant ?? 'imported',
    seed,
    backend: 'import',
    config: { importedFrom: sources, format },
    decayEpochs,
    versions: {},
    startedAt: '',
    status: 'done',
    epochsDone: maxEpoch + 1,
  };
  return { dir, manifest, records };
}

/** Parse already-read files into runs (pure; see the module comment). */
export function ingestTexts(files: readonly InputText[], opts: IngestOptions = {}): RunData[] {
  if (files.length === 0) throw new InputError('no input files');
  type Group = { name: string; dir: string; sources: string[]; format: InputFormat; records?: MetricRecord[]; series: ScalarSeries[] };
  const groups: Group[] = [];
  const tbGroups = new Map<string, Group>();
  for (const f of files) {
    if (!/\.json$/i.test(f.path) && f.text.replace(/^\uFEFF/, '').trimStart().startsWith('{')) {
      throw new InputError('unrecognised format: a JSON object, not a TensorBoard scalar export ([[wall time, step, value], ...]) or a CSV', f.path);
    }
    const format = detectFormat(f.path, f.text);
    if (format === 'metrics-csv') {
      groups.push({
        name: path.basename(f.path).replace(/\.[^.]*$/, ''),
        dir: path.dirname(f.path),
        sources: [f.path],
        format,
        records: parseMetricsCsv(f.text, f.path),
        series: [],
      });
      continue;
    }
    const s = format === 'tensorboard-json' ? parseTensorBoardJson(f.text, f.path) : parseTensorBoardCsv(f.text, f.path);
    let g = tbGroups.get(s.runKey);
    if (!g) {
      g = { name: s.runName, dir: path.dirname(f.path), sources: [], format, series: [] };
      tbGroups.set(s.runKey, g);
      groups.push(g);
    }
    const dup = g.series.find((o) => o.split === s.split && o.key === s.key);
    if (dup) throw new InputError(`holds ${s.split} '${s.key}' again (already read from ${dup.source})`, f.path);
    g.sources.push(f.path);
    g.series.push(s);
  }
  return groups.map((g, seed) =>
    buildRun(g.name, g.dir, g.sources, g.format, g.records ?? seriesToRecords(g.series, opts), seed, opts),
  );
}

/** Read and parse files (see the module comment). Unreadable files are InputErrors. */
export async function ingestFiles(paths: readonly string[], opts: IngestOptions = {}): Promise<RunData[]> {
  const files: InputText[] = [];
  for (const p of paths) {
    let text: string;
    try {
      text = await readFile(p, 'utf8');
    } catch (e) {
      throw new InputError(`cannot read: ${(e as Error).message}`, p);
    }
    files.push({ path: p, text });
  }
  return ingestTexts(files, opts);
}
