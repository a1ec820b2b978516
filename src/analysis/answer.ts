/**
 * The answer, in plain words, written once from an analysis: did the train center loss spike at the
 * decays, for which variant, how sure (ratio, CI, seeds), what caused it (fork effects first, then
 * what the rise is made of), and what removes it (fixes with their effect and their cost in test
 * accuracy). The terminal (`run`, `check`, `report --text`) prints the short form, the report the
 * same parts with the long explanation below them.
 *
 * Roles (suite `role:`) decide the order and the wording: the baseline first, then the variants that
 * differ from it, controls and fixes; forks' effects (parent minus twin) are the causes' measured
 * sizes. Without roles every variant gets its sentence and forks still rank as causes.
 */
import type { ForkEffect } from './forks.js';
import { compositionTerms } from './explain.js';
import { fmtAcc, fmtAccPoints, fmtDiffCi, fmtPct, fmtRatio, fmtRatioCi, fmtValue } from './format.js';
import type { DecayResult, Role, SuiteAnalysis, VariantOutcome } from './types.js';

export interface VariantLine {
  variant: string;
  role?: Role;
  /** Train split, epoch means, center loss; decays ascending. */
  results: DecayResult[];
  sentence: string;
}

export interface CauseLine {
  /** What the cause is, in words. */
  label: string;
  /** Relative size used for ranking (share of the parent's center loss, or of the rise). */
  size: number;
  sentence: string;
}

export interface FixLine {
  variant: string;
  /** 'removes' | 'shrinks' | 'does not remove' the rise, against the baseline. */
  effect: 'removes' | 'shrinks' | 'does not remove' | 'unknown';
  sentence: string;
}

export interface Answer {
  /** The first screen's variant sentences (at most `max`). */
  variants: VariantLine[];
  /** Variants with a sentence that did not fit on the first screen. */
  more: number;
  /** Measured causes, largest first: fork effects (parent minus twin), then variants marked `cause`. */
  causes: CauseLine[];
  /** What each of the baseline's rises is made of (terms that add up). */
  composition: CauseLine[];
  fixes: FixLine[];
  baseline?: string;
}

const ROLE_ORDER: Record<Role, number> = { baseline: 0, control: 1, fix: 2, cause: 3 };

function trainEpoch(a: SuiteAnalysis, variant: string): DecayResult[] {
  return a.results
    .filter((r) => r.variant === variant && r.split === 'train' && r.resolution === 'epoch' && r.metric === 'center' && r.n > 0)
    .sort((x, y) => x.decayEpoch - y.decayEpoch);
}

const seedsWord = (n: number): string => `${n} seed${n === 1 ? '' : 's'}`;

/** The interval part: '(95% CI 1.34-1.61, 3 seeds)' or '(1 seed, no interval)'. */
function ciPart(r: DecayResult, confidence: number, withSeeds = true): string {
  if (r.n < 2) return '(1 seed, no interval)';
  return `(${fmtPct(confidence)} CI ${fmtRatioCi(r.ci)}${withSeeds ? `, ${seedsWord(r.n)}` : ''})`;
}

function decayPhrase(r: DecayResult, a: SuiteAnalysis, first: boolean): string {
  const post = a.thresholds.postWindow;
  if (r.verdict === 'spike') {
    const shape = r.shape === 'level' ? ' and stays up' : r.shape === 'peak' ? ' and comes back down' : '';
    return first
      ? `rises ${fmtRatio(r.ratioMean)} ${ciPart(r, a.thresholds.confidence)} over its trend in the ${post} epochs after the decay at ${r.decayEpoch}${shape}`
      : `rises ${fmtRatio(r.ratioMean)} ${ciPart(r, a.thresholds.confidence, false)} after the decay at ${r.decayEpoch}${shape}`;
  }
  const ci = r.n > 1 ? `, CI ${fmtRatioCi(r.ci)}` : '';
  if (r.verdict === 'no-spike') return `no spike at ${r.decayEpoch} (${fmtRatio(r.ratioMean)}${ci})`;
  return `not decided at ${r.decayEpoch} (${fmtRatio(r.ratioMean)}${ci}: the interval straddles the threshold)`;
}

function roleLabel(v: string, role: Role | undefined): string {
  return role ? `${v} (${role})` : v;
}

/** One sentence for a variant: every decay's verdict with its ratio and interval. */
export function variantSentence(a: SuiteAnalysis, variant: string, role?: Role): string {
  const rs = trainEpoch(a, variant);
  if (rs.length === 0) return `${roleLabel(variant, role)}: no decay could be measured on the train split.`;
  const spikes = rs.filter((r) => r.verdict === 'spike');
  const n = Math.max(...rs.map((r) => r.n));
  // The same verdict at every decay reads as one clause.
  if (spikes.length === rs.length && rs.length > 1) {
    const shapes = new Set(rs.map((r) => r.shape));
    const shape = shapes.size === 1 ? (shapes.has('level') ? ', and stays up' : shapes.has('peak') ? ', and comes back down' : '') : '';
    return (
      `${roleLabel(variant, role)}: the train center loss rises over its trend in the ${a.thresholds.postWindow} epochs after each decay: ` +
      `${rs.map((r) => `${fmtRatio(r.ratioMean)} at ${r.decayEpoch} ${ciPart(r, a.thresholds.confidence, false)}`).join(', ')}, ${seedsWord(n)}${shape}.`
    );
  }
  if (rs.every((r) => r.verdict === 'no-spike')) {
    return `${roleLabel(variant, role)}: no spike (${rs.map((r) => `${fmtRatio(r.ratioMean)} at ${r.decayEpoch}`).join(', ')}; ${seedsWord(n)}).`;
  }
  const parts = rs.map((r, i) => decayPhrase(r, a, i === rs.findIndex((x) => x.verdict === 'spike')));
  if (spikes.length) return `${roleLabel(variant, role)}: the train center loss ${parts.join('; ')}.`;
  return `${roleLabel(variant, role)}: ${parts.join('; ')}; ${seedsWord(n)}.`;
}

function verdictKey(rs: DecayResult[]): string {
  return rs.map((r) => `${r.decayEpoch}:${r.verdict}`).join(',');
}

function forkChange(f: ForkEffect): string {
  return Object.entries(f.set)
    .map(([k, v]) => `${k} = ${JSON.stringify(v)}`)
    .join(', ');
}

/** Fork effects on the train center loss: what the change removed over the window (parent minus twin). */
function forkCauses(a: SuiteAnalysis): CauseLine[] {
  const out: CauseLine[] = [];
  for (const f of a.forks ?? []) {
    const m = f.metrics.find((x) => x.split === 'train' && x.metric === 'center');
    if (!m || m.diff.n === 0) continue;
    const d = m.diff;
    const sure = d.n > 1 && (d.ci[0] > 0 || d.ci[1] < 0);
    const mem = f.metrics.find((x) => x.split === 'train' && x.metric === 'acc/flipped');
    const memPart =
      mem && mem.diff.n > 0 && Math.abs(mem.diff.mean) >= 0.005 ? `; flipped labels memorised ${fmtAcc(mem.parentMean)} in ${f.parent}, ${fmtAcc(mem.twinMean)} in the twin` : '';
    const share = m.parentMean > 0 ? d.mean / m.parentMean : NaN;
    const what = `${f.fork}: ${forkChange(f)} from epoch ${f.at}`;
    const sentence =
      `${what} (a twin of ${f.parent}): ${fmtValue(Math.abs(d.mean))} ${d.mean >= 0 ? 'less' : 'more'} train center loss over the ${f.window} epochs from ${f.at}` +
      ` (${d.n > 1 ? `parent minus twin 95% CI ${fmtDiffCi(d.ci)}, ` : ''}${seedsWord(d.n)}` +
      (Number.isFinite(share) ? `; ${fmtPct(Math.abs(share))} of ${f.parent}'s ${fmtValue(m.parentMean)})` : ')') +
      memPart +
      (sure ? '' : '; not clearly different from zero') +
      '.';
    out.push({ label: what, size: sure ? Math.abs(share) : 0, sentence });
  }
  return out.sort((x, y) => y.size - x.size);
}

/** What the rise is made of, for a variant's spiking decay: terms that add up, each with its share. */
export function compositionSentence(variant: string, r: DecayResult, post: number): string | undefined {
  const at = r.attribution;
  const terms = at ? compositionTerms(at) : undefined;
  if (!at || !terms) return undefined;
  const samples = at.samples ? `; by samples: flipped ${fmtPct(at.samples.flipped)}, clean ${fmtPct(at.samples.clean)} of the rise` : '';
  return `${variant} at ${r.decayEpoch}: ${terms.replace('the post-window mean', `the mean of the ${post} epochs after the decay`)}${samples}.`;
}

function attributionCauses(a: SuiteAnalysis, variants: string[]): CauseLine[] {
  const out: CauseLine[] = [];
  for (const v of variants) {
    for (const r of trainEpoch(a, v)) {
      if (r.verdict !== 'spike') continue;
      const s = compositionSentence(v, r, a.thresholds.postWindow);
      if (!s) continue;
      out.push({ label: `${v} at ${r.decayEpoch}`, size: 0, sentence: s });
    }
  }
  return out;
}

/** Variants marked `cause` (not forks): their ratios against the baseline's at the same decays. */
function variantCauses(a: SuiteAnalysis, baseline: string | undefined, forkNames: Set<string>): CauseLine[] {
  const roles = a.roles ?? {};
  const base = baseline ? trainEpoch(a, baseline) : [];
  const out: CauseLine[] = [];
  for (const v of Object.keys(roles)) {
    if (roles[v] !== 'cause' || forkNames.has(v)) continue;
    const rs = trainEpoch(a, v);
    if (rs.length === 0) continue;
    const pairs = rs.map((r) => [r, base.find((b) => b.decayEpoch === r.decayEpoch)] as const);
    const parts = pairs.map(([r, b]) => `${fmtRatio(r.ratioMean)}${b ? ` against ${fmtRatio(b.ratioMean)}` : ''} at ${r.decayEpoch} (${r.verdict === 'no-spike' ? 'no spike' : r.verdict})`);
    const diffs = pairs.filter(([, b]) => b !== undefined).map(([r, b]) => r.ratioMean - b!.ratioMean);
    const size = diffs.length ? Math.max(...diffs.map(Math.abs)) : 0;
    out.push({ label: v, size, sentence: `${v}${baseline ? ` against ${baseline}` : ''}: ${parts.join(', ')}.` });
  }
  return out.sort((x, y) => y.size - x.size);
}

function outcome(a: SuiteAnalysis, v: string): VariantOutcome | undefined {
  return a.outcomes?.find((o) => o.variant === v);
}

function fixLine(a: SuiteAnalysis, v: string, baseline: string | undefined): FixLine {
  const rs = trainEpoch(a, v);
  const base = baseline ? trainEpoch(a, baseline) : [];
  const baseSpikes = base.filter((r) => r.verdict === 'spike');
  let effect: FixLine['effect'] = 'unknown';
  const compared: string[] = [];
  for (const b of baseSpikes) {
    const r = rs.find((x) => x.decayEpoch === b.decayEpoch);
    if (!r) continue;
    compared.push(`${fmtRatio(r.ratioMean)} against ${fmtRatio(b.ratioMean)} at ${b.decayEpoch}`);
  }
  const paired = baseSpikes.map((b) => [b, rs.find((x) => x.decayEpoch === b.decayEpoch)] as const).filter((p) => p[1] !== undefined);
  if (paired.length) {
    if (paired.every(([, r]) => r!.verdict === 'no-spike')) effect = 'removes';
    else if (paired.every(([b, r]) => r!.ci[1] < b.ratioMean || r!.ratioMean < b.ci[0])) effect = 'shrinks';
    else effect = 'does not remove';
  }
  const o = outcome(a, v);
  const ob = baseline ? outcome(a, baseline) : undefined;
  const cost =
    o && ob
      ? `; test accuracy ${fmtAcc(o.testAcc)} against ${fmtAcc(ob.testAcc)} (${fmtAccPoints(o.testAcc - ob.testAcc)}, epoch ${o.epoch})`
      : o
        ? `; test accuracy ${fmtAcc(o.testAcc)} (epoch ${o.epoch})`
        : '';
  const what = effect === 'unknown' ? 'effect not measured against a spiking baseline' : `${effect} the rise`;
  return { variant: v, effect, sentence: `${v}: ${what}${compared.length ? ` (${compared.join(', ')})` : ''}${cost}.` };
}

/** The answer from an analysis (see the module comment). `max`: variant sentences on the first screen. */
export function buildAnswer(a: SuiteAnalysis, max = 6): Answer {
  const roles = a.roles ?? {};
  const forkNames = new Set((a.forks ?? []).map((f) => f.fork));
  const variants = [...new Set(a.results.map((r) => r.variant))].filter((v) => trainEpoch(a, v).length > 0);
  const baseline = variants.find((v) => roles[v] === 'baseline');
  const order = (v: string): number => (roles[v] !== undefined ? ROLE_ORDER[roles[v]!] : 4) + (forkNames.has(v) ? 10 : 0);
  const sorted = [...variants].sort((x, y) => order(x) - order(y));
  // With a baseline: the baseline, then the variants that differ from it or have a role (not the forks: their effects are causes).
  const baseKey = baseline ? verdictKey(trainEpoch(a, baseline)) : '';
  const shown = sorted.filter((v) => {
    if (!baseline) return !forkNames.has(v) || variants.every((x) => forkNames.has(x));
    if (v === baseline) return true;
    if (forkNames.has(v)) return false;
    return roles[v] !== undefined || verdictKey(trainEpoch(a, v)) !== baseKey;
  });
  const lines: VariantLine[] = shown.map((v) => ({ variant: v, role: roles[v], results: trainEpoch(a, v), sentence: variantSentence(a, v, roles[v]) }));
  const causes = [...forkCauses(a), ...variantCauses(a, baseline, forkNames)];
  const composition = attributionCauses(a, baseline ? [baseline] : shown.filter((v) => roles[v] !== 'fix' && roles[v] !== 'control').slice(0, 2));
  const fixes = sorted.filter((v) => roles[v] === 'fix').map((v) => fixLine(a, v, baseline));
  return { variants: lines.slice(0, max), more: Math.max(0, variants.length - Math.min(lines.length, max)), causes, composition, fixes, ...(baseline ? { baseline } : {}) };
}

/** The short form for the terminal: the verdict per variant, the causes, the fixes. */
export function answerText(a: SuiteAnalysis, max = 6): string[] {
  const ans = buildAnswer(a, max);
  const out = ans.variants.map((l) => l.sentence);
  if (ans.more > 0) out.push(`(${ans.more} more variant${ans.more === 1 ? '' : 's'}: see the verdict table.)`);
  if (ans.causes.length) out.push('Causes, largest first:', ...ans.causes.map((c) => `  - ${c.sentence}`));
  if (ans.composition.length) out.push('What the rise is made of:', ...ans.composition.map((c) => `  - ${c.sentence}`));
  if (ans.fixes.length) out.push('Fixes:', ...ans.fixes.map((f) => `  - ${f.sentence}`));
  return out;
}
