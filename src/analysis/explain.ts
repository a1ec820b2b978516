/**
 * Sentences built from the numbers of an analysis. Every sentence carries the measured values it
 * talks about; nothing is said about a variant, split or term that was not measured.
 *
 * Reading order: one sentence on the thresholds; then, per (split, resolution, decay epoch) —
 * train before valid before test, epoch before step, decays ascending — one sentence per variant
 * (variants in the order the results list them; the second and later ones are phrased "at the same
 * decay"), each followed by its attribution sentence when there is one; then the checks.
 */
import type { Split } from '../store/types.js';
import type { Attribution, CheckRow, DecayResult, SpikeThresholds } from './types.js';
import { fmtFraction, fmtPct, fmtRatio, fmtRatioCi, fmtRatioNum as fmtRatioPlain, fmtSignedPct, fmtValue } from './format.js';

/** A measured value in the sentences (src/analysis/format.ts fmtValue). */
export const fmtNum = fmtValue;

function variantLabel(v: string): string {
  return v === '' ? '(no variant)' : v;
}

function metricLabel(m: string): string {
  return m === 'center' ? 'center loss' : m;
}

function verdictWord(v: DecayResult['verdict']): string {
  return v === 'no-spike' ? 'no spike' : v;
}

function where(r: Pick<DecayResult, 'resolution' | 'decayEpoch'>): string {
  return r.resolution === 'epoch' ? `epoch ${r.decayEpoch}` : `epoch ${r.decayEpoch} (per step)`;
}

function interval(r: DecayResult, confidence: number): string {
  if (r.n === 1) return `x${fmtRatioPlain(r.ratioMean)}, single seed, no interval`;
  return `${fmtRatio(r.ratioMean)}, ${fmtPct(confidence)} CI ${fmtRatioCi(r.ci)} over ${r.n} seeds`;
}

function mean(xs: number[]): number {
  return xs.reduce((a, b) => a + b, 0) / xs.length;
}

/** The verdict sentence of one result. */
export function describeResult(r: DecayResult, th: SpikeThresholds, sameDecay = false): string {
  const head = sameDecay
    ? `${variantLabel(r.variant)} at the same decay`
    : `${variantLabel(r.variant)}, ${r.split}, ${where(r)}`;
  const skippedNote = r.skipped?.length
    ? ` (${r.skipped.length} run(s) skipped: ${r.skipped.map((s) => `${s.run}: ${s.reason}`).join('; ')})`
    : '';
  if (r.n === 0) return `${head}: no seed could be measured for ${metricLabel(r.metric)}${skippedNote}.`;
  const expected = mean(r.seeds.map((s) => s.expected));
  const observed = mean(r.seeds.map((s) => s.observed));
  return (
    `${head}: ${metricLabel(r.metric)} ${fmtNum(expected)} -> ${fmtNum(observed)} ` +
    `(${interval(r, th.confidence)}): ${verdictWord(r.verdict)}${shapeNote(r)}${skippedNote}.`
  );
}

/** For spikes: a transient peak or a level shift, from the mean recovery. */
function shapeNote(r: DecayResult): string {
  if (r.verdict !== 'spike' || r.shape === undefined || r.recoveryMean === undefined) return '';
  const back = fmtPct(r.recoveryMean);
  return r.shape === 'peak'
    ? `, a transient peak (${back} of the excess gone before the next decay)`
    : Math.round(r.recoveryMean * 100) < 0
      ? ', a level shift (it kept rising until the next decay)'
      : `, a level shift (only ${back} of the excess gone before the next decay)`;
}

/** Prefixes whose per-layer or per-class series are summarised (dead units get their own phrase). */
const NOT_SUMMARISED = new Set(['dead_frac', 'center', 'cl_within', 'cl_lag', 'ce', 'acc']);

/**
 * Per-layer (or per-class) series of one quantity, summarised in one phrase: "eff_lr/* fell in all 12
 * (-57% to -45%)", "angle/* rose in 3 of 12, fell in 9 (-20% to +15%)".
 */
export function summariseGroups(others: Attribution['others'], max = 3): string[] {
  const groups = new Map<string, number[]>();
  for (const o of others) {
    const i = o.key.indexOf('/');
    if (i <= 0 || NOT_SUMMARISED.has(o.key.slice(0, i)) || !Number.isFinite(o.relChange)) continue;
    const g = o.key.slice(0, i);
    groups.set(g, [...(groups.get(g) ?? []), o.relChange]);
  }
  const rows = [...groups].filter(([, xs]) => xs.length >= 2);
  rows.sort((a, b) => meanAbs(b[1]) - meanAbs(a[1]));
  return rows.slice(0, max).map(([g, xs]) => {
    const up = xs.filter((x) => x > 0).length;
    const down = xs.filter((x) => x < 0).length;
    const range = `${fmtSignedPct(Math.min(...xs))} to ${fmtSignedPct(Math.max(...xs))}`;
    if (down === xs.length) return `${g}/* fell in all ${xs.length} (${range})`;
    if (up === xs.length) return `${g}/* rose in all ${xs.length} (${range})`;
    return `${g}/* rose in ${up} of ${xs.length}, fell in ${down} (${range})`;
  });
}

function meanAbs(xs: number[]): number {
  return xs.reduce((a, b) => a + Math.abs(b), 0) / xs.length;
}

/**
 * The attribution sentence of one result ("<variant> across the decay: ..."), or undefined when
 * nothing beyond the learning rate itself was measured. What carried the rise is stated as terms
 * that add up to it (the log decomposition; the clean and flipped samples' shares); per-layer
 * series are summarised, not listed.
 */
export function describeAttribution(a: Attribution, metric: string, variant?: string): string | undefined {
  const parts: string[] = [];
  const d = a.detrended;
  const rel = (t: { expected: number; excess: number }) => (t.expected > 0 ? t.excess / t.expected : NaN);
  if (d && d.center.excess > 0) {
    const terms = compositionTerms(a);
    if (terms) parts.push(terms);
    else if (d.featSq) parts.push(`feature scale ${fmtSignedPct(rel(d.featSq))} vs its trend`);
    if (a.samples) parts.push(`flipped samples carry ${fmtPct(a.samples.flipped)} of the rise, clean samples ${fmtPct(a.samples.clean)}`);
  } else if (d) {
    parts.push(`${metricLabel(metric)} did not rise over its pre-decay line (${fmtNum(d.center.observed)} vs ${fmtNum(d.center.expected)})`);
    if (d.featSq) parts.push(`feature scale ${fmtSignedPct(rel(d.featSq))} vs its trend`);
  }
  const mem = a.others.find((o) => o.key === 'acc/flipped');
  if (mem && mem.change !== 0) parts.push(`flipped labels memorised ${fmtFraction(mem.before)} -> ${fmtFraction(mem.after)}`);
  const dead = a.others.filter((o) => o.key.startsWith('dead_frac/'));
  if (dead.length) {
    const top = dead.reduce((x, y) => (Math.abs(y.change) > Math.abs(x.change) ? y : x));
    parts.push(`dead units ${fmtFraction(top.before)} -> ${fmtFraction(top.after)}${dead.length > 1 ? ` (${top.key}, most changed of ${dead.length} layers)` : ` (${top.key})`}`);
  }
  const groups = summariseGroups(a.others);
  if (groups.length) parts.push(`alongside: ${groups.join('; ')}`);
  const lr = a.others.find((o) => o.key === 'lr');
  const lrPart = lr && lr.change !== 0 ? `lr ${fmtNum(lr.before)} -> ${fmtNum(lr.after)}` : undefined;
  if (parts.length === 0) return undefined;
  if (lrPart) parts.push(lrPart);
  return `${variant !== undefined ? `${variantLabel(variant)} across` : 'Across'} the decay: ${parts.join('; ')}.`;
}

/** "the post-window mean is x1.28 times its trend = feature scale x1.24 (87%) x ... x center lag x0.99 (-5%)", or undefined. */
export function compositionTerms(a: Attribution): string | undefined {
  const dec = a.decomposition;
  if (!dec || !(dec.total > 0)) return undefined;
  const words: Record<string, string> = { scale: 'feature scale', spread: 'within-class spread relative to the scale', within: 'within-class spread', lag: 'center lag' };
  const terms = [...dec.terms].sort((x, y) => Math.abs(y.log) - Math.abs(x.log));
  // Shares of the whole only where they read as shares: a rise of at least 5% and no term beyond 150% of it
  // (terms that offset each other around a small total would give shares like 470% and -410%).
  const withShares = dec.total >= Math.log(1.05) && terms.every((t) => Math.abs(t.log / dec.total) <= 1.5);
  const list = terms.map((t) => `${words[t.part]} ${fmtRatio(Math.exp(t.log))}${withShares ? ` (${fmtPct(t.log / dec.total)})` : ''}`).join(' x ');
  return `the post-window mean is ${fmtRatio(Math.exp(dec.total))} times its trend = ${list}${withShares ? '' : ' (terms that offset each other: no shares)'}`;
}

function describeCheck(row: CheckRow): string {
  const got =
    row.verdict === 'inconclusive' && !Number.isFinite(row.ratioMean)
      ? 'no measurement'
      : `${verdictWord(row.verdict)} (${fmtRatio(row.ratioMean)}, CI ${fmtRatioCi(row.ci)})`;
  const at = row.decayEpoch >= 0 ? ` at epoch ${row.decayEpoch}` : '';
  return `${variantLabel(row.variant)} ${row.split}/${row.resolution}${at}: expected ${row.expected}, got ${got}: ${row.pass ? 'pass' : 'FAIL'}.`;
}

const SPLIT_ORDER: Split[] = ['train', 'valid', 'test'];

export interface ExplainOptions {
  /** The step resolution's post-window fraction, stated when there are step results (default 0.2). */
  stepFraction?: number;
}

export function explainResults(
  results: readonly DecayResult[],
  th: SpikeThresholds,
  checks: readonly CheckRow[] = [],
  opts: ExplainOptions = {},
): string[] {
  const out: string[] = [];
  const stepNote = results.some((r) => r.resolution === 'step')
    ? ` (per step: trend over the same epochs' steps, max over the first ${fmtPct(opts.stepFraction ?? 0.2)} of the decay epoch's steps)`
    : '';
  out.push(
    `Thresholds: trend fitted over the ${th.preWindow} epochs before each decay, max over the ${th.postWindow} epoch(s) from it${stepNote}; ` +
      `a spike needs the ${fmtPct(th.confidence)} CI lower bound above x1.00 and mean ratio >= ${fmtRatio(th.spikeRatio)}; ` +
      `no spike needs the CI upper bound below ${fmtRatio(th.spikeRatio)} (or mean <= x1.00 with no seed at ${fmtRatio(th.spikeRatio)}).`,
  );
  const groups = new Map<string, DecayResult[]>();
  const sorted = [...results].sort(
    (a, b) =>
      SPLIT_ORDER.indexOf(a.split) - SPLIT_ORDER.indexOf(b.split) ||
      (a.resolution === b.resolution ? 0 : a.resolution === 'epoch' ? -1 : 1) ||
      a.decayEpoch - b.decayEpoch ||
      a.metric.localeCompare(b.metric),
  );
  for (const r of sorted) {
    const k = `${r.split}/${r.resolution}/${r.decayEpoch}/${r.metric}`;
    let g = groups.get(k);
    if (!g) groups.set(k, (g = []));
    g.push(r);
  }
  for (const g of groups.values()) {
    g.forEach((r, i) => {
      out.push(describeResult(r, th, i > 0));
      if (r.attribution && r.n > 0) {
        const s = describeAttribution(r.attribution, r.metric, r.variant);
        if (s) out.push(s);
      }
    });
  }
  if (results.length === 0) out.push('No decay could be measured: 0 results.');
  if (checks.length) {
    const passed = checks.filter((c) => c.pass).length;
    out.push(`Checks: ${passed} of ${checks.length} pass.`);
    for (const c of checks) out.push(describeCheck(c));
  }
  return out;
}
