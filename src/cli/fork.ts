import { basename, dirname, join, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { selectBackend } from '../backend/index.js';
import type { Config } from '../config/schema.js';
import { makeInstruments } from '../instruments/index.js';
import { readManifest, RUN_NAME } from '../store/run-store.js';
import { parseSets, prepareFork } from '../train/fork.js';
import { loadDataFor, train } from '../train/trainer.js';
import { InputError } from '../util/errors.js';
import { ProgressView } from './progress.js';
import { exitCodeOf, stopOnSignals, stopSignal } from './signals.js';
import { parseIntOption } from './train.js';

export interface ForkCliOptions {
  at?: string;
  set?: string[];
  name?: string;
  out?: string;
  backend?: string;
  quiet?: boolean;
  breakLock?: boolean;
}

/** `spikeprobe fork RUN_DIR --at D --set KEY=VALUE ...`: lay out the twin, then train it to the end. */
export async function forkCommand(runDir: string, o: ForkCliOptions): Promise<void> {
  const parentDir = resolve(runDir);
  const parent = readManifest(parentDir);
  const at = parseIntOption(o.at, '--at', 1);
  if (at === undefined) throw new InputError('the epoch the twin starts at is required (--at D: it resumes from the end of epoch D-1)', undefined, '--at');
  const set = parseSets(o.set ?? [], (t) => {
    try {
      return parseYaml(t) as unknown;
    } catch (e) {
      throw new InputError(`value '${t}' is not YAML: ${(e as Error).message.split('\n')[0]}`, undefined, '--set');
    }
  });
  const slug = Object.entries(set)
    .map(([k, v]) => `${k.split('.').pop()}-${JSON.stringify(v)}`)
    .join('_')
    .replace(/[^A-Za-z0-9_.-]+/g, '')
    .slice(0, 60);
  const name = o.name ?? `${parent.name}-fork${at}-${slug}`;
  if (!RUN_NAME.test(name)) throw new InputError(`'${name}' is not a run name (letters, digits, _ . -; no path)`, undefined, '--name');
  const out = resolve(o.out ?? dirname(parentDir));
  const twinDir = join(out, name);
  const m = prepareFork(parentDir, twinDir, at, set, name, parent.variant ? `${parent.variant}~${basename(name)}` : '');
  const cfg = m.config as unknown as Config;
  const backend = await selectBackend(o.backend);
  const log = (s: string) => process.stderr.write(s + '\n');
  log(`spikeprobe: fork of ${parent.name} at epoch ${at} (${Object.entries(set).map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(', ')}) -> ${twinDir}`);
  const data = loadDataFor(cfg, m.baseDir ?? process.cwd());
  const progress = new ProgressView(name, o.quiet);
  const iters = Math.max(1, Math.ceil(data.train.n / cfg.batch_size));
  const r = await train({
    config: cfg,
    backend,
    outDir: twinDir,
    name,
    data,
    instruments: makeInstruments(cfg.instruments.enable),
    resume: true,
    onProgress: (p) => progress.update(p, -at * iters, (cfg.epochs - at) * iters),
    shouldStop: stopOnSignals(),
    breakLock: o.breakLock,
  });
  progress.stop();
  process.stdout.write(`status: ${r.status}; twin of ${parent.name} from epoch ${at}: ${twinDir}\n`);
  if (r.status === 'diverged') process.exitCode = 3;
  const sig = stopSignal();
  if (r.status === 'interrupted' && sig) process.exitCode = exitCodeOf(sig);
}
