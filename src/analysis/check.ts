/**
 * `spikeprobe check`: compare verdicts against what each variant is expected to do.
 *
 * An expectation is about one variant, at a split and resolution (default train, epoch), for the
 * metric the results were computed on, and at every decay epoch of that variant unless
 * `decayEpoch` names one. One CheckRow per matching DecayResult:
 *   { kind: 'spike' }              passes when the verdict is 'spike';
 *   { kind: 'no-spike' }           passes when the verdict is 'no-spike';
 *   { kind: 'ratio', min?, max? }  passes when min <= ratioMean <= max (missing bound = open);
 *                                  the interval is reported, the mean decides.
 * An expectation with no matching result (variant not run, split/resolution not recorded, or
 * every seed skipped so n = 0) gives one failing row: decayEpoch = the asked one or -1,
 * ratioMean and CI NaN, verdict 'inconclusive'. Overall pass: at least one row and every row passes.
 */
import type { Split } from '../store/types.js';
import type { CheckRow, DecayResult, Expectation, Resolution } from './types.js';

export type ExpectationSpec = Expectation & { split?: Split; resolution?: Resolution; decayEpoch?: number };

export function describeExpectation(e: Expectation): string {
  switch (e.kind) {
    case 'spike':
      return 'spike';
    case 'no-spike':
      return 'no-spike';
    case 'ratio': {
      const lo = e.min !== undefined ? `${e.min}` : undefined;
      const hi = e.max !== undefined ? `${e.max}` : undefined;
      if (lo !== undefined && hi !== undefined) return `ratio in [${lo}, ${hi}]`;
      if (lo !== undefined) return `ratio >= ${lo}`;
      if (hi !== undefined) return `ratio <= ${hi}`;
      return 'ratio (any)';
    }
  }
}

export function expectationHolds(e: Expectation, r: Pick<DecayResult, 'verdict' | 'ratioMean' | 'n'>): boolean {
  if (r.n === 0) return false;
  switch (e.kind) {
    case 'spike':
      return r.verdict === 'spike';
    case 'no-spike':
      return r.verdict === 'no-spike';
    case 'ratio':
      return (
        Number.isFinite(r.ratioMean) && (e.min === undefined || r.ratioMean >= e.min) && (e.max === undefined || r.ratioMean <= e.max)
      );
  }
}

export function checkExpectations(results: readonly DecayResult[], expectations: Readonly<Record<string, ExpectationSpec>>): CheckRow[] {
  const rows: CheckRow[] = [];
  for (const [variant, spec] of Object.entries(expectations)) {
    const split = spec.split ?? 'train';
    const resolution = spec.resolution ?? 'epoch';
    const expected = describeExpectation(spec);
    const matching = results.filter(
      (r) =>
        r.variant === variant &&
        r.split === split &&
        r.resolution === resolution &&
        (spec.decayEpoch === undefined || r.decayEpoch === spec.decayEpoch),
    );
    if (matching.length === 0) {
      rows.push({
        variant,
        split,
        resolution,
        decayEpoch: spec.decayEpoch ?? -1,
        ratioMean: NaN,
        ci: [NaN, NaN],
        verdict: 'inconclusive',
        expected: `${expected} (no result for this variant/split/resolution${spec.decayEpoch !== undefined ? '/decay' : ''})`,
        pass: false,
      });
      continue;
    }
    for (const r of matching) {
      rows.push({
        variant,
        split,
        resolution,
        decayEpoch: r.decayEpoch,
        ratioMean: r.ratioMean,
        ci: r.ci,
        verdict: r.verdict,
        expected: r.n === 0 ? `${expected} (no seed could be measured)` : expected,
        pass: expectationHolds(spec, r),
      });
    }
  }
  return rows;
}

export function overallPass(rows: readonly CheckRow[]): boolean {
  return rows.length > 0 && rows.every((r) => r.pass);
}
