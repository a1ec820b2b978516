/**
 * The offline HTML report: one self-contained file, no network access.
 *
 * Interactive mode inlines the vega and vega-embed browser bundles, compiled Vega specs and the data
 * (columnar, in a <script type="application/json"> block). A Content-Security-Policy meta tag allows
 * exactly the page's inline scripts (by sha256) and nothing else: no eval (vega runs with its expression
 * interpreter), no connections, no external anything.
 * Static mode renders every chart in Node to inline SVG and the page has no scripts at all.
 *
 * buildReport runs five phases, each a function below: planReport (the data the charts read, the
 * chart plan, the compiled templates), renderCharts (SVG in Node for the static page and --svg),
 * the first screen (answer.ts) and the sections below it (sections), scriptsAndCsp (the page's data,
 * its scripts and the CSP hashes), and page (the shell).
 */
import { createHash } from 'node:crypto';
import type { RunData, SuiteAnalysis } from '../analysis/types.js';
import { writeFileAtomic } from '../util/atomic.js';
import { loadBundles } from './assets.js';
import { TemplateCache, planCharts, type ChartPlan } from './charts.js';
import { ROWS_JS, materialize, prepareData, roundSig, type PreparedData, type Row, type RowSource } from './data.js';
import { assertInlineScriptSafe, escapeHtml as h, jsonForScript } from './escape.js';
import { join } from 'node:path';
import { answerSection, forestPlot } from './answer.js';
import { buildAnswer } from '../analysis/answer.js';
import { CSS, attributionTable, explanationHtml, manifestsHtml, seedTable, verdictTable } from './html.js';
import { fmtDetail, fmtRatio } from '../analysis/format.js';
import { decayMarks } from '../analysis/marks.js';
import { installExport } from './page/export.js';
import { QUERY_FIELDS, SERIES_FIELDS, inverse, renameFields } from './page/payload.js';
import { pageShell } from './shell.js';

export { escapeHtml, jsonForScript } from './escape.js';
export { prepareData, materialize } from './data.js';
export { buildComparisonReport, type CompareInput } from './compare.js';

export interface ReportInput {
  title: string;
  runs: RunData[];
  analysis: SuiteAnalysis;
  /** Render charts to inline SVG in Node; the page then has no scripts. */
  static?: boolean;
  /** Also write every chart (and the answer's forest plot) as a standalone SVG file into this folder. */
  svgDir?: string;
  /** Epochs either side of each decay epoch in the zoomed windows (default 3). */
  windowEpochs?: number;
  /** Points per variant and key over one window of step data before bucketing (default 200). */
  stepPointsPerWindow?: number;
  /** Timestamp printed in the header (default: now). */
  generatedAt?: Date;
}

interface ChartRef {
  id: string;
  tpl: number;
  q: ChartPlan['queries'];
  r: ChartPlan['rules'];
  /** Trend and peak rows (the center panels of the decay windows). */
  m?: ChartPlan['marks'];
}

/**
 * The page's copy of the data: only series some chart reads; long runs of one value (a learning rate
 * between decays) run-length encoded as {r: [value, count, ...]}; compiled templates split into their
 * top-level array entries (signals, data, marks, scales, axes, legends), each stored once in a pool.
 */
function pagePayload(src: RowSource, plan: ChartPlan[], templates: object[], refs: ChartRef[]): object {
  const used = new Set<string>();
  for (const c of plan)
    for (const q of c.queries)
      for (const k of q.keys) {
        if (q.kind === 'step') used.add(`s|${k}`);
        else for (const si of q.splits ?? src.splits.map((_, i) => i)) used.add(`e|${k}|${si}`);
      }
  const rle = (arr: (number | null)[] | undefined): unknown => {
    if (!arr) return undefined;
    const r: (number | null)[] = [];
    for (let i = 0; i < arr.length; ) {
      let j = i + 1;
      while (j < arr.length && arr[j] === arr[i]) j++;
      r.push(arr[i]!, j - i);
      i = j;
    }
    return r.length < arr.length * 0.7 ? { r } : arr;
  };
  const series = src.series
    .filter((ser) => used.has(ser.kind === 'step' ? `s|${ser.key}` : `e|${ser.key}|${ser.split}`))
    .map((ser) => ({ ...ser, mean: rle(ser.mean), min: rle(ser.min), max: rle(ser.max) }));
  const pool: unknown[] = [];
  const poolIndex = new Map<string, number>();
  const intern = (v: unknown): number => {
    const id = JSON.stringify(v);
    let i = poolIndex.get(id);
    if (i === undefined) {
      i = pool.length;
      pool.push(v);
      poolIndex.set(id, i);
    }
    return i;
  };
  const tpls = templates.map((t) => {
    const out: Record<string, unknown> = {};
    const arrays: Record<string, number[]> = {};
    for (const [k, v] of Object.entries(t)) {
      if (Array.isArray(v)) arrays[k] = v.map(intern);
      else out[k] = v;
    }
    out.$ = arrays;
    return out;
  });
  // Compact field names only here, where the payload is written (page/payload.ts; the page expands them).
  const charts = refs.map((c) => ({ ...c, q: renameFields(c.q, QUERY_FIELDS) }));
  return { variants: src.variants, splits: src.splits, keys: src.keys, keyLabels: src.keyLabels, xs: src.xs, series: renameFields(series, SERIES_FIELDS), pool, templates: tpls, charts };
}

/**
 * Inline SVG in HTML needs no namespace declarations (dropping them keeps URLs out of the file),
 * screen coordinates need no more than 0.1 px, and a static picture needs none of vega's scene
 * annotations (classes, ARIA roles on hidden groups, pointer-events) nor its hidden paths.
 */
function compactSvg(svg: string): string {
  const round = (nums: string): string => nums.replace(/-?\d+\.\d{2,}/g, (n) => String(Math.round(Number(n) * 10) / 10));
  return svg
    .replace(/\s+xmlns(?::xlink)?="[^"]*"/g, '')
    .replace(/<path [^>]*display="none"[^>]*\/>/g, '')
    .replace(/ (?:class|role|aria-roledescription|aria-hidden|pointer-events)="[^"]*"/g, '')
    .replace(/ (?:opacity|fill-opacity|stroke-opacity)="1"/g, '')
    .replace(/ d="([^"]*)"/g, (_, d: string) => ` d="${round(d)}"`)
    .replace(/ transform="translate\(([^)]*)\)"/g, (_, t: string) => ` transform="translate(${round(t)})"`);
}

function sha256(code: string): string {
  return `'sha256-${createHash('sha256').update(code, 'utf8').digest('base64')}'`;
}

/** Fill a compiled template's named datasets (E, S, R) with rows. */
function withData(template: object, data: Record<string, unknown[]>): object {
  const spec = structuredClone(template) as { data?: { name: string; values?: unknown; source?: unknown; url?: unknown }[] };
  for (const d of spec.data ?? []) {
    if (d.name in data && d.source === undefined && d.url === undefined && d.values === undefined) d.values = data[d.name];
  }
  return spec;
}

function rowsFor(src: RowSource, c: ChartPlan): Record<string, unknown[]> {
  const E: Row[] = [];
  const S: Row[] = [];
  for (const q of c.queries) (q.kind === 'epoch' ? E : S).push(...materialize(src, q));
  return { E, S, R: c.rules, T: c.marks?.T ?? [], P: c.marks?.P ?? [] };
}

/**
 * The center panel of each decay window gets the fitted trend and the measured peak of every
 * variant (src/analysis/marks.ts), as the rows its T and P datasets read.
 */
function attachMarks(charts: ChartPlan[], runs: RunData[], analysis: SuiteAnalysis): void {
  const centers = charts.filter((c) => c.section === 'window' && c.panel === 'center' && c.window);
  if (centers.length === 0) return;
  const marks = decayMarks(runs, [...new Set(centers.map((c) => c.window!.decay))], analysis.thresholds);
  for (const c of centers) {
    const mine = marks.filter((m) => m.decay === c.window!.decay);
    if (mine.length === 0) continue;
    const T = mine.flatMap((m) => m.trend.map((p) => ({ variant: m.variant, x: p.x, mean: roundSig(p.y, 5) })));
    const P = mine.map((m) => ({
      variant: m.variant,
      x: roundSig(m.peak.x, 5),
      mean: roundSig(m.peak.observed, 5),
      tt: { variant: m.variant, 'measured peak (mean over seeds)': roundSig(m.peak.observed, 4), 'trend there': roundSig(m.peak.expected, 4), ratio: fmtRatio(m.peak.ratio), seeds: m.peak.n },
    }));
    c.marks = { T, P };
    c.spec = { ...c.spec, marks: true };
    c.note = [c.note, 'Dashed: the trend fitted before the decay; diamond: the measured peak (means over seeds).'].filter((x) => x).join(' ');
  }
}

const BOOT_JS = `(function () {
  'use strict';
  ${ROWS_JS.replace(/\n/g, '\n  ')}
  var P = JSON.parse(document.getElementById('report-data').textContent);
  function unrle(v) {
    if (!v || Array.isArray(v)) return v;
    var out = [];
    for (var a = 0; a < v.r.length; a += 2) for (var b = 0; b < v.r[a + 1]; b++) out.push(v.r[a]);
    return out;
  }
  var renameFields = ${renameFields.toString()};
  P.series = renameFields(P.series, ${JSON.stringify(inverse(SERIES_FIELDS))});
  P.charts.forEach(function (c) { c.q = renameFields(c.q, ${JSON.stringify(inverse(QUERY_FIELDS))}); });
  P.series.forEach(function (ser) { ser.mean = unrle(ser.mean); ser.min = unrle(ser.min); ser.max = unrle(ser.max); });
  function template(k) {
    var t = P.templates[k], spec = {}, key;
    for (key in t) if (key !== '$') spec[key] = t[key];
    spec = JSON.parse(JSON.stringify(spec));
    for (key in t.$) spec[key] = t.$[key].map(function (j) { return JSON.parse(JSON.stringify(P.pool[j])); });
    return spec;
  }
  var views = {};
  (${installExport.toString()})(document, views);
  var i = 0, failed = 0;
  function done() {
    document.body.setAttribute('data-charts', failed ? 'failed' : 'done');
    document.body.setAttribute('data-charts-failed', String(failed));
  }
  function next() {
    if (i >= P.charts.length) { done(); return; }
    var c = P.charts[i++];
    var el = document.getElementById(c.id);
    var data = { E: [], S: [], R: c.r, T: c.m ? c.m.T : [], P: c.m ? c.m.P : [] };
    for (var j = 0; j < c.q.length; j++) {
      var list = rows(P, c.q[j]), dst = c.q[j].kind === 'epoch' ? data.E : data.S;
      for (var m = 0; m < list.length; m++) dst.push(list[m]);
    }
    var spec = template(c.tpl);
    (spec.data || []).forEach(function (d) {
      if (data[d.name] && d.source === undefined && d.url === undefined && d.values === undefined) d.values = data[d.name];
    });
    vegaEmbed(el, spec, { mode: 'vega', renderer: 'svg', actions: false, ast: true, tooltip: { theme: 'light' } })
      .then(function (res) { views[c.id] = res.view; })
      .catch(function (err) {
        failed++;
        var p = document.createElement('p');
        p.className = 'chart-error';
        p.textContent = 'This chart could not be drawn: ' + (err && err.message ? err.message : String(err));
        el.appendChild(p);
        console.error(err);
      })
      .then(function () { setTimeout(next, 0); });
  }
  if (typeof vegaEmbed !== 'function') {
    failed = P.charts.length;
    console.error('vega-embed did not load');
    done();
  } else next();
})();
`;

interface ChartCardOptions {
  /** SVG/PNG buttons (interactive page only: they use the chart's vega view). */
  exportButtons: boolean;
  /** File name stem for saved copies. */
  name: string;
}

function chartCard(c: ChartPlan, id: string, body: string, o: ChartCardOptions): string {
  const buttons = o.exportButtons
    ? `<span class="export"><button type="button" data-export="svg" data-target="${h(id)}" data-name="${h(o.name)}">SVG</button>` +
      `<button type="button" data-export="png" data-target="${h(id)}" data-name="${h(o.name)}">PNG</button></span>`
    : '';
  return (
    `<figure class="card"><figcaption>${buttons}${h(c.title)}</figcaption>` +
    `<div class="chart" id="${id}" data-panel="${h(c.panel)}" role="img" aria-label="${h(c.title)}">${body}</div>` +
    (c.note ? `<p class="note">${h(c.note)}</p>` : '') +
    '</figure>'
  );
}

function describeData(data: PreparedData, runs: RunData[]): string {
  const seeds = data.variants.map((v) => {
    const n = runs.filter((r) => (r.manifest.variant !== '' ? r.manifest.variant : r.manifest.name) === v).length;
    return `${v} (${n} run${n === 1 ? '' : 's'})`;
  });
  return seeds.join(', ');
}

/** The first titles of a collapsed block, and how many more. */
function listTitles(titles: string[], max = 8): string {
  return titles.length <= max ? titles.join('; ') : `${titles.slice(0, max).join('; ')}; and ${titles.length - max} more`;
}

/** Panels a decay window and the overview show open; the others sit in a collapsed block below them. */
const LEAD_PANELS = new Set(['center', 'cl']);
const OVERVIEW_LEAD = new Set(['center']);

/** The file name stem of a chart's saved copy (the page's buttons, report --svg). */
function chartName(c: ChartPlan): string {
  return (c.section === 'window' && c.window ? `decay${c.window.decay}-${c.panel}` : `overview-${c.panel}`).replace(/[^A-Za-z0-9_.-]+/g, '_').slice(0, 80);
}

/** Phase 1: the data the charts read, the chart plan and the compiled templates. */
function planReport(input: ReportInput) {
  const { runs, analysis } = input;
  const decayFromAnalysis = [...analysis.results.map((r) => r.decayEpoch), ...analysis.checks.map((c) => c.decayEpoch)];
  const decayEpochs = [...new Set([...runs.flatMap((r) => r.manifest.decayEpochs ?? []), ...decayFromAnalysis])];
  const data = prepareData(runs, { windowEpochs: input.windowEpochs, stepPointsPerWindow: input.stepPointsPerWindow, decayEpochs });
  const plan = planCharts(data, { interactive: input.static !== true, width: 520, height: 170 });
  attachMarks(plan.charts, runs, analysis);
  const cache = new TemplateCache();
  const refs: ChartRef[] = plan.charts.map((c, i) => ({ id: `chart-${i}`, tpl: cache.get(c.spec), q: c.queries, r: c.rules, ...(c.marks ? { m: c.marks } : {}) }));
  const src: RowSource = { variants: data.variants, splits: data.splits, keys: data.keys, keyLabels: plan.klab, xs: data.xs, series: data.series };
  return { data, plan, cache, refs, src };
}
type ReportPlan = ReturnType<typeof planReport>;

/** Phase 2: every chart rendered to SVG in Node, for the static page and for report --svg. Returns the chart bodies ('' where the page draws them). */
async function renderCharts(input: ReportInput, p: ReportPlan): Promise<string[]> {
  const isStatic = input.static === true;
  const bodies: string[] = p.plan.charts.map(() => '');
  if (!isStatic && !input.svgDir) return bodies;
  const vega = await import('vega');
  for (let i = 0; i < p.plan.charts.length; i++) {
    const c = p.plan.charts[i]!;
    const spec = withData(p.cache.templates[p.refs[i]!.tpl]!, rowsFor(p.src, c));
    const view = new vega.View(vega.parse(spec as never), { renderer: 'none' });
    try {
      const svg = await view.toSVG();
      if (isStatic) bodies[i] = compactSvg(svg);
      if (input.svgDir) writeSvg(input.svgDir, i + 1, chartName(c), svg);
    } finally {
      view.finalize();
    }
  }
  // The file stands alone: its rows do not link to the page's decay panels.
  if (input.svgDir) writeSvg(input.svgDir, 0, 'answer-forest', forestPlot(input.analysis, buildAnswer(input.analysis), false).replace('<svg ', '<svg xmlns="http://www.w3.org/2000/svg" '));
  return bodies;
}

/** Phase 3: the sections below the answer (verdicts, explanation, decay windows, full runs, runs). */
function sections(input: ReportInput, p: ReportPlan, bodies: string[]): string {
  const isStatic = input.static === true;
  const { analysis, runs } = input;
  const { data, plan, refs } = p;
  const grid = (pred: (c: ChartPlan) => boolean): { html: string; n: number; titles: string[] } => {
    const cards: string[] = [];
    const titles: string[] = [];
    plan.charts.forEach((c, i) => {
      if (!pred(c)) return;
      cards.push(chartCard(c, refs[i]!.id, bodies[i]!, { exportButtons: !isStatic, name: chartName(c) }));
      titles.push(c.title.replace(/ \(.*$/, ''));
    });
    return { html: cards.length ? `<div class="grid">\n${cards.join('\n')}\n</div>` : '', n: cards.length, titles };
  };
  const collapsed = (g: { html: string; n: number; titles: string[] }, what: string): string =>
    g.n ? `<details class="more-charts"><summary>${h(what)} (${g.n} chart${g.n === 1 ? '' : 's'}: ${h(listTitles([...new Set(g.titles)]))})</summary>\n${g.html}</details>` : '';
  const hint = isStatic ? '' : ' Drag to pan, scroll to zoom, double-click to reset; hover for values; SVG/PNG save a chart.';

  const W = input.windowEpochs ?? 3;
  const windowSections = data.windows
    .map((w) => {
      const bucketNote = data.bucketed.some((b) => b)
        ? ' Step data is downsampled to a fixed grid there: the line is the mean over seeds of each seed’s bucket mean, the band spans the min to max over seeds and over the steps in a bucket.'
        : ' Lines from step records: mean over seeds, band: min to max over seeds.';
      const inWindow = (c: ChartPlan) => c.section === 'window' && c.window === w;
      return (
        `<section id="decay-${h(w.decay)}"><h2>LR decay at epoch ${h(w.decay)}: epochs ${h(w.e0)}–${h(w.e1)}</h2>` +
        `<p class="note">Window of ±${h(W)} epochs around the decay. The dashed rule marks the start of epoch ${h(w.decay)}, where the learning rate changes. ` +
        `Epoch means are drawn at the middle of their epoch (epoch e at e + 0.5); error bars span the min to max over seeds.${h(bucketNote)}${h(hint)}</p>\n` +
        grid((c) => inWindow(c) && LEAD_PANELS.has(c.panel)).html +
        collapsed(grid((c) => inWindow(c) && !LEAD_PANELS.has(c.panel)), `More at decay ${w.decay}`) +
        '</section>'
      );
    })
    .join('\n');
  const noWindows = data.windows.length === 0 ? '<p class="na">No decay epochs fall inside the recorded epochs, so there are no zoomed windows.</p>' : '';
  const constants = plan.constantKeys.length
    ? `<p class="note">Constant throughout (not drawn): ${plan.constantKeys.map(([k, v]) => `${h(k)} = ${h(fmtDetail(v, 5))}`).join(', ')}.</p>`
    : '';
  const overviewCharts = (c: ChartPlan) => c.section === 'overview';
  const overview =
    '<section id="overview"><h2>Full runs</h2>' +
    `<p class="note">Epoch means per split over the whole run (epoch e at e + 0.5); line: mean over seeds, ${
      plan.charts.some((c) => c.section === 'overview' && c.spec.epoch === 'band') ? 'band' : 'error bars'
    }: min to max over seeds. Dashed rules mark the decay epochs.${h(hint)}</p>\n` +
    grid((c) => overviewCharts(c) && OVERVIEW_LEAD.has(c.panel)).html +
    collapsed(grid((c) => overviewCharts(c) && !OVERVIEW_LEAD.has(c.panel)), 'More over the whole runs') +
    constants +
    '</section>';
  return (
    `<section id="verdicts"><h2>Verdicts</h2>\n${verdictTable(analysis)}\n${seedTable(analysis.results)}\n${attributionTable(analysis.results)}</section>\n` +
    `<section id="explanation" class="explanation"><h2>Explanation</h2>\n${explanationHtml(analysis)}</section>\n` +
    `${windowSections}${noWindows}\n${overview}\n` +
    `<section id="manifests"><h2>Runs</h2>\n<details><summary>${h(runs.length)} run${runs.length === 1 ? '' : 's'}: manifests, configuration, versions</summary>\n${manifestsHtml(runs)}</details></section>`
  );
}

/** Phase 4: the page's data and scripts (interactive only) and the CSP that admits exactly those scripts. */
function scriptsAndCsp(p: ReportPlan): { scripts: string; scriptSrc: string } {
  const bundles = loadBundles();
  const payload = pagePayload(p.src, p.plan.charts, p.cache.templates, p.refs);
  assertInlineScriptSafe(BOOT_JS, 'report bootstrap');
  const code = [bundles.vega, bundles.vegaEmbed, BOOT_JS];
  return {
    scriptSrc: code.map(sha256).join(' '),
    scripts: `<script type="application/json" id="report-data">${jsonForScript(payload)}</script>\n` + code.map((c) => `<script>${c}</script>`).join('\n'),
  };
}

function header(input: ReportInput, p: ReportPlan): string {
  const { analysis, runs } = input;
  const isStatic = input.static === true;
  const toc = [
    '<a href="#answer">Answer</a>',
    '<a href="#verdicts">Verdicts</a>',
    '<a href="#explanation">Explanation</a>',
    ...p.data.windows.map((w) => `<a href="#decay-${h(w.decay)}">Decay @${h(w.decay)}</a>`),
    '<a href="#overview">Full runs</a>',
    '<a href="#manifests">Runs</a>',
  ].join('');
  const generated = (input.generatedAt ?? new Date()).toISOString();
  const mode = isStatic ? 'static (no scripts)' : `interactive (vega ${h(loadBundles().vegaVersion)}, vega-embed ${h(loadBundles().vegaEmbedVersion)})`;
  return (
    `<header><h1>${h(input.title)}</h1>` +
    `<p class="meta">Suite ${h(analysis.suite)} · ${h(runs.length)} run${runs.length === 1 ? '' : 's'}: ${h(describeData(p.data, runs))} · ` +
    `decay epochs ${h(p.data.decayEpochs.join(', ') || 'none')} · generated ${h(generated)} · ${mode}</p>` +
    `<nav class="toc">${toc}</nav></header>`
  );
}

/**
 * The report: plan (data, charts, templates), render (SVG in Node where asked), sections, scripts
 * with their CSP, page.
 */
export async function buildReport(input: ReportInput): Promise<string> {
  const isStatic = input.static === true;
  const p = planReport(input);
  const bodies = await renderCharts(input, p);
  const body = `<main>\n${header(input, p)}\n${answerSection(input.analysis, { exportButtons: !isStatic })}\n${sections(input, p, bodies)}\n</main>`;
  const { scripts, scriptSrc } = isStatic ? { scripts: '', scriptSrc: "'none'" } : scriptsAndCsp(p);
  return pageShell(input.title, isStatic ? 'static' : 'interactive', body, scripts, scriptSrc, CSS);
}

/** One chart as a standalone SVG file: `<dir>/<nn>-<name>.svg`, the name reduced to safe characters. */
function writeSvg(dir: string, n: number, name: string, svg: string): string {
  const file = join(dir, `${String(n).padStart(2, '0')}-${name.replace(/[^A-Za-z0-9_.-]+/g, '_').slice(0, 80)}.svg`);
  writeFileAtomic(file, svg.startsWith('<?xml') ? svg : `<?xml version="1.0" encoding="UTF-8"?>\n${svg}`);
  return file;
}

/** Write the report so that a reader never sees a half-written file (temp file in the same directory, then rename). */
export function writeReport(path: string, html: string): void {
  writeFileAtomic(path, html);
}
