/**
 * Analysis of recorded runs: does the center loss spike at learning-rate decays, what carried the
 * jump, and does each variant do what it is expected to do. Pure functions over plain numbers.
 */
import type { Role, RunData, SpikeThresholds, SuiteAnalysis, VariantOutcome } from './types.js';
import { meanInterval } from './stats.js';
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
export { buildAnswer, answerText, variantSentence, compositionSentence, type Answer, type VariantLine, type CauseLine, type FixLine } from './answer.js';
export * from './format.js';

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
  options: Omit<AnalyzeOptions, 'thresholds'> & { roles?: Readonly<Record<string, Role>> } = {},
): SuiteAnalysis {
  const th = resolveThresholds(thresholds);
  const results = analyzeDecay(runs, { ...options, thresholds: th });
  const list: readonly VariantExpectation[] = Array.isArray(expectations)
    ? (expectations as readonly VariantExpectation[])
    : Object.entries(expectations as Readonly<Record<string, ExpectationSpec>>).map(([variant, spec]) => ({ variant, spec }));
  const checks = list.flatMap((e) => checkExpectations(results, { [e.variant]: e.spec }));
  const forks = forkEffects(runs, th.postWindow, th.confidence);
  const outcomes = variantOutcomes(runs, th.confidence);
  const roles = options.roles && Object.keys(options.roles).length > 0 ? { ...options.roles } : undefined;
  return {
    suite,
    ...(roles ? { roles } : {}),
    ...(outcomes.length ? { outcomes } : {}),
    thresholds: th,
    results,
    checks,
    explanation: explainResults(results, th, checks, options.stepFraction !== undefined ? { stepFraction: options.stepFraction } : {}),
    ...(forks.length > 0 ? { forks } : {}),
  };
}

/** Per variant: the test accuracy at the last epoch all its seeds recorded one, mean and interval over seeds. */
export function variantOutcomes(runs: readonly RunData[], confidence = 0.95): VariantOutcome[] {
  const byVariant = new Map<string, Map<number, number>[]>();
  for (const r of runs) {
    const v = r.manifest.variant !== '' ? r.manifest.variant : r.manifest.name;
    const acc = new Map<number, number>();
    for (const rec of r.records) {
      if (rec.kind === 'epoch' && rec.split === 'test' && typeof rec.acc === 'number' && Number.isFinite(rec.acc)) acc.set(rec.epoch, rec.acc);
    }
    if (acc.size === 0) continue;
    byVariant.set(v, [...(byVariant.get(v) ?? []), acc]);
  }
  const out: VariantOutcome[] = [];
  for (const [variant, seeds] of byVariant) {
    const last = Math.min(...seeds.map((m) => Math.max(...m.keys())));
    const values = seeds.map((m) => m.get(last)).filter((x): x is number => x !== undefined);
    if (values.length !== seeds.length) continue;
    const mi = meanInterval(values, confidence);
    out.push({ variant, epoch: last, testAcc: mi.mean, testAccCi: values.length > 1 ? mi.ci : [mi.mean, mi.mean], n: values.length });
  }
  return out;
}
