#!/usr/bin/env node
import { Command, CommanderError, Option } from 'commander';
import { InputError } from '../util/errors.js';
import { BACKEND_CHOICES } from '../backend/index.js';
import { PRESET_NAMES } from '../config/presets.js';
import { trainCommand } from './train.js';
import { checkCommand, mergeCommand, reportCommand, runCommand } from './suite.js';
import { analyzeCommand } from './analyze.js';
import { exportCommand } from './export.js';
import { demoCommand } from './demo.js';
import { forkCommand } from './fork.js';
import { doctorCommand } from './doctor.js';
import { operationalMessage } from './errors.js';
import { StoppedBySignal } from './signals.js';

const program = new Command();
program
  .name('spikeprobe')
  .description(
    'Find out why a training curve spikes. First case: the center loss jumping at every learning-rate ' +
      'decay (cross-entropy + center loss, Wen et al. ECCV 2016), trained faithfully to PyTorch in TensorFlow.js.',
  )
  .showHelpAfterError()
  .exitOverride()
  .addHelpText(
    'after',
    '\nEnvironment:\n' +
      '  SPIKEPROBE_BACKEND   default for --backend (auto: tfjs-node-gpu, tfjs-node, wasm, cpu)\n' +
      '  SPIKEPROBE_THREADS   threads for the wasm compiled kernels (convs, BatchNorm, SGD step,\n' +
      '                       MaxPoolGrad; default: cores, at most 4; 1: no pool); results are\n' +
      '                       bit-identical for any count\n' +
      '  SPIKEPROBE_WASM_FMA  0: wasm conv kernels without fused multiply-add (other rounding)\n' +
      '  SPIKEPROBE_SHARED_HEAP\n' +
      '                       0: keep the wasm heap unshared (conv threads then work on copies)',
  );

program
  .command('train')
  .description('Train one run of the seed\'s recipe (train, valid, test every epoch), recorded in a run directory.')
  .option('-c, --config <file>', "config in the seed's format: lr, momentum, weight_decay, alpha, lamb, epochs (+ optional model/data keys)")
  .option('-p, --preset <name>', `fill model/data keys the config lacks: ${PRESET_NAMES.join(' | ')} (tiny: < 1 min, small: minutes, seed: ResNet18/512-d)`)
  .option('-s, --seed <n>', 'random seed (model init, centers, data order)')
  .option('-o, --out <dir>', 'parent directory of the run directory', 'runs')
  .option('-n, --name <name>', 'run name (default: <config>-<preset>-s<seed>)')
  .option('-b, --backend <b>', `tfjs backend: ${BACKEND_CHOICES.join(' | ')} (default $SPIKEPROBE_BACKEND or auto)`)
  .option('-e, --epochs <n>', 'override epochs')
  .option('-i, --instruments <list>', 'default | all | none | comma-separated instrument names')
  .option('-r, --resume <runDir>', 'continue a killed or interrupted run from its last completed epoch')
  .option('--break-lock', 'take the run over even where another spikeprobe seems to be writing it')
  .option('-q, --quiet', 'no progress output')
  .addHelpText(
    'after',
    `
Examples:
  spikeprobe train --config examples/config.yaml --preset tiny
  spikeprobe train --config config.yaml --preset small --seed 2 --instruments all
  spikeprobe train --resume runs/config-small-s2

Output: runs/<name>/manifest.json (config, seed, backend, versions, status),
        runs/<name>/metrics.jsonl (per-epoch train/valid/test and per-step records),
        runs/<name>/checkpoint.bin (state after the last completed epoch).`,
  )
  .action(trainCommand);

program
  .command('fork')
  .argument('<runDir>', 'the parent run directory (it keeps a checkpoint at the end of the epoch before each decay)')
  .description('Start a twin of a run at epoch D with some keys changed (same data order and RNG streams), and train it to the end.')
  .option('--at <epoch>', 'the first epoch the twin trains itself: it resumes from the end of epoch D-1')
  .option('--set <key=value>', 'a changed key, value as YAML (repeatable): lamb, alpha, weight_decay, center_lr_coupled, decay_epochs with decay_factors, label_noise=0', (v: string, prev: string[] = []) => [...prev, v])
  .option('-n, --name <name>', 'twin run name (default: <parent>-fork<D>-<changes>)')
  .option('-o, --out <dir>', "parent directory of the twin's run directory (default: the parent's)")
  .option('-b, --backend <b>', `tfjs backend: ${BACKEND_CHOICES.join(' | ')} (default $SPIKEPROBE_BACKEND or auto)`)
  .option('--break-lock', 'take the twin over even where another spikeprobe seems to be writing it')
  .option('-q, --quiet', 'no progress output')
  .addHelpText(
    'after',
    `
Examples:
  spikeprobe fork runs/fer-like/relu-s1 --at 10 --set decay_epochs=[20] --set decay_factors=[0.1]
      # the causal effect of the decay at 10: the same run without it
  spikeprobe fork runs/fer-like/relu-s1 --at 10 --set label_noise=0      # clean labels from epoch 10 on
  spikeprobe fork runs/fer-like/relu-s1 --at 20 --set lamb=0 --name relu-s1-nolamb

The twin's manifest names its parent and D; epochs before D are the parent's records.
A killed twin continues with spikeprobe train --resume <twin dir>.`,
  )
  .action(forkCommand);

const suiteOpts = (c: Command) =>
  c
    .option('-c, --config <file>', "a config in the seed's format to use as the suite's base (the suite's base: keys override it)")
    .option('-o, --out <dir>', 'runs directory (default runs/<suite name>)')
    .option('--seeds <n>', 'use only the first N seeds of the suite')
    .option('-b, --backend <b>', `tfjs backend: ${BACKEND_CHOICES.join(' | ')}`)
    .option('--shard <i/n>', 'run only jobs i, i+n, i+2n, ... (0-based) of the variant x seed list')
    .option('--resume', 'continue interrupted runs instead of refusing')
    .option('-j, --jobs <n>', "train up to N runs at once in child processes ('auto': one per core); each gets SPIKEPROBE_THREADS / N conv threads; results do not change", undefined)
    .addOption(new Option('--runner-of <ids>', 'internal: a --jobs child training these runs').hideHelp())
    .option('--break-lock', 'take the runs directory over even where another spikeprobe seems to be writing it')
    .option('-q, --quiet', 'no progress output');

suiteOpts(
  program
    .command('run')
    .argument('<suite>', 'suite file (YAML, see probes/)')
    .description('Run every variant x seed of a probe suite, durably; then print the spike analysis and write reports/<suite>.html.'),
)
  .option('--no-report', 'do not write the HTML report')
  .option('--static', 'report without scripts (charts as inline SVG)')
  .option('--output <file>', 'report path (default reports/<suite>.html)')
  .option('--dry-run', 'list the runs this invocation would train (its shard) and their state; write nothing')
  .addHelpText(
    'after',
    `
Examples:
  spikeprobe run probes/relu-vs-prelu.yaml
  spikeprobe run probes/seed.yaml --config config.yaml --seeds 3
  spikeprobe run probes/relu-vs-prelu.yaml --jobs auto   # one run per core at once (same numbers)
  spikeprobe run probes/relu-vs-prelu.yaml --shard 0/4 --out runs/shard0   # one of 4 machines
  spikeprobe merge runs/relu-vs-prelu runs/shard0 runs/shard1 runs/shard2 runs/shard3`,
  )
  .action(runCommand);

suiteOpts(
  program
    .command('check')
    .argument('<target>', 'suite file, or a runs directory written by spikeprobe run')
    .description("Evaluate a suite's expectations (spike / no-spike / ratio bounds). Exit 0 when all hold, 1 when one fails, 2 on bad input."),
)
  .option('--no-run', 'use recorded runs only; train nothing')
  .option('--allow-missing', "judge the runs there are when some of the suite's runs are missing or unfinished (default: that fails the check)")
  .option('--json', 'machine-readable output')
  .addHelpText('after', '\nExample (CI):\n  spikeprobe check probes/relu-vs-prelu.yaml || exit 1')
  .action(checkCommand);

program
  .command('report')
  .argument('<targets...>', 'runs directory or suite file; two (or more) to compare their verdicts on one page, e.g. before and after a fix')
  .description('Write the self-contained offline HTML report: the answer first (verdicts, causes, fixes, forest plot), then the explanation, zoomed decay windows and manifests.')
  .option('--output <file>', 'report path (default reports/<suite>.html)')
  .option('-o, --out <dir>', 'runs directory of a suite file (default runs/<suite name>)')
  .option('--static', 'no scripts: charts rendered to inline SVG')
  .option('--text', 'also print the verdicts, fork effects and the answer')
  .option('--svg <dir>', 'also write every chart and the answer\'s forest plot as standalone SVG files (for papers and issue trackers)')
  .option('--json', 'print the analysis (verdicts, fork effects, checks) as JSON instead of writing the report')
  .action(reportCommand);

program
  .command('merge')
  .argument('<out>', 'destination runs directory')
  .argument('<shards...>', 'runs directories written by spikeprobe run --shard')
  .description('Join the outputs of sharded runs into one runs directory (refuses runs that are not finished).')
  .option('--partial', 'merge unfinished runs too (continue them later with spikeprobe run --resume)')
  .action(mergeCommand);

program
  .command('analyze')
  .argument('<paths...>', 'your logs: TensorBoard log directories or event files (PyTorch SummaryWriter, tensorboardX, Keras, Lightning, CatBoost), MLflow run folders, W&B history (CSV or JSON lines), Lightning or Keras CSVLogger files, TensorBoard scalar CSV/JSON exports; or a spikeprobe runs directory')
  .description('Run the spike analysis on your own training logs: one variant per run, compared side by side.')
  .option('--metric <tag>', 'the series to analyse, by its exact tag or column (default: the center loss by name: center_loss, loss/center, L_center/train, Lsc, ...)')
  .option('--decays <epochs>', 'decay epochs, comma-separated (default: found where a logged learning rate drops: lr, learning_rate, lr-SGD, ...)')
  .option('--group <regex>', "variant of each run: the first capture group of REGEX searched in the run's path (default: logs/<variant>/<seed> when runs sit two levels deep, else one variant per run)")
  .option('--variant <name>', 'put every run under this one variant (as seeds)')
  .option('--steps-per-epoch <n>', 'logged steps are global steps: epoch = floor(step / N) (default: per epoch, or from a logged epoch scalar)')
  .option('--json', 'machine-readable output')
  .option('--output <file>', 'also write the HTML report')
  .option('--static', 'report without scripts')
  .addHelpText(
    'after',
    `
Examples:
  spikeprobe analyze logs/                        # every folder with *tfevents* files is a run
  spikeprobe analyze logs/ --output reports/mine.html   # logs/relu/s1, logs/relu/s2, logs/prelu/s1, ...: variants x seeds
  spikeprobe analyze logs/ --metric L_center/valid --steps-per-epoch 391
  spikeprobe analyze logs/ --group 'act=([a-z]+)'
  spikeprobe analyze mlruns/0/ lightning_logs/version_0/metrics.csv
  spikeprobe analyze center_loss.csv lr.csv
A torn last record (a writer still running) is skipped with a warning; a corrupt record is an error (exit 2).`,
  )
  .action(analyzeCommand);

program
  .command('export')
  .argument('<runOrSuiteDir>', 'a spikeprobe run directory, or a runs directory of a suite')
  .description("Write spikeprobe runs as TensorBoard event files (epoch and step records), to open in TensorBoard.")
  .option('--tensorboard <dir>', 'log directory to write: <dir>/<variant>/s<seed>/ for a suite, <dir>/<run>/ for one run')
  .addHelpText('after', '\nExample:\n  spikeprobe export runs/fer-demo --tensorboard tb/fer-demo && tensorboard --logdir tb/fer-demo')
  .action(exportCommand);

program
  .command('demo')
  .description('Run the default suite (probes/fer-demo.yaml: the FER-like regime scaled down, ReLU with noisy and clean labels, PReLU, a fork that cleans the labels at the decay) end to end, check it and print where its report is.')
  .option('-b, --backend <b>', `tfjs backend: ${BACKEND_CHOICES.join(' | ')}`)
  .option('-j, --jobs <n>', "runs trained at once in child processes ('auto': one per core)", 'auto')
  .option('-q, --quiet', 'no progress output')
  .action(demoCommand);

program
  .command('doctor')
  .description('One screen on this machine: the backend that would be chosen (and why others were skipped), conv kernels and threads, a browser for the report tests, PyTorch for bench:train, the data packages, free disk; and what to do about each missing piece.')
  .option('--json', 'machine-readable output')
  .option('-o, --out <dir>', 'the runs folder whose disk to check', 'runs')
  .option('-b, --backend <b>', `tfjs backend to try: ${BACKEND_CHOICES.join(' | ')}`)
  .action(doctorCommand);

// Output piped into head or a closed pager: end quietly.
for (const s of [process.stdout, process.stderr]) {
  s.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw e;
  });
}

async function main(): Promise<void> {
  try {
    await program.parseAsync(process.argv);
  } catch (e) {
    if (e instanceof CommanderError) {
      process.exitCode = e.exitCode === 0 ? 0 : 2;
      return;
    }
    if (e instanceof InputError) {
      process.stderr.write(`spikeprobe: ${e.message}\n`);
      process.exitCode = 2;
      return;
    }
    if (e instanceof StoppedBySignal) {
      process.exitCode = e.exitCode;
      return;
    }
    const op = operationalMessage(e);
    if (op) {
      process.stderr.write(`spikeprobe: ${op}\n`);
      process.exitCode = 1;
      return;
    }
    process.stderr.write(`spikeprobe: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exitCode = 1;
  }
}

await main();
