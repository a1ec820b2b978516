import { cpSync, existsSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { selectBackend } from '../backend/index.js';
import { loadSuite, shardJobs, type Suite } from '../suite/load.js';
import { jobState, loadRuns, preflightJobs, readSuiteRecord, runJobs, suiteRecordOf, writeSuiteRecord, type SuiteRecord } from '../suite/run.js';
import { childThreads, parseJobs, runInChildren } from './parallel.js';
import { analyzeRuns } from '../suite/analyze.js';
import { buildComparisonReport, buildReport, writeReport } from '../report/index.js';
import { answerText } from '../analysis/answer.js';
import { fmtPct } from '../analysis/format.js';
import { analyzeSuite, overallPass } from '../analysis/index.js';
import type { CheckRow, DecayResult, RunData, SuiteAnalysis } from '../analysis/types.js';
import type { Split } from '../store/types.js';
import { readManifest, MANIFEST } from '../store/run-store.js';
import { InputError } from '../util/errors.js';
import { ProgressView, formatSeconds } from './progress.js';
import { checkTable, forksTable, resultsTable } from './table.js';
import { parseIntOption } from './train.js';
import { acquireLock } from '../store/lock.js';
import { StoppedBySignal, stopOnSignals, stopSignal } from './signals.js';

export interface SuiteCliOptions {
  config?: string;
  out?: string;
  seeds?: string;
  backend?: string;
  shard?: string;
  resume?: boolean;
  report?: boolean;
  static?: boolean;
  run?: boolean;
  json?: boolean;
  output?: string;
  quiet?: boolean;
  /** Runs to train at once, in child processes (a number or 'auto'). */
  jobs?: string;
  /** Internal: this process is one of --jobs' children and trains these run ids only. */
  runnerOf?: string;
  /** check: judge the runs there are even when some of the suite's runs are missing. */
  allowMissing?: boolean;
  /** report: also print the verdicts, fork effects and explanation as text. */
  text?: boolean;
  /** run: list the runs this invocation would train, write nothing. */
  dryRun?: boolean;
  /** report: also write every chart as an SVG file into this folder. */
  svg?: string;
  breakLock?: boolean;
}

const log = (s: string) => process.stderr.write(s + '\n');

function isSuiteFile(p: string): boolean {
  return existsSync(p) && statSync(p).isFile();
}

export function defaultOut(suite: Suite, o: SuiteCliOptions): string {
  return resolve(o.out ?? join('runs', suite.name));
}

async function executeSuite(suite: Suite, o: SuiteCliOptions, outDir: string): Promise<void> {
  let jobs = shardJobs(suite.jobs, o.shard);
  if (o.runnerOf !== undefined) {
    const ids = new Set(o.runnerOf.split(','));
    jobs = jobs.filter((j) => ids.has(j.id));
  }
  const pending = jobs.filter((j) => !['done', 'diverged'].includes(jobState(outDir, j)));
  const nProcs = o.runnerOf === undefined ? parseJobs(o.jobs, pending.length) : 1;
  mkdirSync(outDir, { recursive: true });
  // One suite process (and its --jobs runners, which share its lock token) per runs directory.
  const suiteLock = acquireLock(outDir, { breakLock: o.breakLock, notice: log });
  try {
    await trainSuite(suite, o, outDir, jobs, pending, nProcs);
  } finally {
    suiteLock.release();
  }
}

async function trainSuite(suite: Suite, o: SuiteCliOptions, outDir: string, jobs: Suite['jobs'], pending: Suite['jobs'], nProcs: number): Promise<void> {
  if (pending.length === 0) {
    writeSuiteRecord(outDir, suite);
    log(`spikeprobe: ${suite.name}: all ${jobs.length} runs${o.shard ? ` of shard ${o.shard}` : ''} already recorded in ${outDir}`);
    return;
  }
  if (nProcs > 1) {
    // Refuse (interrupted runs without --resume, data that does not load) before starting any.
    const { todo } = preflightJobs(suite, jobs, outDir, o.resume ?? false);
    writeSuiteRecord(outDir, suite);
    const threads = childThreads(nProcs);
    log(`spikeprobe: ${suite.name}: ${todo.length} of ${jobs.length} runs to train in ${nProcs} processes (${threads} conv thread${threads > 1 ? 's' : ''} each), into ${outDir}`);
    const t0 = Date.now();
    const passThrough = [
      ...(o.config ? ['--config', resolve(o.config)] : []),
      ...(o.seeds ? ['--seeds', o.seeds] : []),
      ...(o.backend ? ['--backend', o.backend] : []),
      ...(o.resume ? ['--resume'] : []),
      ...(o.quiet ? ['--quiet'] : []),
      ...(o.breakLock ? ['--break-lock'] : []),
    ];
    await runInChildren(todo, nProcs, { cli: process.argv[1]!, suiteFile: resolve(suite.file), outDir, passThrough, quiet: o.quiet ?? false });
    log(`spikeprobe: ${suite.name}: trained in ${formatSeconds((Date.now() - t0) / 1000)} (${nProcs} processes)`);
    return;
  }
  const backend = await selectBackend(o.backend);
  log(`spikeprobe: ${suite.name}: ${pending.length} of ${jobs.length} runs to train${o.shard ? ` (shard ${o.shard} of ${suite.jobs.length} jobs)` : ''} on ${backend.name}, into ${outDir}`);
  const t0 = Date.now();
  let bar: ProgressView | undefined;
  let overallEta = '?';
  const shouldStop = stopOnSignals();
  await runJobs(suite, jobs, outDir, backend, o.resume ?? false, {
    onJobStart: (j, k, n, resumed) => {
      bar = new ProgressView(`[${k + 1}/${n}] ${j.id}${resumed ? ' (resumed)' : ''}`, o.quiet);
    },
    onProgress: (j, p, done, total) => {
      const el = (Date.now() - t0) / 1000;
      const eta = done > 0 ? (el / done) * (total - done) : NaN;
      bar?.update(p, 0, j.config.epochs * p.iters);
      overallEta = formatSeconds(eta);
    },
    onJobEnd: (j, r) => {
      bar?.stop();
      if (!o.quiet) log(`  ${j.id}: ${r.status}${r.divergedAt ? ` at step ${r.divergedAt.step}` : ''}; ${o.runnerOf === undefined ? 'suite' : 'this runner\'s share'} ETA ${overallEta}`);
    },
    onSkip: (j, s) => {
      if (!o.quiet) log(`  ${j.id}: already ${s}, skipped`);
    },
  }, { shouldStop, breakLock: o.breakLock });
  const sig = stopSignal();
  if (sig) {
    bar?.stop();
    log(`spikeprobe: ${suite.name}: stopped by ${sig}; completed epochs are kept (continue with --resume)`);
    throw new StoppedBySignal(sig);
  }
  log(`spikeprobe: ${suite.name}: trained in ${formatSeconds((Date.now() - t0) / 1000)}`);
}

function thresholdsLine(a: SuiteAnalysis): string {
  const t = a.thresholds;
  return `verdicts: spike if the ${fmtPct(t.confidence)} CI of (max center loss over ${t.postWindow} epochs from the decay / trend of the ${t.preWindow} epochs before) is above 1 and its mean >= ${t.spikeRatio}; no-spike if the CI is below ${t.spikeRatio}`;
}

async function writeSuiteReport(name: string, runs: RunData[], analysis: SuiteAnalysis, o: SuiteCliOptions): Promise<string> {
  const path = resolve(o.output ?? join('reports', `${name}.html`));
  const html = await buildReport({ title: `spikeprobe: ${name}`, runs, analysis, static: o.static, ...(o.svg ? { svgDir: resolve(o.svg) } : {}) });
  writeReport(path, html);
  return path;
}

/**
 * A record written before suites had roles takes them from its suite file, when that file is still
 * there and loads (roles interpret the runs; they can be stated after the runs were trained).
 */
function withRoles(record: SuiteRecord): SuiteRecord {
  if (record.roles || !record.file || !existsSync(record.file)) return record;
  try {
    return { ...record, roles: loadSuite(record.file).roles };
  } catch {
    return record;
  }
}

/** Resolve SUITE|RUNS_DIR to the suite, its runs directory and its record. */
function target(arg: string, o: SuiteCliOptions): { suite?: Suite; outDir: string; record: SuiteRecord } {
  if (isSuiteFile(arg)) {
    const suite = loadSuite(arg, { config: o.config, seeds: parseIntOption(o.seeds, '--seeds', 1) });
    const outDir = defaultOut(suite, o);
    return { suite, outDir, record: suiteRecordOf(suite) };
  }
  if (!existsSync(arg)) throw new InputError('no such suite file or runs directory', arg);
  const outDir = resolve(arg);
  const record = readSuiteRecord(outDir);
  if (record) return { outDir, record: withRoles(record) };
  // A bare directory of runs: no expectations.
  const runs = loadRuns(outDir);
  if (runs.length === 0) throw new InputError('no runs (no */manifest.json) and no suite.json here', arg);
  return { outDir, record: { name: basename(outDir), file: '', variants: [...new Set(runs.map((r) => r.manifest.variant))], seeds: [], expect: [], thresholds: {}, jobs: [] } };
}

export async function runCommand(suiteFile: string, o: SuiteCliOptions): Promise<void> {
  if (!isSuiteFile(suiteFile)) throw new InputError('suite file not found', suiteFile);
  const { suite, outDir } = target(suiteFile, o);
  if (o.dryRun) {
    // What this invocation would train (its shard), and nothing written.
    const jobs = shardJobs(suite!.jobs, o.shard);
    for (const j of jobs) process.stdout.write(`${j.id}\t${jobState(outDir, j)}\t${join(outDir, j.id)}\n`);
    log(`spikeprobe: ${suite!.name}: ${jobs.length} of ${suite!.jobs.length} runs${o.shard ? ` in shard ${o.shard}` : ''} (dry run: nothing trained or written)`);
    return;
  }
  await executeSuite(suite!, o, outDir);
  if (o.runnerOf !== undefined) return; // a --jobs child: the parent analyses
  const runs = loadRuns(outDir);
  const missing = suite!.jobs.filter((j) => !runs.some((r) => basename(r.dir) === j.id && r.manifest.status !== 'running'));
  if (missing.length > 0) {
    log(`spikeprobe: ${missing.length} runs of the suite are not in ${outDir} yet (other shards?): merge shards, then run 'spikeprobe report ${outDir}'`);
    return;
  }
  const analysis = analyzeRuns(suite!.name, runs, suite!.expect, suite!.thresholds, suite!.roles);
  process.stdout.write(resultsTable(analysis.results.filter((r) => r.metric === 'center')) + '\n');
  if (analysis.forks?.length) process.stdout.write('\n' + forksTable(analysis.forks) + '\n');
  if (analysis.checks.length) process.stdout.write('\n' + checkTable(analysis.checks) + '\n');
  process.stdout.write('\n' + answerText(analysis).join('\n') + '\n');
  if (o.report !== false) process.stdout.write(`\nreport: ${await writeSuiteReport(suite!.name, runs, analysis, o)}\n`);
}

export async function checkCommand(arg: string, o: SuiteCliOptions): Promise<void> {
  const t = target(arg, o);
  if (t.record.expect.length === 0) throw new InputError('the suite states no expectations (expect:) to check', t.record.file || arg, 'expect');
  if (t.suite && o.run !== false) await executeSuite(t.suite, o, t.outDir);
  const runs = existsSync(t.outDir) ? loadRuns(t.outDir) : [];
  const done = runs.filter((r) => r.manifest.status === 'done' || r.manifest.status === 'diverged');
  const missing = t.record.jobs.filter((id) => !done.some((r) => basename(r.dir) === id));
  if (missing.length) log(`spikeprobe: ${missing.length} runs missing or unfinished in ${t.outDir}: ${missing.slice(0, 6).join(', ')}${missing.length > 6 ? ', ...' : ''}${o.allowMissing ? ' (allowed: --allow-missing)' : ''}`);
  const analysis = analyzeRuns(t.record.name, done, t.record.expect, t.record.thresholds, t.record.roles);
  // Runs the suite expects but lacks fail the check unless --allow-missing.
  const pass = overallPass(analysis.checks) && (missing.length === 0 || o.allowMissing === true);
  if (o.json) {
    process.stdout.write(JSON.stringify({ suite: t.record.name, pass, thresholds: analysis.thresholds, checks: analysis.checks, missing, explanation: analysis.explanation }, null, 1) + '\n');
  } else {
    process.stdout.write(checkTable(analysis.checks) + '\n' + thresholdsLine(analysis) + '\n\n' + answerText(analysis).join('\n') + '\n\n');
    process.stdout.write(`${pass ? 'PASS' : 'FAIL'}: ${analysis.checks.filter((c) => c.pass).length}/${analysis.checks.length} expectations hold (${t.record.name})${missing.length && !o.allowMissing ? `; ${missing.length} expected run(s) missing or unfinished: ${missing.slice(0, 6).join(', ')}${missing.length > 6 ? ', ...' : ''} (--allow-missing to judge the runs there are)` : ''}\n`);
  }
  process.exitCode = pass ? 0 : 1;
}

export async function reportCommand(targets: string | string[], o: SuiteCliOptions): Promise<void> {
  const args = Array.isArray(targets) ? targets : [targets];
  if (args.length > 1) return compareCommand(args, o);
  const t = target(args[0]!, o);
  const runs = loadRuns(t.outDir);
  if (runs.length === 0) throw new InputError('no recorded runs yet: run the suite first (spikeprobe run SUITE)', t.outDir);
  const analysis = analyzeRuns(t.record.name, runs, t.record.expect, t.record.thresholds, t.record.roles);
  if (o.json) {
    process.stdout.write(JSON.stringify({ suite: t.record.name, roles: analysis.roles ?? {}, thresholds: analysis.thresholds, results: analysis.results, forks: analysis.forks ?? [], outcomes: analysis.outcomes ?? [], checks: analysis.checks, answer: answerText(analysis), explanation: analysis.explanation }, null, 1) + '\n');
    return;
  }
  if (o.text) {
    process.stdout.write(resultsTable(analysis.results.filter((r) => r.metric === 'center')) + '\n');
    if (analysis.forks?.length) process.stdout.write('\n' + forksTable(analysis.forks) + '\n');
    process.stdout.write('\n' + answerText(analysis).join('\n') + '\n');
  }
  process.stdout.write(`${await writeSuiteReport(t.record.name, runs, analysis, o)}\n`);
}

/** `report A B`: the suites' answers side by side and their verdicts in one table (reports/<A>-vs-<B>.html). */
async function compareCommand(args: string[], o: SuiteCliOptions): Promise<void> {
  if (o.svg || o.json) throw new InputError('--svg and --json take one suite; compare two without them', args.join(' '));
  const suites = args.map((arg) => {
    const t = target(arg, o.out ? { ...o, out: undefined } : o);
    const runs = loadRuns(t.outDir);
    if (runs.length === 0) throw new InputError('no recorded runs yet: run the suite first (spikeprobe run SUITE)', t.outDir);
    return { label: t.record.name, runs, analysis: analyzeRuns(t.record.name, runs, t.record.expect, t.record.thresholds, t.record.roles) };
  });
  // Two runs directories of one suite (before/after) share a name: tell them apart by their folders.
  if (new Set(suites.map((s) => s.label)).size < suites.length) suites.forEach((s, i) => (s.label = `${s.label} (${basename(resolve(args[i]!))})`));
  if (o.text) for (const s of suites) process.stdout.write(`${s.label}:\n${answerText(s.analysis).join('\n')}\n\n`);
  const name = suites.map((s) => s.label.replace(/[^A-Za-z0-9_.-]+/g, '_')).join('-vs-');
  const path = resolve(o.output ?? join('reports', `${name}.html`));
  writeReport(path, buildComparisonReport({ title: `spikeprobe: ${suites.map((s) => s.label).join(' vs ')}`, suites: suites.map((s) => ({ label: s.label, analysis: s.analysis, runs: s.runs.length })) }));
  process.stdout.write(`${path}\n`);
}

export function mergeCommand(out: string, shards: string[], o: { partial?: boolean } = {}): void {
  const dest = resolve(out);
  const plan: [string, string][] = [];
  const unfinished: string[] = [];
  let record: SuiteRecord | undefined;
  for (const s of shards) {
    if (!existsSync(s)) throw new InputError('shard directory not found', s);
    record ??= readSuiteRecord(s);
    for (const name of readdirSync(s)) {
      const src = join(s, name);
      if (!existsSync(join(src, MANIFEST))) continue;
      const to = join(dest, name);
      const prior = plan.find(([, t]) => t === to);
      if (prior) throw new InputError(`run ${name} is in two shards (${prior[0]} and ${src})`, src);
      if (existsSync(join(to, MANIFEST)) && readManifest(to).status === 'done') continue;
      const status = readManifest(src).status;
      if (status !== 'done' && status !== 'diverged') unfinished.push(`${name} (${status})`);
      plan.push([src, to]);
    }
  }
  if (unfinished.length > 0 && !o.partial) {
    throw new InputError(
      `${unfinished.length} run(s) not finished: ${unfinished.slice(0, 4).join(', ')}${unfinished.length > 4 ? ', ...' : ''}; finish them with --resume, or merge anyway with --partial`,
      shards.join(' '),
    );
  }
  mkdirSync(dest, { recursive: true });
  for (const [src, to] of plan) cpSync(src, to, { recursive: true });
  if (record && !existsSync(join(dest, 'suite.json'))) cpSync(join(shards.find((s) => readSuiteRecord(s))!, 'suite.json'), join(dest, 'suite.json'));
  process.stdout.write(`merged ${plan.length} runs into ${dest}\n`);
}

/** `spikeprobe analyze` lives in analyze.ts. */
