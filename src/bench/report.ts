/**
 * Report bench: builds the HTML report for a generated suite of 4 runs (2 variants x 2 seeds) with
 * 50,000 step records each (every training step recorded, plus epoch records for train/valid/test),
 * and prints build time and file size for the interactive and the static page.
 *
 *   npx tsc && node dist/bench/report.js [--out DIR (default test-artifacts/bench)] [--runs N] [--points N]
 */
import { performance } from 'node:perf_hooks';
import { join } from 'node:path';
import { buildReport, writeReport } from '../report/index.js';
import { syntheticAnalysis, syntheticRun } from './synthetic-report.js';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(name);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : fallback;
}

async function main(): Promise<void> {
  const nRuns = Number(arg('--runs', '4'));
  const points = Number(arg('--points', '50000'));
  const outDir = arg('--out', 'test-artifacts/bench');
  const epochs = 100;
  const itersPerEpoch = Math.round(points / epochs);
  const decayEpochs = [30, 60, 90];
  const t0 = performance.now();
  const runs = Array.from({ length: nRuns }, (_, i) =>
    syntheticRun({ variant: i % 2 === 0 ? 'relu' : 'prelu', seed: Math.floor(i / 2) + 1, epochs, itersPerEpoch, decayEpochs, spike: i % 2 === 0, steps: 'all' }),
  );
  const analysis = syntheticAnalysis(runs, (v) => v === 'relu');
  const t1 = performance.now();
  const records = runs.reduce((a, r) => a + r.records.length, 0);
  console.log(`generated ${runs.length} runs, ${records} records (${itersPerEpoch * epochs} step records per run) in ${((t1 - t0) / 1000).toFixed(2)} s`);
  for (const isStatic of [false, true]) {
    // Two builds each: the first in the process pays for JIT warm-up and reading the browser bundles.
    for (const round of ['first', 'second']) {
      const cpu0 = process.cpuUsage();
      const a = performance.now();
      const html = await buildReport({ title: 'Report bench', runs, analysis, static: isStatic });
      const b = performance.now();
      const cpu = process.cpuUsage(cpu0);
      const path = join(outDir, isStatic ? 'report-static.html' : 'report.html');
      writeReport(path, html);
      const bytes = Buffer.byteLength(html, 'utf8');
      console.log(
        `${isStatic ? 'static     ' : 'interactive'} ${round} build: ${((b - a) / 1000).toFixed(3)} s wall, ${((cpu.user + cpu.system) / 1e6).toFixed(3)} s cpu, ` +
          `size ${(bytes / 1e6).toFixed(3)} MB (${bytes} bytes) -> ${path}`,
      );
    }
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
