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
import { FEAT_SQ_KEY, LAG_KEY, WITHIN_KEY } from './attribution.js';

/** Three significant digits (0.910, 1.12, 0.0123), whole numbers from 1000 on. */
export function fmtNum(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  if (v === 0) return '0';
  if (Math.abs(v) >= 1000) return v.toFixed(0);
  return v.toPrecision(3);
}

function fmtRatio(v: number): string {
  return Number.isFinite(v) ? v.toFixed(2) : String(v);
}

function pct(v: number): string {
  return `${Math.round(v * 100)}%`;
}

function signedPct(v: number): string {
  if (v === Infinity) return 'from 0 up';
  if (v === -Infinity) return 'from 0 down';
  const p = Math.round(v * 100);
  return `${p >= 0 ? '+' : ''}${p}%`;
}

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
  if (r.n === 1) return `x${fmtRatio(r.ratioMean)}, single seed, no interval`;
  return `x${fmtRatio(r.ratioMean)}, ${Math.round(confidence * 100)}% CI ${fmtRatio(r.ci[0])}-${fmtRatio(r.ci[1])} over ${r.n} seeds`;
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
  const pct = Math.round(r.recoveryMean * 100);
  return r.shape === 'peak'
    ? `, a transient peak (${pct}% of the excess gone before the next decay)`
    : pct < 0
      ? ', a level shift (it kept rising until the next decay)'
      : `, a level shift (only ${pct}% of the excess gone before the next decay)`;
}

const NOT_OTHER = new Set([WITHIN_KEY, LAG_KEY, FEAT_SQ_KEY, 'lr', 'center_lr', 'lamb_center']);

/**
 * The attribution sentence of one result ("<variant> across the decay: ..."), or undefined when
 * nothing beyond the learning rate itself was measured.
 */
export function describeAttribution(a: Attribution, metric: string, variant?: string): string | undefined {
  const parts: string[] = [];
  const d = a.detrended;
  const rel = (t: { expected: number; excess: number }) => (t.expected > 0 ? t.excess / t.expected : NaN);
  if (d && d.center.excess > 0) {
    if (a.shares) {
      parts.push(`${pct(a.shares.within)} of the rise over trend is within-class variance, ${pct(a.shares.lag)} center lag`);
    }
    if (d.featSq) {
      const rf = rel(d.featSq);
      const rc = rel(d.center);
      parts.push(
        a.carrier === 'scale'
          ? `feature scale ${signedPct(rf)} vs its trend, at least the ${metricLabel(metric)}'s ${signedPct(rc)}, so the jump is the features growing`
          : `feature scale ${signedPct(rf)} vs its trend`,
      );
    }
  } else if (d) {
    parts.push(`${metricLabel(metric)} did not rise over its pre-decay line (${fmtNum(d.center.observed)} vs ${fmtNum(d.center.expected)})`);
    if (d.featSq) parts.push(`feature scale ${signedPct(rel(d.featSq))} vs its trend`);
  }
  const dead = a.others.filter((o) => o.key.startsWith('dead_frac/'));
  if (dead.length) {
    const top = dead.reduce((x, y) => (Math.abs(y.change) > Math.abs(x.change) ? y : x));
    parts.push(`dead units ${top.before.toFixed(2)} -> ${top.after.toFixed(2)}${dead.length > 1 ? ` (${top.key}, most changed of ${dead.length} layers)` : ` (${top.key})`}`);
  }
  const lr = a.others.find((o) => o.key === 'lr');
  const lrPart = lr && lr.change !== 0 ? `lr ${fmtNum(lr.before)} -> ${fmtNum(lr.after)}` : undefined;
  const movers = a.others
    .filter((o) => o.key !== metric && !NOT_OTHER.has(o.key) && !o.key.startsWith('dead_frac/') && Number.isFinite(o.relChange) && o.relChange !== 0)
    .slice(0, 3);
  if (movers.length) parts.push(`largest other changes: ${movers.map((o) => `${o.key} ${signedPct(o.relChange)}`).join(', ')}`);
  if (parts.length === 0) return undefined;
  if (lrPart) parts.push(lrPart);
  return `${variant !== undefined ? `${variantLabel(variant)} across` : 'Across'} the decay: ${parts.join('; ')}.`;
}

function describeCheck(row: CheckRow): string {
  const got =
    row.verdict === 'inconclusive' && !Number.isFinite(row.ratioMean)
      ? 'no measurement'
      : `${verdictWord(row.verdict)} (x${fmtRatio(row.ratioMean)}, CI ${fmtRatio(row.ci[0])}-${fmtRatio(row.ci[1])})`;
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
    ? ` (per step: trend over the same epochs' steps, max over the first ${Math.round((opts.stepFraction ?? 0.2) * 100)}% of the decay epoch's steps)`
    : '';
  out.push(
    `Thresholds: trend fitted over the ${th.preWindow} epochs before each decay, max over the ${th.postWindow} epoch(s) from it${stepNote}; ` +
      `a spike needs the ${Math.round(th.confidence * 100)}% CI lower bound above x1.00 and mean ratio >= x${fmtRatio(th.spikeRatio)}; ` +
      `no spike needs the CI upper bound below x${fmtRatio(th.spikeRatio)} (or mean <= x1.00 with no seed at x${fmtRatio(th.spikeRatio)}).`,
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
