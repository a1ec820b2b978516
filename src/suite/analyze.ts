import { analyzeSuite, type ExpectationSpec } from '../analysis/index.js';
import type { RunData, SuiteAnalysis } from '../analysis/types.js';
import type { ExpectItem } from './schema.js';
import type { SuiteRecord } from './run.js';

export function toSpec(e: ExpectItem): ExpectationSpec {
  const base = { split: e.split, resolution: e.resolution, decayEpoch: e.decay };
  if (e.verdict) return { kind: e.verdict, ...base };
  return { kind: 'ratio', min: e.ratio?.min, max: e.ratio?.max, ...base };
}

/** The suite's analysis from its expect: list (the one analysis path: analysis/index.ts analyzeSuite). */
export function analyzeRuns(name: string, runs: RunData[], expect: ExpectItem[], thresholds: SuiteRecord['thresholds'] = {}, roles?: SuiteRecord['roles']): SuiteAnalysis {
  return analyzeSuite(name, runs, expect.map((e) => ({ variant: e.variant, spec: toSpec(e) })), thresholds, roles ? { roles } : {});
}
