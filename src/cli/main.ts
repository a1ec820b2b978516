#!/usr/bin/env node
import { Command, CommanderError } from 'commander';
import { InputError } from '../util/errors.js';
import { BACKEND_CHOICES } from '../backend/select.js';
import { PRESET_NAMES } from '../config/presets.js';
import { trainCommand } from './train.js';

const program = new Command();
program
  .name('spikeprobe')
  .description(
    'Find out why a training curve spikes. First case: the center loss jumping at every learning-rate ' +
      'decay (cross-entropy + center loss, Wen et al. ECCV 2016), trained faithfully to PyTorch in TensorFlow.js.',
  )
  .showHelpAfterError()
  .exitOverride();

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
  .option('-r, --resume <runDir>', 'continue a killed run from its last completed epoch')
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
    process.stderr.write(`spikeprobe: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exitCode = 1;
  }
}

await main();
