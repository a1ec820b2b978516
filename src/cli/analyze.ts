/**
 * `spikeprobe analyze PATH...`: the spike analysis on a user's own logs (event files, log
 * directories, MLflow runs, W&B and Lightning exports, CSV/JSON exports; see ingest/index.ts), or
 * on a spikeprobe runs directory, read as its suite. Variants are compared side by side as in a
 * suite, through the same analysis (analysis/index.ts analyzeSuite) and the same report.
 */
import { basename, resolve } from 'node:path';
import { buildReport, writeReport } from '../report/index.js';
import { ingestPaths } from '../ingest/index.js';
import { analyzeSuite } from '../analysis/index.js';
import { answerText } from '../analysis/answer.js';
import type { SuiteAnalysis } from '../analysis/types.js';
import { analyzeRuns } from '../suite/analyze.js';
import { readSuiteRecord } from '../suite/run.js';
import { InputError } from '../util/errors.js';
import { parseIntOption } from './train.js';
import { checkTable, resultsTable } from './table.js';

export interface AnalyzeCliOptions {
  decays?: string;
  variant?: string;
  group?: string;
  metric?: string;
  stepsPerEpoch?: string;
  json?: boolean;
  output?: string;
  static?: boolean;
}

export function parseDecays(v: string | undefined): number[] | undefined {
  if (v === undefined) return undefined;
  return v.split(',').map((s) => {
    const n = Number(s.trim());
    if (s.trim() === '' || !Number.isInteger(n) || n < 0) throw new InputError(`expected comma-separated epochs, got '${v}'`, undefined, '--decays');
    return n;
  });
}

export async function analyzeCommand(paths: string[], o: AnalyzeCliOptions): Promise<void> {
  const decayEpochs = parseDecays(o.decays);
  const stepsPerEpoch = parseIntOption(o.stepsPerEpoch, '--steps-per-epoch', 1);
  const warn = (msg: string) => process.stderr.write(`spikeprobe: warning: ${msg}\n`);
  const { runs, suiteDir } = ingestPaths(
    paths,
    {
      ...(decayEpochs ? { decayEpochs } : {}),
      ...(o.variant !== undefined ? { variant: o.variant } : {}),
      ...(o.group !== undefined ? { group: o.group } : {}),
      ...(o.metric !== undefined ? { metric: o.metric } : {}),
      ...(stepsPerEpoch !== undefined ? { stepsPerEpoch } : {}),
    },
    warn,
  );
  const record = suiteDir ? readSuiteRecord(suiteDir) : undefined;
  const name = record?.name ?? (suiteDir ? basename(resolve(suiteDir)) : 'imported');
  const analysis: SuiteAnalysis = record ? analyzeRuns(name, runs, record.expect, record.thresholds, record.roles) : analyzeSuite(name, runs);
  const decays = [...new Set(runs.map((r) => r.manifest.decayEpochs.join(', ')))];
  const variants = [...new Set(runs.map((r) => r.manifest.variant))];
  if (o.json) {
    process.stdout.write(
      JSON.stringify(
        {
          suite: name,
          runs: runs.map((r) => ({ name: r.manifest.name, variant: r.manifest.variant, seed: r.manifest.seed, dir: r.dir, decayEpochs: r.manifest.decayEpochs })),
          decayEpochs: runs[0]?.manifest.decayEpochs,
          results: analysis.results,
          checks: analysis.checks,
          answer: answerText(analysis),
          explanation: analysis.explanation,
        },
        null,
        1,
      ) + '\n',
    );
  } else {
    process.stdout.write(`${runs.length} run(s), ${variants.length} variant(s): ${variants.join(', ')}\n`);
    const byDecays = decays.map((d) => `${d || 'none'} (${[...new Set(runs.filter((r) => r.manifest.decayEpochs.join(', ') === d).map((r) => r.manifest.variant))].join(', ')})`);
    process.stdout.write(`decay epochs: ${decays.length === 1 ? decays[0] || 'none found' : byDecays.join('; ')}\n`);
    process.stdout.write(resultsTable(analysis.results.filter((r) => r.metric === 'center')) + '\n');
    if (analysis.checks.length) process.stdout.write('\n' + checkTable(analysis.checks) + '\n');
    process.stdout.write('\n' + answerText(analysis).join('\n') + '\n');
  }
  if (o.output) {
    const title = `spikeprobe analyze: ${suiteDir ? name : paths.map((f) => basename(resolve(f))).join(', ')}`;
    const html = await buildReport({ title, runs, analysis, static: o.static });
    writeReport(resolve(o.output), html);
    process.stdout.write(`report: ${resolve(o.output)}\n`);
  }
}
