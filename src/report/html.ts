/** HTML pieces of the report: tables, explanation, manifests, page shell. All text is escaped here. */
import type { CheckRow, DecayResult, RunData, SuiteAnalysis } from '../analysis/types.js';
import { escapeHtml as h } from './escape.js';
import { compositionSentence } from '../analysis/answer.js';
import { fmtDetail as fmtNum, fmtPct, fmtRatio, fmtRatioCi, fmtSignedDetail as fmtSigned, fmtSignedPct } from '../analysis/format.js';

function verdictCell(v: string): string {
  return `<td class="verdict v-${h(v.replace(/[^a-z-]/g, ''))}">${h(v)}</td>`;
}

const sameRow = (a: { variant: string; split: string; resolution: string; decayEpoch: number }, b: typeof a): boolean =>
  a.variant === b.variant && a.split === b.split && a.resolution === b.resolution && a.decayEpoch === b.decayEpoch;

export function verdictTable(analysis: SuiteAnalysis): string {
  interface Row {
    variant: string;
    split: string;
    resolution: string;
    decayEpoch: number;
    metric?: string;
    ratioMean: number;
    ci: [number, number];
    verdict: string;
    expected?: string;
    pass?: boolean;
  }
  const rows: Row[] = analysis.checks.map((c: CheckRow) => {
    const r = analysis.results.find((x) => sameRow(x, c) && x.metric === 'center') ?? analysis.results.find((x) => sameRow(x, c));
    return { ...c, metric: r?.metric };
  });
  for (const r of analysis.results) {
    if (!analysis.checks.some((c) => sameRow(c, r))) rows.push({ ...r, expected: undefined, pass: undefined });
  }
  rows.sort((a, b) => a.decayEpoch - b.decayEpoch || a.variant.localeCompare(b.variant) || a.split.localeCompare(b.split) || a.resolution.localeCompare(b.resolution));
  const showMetric = rows.some((r) => r.metric !== undefined && r.metric !== 'center');
  const head = ['variant', 'split', 'resolution', ...(showMetric ? ['metric'] : []), 'decay epoch', 'ratio mean', 'CI', 'verdict', 'expected', 'pass/fail'];
  const body = rows
    .map((r) => {
      const pass = r.pass === undefined ? '<td class="na">—</td>' : r.pass ? '<td class="pass">pass</td>' : '<td class="fail">FAIL</td>';
      return (
        '<tr>' +
        `<td>${h(r.variant)}</td><td>${h(r.split)}</td><td>${h(r.resolution)}</td>` +
        (showMetric ? `<td>${h(r.metric ?? '')}</td>` : '') +
        `<td class="num">${h(r.decayEpoch)}</td><td class="num">${fmtRatio(r.ratioMean)}</td>` +
        `<td class="num">${fmtRatioCi(r.ci)}</td>` +
        verdictCell(r.verdict) +
        `<td>${h(r.expected ?? '—')}</td>${pass}</tr>`
      );
    })
    .join('\n');
  const t = analysis.thresholds;
  const passed = analysis.checks.filter((c) => c.pass).length;
  const summary = analysis.checks.length
    ? `<p class="summary ${passed === analysis.checks.length ? 'pass' : 'fail'}">${passed} of ${analysis.checks.length} checks pass.</p>`
    : '<p class="summary">No expectations were checked.</p>';
  return (
    `${summary}\n<details class="verdicts"><summary>All verdicts: ${h(rows.length)} rows (every variant, split and resolution)</summary><div class="scroll"><table class="verdicts"><thead><tr>${head.map((x) => `<th>${h(x)}</th>`).join('')}</tr></thead>\n<tbody>\n${
      rows.length ? body : `<tr><td colspan="${head.length}" class="na">No decay results.</td></tr>`
    }\n</tbody></table></div></details>\n` +
    `<p class="thresholds">Thresholds: a seed spikes when observed / trend-predicted ≥ ${h(fmtRatio(t.spikeRatio))}; ` +
    `trend fitted on ${h(t.preWindow)} epochs before the decay, peak taken over ${h(t.postWindow)} epochs from the decay on; ` +
    `CI: ${h(fmtPct(t.confidence))} across seeds.</p>`
  );
}

export function seedTable(results: DecayResult[]): string {
  const rows = results.flatMap((r) =>
    r.seeds.map(
      (s) =>
        `<tr><td>${h(r.variant)}</td><td>${h(r.split)}</td><td>${h(r.resolution)}</td><td>${h(r.metric)}</td><td class="num">${h(r.decayEpoch)}</td>` +
        `<td class="num">${h(s.seed)}</td><td>${h(s.run)}</td><td class="num">${fmtNum(s.expected)}</td><td class="num">${fmtNum(s.observed)}</td>` +
        `<td class="num">${fmtNum(s.at, 6)}</td><td class="num">${fmtRatio(s.ratio)}</td><td class="num">${fmtSigned(s.excess)}</td></tr>`,
    ),
  );
  if (!rows.length) return '';
  return (
    '<details><summary>Per-seed measurements</summary><div class="scroll"><table><thead><tr>' +
    ['variant', 'split', 'resolution', 'metric', 'decay', 'seed', 'run', 'expected', 'observed', 'at', 'ratio', 'excess'].map((x) => `<th>${x}</th>`).join('') +
    `</tr></thead><tbody>\n${rows.join('\n')}\n</tbody></table></div></details>`
  );
}

export function attributionTable(results: DecayResult[]): string {
  const withAttr = results.filter((r) => r.attribution);
  if (!withAttr.length) return '';
  const rows = withAttr.map((r) => {
    const a = r.attribution!;
    const others = [...a.others]
      .sort((x, y) => Math.abs(y.relChange) - Math.abs(x.relChange))
      .slice(0, 4)
      .map((o) => `${h(o.key)}: ${fmtNum(o.before)} → ${fmtNum(o.after)} (${fmtSignedPct(o.relChange)})`)
      .join('<br>');
    return (
      `<tr><td>${h(r.variant)}</td><td>${h(r.split)}</td><td>${h(r.resolution)}</td><td class="num">${h(r.decayEpoch)}</td>` +
      `<td class="num">${fmtSigned(a.center)}</td><td class="num">${fmtSigned(a.within)}</td><td class="num">${fmtSigned(a.lag)}</td>` +
      `<td class="num">${fmtSigned(a.featSq)}</td><td class="others">${others || '—'}</td></tr>`
    );
  });
  return (
    '<details><summary>What changed across each decay (post-window mean − pre-window mean)</summary><div class="scroll"><table><thead><tr>' +
    ['variant', 'split', 'resolution', 'decay', 'Δ center', 'Δ cl_within', 'Δ cl_lag', 'Δ feat_sq', 'largest relative changes elsewhere']
      .map((x) => `<th>${x}</th>`)
      .join('') +
    `</tr></thead><tbody>\n${rows.join('\n')}\n</tbody></table></div></details>`
  );
}

/**
 * The explanation: what each spike on the train split is made of (terms that add up to the rise),
 * then the long form (every verdict, split and resolution, with its attribution) collapsed.
 */
export function explanationHtml(analysis: SuiteAnalysis): string {
  const composition = analysis.results
    .filter((r) => r.split === 'train' && r.resolution === 'epoch' && r.metric === 'center' && r.verdict === 'spike')
    .map((r) => compositionSentence(r.variant, r, analysis.thresholds.postWindow))
    .filter((x): x is string => x !== undefined);
  const lead = composition.length
    ? `<p>What each rise on the train split is made of: the post-window mean over its trend as a product of parts, each against its own pre-decay trend (their logs add up to the whole; shares of the whole in brackets):</p><ul class="composition">${composition.map((c) => `<li>${h(c)}</li>`).join('')}</ul>`
    : '';
  const sentences = analysis.explanation;
  const long = sentences.length
    ? `<details class="long"><summary>Every verdict in words (${h(sentences.length)} sentences)</summary>${sentences.map((s) => `<p>${h(s)}</p>`).join('\n')}</details>`
    : '<p class="na">The analysis produced no explanation.</p>';
  return lead + long;
}

function flatten(value: unknown, prefix: string, out: Map<string, string>): void {
  if (value !== null && typeof value === 'object' && !Array.isArray(value) && Object.keys(value).length > 0) {
    for (const [k, v] of Object.entries(value as Record<string, unknown>)) flatten(v, prefix ? `${prefix}.${k}` : k, out);
    return;
  }
  out.set(prefix, typeof value === 'string' ? value : (JSON.stringify(value) ?? String(value)));
}

/** Rows that are the same in every run, then a run-by-key table of those that differ. */
function commonAndDiffering(names: string[], maps: Map<string, string>[], what: string): string {
  const keys = [...new Set(maps.flatMap((m) => [...m.keys()]))].sort();
  const common: string[] = [];
  const differing: string[] = [];
  for (const k of keys) {
    const vals = maps.map((m) => m.get(k));
    if (vals.every((v) => v === vals[0]) && vals[0] !== undefined) common.push(k);
    else differing.push(k);
  }
  let out = '';
  if (differing.length) {
    out +=
      `<h4>${h(what)} that differs between runs</h4><div class="scroll"><table class="manifest"><thead><tr><th>key</th>${names.map((n) => `<th>${h(n)}</th>`).join('')}</tr></thead><tbody>\n` +
      differing.map((k) => `<tr><td class="key">${h(k)}</td>${maps.map((m) => `<td>${m.has(k) ? h(m.get(k)!) : '<span class="na">—</span>'}</td>`).join('')}</tr>`).join('\n') +
      '\n</tbody></table></div>';
  }
  if (common.length) {
    out +=
      `<h4>${h(what)} shared by ${names.length === 1 ? 'the run' : `all ${names.length} runs`}</h4><div class="scroll"><table class="manifest kv"><tbody>\n` +
      common.map((k) => `<tr><td class="key">${h(k)}</td><td>${h(maps[0]!.get(k)!)}</td></tr>`).join('\n') +
      '\n</tbody></table></div>';
  }
  return out;
}

export function manifestsHtml(runs: RunData[]): string {
  if (!runs.length) return '<p class="na">No runs.</p>';
  const head = ['run', 'variant', 'seed', 'backend', 'status', 'epochs done', 'decay epochs', 'started', 'ended', 'git commit', 'directory', 'notes'];
  const rows = runs.map((r) => {
    const m = r.manifest;
    const notes = [m.divergedAt ? `diverged at epoch ${m.divergedAt.epoch}, step ${m.divergedAt.step}: ${m.divergedAt.what}` : '', m.error ? `error: ${m.error}` : '', m.suite ? `suite: ${m.suite}` : '']
      .filter((s) => s)
      .join('; ');
    return (
      `<tr><td class="runname">${h(m.name)}</td><td>${h(m.variant)}</td><td class="num">${h(m.seed)}</td><td>${h(m.backend)}</td>` +
      `<td class="status-${h(String(m.status).replace(/[^a-z]/g, ''))}">${h(m.status)}</td><td class="num">${h(m.epochsDone)}</td>` +
      `<td>${h((m.decayEpochs ?? []).join(', '))}</td><td class="time">${h(m.startedAt ?? '')}</td><td class="time">${h(m.endedAt ?? '')}</td>` +
      `<td class="mono" title="${h(m.gitCommit ?? '')}">${h((m.gitCommit ?? '').slice(0, 12))}</td><td class="mono">${h(r.dir)}</td><td>${h(notes)}</td></tr>`
    );
  });
  const names = runs.map((r) => r.manifest.name);
  const configs = runs.map((r) => {
    const out = new Map<string, string>();
    flatten(r.manifest.config ?? {}, '', out);
    out.delete('');
    return out;
  });
  const versions = runs.map((r) => new Map(Object.entries(r.manifest.versions ?? {}).map(([k, v]) => [k, String(v)])));
  return (
    `<div class="scroll"><table class="manifest"><thead><tr>${head.map((x) => `<th>${x}</th>`).join('')}</tr></thead><tbody>\n${rows.join('\n')}\n</tbody></table></div>\n` +
    commonAndDiffering(names, configs, 'Configuration') +
    commonAndDiffering(names, versions, 'Versions')
  );
}

export const CSS = `
.answer ul.answers { font-size: 15px; line-height: 1.4; margin: 4px 0 6px; padding-left: 20px; }
.answer ul.answers li { margin: 2px 0; }
.answer ul.answers li.role-baseline { font-weight: 600; }
.answer h3 { margin: 6px 0 2px; font-size: 14px; } .answer h3 .hint { font-weight: 400; font-size: 12px; color: var(--muted); }
.answer ol.causes, .answer ul.fixes, .answer ul.composition { font-size: 13.5px; line-height: 1.35; margin: 2px 0 6px; padding-left: 20px; }
.answer-grid { display: grid; grid-template-columns: minmax(0, 1fr) 660px; gap: 8px 20px; align-items: start; }
.forest-fig { margin: 0; }
.forest-fig figcaption { font-size: 12px; color: #555; max-width: 640px; }
.export { float: right; margin-left: 8px; } .export button { font-size: 11px; padding: 0 5px; margin-left: 3px; cursor: pointer; }
details.more-charts { margin: 8px 0; }
ul.composition { margin: 2px 0 8px; padding-left: 20px; }

:root { color-scheme: light; --fg: #1d2329; --muted: #5b6670; --line: #d9dee3; --bg: #fff; --card: #fafbfc; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif; color: var(--fg); background: var(--bg); }
main { max-width: 1320px; margin: 0 auto; padding: 16px 20px 48px; }
h1 { font-size: 22px; margin: 4px 0 4px; word-break: break-word; }
h2 { font-size: 18px; margin: 28px 0 8px; padding-top: 8px; border-top: 2px solid var(--line); }
h3 { font-size: 15px; margin: 18px 0 6px; }
h4 { font-size: 13px; margin: 14px 0 4px; color: var(--muted); }
p { margin: 4px 0 8px; max-width: 110ch; }
.meta, .thresholds, .note, .na { color: var(--muted); font-size: 12.5px; }
.scroll { overflow-x: auto; max-width: 100%; }
main table { border-collapse: collapse; font-size: 13px; margin: 6px 0 10px; }
main th, main td { border: 1px solid var(--line); padding: 3px 8px; text-align: left; vertical-align: top; }
main th { background: #f1f3f5; font-weight: 600; white-space: nowrap; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.pass { background: #e3f4e1; color: #1e6b1a; font-weight: 600; }
td.fail { background: #fde2e1; color: #a4161a; font-weight: 700; }
td.verdict { font-weight: 600; }
td.v-spike { color: #b3261e; } td.v-no-spike { color: #256d1b; } td.v-inconclusive { color: #8a6d00; }
table.manifest td.time { white-space: nowrap; font-size: 12px; }
td.key, td.mono, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12px; }
td.runname { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12px; word-break: break-all; max-width: 34ch; }
table.manifest td { word-break: break-word; max-width: 60ch; white-space: pre-wrap; }
.summary { font-weight: 600; } .summary.pass { color: #1e6b1a; } .summary.fail { color: #a4161a; }
details { margin: 6px 0; } summary { cursor: pointer; color: var(--muted); }
.explanation p { margin: 2px 0 6px; }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(600px, 1fr)); gap: 10px 14px; }
figure.card { margin: 0; padding: 8px 10px 6px; background: var(--card); border: 1px solid var(--line); border-radius: 6px; min-width: 0; }
figure.card figcaption { font-weight: 600; font-size: 13px; margin-bottom: 2px; }
figure.card .note { margin: 2px 0 0; }
.chart { min-height: 60px; overflow-x: auto; }
.static .chart svg { max-width: 100%; height: auto; }
.chart-error { color: #a4161a; font-size: 12px; }
nav.toc { font-size: 13px; margin: 6px 0 0; } nav.toc a { margin-right: 12px; color: #2a5d9f; }
#vg-tooltip-element { font-size: 12px; }
`;
