/**
 * The offline HTML report: one self-contained file, no network access.
 *
 * Interactive mode inlines the vega and vega-embed browser bundles, compiled Vega specs and the data
 * (columnar, in a <script type="application/json"> block). A Content-Security-Policy meta tag allows
 * exactly the page's inline scripts (by sha256) and nothing else: no eval (vega runs with its expression
 * interpreter), no connections, no external anything.
 * Static mode renders every chart in Node to inline SVG and the page has no scripts at all.
 */
import { createHash } from 'node:crypto';
import type { RunData, SuiteAnalysis } from '../analysis/types.js';
import { writeFileAtomic } from '../util/atomic.js';
import { loadBundles } from './assets.js';
import { TemplateCache, planCharts, type ChartPlan } from './charts.js';
import { ROWS_JS, materialize, prepareData, type PreparedData, type Row, type RowSource } from './data.js';
import { assertInlineScriptSafe, escapeHtml as h, jsonForScript } from './escape.js';
import { join } from 'node:path';
import { answerSection, forestPlot } from './answer.js';
import { CSS, attributionTable, explanationHtml, fmtNum, manifestsHtml, seedTable, verdictTable } from './html.js';

export { escapeHtml, jsonForScript } from './escape.js';
export { prepareData, materialize } from './data.js';

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
      for (const k of q.k) {
        if (q.t === 's') used.add(`s|${k}`);
        else for (const si of q.s ?? src.splits.map((_, i) => i)) used.add(`e|${k}|${si}`);
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
    .filter((ser) => used.has(ser.t === 's' ? `s|${ser.k}` : `e|${ser.k}|${ser.s}`))
    .map((ser) => ({ ...ser, m: rle(ser.m), lo: rle(ser.lo), hi: rle(ser.hi) }));
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
  return { variants: src.variants, splits: src.splits, keys: src.keys, klab: src.klab, xs: src.xs, series, pool, templates: tpls, charts: refs };
}

/**
 * Inline SVG in HTML needs no namespace declarations (dropping them keeps URLs out of the file), and
 * screen coordinates need no more than 0.1 px.
 */
function compactSvg(svg: string): string {
  const round = (nums: string): string => nums.replace(/-?\d+\.\d{2,}/g, (n) => String(Math.round(Number(n) * 10) / 10));
  return svg
    .replace(/\s+xmlns(?::xlink)?="[^"]*"/g, '')
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

function rowsFor(src: RowSource, c: ChartPlan): { E: Row[]; S: Row[]; R: ChartPlan['rules'] } {
  const E: Row[] = [];
  const S: Row[] = [];
  for (const q of c.queries) (q.t === 'e' ? E : S).push(...materialize(src, q));
  return { E, S, R: c.rules };
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
  P.series.forEach(function (ser) { ser.m = unrle(ser.m); ser.lo = unrle(ser.lo); ser.hi = unrle(ser.hi); });
  function template(k) {
    var t = P.templates[k], spec = {}, key;
    for (key in t) if (key !== '$') spec[key] = t[key];
    spec = JSON.parse(JSON.stringify(spec));
    for (key in t.$) spec[key] = t.$[key].map(function (j) { return JSON.parse(JSON.stringify(P.pool[j])); });
    return spec;
  }
  var i = 0, failed = 0;
  function done() {
    document.body.setAttribute('data-charts', failed ? 'failed' : 'done');
    document.body.setAttribute('data-charts-failed', String(failed));
  }
  function next() {
    if (i >= P.charts.length) { done(); return; }
    var c = P.charts[i++];
    var el = document.getElementById(c.id);
    var data = { E: [], S: [], R: c.r };
    for (var j = 0; j < c.q.length; j++) {
      var list = rows(P, c.q[j]), dst = c.q[j].t === 'e' ? data.E : data.S;
      for (var m = 0; m < list.length; m++) dst.push(list[m]);
    }
    var spec = template(c.tpl);
    (spec.data || []).forEach(function (d) {
      if (data[d.name] && d.source === undefined && d.url === undefined && d.values === undefined) d.values = data[d.name];
    });
    vegaEmbed(el, spec, { mode: 'vega', renderer: 'svg', actions: false, ast: true, tooltip: { theme: 'light' } })
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

function chartCard(c: ChartPlan, id: string, body: string): string {
  return (
    `<figure class="card"><figcaption>${h(c.title)}</figcaption>` +
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

export async function buildReport(input: ReportInput): Promise<string> {
  const isStatic = input.static === true;
  const { runs, analysis } = input;
  const decayFromAnalysis = [...analysis.results.map((r) => r.decayEpoch), ...analysis.checks.map((c) => c.decayEpoch)];
  const decayEpochs = [...new Set([...runs.flatMap((r) => r.manifest.decayEpochs ?? []), ...decayFromAnalysis])];
  const data = prepareData(runs, { windowEpochs: input.windowEpochs, stepPointsPerWindow: input.stepPointsPerWindow, decayEpochs });
  const plan = planCharts(data, { interactive: !isStatic, width: 520, height: 170 });
  const cache = new TemplateCache();
  const refs: ChartRef[] = plan.charts.map((c, i) => ({ id: `chart-${i}`, tpl: cache.get(c.spec), q: c.queries, r: c.rules }));
  const src: RowSource = { variants: data.variants, splits: data.splits, keys: data.keys, klab: plan.klab, xs: data.xs, series: data.series };

  // Chart bodies: inline SVG in static mode, empty containers otherwise.
  const bodies: string[] = plan.charts.map(() => '');
  if (isStatic || input.svgDir) {
    const vega = await import('vega');
    const files: string[] = [];
    for (let i = 0; i < plan.charts.length; i++) {
      const c = plan.charts[i]!;
      const spec = withData(cache.templates[refs[i]!.tpl]!, rowsFor(src, c));
      const view = new vega.View(vega.parse(spec as never), { renderer: 'none' });
      try {
        const svg = await view.toSVG();
        if (isStatic) bodies[i] = compactSvg(svg);
        if (input.svgDir) files.push(writeSvg(input.svgDir, i + 1, c.section === 'window' && c.window ? `decay${c.window.decay}-${c.panel}` : `overview-${c.panel}`, svg));
      } finally {
        view.finalize();
      }
    }
    if (input.svgDir) writeSvg(input.svgDir, 0, 'answer-forest', forestPlot(analysis).replace('<svg ', '<svg xmlns="http://www.w3.org/2000/svg" '));
  }

  // Sections.
  const sectionCharts = (pred: (c: ChartPlan) => boolean): string =>
    '<div class="grid">\n' +
    plan.charts
      .map((c, i) => (pred(c) ? chartCard(c, refs[i]!.id, bodies[i]!) : ''))
      .filter((s) => s)
      .join('\n') +
    '\n</div>';

  const W = input.windowEpochs ?? 3;
  const windowSections = data.windows
    .map((w) => {
      const id = `decay-${w.decay}`;
      const bucketNote = data.bucketed.some((b) => b)
        ? ' Step data is downsampled to a fixed grid there: the line is the mean over seeds of each seed’s bucket mean, the band spans the min to max over seeds and over the steps in a bucket.'
        : ' Lines from step records: mean over seeds, band: min to max over seeds.';
      return (
        `<section id="${h(id)}"><h2>LR decay at epoch ${h(w.decay)}: epochs ${h(w.e0)}–${h(w.e1)}</h2>` +
        `<p class="note">Window of ±${h(W)} epochs around the decay. The dashed rule marks the start of epoch ${h(w.decay)}, where the learning rate changes. ` +
        `Epoch means are drawn at the middle of their epoch (epoch e at e + 0.5); error bars span the min to max over seeds.${h(bucketNote)}` +
        `${isStatic ? '' : ' Drag to pan, scroll to zoom, double-click to reset; hover for values.'}</p>\n` +
        sectionCharts((c) => c.section === 'window' && c.window === w) +
        '</section>'
      );
    })
    .join('\n');
  const noWindows =
    data.windows.length === 0 ? '<p class="na">No decay epochs fall inside the recorded epochs, so there are no zoomed windows.</p>' : '';
  const constants = plan.constantKeys.length
    ? `<p class="note">Constant throughout (not drawn): ${plan.constantKeys.map(([k, v]) => `${h(k)} = ${h(fmtNum(v, 5))}`).join(', ')}.</p>`
    : '';
  const overview =
    '<section id="overview"><h2>Full runs</h2>' +
    `<p class="note">Epoch means per split over the whole run (epoch e at e + 0.5); line: mean over seeds, ${
      plan.charts.some((c) => c.section === 'overview' && c.spec.epoch === 'band') ? 'band' : 'error bars'
    }: min to max over seeds. Dashed rules mark the decay epochs.${isStatic ? '' : ' Drag to pan, scroll to zoom, double-click to reset; hover for values.'}</p>\n` +
    sectionCharts((c) => c.section === 'overview') +
    constants +
    '</section>';

  const toc = [
    '<a href="#answer">Answer</a>',
    '<a href="#verdicts">Verdicts</a>',
    '<a href="#explanation">Explanation</a>',
    ...data.windows.map((w) => `<a href="#decay-${h(w.decay)}">Decay @${h(w.decay)}</a>`),
    '<a href="#overview">Full runs</a>',
    '<a href="#manifests">Runs</a>',
  ].join('');

  const generated = (input.generatedAt ?? new Date()).toISOString();
  const bundles = isStatic ? undefined : loadBundles();
  const header =
    `<header><h1>${h(input.title)}</h1>` +
    `<p class="meta">Suite ${h(analysis.suite)} · ${h(runs.length)} run${runs.length === 1 ? '' : 's'}: ${h(describeData(data, runs))} · ` +
    `decay epochs ${h(data.decayEpochs.join(', ') || 'none')} · generated ${h(generated)} · ${isStatic ? 'static (no scripts)' : `interactive (vega ${h(bundles!.vegaVersion)}, vega-embed ${h(bundles!.vegaEmbedVersion)})`}</p>` +
    `<nav class="toc">${toc}</nav></header>`;

  const bodyHtml =
    `<main>\n${header}\n` +
    `${answerSection(analysis)}\n` +
    `<section id="verdicts"><h2>Verdicts</h2>\n${verdictTable(analysis)}\n${seedTable(analysis.results)}\n${attributionTable(analysis.results)}</section>\n` +
    `<section id="explanation" class="explanation"><h2>Explanation</h2>\n${explanationHtml(analysis.explanation)}</section>\n` +
    `${windowSections}${noWindows}\n${overview}\n` +
    `<section id="manifests"><h2>Runs</h2>\n${manifestsHtml(runs)}</section>\n</main>`;

  let scripts = '';
  let scriptSrc = "'none'";
  if (!isStatic) {
    const payload = pagePayload(src, plan.charts, cache.templates, refs);
    assertInlineScriptSafe(BOOT_JS, 'report bootstrap');
    const code = [bundles!.vega, bundles!.vegaEmbed, BOOT_JS];
    scriptSrc = code.map(sha256).join(' ');
    scripts =
      `<script type="application/json" id="report-data">${jsonForScript(payload)}</script>\n` + code.map((c) => `<script>${c}</script>`).join('\n');
  }
  const csp = [
    "default-src 'none'",
    `script-src ${scriptSrc}`,
    "style-src 'unsafe-inline'",
    'img-src data: blob:',
    "font-src 'none'",
    "connect-src 'none'",
    "media-src 'none'",
    "object-src 'none'",
    "frame-src 'none'",
    "worker-src 'none'",
    "manifest-src 'none'",
    "base-uri 'none'",
    "form-action 'none'",
  ].join('; ');

  return (
    '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n' +
    `<meta http-equiv="Content-Security-Policy" content="${csp}">\n` +
    '<meta name="viewport" content="width=device-width, initial-scale=1">\n' +
    '<meta name="referrer" content="no-referrer">\n' +
    `<title>${h(input.title)}</title>\n<style>${CSS}</style>\n</head>\n` +
    `<body class="${isStatic ? 'static' : 'interactive'}">\n${bodyHtml}\n${scripts}\n</body>\n</html>\n`
  );
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
