/**
 * Which conv path each shipped shape takes: one real training step (src/train/trainer.ts) per
 * model shape with the backend's conv trace on (src/backend/tiers.ts), then per shape the layers'
 * convs by operation (forward, input gradient, filter gradient) and path. The shapes: the 'small'
 * and 'seed' presets (ResNets at 28 px), 'tiny' (the tests' net) and 'fer' (the FER-like suites'
 * and the demo's ResNet18 layout at width 16 on 48 px; the demo differs only in data).
 *
 *   npm run build && node dist/bench/conv-tiers.js [--backend wasm|cpu] [--shapes tiny,small,seed,fer]
 */
import { selectBackend, type BackendChoice } from '../backend/select.js';
import { convTierCounts, traceConvTiers, type ConvTierCount } from '../backend/tiers.js';
import { benchConfig, benchData, table, timeTrainSteps, type BenchModel } from './harness.js';

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

export async function main(): Promise<void> {
  const backend = await selectBackend((arg('--backend') ?? 'wasm') as BackendChoice);
  const shapes = (arg('--shapes') ?? 'tiny,small,seed,fer').split(',') as BenchModel[];
  const reached = new Map<string, number>();
  for (const shape of shapes) {
    const config = benchConfig(shape, 1);
    const data = benchData(config);
    traceConvTiers(true);
    await timeTrainSteps({ config, data, backend, instruments: 'none', warmup: 0 });
    const counts: ConvTierCount[] = convTierCounts().sort((a, b) => a.op.localeCompare(b.op) || a.tier.localeCompare(b.tier));
    traceConvTiers(false);
    console.log(`\n${shape} (batch ${config.batch_size}, ${backend.name}): one training step`);
    console.log(table(['op', 'path', 'input HxWxCi', 'filter', 'stride', 'calls'], counts.map((c) => [c.op, c.tier, c.input, c.filter, c.stride, c.calls])));
    for (const c of counts) reached.set(`${c.op} ${c.tier}`, (reached.get(`${c.op} ${c.tier}`) ?? 0) + c.calls);
  }
  console.log(`\npaths reached over ${shapes.join(', ')}:`);
  console.log(table(['op path', 'calls'], [...reached].sort().map(([k, n]) => [k, n])));
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? e.message : String(e));
  process.exit(1);
});
