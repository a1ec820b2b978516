/**
 * The report's first screen: the answer (src/analysis/answer.ts: one sentence per variant that
 * matters, the causes ranked by measured size, the fixes with their effect and cost) and one summary
 * figure, a forest plot of the ratio over the trend per variant x decay (train: dot and CI; valid and
 * test: hollow marks) with the line at 1 and the spike threshold, each row linking to its decay
 * panels. Pure strings from the analysis; every name is escaped; the figure is inline SVG (no script
 * needed).
 */
import { buildAnswer, type Answer } from '../analysis/answer.js';
import { fmtPct, fmtRatio, fmtRatioCi } from '../analysis/format.js';
import type { DecayResult, SuiteAnalysis } from '../analysis/types.js';
import { escapeHtml as h } from './escape.js';

const SPLIT_MARK: Record<string, { dy: number; shape: 'square' | 'triangle' }> = { valid: { dy: -6, shape: 'square' }, test: { dy: 6, shape: 'triangle' } };

function epochCenter(a: SuiteAnalysis): DecayResult[] {
  return a.results.filter((r) => r.resolution === 'epoch' && r.metric === 'center' && r.n > 0);
}

/** Variants in the answer's order (baseline first, forks last), then any others. */
function variantOrder(a: SuiteAnalysis, ans: Answer): string[] {
  const forks = new Set((a.forks ?? []).map((f) => f.fork));
  const all = [...new Set(a.results.map((r) => r.variant))];
  const first = ans.variants.map((l) => l.variant);
  const rest = all.filter((v) => !first.includes(v)).sort((x, y) => Number(forks.has(x)) - Number(forks.has(y)));
  return [...first, ...rest];
}

/** The forest plot: one row per variant x decay (train CI bar and mean dot; valid and test as hollow marks), x = ratio. */
export function forestPlot(a: SuiteAnalysis, ans: Answer = buildAnswer(a), links = true): string {
  const all = epochCenter(a);
  const order = variantOrder(a, ans);
  // A fork's twin repeats its parent's records before the fork: its rows at earlier decays would repeat the parent's.
  const forkAt = new Map((a.forks ?? []).map((f) => [f.fork, f.at] as const));
  const keys = [...new Map(all.map((r) => [`${r.variant}\u0000${r.decayEpoch}`, r] as const)).values()]
    .filter((r) => !(r.decayEpoch < (forkAt.get(r.variant) ?? -Infinity)))
    .map((r) => ({ variant: r.variant, decay: r.decayEpoch }))
    .sort((x, y) => order.indexOf(x.variant) - order.indexOf(y.variant) || x.decay - y.decay);
  if (keys.length === 0) return '<p class="na">No decay could be measured.</p>';
  const th = a.thresholds.spikeRatio;
  const train = (v: string, d: number) => all.find((r) => r.variant === v && r.decayEpoch === d && r.split === 'train');
  const finite = (x: number) => Number.isFinite(x);
  const trainRows = all.filter((r) => r.split === 'train');
  // The x range covers the train intervals, the other splits' means, 1 and the threshold.
  const lo = Math.min(0.8, ...trainRows.map((r) => (finite(r.ci[0]) ? r.ci[0] : r.ratioMean)), ...all.map((r) => r.ratioMean).filter(finite));
  const hi = Math.max(th + 0.2, ...trainRows.map((r) => (finite(r.ci[1]) ? r.ci[1] : r.ratioMean)), ...all.map((r) => r.ratioMean).filter(finite));
  const W = 640;
  const L = 200;
  const R = 56;
  const rowH = 20;
  const H = keys.length * rowH + 34;
  const x = (v: number) => Math.round((L + ((Math.min(Math.max(v, lo), hi) - lo) / (hi - lo)) * (W - L - R)) * 10) / 10;
  const color = (v: string) => (v === 'spike' ? '#c0392b' : v === 'no-spike' ? '#2e8b3a' : '#7f7f7f');
  const parts: string[] = [];
  parts.push(`<line x1="${x(1)}" x2="${x(1)}" y1="4" y2="${H - 24}" stroke="#999" stroke-dasharray="3 3"/>`);
  parts.push(`<line x1="${x(th)}" x2="${x(th)}" y1="4" y2="${H - 24}" stroke="#c0392b" stroke-dasharray="5 3"/>`);
  parts.push(`<text x="${x(1) - 4}" y="${H - 10}" text-anchor="end" class="tick">x1</text>`);
  parts.push(`<text x="${x(th) + 4}" y="${H - 10}" text-anchor="start" class="tick">spike threshold ${h(fmtRatio(th))}</text>`);
  keys.forEach((k, i) => {
    const y = 14 + i * rowH;
    const label = `${k.variant}, decay ${k.decay}`;
    const t = train(k.variant, k.decay);
    const labelText = `<text x="${L - 8}" y="${y + 4}" text-anchor="end" class="lab">${h(label)}</text>`;
    let row = links ? `<a href="#decay-${h(k.decay)}">${labelText}</a>` : labelText;
    for (const r of all.filter((z) => z.variant === k.variant && z.decayEpoch === k.decay && z.split !== 'train')) {
      const m = SPLIT_MARK[r.split];
      if (!m || !finite(r.ratioMean)) continue;
      const cx = x(r.ratioMean);
      const cy = y + m.dy / 2;
      const tip = `<title>${h(`${label}, ${r.split}: ${fmtRatio(r.ratioMean)} (CI ${fmtRatioCi(r.ci)}, ${r.n} seeds): ${r.verdict}`)}</title>`;
      row +=
        m.shape === 'square'
          ? `<rect x="${cx - 3}" y="${cy - 3}" width="6" height="6" fill="none" stroke="${color(r.verdict)}" class="split-${r.split}">${tip}</rect>`
          : `<path d="M${cx},${cy - 3.5}L${cx + 3.5},${cy + 3}L${cx - 3.5},${cy + 3}Z" fill="none" stroke="${color(r.verdict)}" class="split-${r.split}">${tip}</path>`;
    }
    if (t) {
      const c = color(t.verdict);
      row +=
        (finite(t.ci[0]) && t.n > 1 ? `<line x1="${x(t.ci[0])}" x2="${x(t.ci[1])}" y1="${y}" y2="${y}" stroke="${c}" stroke-width="2"/>` : '') +
        `<circle cx="${x(t.ratioMean)}" cy="${y}" r="4.5" fill="${c}" class="split-train"><title>${h(`${label}, train: ${fmtRatio(t.ratioMean)} (CI ${fmtRatioCi(t.ci)}, ${t.n} seeds): ${t.verdict}`)}</title></circle>` +
        `<text x="${W - 4}" y="${y + 4}" text-anchor="end" class="val">${h(fmtRatio(t.ratioMean))}</text>`;
    }
    parts.push(row);
  });
  return (
    `<svg class="forest" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="ratio of the center loss over its pre-decay trend, per variant and decay, with 95% CIs">` +
    // Styles inside the figure, so that a saved copy (report --svg, the page's SVG/PNG buttons) looks the same.
    '<style>svg.forest text{font:12px system-ui,sans-serif;fill:#222}svg.forest text.tick{font-size:11px;fill:#666}svg.forest a text{fill:#1d4f91}</style>' +
    parts.join('') +
    '</svg>'
  );
}

export interface AnswerSectionOptions {
  /** SVG/PNG buttons for the forest plot (interactive page). */
  exportButtons?: boolean;
  /** Suffix of the section's and the figure's ids (several answers on one page). */
  idSuffix?: string;
  /** Heading (default 'The answer'). */
  heading?: string;
  /** Forest rows link to the page's decay panels (default true). */
  links?: boolean;
}

/** The first screen: answer sentences, causes, fixes and the forest plot. */
export function answerSection(a: SuiteAnalysis, opts: AnswerSectionOptions = {}): string {
  const sfx = opts.idSuffix ?? '';
  const links = opts.links !== false;
  const ans = buildAnswer(a);
  const more =
    ans.more > 0
      ? links
        ? `<li class="more"><a href="#verdicts">All ${h(ans.variants.length + ans.more)} variants and forks →</a></li>`
        : `<li class="more">${h(ans.more)} more variant${ans.more === 1 ? '' : 's'} and forks in the verdict table.</li>`
      : '';
  const variants = ans.variants.length
    ? `<ul class="answers">${ans.variants.map((l) => `<li class="role-${h(l.role ?? 'none')}">${h(l.sentence)}</li>`).join('')}${more}</ul>`
    : '<p class="na">No decay could be measured on the train split.</p>';
  // Three causes on the first screen; the rest one click away.
  const shown = ans.causes.slice(0, 3);
  const rest = ans.causes.slice(3);
  const causes = ans.causes.length
    ? `<h3>Causes, largest first</h3><ol class="causes">${shown.map((c) => `<li>${h(c.sentence)}</li>`).join('')}</ol>` +
      (rest.length ? `<details class="more-causes"><summary>${h(rest.length)} more</summary><ol class="causes" start="${shown.length + 1}">${rest.map((c) => `<li>${h(c.sentence)}</li>`).join('')}</ol></details>` : '')
    : '';
  const composition = ans.composition.length
    ? `<h3>What the rise is made of <span class="hint">(each part against its own pre-decay trend; shares of the log ratio)</span></h3><ul class="composition">${ans.composition.map((c) => `<li>${h(c.sentence)}</li>`).join('')}</ul>`
    : '';
  const fixes = ans.fixes.length ? `<h3>Fixes</h3><ul class="fixes">${ans.fixes.map((f) => `<li class="fix-${h(f.effect.replace(/ /g, '-'))}">${h(f.sentence)}</li>`).join('')}</ul>` : '';
  const th = a.thresholds;
  const buttons = opts.exportButtons
    ? `<span class="export"><button type="button" data-export="svg" data-target="forest${h(sfx)}">SVG</button><button type="button" data-export="png" data-target="forest${h(sfx)}">PNG</button></span>`
    : '';
  return (
    `<section id="answer${h(sfx)}" class="answer"><h2>${h(opts.heading ?? 'The answer')}</h2>` +
    variants +
    '<div class="answer-grid"><div class="answer-why">' +
    causes +
    composition +
    fixes +
    '</div>' +
    `<figure class="forest-fig" id="forest${h(sfx)}">${forestPlot(a, ans, links)}<figcaption>${buttons}Center loss after each decay over the trend of the ${h(th.preWindow)} epochs before it (peak of the ${h(th.postWindow)} epochs from the decay); train: mean and ${h(fmtPct(th.confidence))} CI over seeds, valid ▫ and test ▵: means. Red: spike, green: no spike, grey: not decided.${links ? ' Click a row for its decay panels.' : ''}</figcaption></figure>` +
    '</div></section>'
  );
}

