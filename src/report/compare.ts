/**
 * Two (or more) suites on one page (`spikeprobe report A B`, e.g. before and after a fix): each
 * suite's answer side by side (sentences, causes, fixes, forest plot), then one table of the train
 * verdicts per variant and decay across the suites, and what changed. The page has no scripts
 * (script-src 'none'); every name is escaped.
 */
import type { DecayResult, SuiteAnalysis } from '../analysis/types.js';
import { fmtRatio, fmtRatioCi } from '../analysis/format.js';
import { answerSection } from './answer.js';
import { escapeHtml as h } from './escape.js';
import { CSS } from './html.js';
import { pageShell } from './shell.js';

export interface CompareInput {
  title: string;
  suites: { label: string; analysis: SuiteAnalysis; runs: number }[];
  generatedAt?: Date;
}

function trainEpoch(a: SuiteAnalysis): DecayResult[] {
  return a.results.filter((r) => r.split === 'train' && r.resolution === 'epoch' && r.metric === 'center' && r.n > 0);
}

function cell(r: DecayResult | undefined): string {
  if (!r) return '<td class="na">—</td>';
  const ci = r.n > 1 ? ` (${fmtRatioCi(r.ci)})` : ' (1 seed)';
  return `<td class="num v-${h(r.verdict)}">${h(fmtRatio(r.ratioMean))}${h(ci)} ${h(r.verdict === 'no-spike' ? 'no spike' : r.verdict)}</td>`;
}

/** The verdicts of every suite per variant x decay, and a column saying whether they agree. */
export function comparisonTable(suites: CompareInput['suites']): string {
  const keys = new Map<string, { variant: string; decay: number }>();
  for (const s of suites) for (const r of trainEpoch(s.analysis)) keys.set(`${r.variant}\u0000${r.decayEpoch}`, { variant: r.variant, decay: r.decayEpoch });
  const rows = [...keys.values()].sort((a, b) => a.variant.localeCompare(b.variant) || a.decay - b.decay);
  const body = rows
    .map((k) => {
      const rs = suites.map((s) => trainEpoch(s.analysis).find((r) => r.variant === k.variant && r.decayEpoch === k.decay));
      const present = rs.filter((r): r is DecayResult => r !== undefined);
      const change =
        present.length < 2 ? 'in one suite only' : new Set(present.map((r) => r.verdict)).size === 1 ? 'same verdict' : `${present.map((r) => (r.verdict === 'no-spike' ? 'no spike' : r.verdict)).join(' → ')}`;
      return `<tr><td>${h(k.variant)}</td><td class="num">${h(k.decay)}</td>${rs.map(cell).join('')}<td>${h(change)}</td></tr>`;
    })
    .join('\n');
  return (
    `<div class="scroll"><table class="compare"><thead><tr><th>variant</th><th>decay</th>${suites.map((s) => `<th>${h(s.label)}</th>`).join('')}<th>change</th></tr></thead>` +
    `<tbody>\n${body || `<tr><td colspan="${suites.length + 3}" class="na">No decay results.</td></tr>`}\n</tbody></table></div>`
  );
}

export function buildComparisonReport(input: CompareInput): string {
  const generated = (input.generatedAt ?? new Date()).toISOString();
  const answers = input.suites
    .map((s, i) => `<div class="compare-col">${answerSection(s.analysis, { idSuffix: `-${i + 1}`, heading: `${s.label}: ${s.runs} run${s.runs === 1 ? '' : 's'}`, links: false })}</div>`)
    .join('');
  const thresholds = input.suites
    .map((s) => `${h(s.label)}: trend over ${h(s.analysis.thresholds.preWindow)} epochs, peak over ${h(s.analysis.thresholds.postWindow)}, spike at ${h(fmtRatio(s.analysis.thresholds.spikeRatio))}`)
    .join('; ');
  const body =
    `<main>\n<header><h1>${h(input.title)}</h1><p class="meta">${input.suites.map((s) => h(s.label)).join(' vs ')} · generated ${h(generated)} · static (no scripts)</p></header>\n` +
    `<div class="compare-grid">${answers}</div>\n` +
    `<section id="verdicts"><h2>Verdicts side by side (train center loss, epoch means)</h2>${comparisonTable(input.suites)}<p class="thresholds">${thresholds}.</p></section>\n</main>`;
  return pageShell(input.title, 'static', body, '', "'none'", CSS + COMPARE_CSS);
}

const COMPARE_CSS = `
.compare-grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(520px, 1fr)); gap: 0 24px; }
.compare-grid svg.forest { max-width: 100%; height: auto; }
.compare-grid .answer ul.answers { font-size: 14px; }
.compare-grid .answer-grid { grid-template-columns: 1fr; }
.compare-grid h2 { font-size: 16px; }
table.compare td.v-spike { color: #b3261e; } table.compare td.v-no-spike { color: #256d1b; } table.compare td.v-inconclusive { color: #8a6d00; }
`;
