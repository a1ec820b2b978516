/**
 * Analysis of recorded runs: does the center loss spike at learning-rate decays, what carried the
 * jump, and does each variant do what it is expected to do. Pure functions over plain numbers.
 */
import type { RunData, SpikeThresholds, SuiteAnalysis } from './types.js';
import { analyzeDecay, resolveThresholds, type AnalyzeOptions } from './spike.js';
import { checkExpectations, type ExpectationSpec } from './check.js';
import { explainResults } from './explain.js';
import { forkEffects } from './forks.js';

export * from './types.js';
export { fitTrend, predictTrend, extrapolate, fitPreWindow, type Trend, type TrendMode, type TrendModeOption } from './trend.js';
export {
  DEFAULT_THRESHOLDS,
  resolveThresholds,
  measureSpike,
  measureSpikeAt,
  decideVerdict,
  decayWindow,
  measureRunDecay,
  analyzeDecay,
  type Points,
  type SpikeMeasure,
  type MeasureOptions,
  type VerdictStats,
  type AnalyzeOptions,
  type DecayWindow,
  type RunDecayMeasure,
} from './spike.js';
export { attributeWindow, combineAttributions, finishAttribution, measuredKeys, relativeChange, WITHIN_KEY, LAG_KEY, FEAT_SQ_KEY } from './attribution.js';
export { checkExpectations, overallPass, describeExpectation, expectationHolds, type ExpectationSpec } from './check.js';
export { explainResults, describeResult, describeAttribution, fmtNum, type ExplainOptions } from './explain.js';
export { tCdf, tQuantile, meanInterval, type MeanInterval } from './stats.js';
export { forkEffects, type ForkEffect, type ForkMetricEffect } from './forks.js';

/** One expectation of a suite: a variant and what is expected of it (several per variant allowed). */
export interface VariantExpectation {
  variant: string;
  spec: ExpectationSpec;
}

/**
 * Analyse a suite's runs, the one path the CLI, the library and the tests take: verdicts for every
 * variant x decay x split x resolution the records allow (metric 'center' unless options say
 * otherwise), each expectation checked, the forks paired with their parents, and the explanation.
 * `expectations`: a list (several per variant), or a record with one per variant.
 */
export function analyzeSuite(
  suite: string,
  runs: readonly RunData[],
  expectations: Readonly<Record<string, ExpectationSpec>> | readonly VariantExpectation[] = [],
  thresholds?: Partial<SpikeThresholds>,
  options: Omit<AnalyzeOptions, 'thresholds'> = {},
): SuiteAnalysis {
  const th = resolveThresholds(thresholds);
  const results = analyzeDecay(runs, { ...options, thresholds: th });
  const list: readonly VariantExpectation[] = Array.isArray(expectations)
    ? (expectations as readonly VariantExpectation[])
    : Object.entries(expectations as Readonly<Record<string, ExpectationSpec>>).map(([variant, spec]) => ({ variant, spec }));
  const checks = list.flatMap((e) => checkExpectations(results, { [e.variant]: e.spec }));
  const forks = forkEffects(runs, th.postWindow, th.confidence);
  return {
    suite,
    thresholds: th,
    results,
    checks,
    explanation: explainResults(results, th, checks, options.stepFraction !== undefined ? { stepFraction: options.stepFraction } : {}),
    ...(forks.length > 0 ? { forks } : {}),
  };
}
