import { existsSync } from 'node:fs';
import { basename, dirname, extname, join, resolve } from 'node:path';
import { loadConfig } from '../config/load.js';
import { PRESET_NAMES, type PresetName } from '../config/presets.js';
import type { Config } from '../config/schema.js';
import { selectBackend } from '../backend/index.js';
import { makeInstruments } from '../instruments/index.js';
import { readManifest, RUN_NAME, MANIFEST } from '../store/run-store.js';
import { train, loadDataFor, type EpochSummary } from '../train/trainer.js';
import { InputError } from '../util/errors.js';
import { ProgressView } from './progress.js';
import { exitCodeOf, stopOnSignals, stopSignal } from './signals.js';
import { textTable } from './table.js';

export interface TrainCliOptions {
  config?: string;
  preset?: string;
  seed?: string;
  out?: string;
  name?: string;
  backend?: string;
  resume?: string;
  epochs?: string;
  instruments?: string;
  quiet?: boolean;
  breakLock?: boolean;
}

export function parseIntOption(v: string | undefined, flag: string, min = 0): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new InputError(`expected an integer >= ${min}, got '${v}'`, undefined, flag);
  return n;
}

export function parsePreset(v: string | undefined): PresetName | undefined {
  if (v === undefined) return undefined;
  if (!(PRESET_NAMES as string[]).includes(v)) throw new InputError(`unknown preset '${v}' (choose ${PRESET_NAMES.join(', ')})`, undefined, '--preset');
  return v as PresetName;
}

export function parseInstrumentList(v: string | undefined): Config['instruments']['enable'] | undefined {
  if (v === undefined) return undefined;
  if (v === 'default' || v === 'all' || v === 'none') return v;
  return v.split(',').map((s) => s.trim()).filter(Boolean);
}

export async function trainCommand(o: TrainCliOptions): Promise<void> {
  let cfg: Config;
  let outDir: string;
  let baseDir: string;
  let name: string;
  const resume = o.resume !== undefined;
  if (resume) {
    outDir = resolve(o.resume!);
    const m = readManifest(outDir);
    cfg = m.config as unknown as Config;
    name = m.name;
    baseDir = m.baseDir ?? process.cwd();
    if (m.status === 'done') {
      process.stdout.write(`${outDir}: already done (${m.epochsDone} epochs); nothing to resume\n`);
      return;
    }
  } else {
    if (!o.config) throw new InputError('a config file is required (--config FILE, in the seed\'s config.yaml format)', undefined, '--config');
    const overrides: Record<string, unknown> = {};
    const seed = parseIntOption(o.seed, '--seed');
    if (seed !== undefined) overrides.seed = seed;
    const epochs = parseIntOption(o.epochs, '--epochs', 1);
    if (epochs !== undefined) overrides.epochs = epochs;
    const inst = parseInstrumentList(o.instruments);
    if (inst !== undefined) overrides.instruments = { enable: inst };
    cfg = loadConfig(o.config, { preset: parsePreset(o.preset), overrides });
    baseDir = dirname(resolve(o.config));
    name = o.name ?? `${basename(o.config, extname(o.config))}${o.preset ? `-${o.preset}` : ''}-s${cfg.seed}`;
    if (!RUN_NAME.test(name)) throw new InputError(`'${name}' is not a run name (letters, digits, _ . -, up to 128; no path: the run stays inside --out)`, undefined, o.name ? '--name' : '--config');
    outDir = resolve(o.out ?? 'runs', name);
    if (existsSync(join(outDir, MANIFEST))) {
      throw new InputError(`a run already exists there: resume it with --resume ${outDir}, or pick another --name/--out`, outDir);
    }
  }
  const instruments = makeInstruments(cfg.instruments.enable);
  const backend = await selectBackend(o.backend);
  const log = (s: string) => process.stderr.write(s + '\n');
  log(`spikeprobe: backend ${backend.name} (${backend.provider})${backend.skipped.length ? `; skipped ${backend.skipped.map((s) => s.choice).join(', ')}` : ''}`);
  const t0 = Date.now();
  let data;
  try {
    data = loadDataFor(cfg, baseDir);
  } catch (e) {
    // Name the config file the data settings came from.
    if (e instanceof InputError && o.config) throw new InputError(`data: ${e.message}`, o.config);
    throw e;
  }
  log(`spikeprobe: data ${data.source}: ${data.train.n} train / ${data.valid.n} valid / ${data.test.n} test, ${data.train.numClasses} classes (${((Date.now() - t0) / 1000).toFixed(1)}s)`);
  log(`spikeprobe: run directory ${outDir}`);
  const progress = new ProgressView(name, o.quiet);
  const itersPerEpoch = Math.max(1, Math.ceil(data.train.n / cfg.batch_size));
  const rows: (string | number)[][] = [];
  const header = ['epoch', 'lr', 'alpha', 'train CE', 'train CL', 'train acc', 'valid CL', 'valid acc', 'test CL', 'test acc', 's'];
  const onEpoch = (e: EpochSummary) => {
    const row = [e.epoch, e.lr, e.centerLr, e.train.ce!, e.train.center!, e.train.acc!, e.valid.center ?? NaN, e.valid.acc ?? NaN, e.test.center ?? NaN, e.test.acc ?? NaN, e.seconds];
    rows.push(row);
    if (!process.stderr.isTTY && !o.quiet) log(textTable(header, [row]).split('\n')[2]!);
  };
  const result = await train({
    config: cfg,
    backend,
    outDir,
    name,
    data,
    instruments,
    resume,
    onEpoch,
    onProgress: (p) => progress.update(p, 0, cfg.epochs * itersPerEpoch),
    shouldStop: stopOnSignals(),
    breakLock: o.breakLock,
  });
  progress.stop();
  process.stdout.write(textTable(header, rows) + '\n');
  process.stdout.write(`status: ${result.status}${result.divergedAt ? ` at epoch ${result.divergedAt.epoch}, step ${result.divergedAt.step} (${result.divergedAt.what})` : ''}; ${result.params} parameters; run: ${outDir}\n`);
  if (result.status === 'diverged') process.exitCode = 3;
  const sig = stopSignal();
  if (result.status === 'interrupted' && sig) process.exitCode = exitCodeOf(sig);
}
