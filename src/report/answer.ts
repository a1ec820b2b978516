/**
 * The report's first screen: the answer in plain sentences (per variant: does the train center
 * loss rise at the decays, by how much, how sure, peak or level shift; each fork: what removing or
 * changing something at a decay did) and one summary figure, a forest plot of the ratio per variant
 * x decay with its CI, the line at 1 and the spike threshold, linking to the decay panels. Pure
 * strings from the analysis; every name is escaped; the figure is inline SVG (no script needed).
 */
import type { DecayResult, SuiteAnalysis } from '../analysis/types.js';
import { escapeHtml as h } from './escape.js';

const f2 = (v: number): string => (Number.isFinite(v) ? v.toFixed(2) : '—');

function trainEpochResults(a: SuiteAnalysis): DecayResult[] {
  return a.results.filter((r) => r.split === 'train' && r.resolution === 'epoch' && r.metric === 'center' && r.n > 0);
}

/** One sentence per variant (train split, epoch means), at most `max`. */
export function answerSentences(a: SuiteAnalysis, max = 6): string[] {
  const byVariant = new Map<string, DecayResult[]>();
  for (const r of trainEpochResults(a)) byVariant.set(r.variant, [...(byVariant.get(r.variant) ?? []), r]);
  const out: string[] = [];
  for (const [v, rs] of byVariant) {
    const spikes = rs.filter((r) => r.verdict === 'spike');
    const seeds = Math.max(...rs.map((r) => r.n));
    const one = (r: DecayResult) => `x${f2(r.ratioMean)} at epoch ${r.decayEpoch}${r.n > 1 ? ` (95% CI ${f2(r.ci[0])}-${f2(r.ci[1])})` : ''}`;
    if (spikes.length) {
      const shapes = new Set(spikes.map((r) => r.shape).filter(Boolean));
      const shape = shapes.size === 1 ? (shapes.has('level') ? ' and stays up (a level shift)' : ' and comes back down (a transient peak)') : '';
      out.push(`${v}: the train center loss rises over its trend after ${spikes.length === rs.length ? 'every decay' : `${spikes.length} of ${rs.length} decays`}: ${spikes.map(one).join(', ')}, ${seeds} seed${seeds > 1 ? 's' : ''}${shape}.`);
    } else if (rs.every((r) => r.verdict === 'no-spike')) {
      out.push(`${v}: no spike at the decays (${rs.map((r) => `x${f2(r.ratioMean)} at ${r.decayEpoch}`).join(', ')}; ${seeds} seed${seeds > 1 ? 's' : ''}).`);
    } else {
      out.push(`${v}: not decided (${rs.map((r) => `x${f2(r.ratioMean)} at ${r.decayEpoch}: ${r.verdict}`).join(', ')}; ${seeds} seed${seeds > 1 ? 's' : ''}).`);
    }
  }
  for (const fk of a.forks ?? []) {
    const m = fk.metrics.find((x) => x.split === 'train' && x.metric === 'center');
    if (!m || m.diff.n === 0) continue;
    const change = Object.entries(fk.set).map(([k, v]) => `${k} = ${JSON.stringify(v)}`).join(', ');
    const d = m.diff;
    const word = d.ci[0] > 0 ? 'lower' : d.ci[1] < 0 ? 'higher' : 'not clearly different';
    out.push(
      `${fk.fork} (${fk.parent} with ${change} from epoch ${fk.at}): the train center loss over the ${fk.window} epochs from ${fk.at} is ${word}` +
        (word === 'not clearly different' ? '' : ` by ${f2(Math.abs(d.mean))}`) +
        ` (parent ${f2(m.parentMean)}, twin ${f2(m.twinMean)}; parent minus twin 95% CI ${f2(d.ci[0])}..${f2(d.ci[1])}, ${d.n} seed${d.n > 1 ? 's' : ''}).`,
    );
  }
  return out.slice(0, max + (a.forks?.length ?? 0));
}

/** The forest plot: one row per variant x decay (train, epoch means), CI bar, mean dot, x = ratio. */
export function forestPlot(a: SuiteAnalysis): string {
  const rows = trainEpochResults(a);
  if (rows.length === 0) return '<p class="na">No decay could be measured on the train split.</p>';
  const th = a.thresholds.spikeRatio;
  const lo = Math.min(0.8, ...rows.map((r) => (Number.isFinite(r.ci[0]) ? r.ci[0] : r.ratioMean)));
  const hi = Math.max(th + 0.2, ...rows.map((r) => (Number.isFinite(r.ci[1]) ? r.ci[1] : r.ratioMean)));
  const W = 700;
  const L = 210;
  const R = 70;
  const rowH = 22;
  const H = rows.length * rowH + 34;
  const x = (v: number) => L + ((Math.min(Math.max(v, lo), hi) - lo) / (hi - lo)) * (W - L - R);
  const color = (v: string) => (v === 'spike' ? '#d62728' : v === 'no-spike' ? '#2ca02c' : '#7f7f7f');
  const parts: string[] = [];
  parts.push(`<line x1="${x(1)}" x2="${x(1)}" y1="4" y2="${H - 24}" stroke="#999" stroke-dasharray="3 3"/>`);
  parts.push(`<line x1="${x(th)}" x2="${x(th)}" y1="4" y2="${H - 24}" stroke="#d62728" stroke-dasharray="5 3"/>`);
  parts.push(`<text x="${x(1) - 4}" y="${H - 10}" text-anchor="end" class="tick">x1</text>`);
  parts.push(`<text x="${x(th) + 4}" y="${H - 10}" text-anchor="start" class="tick">spike threshold x${f2(th)}</text>`);
  rows.forEach((r, i) => {
    const y = 14 + i * rowH;
    const c = color(r.verdict);
    const label = `${r.variant}, decay ${r.decayEpoch}`;
    parts.push(
      `<a href="#decay-${h(r.decayEpoch)}"><text x="${L - 8}" y="${y + 4}" text-anchor="end" class="lab">${h(label)}</text></a>` +
        (Number.isFinite(r.ci[0]) && r.n > 1 ? `<line x1="${x(r.ci[0])}" x2="${x(r.ci[1])}" y1="${y}" y2="${y}" stroke="${c}" stroke-width="2"/>` : '') +
        `<circle cx="${x(r.ratioMean)}" cy="${y}" r="4.5" fill="${c}"><title>${h(`${label}: x${f2(r.ratioMean)} (CI ${f2(r.ci[0])}-${f2(r.ci[1])}, ${r.n} seeds): ${r.verdict}`)}</title></circle>` +
        `<text x="${W - 4}" y="${y + 4}" text-anchor="end" class="val">x${h(f2(r.ratioMean))}</text>`,
    );
  });
  return (
    `<svg class="forest" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="ratio of the train center loss over its pre-decay trend, per variant and decay, with 95% CIs">` +
    parts.join('') +
    '</svg>'
  );
}

export function answerSection(a: SuiteAnalysis): string {
  const sentences = answerSentences(a);
  return (
    '<section id="answer" class="answer"><h2>The answer</h2>' +
    `<ul class="answers">${sentences.map((s) => `<li>${h(s)}</li>`).join('')}</ul>` +
    `<figure class="forest-fig">${forestPlot(a)}<figcaption>Train center loss after each decay over the trend of the ${h(a.thresholds.preWindow)} epochs before it (peak of the ${h(a.thresholds.postWindow)} epochs from the decay), mean and ${h(Math.round(a.thresholds.confidence * 100))}% CI over seeds; red: spike, green: no spike, grey: not decided. Click a row for its decay panels.</figcaption></figure>` +
    '</section>'
  );
}
