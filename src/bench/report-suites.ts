/**
 * Report budget bench on recorded suites: for each runs directory, the time `spikeprobe report`
 * spends (load the runs, analyse them, build the page) and the page's size, interactive and static;
 * three builds each (the first pays for JIT warm-up and reading the browser bundles), with the
 * median of the last two. Budgets (issue #15): the default suite's report in <= 2 s and <= 2 MB; a
 * 30-run suite in <= 10 s. The figures go to docs/benchmarks.md; nothing here asserts them.
 *
 *   npx tsc && node dist/bench/report-suites.js [RUNS_DIR ...]   (default: runs/fer-demo runs/fer-like)
 */
import { existsSync } from 'node:fs';
import { basename } from 'node:path';
import { performance } from 'node:perf_hooks';
import { buildReport } from '../report/index.js';
import { analyzeRuns } from '../suite/analyze.js';
import { loadSuite } from '../suite/load.js';
import { loadRuns, readSuiteRecord } from '../suite/run.js';

async function benchDir(dir: string): Promise<void> {
  const record = readSuiteRecord(dir);
  if (!record) throw new Error(`${dir}: no suite.json`);
  const roles = record.roles ?? (record.file && existsSync(record.file) ? loadSuite(record.file).roles : undefined);
  for (const isStatic of [false, true]) {
    const totals: number[] = [];
    let line = '';
    for (let round = 0; round < 3; round++) {
      const t0 = performance.now();
      const runs = loadRuns(dir);
      const t1 = performance.now();
      const analysis = analyzeRuns(record.name, runs, record.expect, record.thresholds, roles);
      const t2 = performance.now();
      const html = await buildReport({ title: `spikeprobe: ${record.name}`, runs, analysis, static: isStatic });
      const t3 = performance.now();
      totals.push(t3 - t0);
      const records = runs.reduce((a, r) => a + r.records.length, 0);
      line =
        `${basename(dir)} ${isStatic ? 'static     ' : 'interactive'}: ${runs.length} runs, ${records} records; load ${((t1 - t0) / 1000).toFixed(2)} s, ` +
        `analyse ${((t2 - t1) / 1000).toFixed(2)} s, build ${((t3 - t2) / 1000).toFixed(2)} s; size ${(Buffer.byteLength(html) / 1e6).toFixed(2)} MB, ` +
        `${(html.match(/<div class="chart"/g) ?? []).length} charts`;
      console.log(`  round ${round + 1}: ${line}`);
    }
    const later = totals.slice(1).sort((a, b) => a - b);
    console.log(`${line.split(':')[0]}: total ${((totals[0]! / 1000)).toFixed(2)} s first, ${(later[0]! / 1000).toFixed(2)}-${(later[later.length - 1]! / 1000).toFixed(2)} s after`);
  }
}

const dirs = process.argv.slice(2).length ? process.argv.slice(2) : ['runs/fer-demo', 'runs/fer-like'];
for (const d of dirs) await benchDir(d);
