/**
 * `spikeprobe analyze PATH...`: a user's own logs, turned into RunData so the same analysis applies.
 *
 * Paths (ingestPaths): a directory is searched recursively as TensorBoard searches a log
 * directory: every folder holding files whose name contains `tfevents` is one run (events.ts);
 * a folder named only by a split (`train`, `validation`: Keras) or one inside a run folder
 * (`L_center_train`: PyTorch's add_scalars; add_hparams' timestamp folder, whose `hparam/...`
 * final values are skipped) belongs to the run above it, its name giving the split.
 * The search also takes MLflow run folders (meta.yaml + metrics/), spikeprobe run directories
 * (manifest.json, read by the run store), Lightning `metrics.csv` and W&B `wandb-history.jsonl`
 * files; other files are only read when named. A directory that is spikeprobe's own runs
 * directory (suite.json or run directories directly inside) is read as that suite.
 * A file is read by its content (ingestTexts): an event file by name; a .json file, or any file
 * starting with '[', a TensorBoard scalar JSON export; `Wall time,Step,Value` a TensorBoard scalar
 * CSV export (one series each, grouped into runs by folder and run name: tensorboard.ts); JSON
 * lines with `_step` W&B history; a CSV with a step column (and no split column) a step table
 * (Lightning, W&B; formats.ts); any other CSV a per-epoch metrics table (Keras CSVLogger; table.ts).
 *
 * Variants: `variant` puts every run under that one name (seeds 0, 1, ...); else `group`, a regular
 * expression searched in each run's path (as given, '/' separators), names the variant by its
 * first capture group; else, where a given directory's runs all sit two levels below it
 * (`logs/relu/s1`), the first level names the variant and the second the seed; else each run is
 * its own variant, named by its path below the given directory (or the directory's name). MLflow
 * runs (mlruns/<experiment>/<run id>) are each their own variant, named by their run name, and
 * spikeprobe runs keep their manifest's variant and seed (prefixed `<suite dir>.` when they come
 * from several runs directories).
 * Names are reduced to letters, digits, '.', '_' and '-'. Seeds count from 0 within a variant in
 * path order.
 *
 * What is analysed: `metric` names the series (an exact tag or column); without it the center
 * loss is recognised by name (names.ts). Steps: see series.ts (`stepsPerEpoch`, or an `epoch`
 * scalar, makes event-file and MLflow steps global steps).
 *
 * Decay epochs: `decayEpochs` if given, else found from the run's lr series (decay.ts). Each run
 * must carry the center loss and have at least one decay epoch; otherwise InputError.
 */
import { readFileSync, readdirSync, realpathSync, statSync, existsSync } from 'node:fs';
import path from 'node:path';
import type { MetricRecord, RunManifest } from '../store/types.js';
import type { RunData } from '../analysis/types.js';
import { InputError } from '../util/errors.js';
import { isRunDir, listRunDirs, readManifest, readMetrics } from '../store/run-store.js';
import { parseMetricsCsv } from './table.js';
import { parseTensorBoardCsv, parseTensorBoardJson, isTensorBoardCsvHeader, type ScalarSeries } from './tensorboard.js';
import { detectDecayEpochs } from './decay.js';
import { splitCsvLine } from './csv.js';
import { splitOf, tokens } from './names.js';
import { seriesToRecords, seriesTags, type Series } from './series.js';
import { newEventState, readEventFiles, SPIKEPROBE_WRITER } from './events.js';
import type { Split } from '../store/types.js';

/** `<split>/<key>`, as spikeprobe export writes its tags. */
function exportedTag(tag: string): { key: string; split: Split } | undefined {
  const m = /^(train|valid|test)\/(.+)$/.exec(tag);
  return m ? { split: m[1] as Split, key: m[2]! } : undefined;
}
import { hasStepColumn, isMlflowRun, parseStepTable, parseWandbJsonl, readMlflowRun } from './formats.js';

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
export { readEventFiles, decodeEvent, type TagSeries, type EventPoint } from './events.js';
export { readRecords, frameRecord, type TfRecord } from './tfrecord.js';
export { seriesToRecords, isEpochTag, type Series, type SeriesPoint, type SeriesUnit } from './series.js';
export { parseStepTable, parseWandbJsonl, readMlflowRun, isMlflowRun } from './formats.js';

export type InputFormat = 'tensorboard-csv' | 'tensorboard-json' | 'metrics-csv' | 'step-table' | 'wandb-jsonl' | 'tfevents' | 'mlflow';

export interface InputText {
  path: string;
  text: string;
}

export interface IngestOptions {
  /** Decay epochs (in the files' epoch numbering); found from the lr series when absent. */
  decayEpochs?: number[];
  /** One variant name for every run. */
  variant?: string;
  /** A regular expression searched in each run's path; its first capture group names the variant. */
  group?: string;
  /** What a logged step counts (default: see series.ts). */
  stepUnit?: 'epoch' | 'step';
  /** Steps per epoch: logged steps are global steps. */
  stepsPerEpoch?: number;
  /** The series to analyse: an exact tag or column name (default: the center loss by name). */
  metric?: string;
  /** Smallest relative lr drop that counts as a decay (default 0.01). */
  minLrDrop?: number;
}

export function detectFormat(file: string, text: string): InputFormat {
  const t = text.replace(/^\uFEFF/, '').trimStart();
  if (/\.json$/i.test(file) || t.startsWith('[')) return 'tensorboard-json';
  if (t.startsWith('{')) return 'wandb-jsonl';
  const first = t.split(/\r?\n/, 1)[0] ?? '';
  const delim = first.includes('\t') && !first.includes(',') ? '\t' : first.includes(';') && !first.includes(',') ? ';' : ',';
  try {
    const header = splitCsvLine(first, delim, file, 1);
    if (isTensorBoardCsvHeader(header)) return 'tensorboard-csv';
    // A split column (split, phase, set, mode) is the per-epoch table's; it keeps that reader.
    if (hasStepColumn(header) && !header.some((h) => ['split', 'phase', 'set', 'mode'].includes(h.trim().toLowerCase()))) return 'step-table';
  } catch {
    // a malformed header is reported by the metrics-CSV parser
  }
  return 'metrics-csv';
}

/** A run before its variant is known. */
interface RawRun {
  name: string;
  dir: string;
  /** The run's path for grouping ('/' separators). */
  path: string;
  /** The given path it was found under. */
  root: string;
  sources: string[];
  format: InputFormat;
  series?: Series[];
  records?: MetricRecord[];
  /** A spikeprobe run's own manifest. */
  manifest?: RunManifest;
}

const safeName = (s: string): string => s.replace(/[^A-Za-z0-9_.-]+/g, '_').replace(/^[._]+/, '').slice(0, 128) || 'run';
const GENERIC = /^(metrics|wandb-history|history|export|log|logs)$/i;

function finishRun(raw: RawRun, variant: string, seed: number, opts: IngestOptions, onWarn?: (msg: string) => void): RunData {
  if (raw.manifest) return { dir: raw.dir, manifest: raw.manifest, records: raw.records ?? [] };
  const records = raw.records ?? seriesToRecords(raw.series!, raw.name, { ...opts, ...(onWarn ? { onWarn } : {}) });
  const where = raw.sources.length > 3 ? `${raw.dir} (${raw.sources.length} files)` : raw.sources.join(', ');
  if (!records.some((r) => typeof r.center === 'number')) {
    const found = raw.series
      ? seriesTags(raw.series)
      : [...new Set(records.flatMap((r) => Object.keys(r).filter((k) => !['kind', 'epoch', 'split', 'step', 'iter'].includes(k))))];
    const what = opts.metric !== undefined ? `no series '${opts.metric}'` : 'no center-loss series';
    throw new InputError(
      `${what} (found: ${found.join(', ') || 'nothing'}); ${opts.metric !== undefined ? 'name one of those with --metric' : 'name it with --metric TAG'}`,
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
          : "no learning-rate series ('lr', 'learning_rate', 'lr-SGD', ...) to find the decay epochs from; give them explicitly (--decays)",
        where,
      );
    }
  }
  const maxEpoch = records.reduce((m, r) => Math.max(m, r.epoch), -1);
  const manifest: RunManifest = {
    format: 1,
    name: raw.name,
    variant,
    seed,
    backend: 'import',
    config: { importedFrom: raw.sources, format: raw.format },
    decayEpochs,
    versions: {},
    startedAt: '',
    status: 'done',
    epochsDone: maxEpoch + 1,
  };
  return { dir: raw.dir, manifest, records };
}

/** Variant of each run (see the module comment), then RunData. */
function assignVariants(raws: readonly RawRun[], opts: IngestOptions, onWarn?: (msg: string) => void): RunData[] {
  let re: RegExp | undefined;
  if (opts.group !== undefined) {
    try {
      re = new RegExp(opts.group);
    } catch (e) {
      throw new InputError(`not a regular expression: ${(e as Error).message}`, 'options', '--group');
    }
  }
  const twoDeep = new Map<string, boolean>();
  for (const r of raws) {
    const rel = path.relative(r.root, r.dir).split(path.sep).filter((s) => s !== '');
    twoDeep.set(r.root, (twoDeep.get(r.root) ?? true) && rel.length === 2 && !r.manifest && r.format !== 'mlflow');
  }
  // spikeprobe runs from several runs directories: the directory names the suite, kept in the variant.
  const storeDirs = new Set(raws.filter((r) => r.manifest).map((r) => path.dirname(path.resolve(r.dir))));
  const seeds = new Map<string, number>();
  return raws.map((r) => {
    let variant: string;
    if (opts.variant !== undefined) variant = opts.variant;
    else if (re) {
      const m = re.exec(r.path);
      if (!m || m[1] === undefined) throw new InputError(`run path does not match --group ${opts.group} (or the group captured nothing)`, r.path, '--group');
      variant = safeName(m[1]);
    } else if (r.manifest) {
      variant = storeDirs.size > 1 ? safeName(`${path.basename(path.dirname(path.resolve(r.dir)))}.${r.manifest.variant}`) : r.manifest.variant;
    }
    else if (twoDeep.get(r.root)) variant = safeName(path.relative(r.root, r.dir).split(path.sep)[0]!);
    else variant = r.name;
    const seed = seeds.get(variant) ?? 0;
    seeds.set(variant, seed + 1);
    if (r.manifest) {
      const manifest = variant !== r.manifest.variant ? { ...r.manifest, variant } : r.manifest;
      return finishRun({ ...r, manifest }, variant, manifest.seed, opts);
    }
    return finishRun(r, variant, seed, opts, onWarn);
  });
}

function textRuns(files: readonly InputText[], root: (f: string) => string, metric?: string): RawRun[] {
  const runs: RawRun[] = [];
  const tbRuns = new Map<string, RawRun>();
  for (const f of files) {
    const format = detectFormat(f.path, f.text);
    const dir = path.dirname(f.path);
    const base = path.basename(f.path).replace(/\.[^.]*$/, '');
    const name = safeName(GENERIC.test(base) ? path.basename(path.resolve(dir)) : base);
    const p = f.path.split(path.sep).join('/');
    if (format === 'wandb-jsonl') {
      const first = f.text.replace(/^\uFEFF/, '').trimStart().split(/\r?\n/, 1)[0]!;
      if (!/"_step"\s*:/.test(first)) {
        throw new InputError('unrecognised format: a JSON object without _step, not a W&B history line, a TensorBoard scalar export ([[wall time, step, value], ...]) or a CSV', f.path);
      }
      runs.push({ name, dir, path: p, root: root(f.path), sources: [f.path], format, series: parseWandbJsonl(f.text, f.path) });
      continue;
    }
    if (format === 'step-table') {
      runs.push({ name, dir, path: p, root: root(f.path), sources: [f.path], format, series: parseStepTable(f.text, f.path) });
      continue;
    }
    if (format === 'metrics-csv') {
      runs.push({ name, dir, path: p, root: root(f.path), sources: [f.path], format, records: parseMetricsCsv(f.text, f.path, metric) });
      continue;
    }
    const s: ScalarSeries = format === 'tensorboard-json' ? parseTensorBoardJson(f.text, f.path) : parseTensorBoardCsv(f.text, f.path);
    const seen = new Map<number, number>();
    for (const pt of s.points) {
      const prev = seen.get(pt.step);
      if (prev !== undefined) throw new InputError(`Step ${pt.step} appears twice (also at ${prev})`, `${s.source}:${pt.line}`, 'Step');
      seen.set(pt.step, pt.line);
    }
    let g = tbRuns.get(s.runKey);
    if (!g) {
      g = { name: safeName(s.runName), dir, path: p, root: root(f.path), sources: [], format, series: [] };
      tbRuns.set(s.runKey, g);
      runs.push(g);
    }
    g.sources.push(f.path);
    // The tag as the file names it, with the split the export's run name gives.
    const tag = path.basename(f.path).replace(/\.(csv|json|tsv|txt)$/i, '').replace(/^run[-_].*?[-_]tag[-_]/i, '');
    g.series!.push({ tag, source: f.path, unit: 'auto', split: s.split, points: s.points.map((pt) => ({ step: pt.step, value: pt.value })) });
  }
  return runs;
}

/** Parse already-read files into runs (pure; see the module comment). */
export function ingestTexts(files: readonly InputText[], opts: IngestOptions = {}): RunData[] {
  if (files.length === 0) throw new InputError('no input files');
  return assignVariants(textRuns(files, (f) => path.dirname(f), opts.metric), opts);
}

function readText(p: string): string {
  try {
    return readFileSync(p, 'utf8');
  } catch (e) {
    throw new InputError(`cannot read: ${(e as Error).message}`, p);
  }
}

/** Read and parse files (see the module comment). Unreadable files are InputErrors. */
export async function ingestFiles(paths: readonly string[], opts: IngestOptions = {}): Promise<RunData[]> {
  return ingestTexts(paths.map((p) => ({ path: p, text: readText(p) })), opts);
}

const isEventFile = (name: string) => name.includes('tfevents');
const SPLIT_ONLY = (name: string) => {
  const t = tokens(name);
  return t.length > 0 && t.every((x) => splitOf(x) !== undefined);
};

/** A spikeprobe runs directory: suite.json, or run directories directly inside (or itself a run). */
export function isRunStore(dir: string): boolean {
  if (isRunDir(dir) || existsSync(path.join(dir, 'suite.json'))) return true;
  try {
    return listRunDirs(dir).length > 0;
  } catch {
    return false;
  }
}

export interface IngestResult {
  runs: RunData[];
  /** Set when the only path given is a spikeprobe runs directory: read as that suite. */
  suiteDir?: string;
}

/** One spikeprobe run directory, read from the store as it is. */
function storeRun(dir: string, root: string): RawRun {
  return {
    name: path.basename(path.resolve(dir)),
    dir,
    path: dir.split(path.sep).join('/'),
    root,
    sources: [dir],
    format: 'metrics-csv',
    manifest: readManifest(dir),
    records: readMetrics(dir),
  };
}

/**
 * Read the logs under the given paths (files or directories; see the module comment). Warnings
 * (a torn last record) go to onWarn, one line each.
 */
export function ingestPaths(paths: readonly string[], opts: IngestOptions = {}, onWarn: (msg: string) => void = () => {}): IngestResult {
  if (paths.length === 0) throw new InputError('no input paths');
  if (paths.length === 1 && existsSync(paths[0]!) && statSync(paths[0]!).isDirectory() && isRunStore(paths[0]!) && !isRunDir(paths[0]!)) {
    const dir = paths[0]!;
    const runs: RawRun[] = listRunDirs(dir).map((d) => storeRun(d, dir));
    if (runs.length === 0) throw new InputError('a runs directory without runs (no */manifest.json)', dir);
    return { runs: assignVariants(runs, opts), suiteDir: dir };
  }
  const raws: RawRun[] = [];
  const texts: InputText[] = [];
  const textRoot = new Map<string, string>();
  for (const given of paths) {
    let st;
    try {
      st = statSync(given);
    } catch (e) {
      throw new InputError(`cannot read: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file or directory' : (e as Error).message}`, given);
    }
    if (st.isFile()) {
      if (isEventFile(path.basename(given))) raws.push(...eventRuns(new Map([[path.dirname(given), [given]]]), path.dirname(given), onWarn));
      else {
        texts.push({ path: given, text: readText(given) });
        textRoot.set(given, path.dirname(given));
      }
      continue;
    }
    // A directory: search it.
    const eventDirs = new Map<string, string[]>();
    const found: RawRun[] = [];
    const textsBefore = texts.length;
    const visited = new Set<string>();
    const walk = (dir: string) => {
      // Symlinked folders are followed, each real folder once.
      const real = realpathSync(dir);
      if (visited.has(real)) return;
      visited.add(real);
      let names: string[];
      try {
        names = readdirSync(dir).sort();
      } catch (e) {
        throw new InputError(`cannot read: ${(e as Error).message}`, dir);
      }
      if (dir !== given && isRunDir(dir)) {
        found.push(storeRun(dir, given));
        return;
      }
      if (isMlflowRun(dir)) {
        const m = readMlflowRun(dir);
        found.push({ name: safeName(m.name), dir, path: dir.split(path.sep).join('/'), root: given, sources: m.sources, format: 'mlflow', series: m.series });
        return;
      }
      for (const n of names) {
        if (n.startsWith('.') || n === 'node_modules') continue;
        const p = path.join(dir, n);
        let s;
        try {
          s = statSync(p);
        } catch {
          continue; // a dangling link
        }
        if (s.isDirectory()) walk(p);
        else if (s.isFile() && isEventFile(n)) {
          let list = eventDirs.get(dir);
          if (!list) eventDirs.set(dir, (list = []));
          list.push(p);
        } else if (s.isFile() && (n === 'metrics.csv' || n === 'wandb-history.jsonl')) {
          texts.push({ path: p, text: readText(p) });
          textRoot.set(p, given);
        }
      }
    };
    if (isRunDir(given)) {
      found.push(storeRun(given, given));
    } else walk(given);
    found.push(...eventRuns(eventDirs, given, onWarn));
    if (found.length === 0 && texts.length === textsBefore) {
      throw new InputError('no event files (*tfevents*), MLflow runs, spikeprobe runs, metrics.csv or wandb-history.jsonl here', given);
    }
    raws.push(...found);
  }
  raws.push(...textRuns(texts, (f) => textRoot.get(f) ?? path.dirname(f), opts.metric));
  return { runs: assignVariants(raws, opts, onWarn) };
}

/** Runs from folders of event files: split-named folders and folders inside a run join the run above. */
function eventRuns(eventDirs: Map<string, string[]>, root: string, onWarn: (msg: string) => void): RawRun[] {
  const runs = new Map<string, { files: { file: string; split?: ReturnType<typeof splitOf> }[] }>();
  const dirs = [...eventDirs.keys()].sort();
  for (const d of dirs) {
    const parent = path.dirname(d);
    const base = path.basename(d);
    const joins = d !== root && (SPLIT_ONLY(base) || eventDirs.has(parent));
    const runDir = joins ? parent : d;
    const split = joins ? splitOf(base) : undefined;
    let r = runs.get(runDir);
    if (!r) runs.set(runDir, (r = { files: [] }));
    for (const f of eventDirs.get(d)!) r.files.push({ file: f, split });
  }
  const out: RawRun[] = [];
  for (const [dir, r] of runs) {
    const series: Series[] = [];
    // Files of one folder are read together (in name order); each folder's split applies to its tags.
    const byFolder = new Map<string, { files: string[]; split?: ReturnType<typeof splitOf> }>();
    for (const f of r.files) {
      const k = path.dirname(f.file);
      let g = byFolder.get(k);
      if (!g) byFolder.set(k, (g = { files: [], split: f.split }));
      g.files.push(f.file);
    }
    for (const [folder, g] of byFolder) {
      const state = newEventState();
      const tags = readEventFiles(g.files.sort(), onWarn, state);
      for (const [tag, pts] of tags) {
        // PyTorch's add_hparams logs the final metrics as 'hparam/<name>' for the hparams dashboard: not a curve.
        if (tag.startsWith('hparam/')) continue;
        const exact = state.writer === SPIKEPROBE_WRITER ? exportedTag(tag) : undefined;
        series.push({
          tag,
          source: g.files.length === 1 ? g.files[0]! : folder,
          unit: 'auto',
          group: folder,
          ...(g.split ? { split: g.split } : {}),
          ...(exact ? { exact } : {}),
          points: pts.map((p) => ({ step: p.step, value: p.value })),
        });
      }
    }
    const rel = path.relative(root, dir);
    const name = safeName(rel === '' ? path.basename(path.resolve(dir)) : rel.split(path.sep).join('_'));
    out.push({ name, dir, path: dir.split(path.sep).join('/'), root, sources: r.files.map((f) => f.file), format: 'tfevents', series });
  }
  return out;
}

