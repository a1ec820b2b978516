import { analyzeDecay, checkExpectations, explainResults, forkEffects, resolveThresholds, type ExpectationSpec } from '../analysis/index.js';
import type { RunData, SuiteAnalysis } from '../analysis/types.js';
import type { ExpectItem } from './schema.js';
import type { SuiteRecord } from './run.js';

export function toSpec(e: ExpectItem): ExpectationSpec {
  const base = { split: e.split, resolution: e.resolution, decayEpoch: e.decay };
  if (e.verdict) return { kind: e.verdict, ...base };
  return { kind: 'ratio', min: e.ratio?.min, max: e.ratio?.max, ...base };
}

/**
 * The suite's analysis: verdicts for every variant x decay x split x resolution recorded, every
 * expectation checked (several per variant allowed), and the explanation built from the numbers.
 */
export function analyzeRuns(name: string, runs: RunData[], expect: ExpectItem[], thresholds: SuiteRecord['thresholds'] = {}): SuiteAnalysis {
  const th = resolveThresholds(thresholds);
  const results = analyzeDecay(runs, { thresholds: th });
  const checks = expect.flatMap((e) => checkExpectations(results, { [e.variant]: toSpec(e) }));
  const forks = forkEffects(runs, th.postWindow, th.confidence);
  return { suite: name, thresholds: th, results, checks, explanation: explainResults(results, th, checks), ...(forks.length > 0 ? { forks } : {}) };
}
