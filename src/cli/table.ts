/** Plain fixed-width text tables for the terminal: checks, verdicts, fork effects. */
import { fmtCell, fmtPct } from '../analysis/format.js';
import type { CheckRow, DecayResult, SuiteAnalysis } from '../analysis/types.js';
import type { Split } from '../store/types.js';

/** A number in a table cell (src/analysis/format.ts fmtCell). */
export const fmt = fmtCell;

export function textTable(header: string[], rows: (string | number)[][]): string {
  const cells = [header, ...rows.map((r) => r.map((c) => (typeof c === 'number' ? fmt(c) : c)))];
  const widths = header.map((_, i) => Math.max(...cells.map((r) => String(r[i] ?? '').length)));
  const line = (r: (string | number)[]) => r.map((c, i) => String(c ?? '').padStart(widths[i]!)).join('  ');
  return [line(cells[0]!), widths.map((w) => '-'.repeat(w)).join('  '), ...cells.slice(1).map(line)].join('\n');
}

export function checkTable(rows: CheckRow[]): string {
  return textTable(
    ['variant', 'split', 'res', 'decay', 'ratio', 'CI', 'verdict', 'expected', 'result'],
    rows.map((r) => [r.variant, r.split, r.resolution, r.decayEpoch, fmt(r.ratioMean), `${fmt(r.ci[0])}..${fmt(r.ci[1])}`, r.verdict, r.expected, r.pass ? 'pass' : 'FAIL']),
  );
}

export function resultsTable(rs: DecayResult[]): string {
  return textTable(
    ['variant', 'split', 'res', 'decay', 'seeds', 'ratio', 'CI', 'verdict', 'shape'],
    rs.map((r) => [r.variant, r.split, r.resolution, r.decayEpoch, r.n, fmt(r.ratioMean), `${fmt(r.ci[0])}..${fmt(r.ci[1])}`, r.verdict, r.verdict === 'spike' && r.shape ? `${r.shape === 'peak' ? 'transient peak' : 'level shift'} (${fmtPct(r.recoveryMean ?? NaN)} back)` : '']),
  );
}

/** The metrics a fork's effect is shown on (all are in the analysis; --json has every one). */
const FORK_METRICS: [Split, string][] = [
  ['train', 'center'],
  ['train', 'cl_within'],
  ['train', 'cl_lag'],
  ['train', 'center/clean'],
  ['train', 'center/flipped'],
  ['train', 'acc/flipped'],
  ['train', 'feat_norm_mean'],
  ['train', 'acc'],
  ['test', 'acc'],
  ['test', 'center'],
];

/** Each fork against its parent over the post window: parent, twin, parent - twin with its CI. */
export function forksTable(forks: NonNullable<SuiteAnalysis['forks']>): string {
  const rows: (string | number)[][] = [];
  for (const f of forks) {
    for (const [split, metric] of FORK_METRICS) {
      const m = f.metrics.find((x) => x.split === split && x.metric === metric);
      if (!m) continue;
      rows.push([`${f.fork} (${Object.entries(f.set).map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(' ')} at ${f.at})`, `${split} ${metric}`, m.diff.n, fmt(m.parentMean), fmt(m.twinMean), fmt(m.diff.mean), `${fmt(m.diff.ci[0])}..${fmt(m.diff.ci[1])}`]);
    }
  }
  return textTable(['fork vs its parent', 'metric (mean over the post window)', 'seeds', 'parent', 'twin', 'parent - twin', 'CI'], rows);
}
