import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findChromium } from '../src/env/browser.js';
import { chromium, type Browser, type Page } from 'playwright-core';
import type { RunData, SuiteAnalysis } from '../src/analysis/types.js';
import type { MetricRecord } from '../src/store/types.js';
import { buildComparisonReport, buildReport, escapeHtml, jsonForScript, materialize, prepareData, writeReport } from '../src/report/index.js';
import { ROWS_JS, type Query, type RowSource } from '../src/report/data.js';
import { QUERY_FIELDS, SERIES_FIELDS, inverse, renameFields } from '../src/report/page/payload.js';
import { syntheticAnalysis, syntheticRun } from '../src/bench/synthetic-report.js';
import { analyzeRuns } from '../src/suite/analyze.js';
import { loadSuite } from '../src/suite/load.js';
import { buildAnswer } from '../src/analysis/answer.js';
import { fmtRatio } from '../src/analysis/format.js';

const CHROMIUM = findChromium().path ?? '/usr/bin/chromium';
const ARTIFACTS = resolve('test-artifacts');
const HOSTILE_RUN = '</script><script>alert(1)</script>';
const HOSTILE_CONFIG = 'x <!-- not a comment --> & </script><script>alert(3)</script>\u2028end';
const HOSTILE_SENTENCE = 'A sentence with <b>markup</b>, </script> and <!-- that must stay text.';

function suite(): { runs: RunData[]; analysis: SuiteAnalysis } {
  const common = { epochs: 24, itersPerEpoch: 40, decayEpochs: [8, 16], steps: 'windows' as const, sparseEvery: 5 };
  const runs = [
    syntheticRun({ ...common, variant: 'relu', seed: 1, spike: true }),
    syntheticRun({ ...common, variant: 'relu', seed: 2, spike: true }),
    syntheticRun({ ...common, variant: 'prelu', seed: 1, spike: false, layers: ['conv1', 'conv2', 'conv3', 'fc1'] }),
    syntheticRun({ ...common, variant: 'prelu', seed: 2, spike: false, name: HOSTILE_RUN, config: { note: HOSTILE_CONFIG } }),
  ];
  const analysis = syntheticAnalysis(runs, (v) => v === 'relu');
  analysis.explanation.push(HOSTILE_SENTENCE);
  return { runs, analysis };
}

interface PageWatch {
  consoleErrors: string[];
  pageErrors: string[];
  dialogs: string[];
  requests: string[];
}

async function openReport(browser: Browser, file: string): Promise<{ page: Page; watch: PageWatch }> {
  const page = await browser.newPage({ viewport: { width: 1300, height: 900 } });
  const watch: PageWatch = { consoleErrors: [], pageErrors: [], dialogs: [], requests: [] };
  page.on('console', (m) => {
    if (m.type() === 'error') watch.consoleErrors.push(m.text());
  });
  page.on('pageerror', (e) => watch.pageErrors.push(String(e)));
  page.on('dialog', (d) => {
    watch.dialogs.push(`${d.type()}: ${d.message()}`);
    void d.dismiss();
  });
  page.on('request', (r) => watch.requests.push(r.url()));
  await page.goto(pathToFileURL(file).href, { waitUntil: 'load' });
  return { page, watch };
}

function inlineScripts(html: string): string[] {
  return [...html.matchAll(/<script>([\s\S]*?)<\/script>/g)].map((m) => m[1]!);
}

describe('report escaping', () => {
  it('escapeHtml makes markup inert', () => {
    expect(escapeHtml(HOSTILE_RUN)).toBe('&lt;/script&gt;&lt;script&gt;alert(1)&lt;/script&gt;');
    expect(escapeHtml(`a&b "c" 'd' <!-- e -->`)).toBe('a&amp;b &quot;c&quot; &#39;d&#39; &lt;!-- e --&gt;');
    expect(escapeHtml('x\u2028y\u2029z')).toBe('x&#8232;y&#8233;z');
    expect(escapeHtml(42)).toBe('42');
  });

  it('jsonForScript escapes <, >, &, U+2028/2029 and round-trips', () => {
    const value = { name: HOSTILE_RUN, cfg: HOSTILE_CONFIG, list: ['<!--', '-->', '&amp;', '\u2029'], n: [1.5, Number.NaN, -0] };
    const text = jsonForScript(value);
    expect(text).not.toMatch(/[<>&\u2028\u2029]/);
    expect(text).toContain('\\u003c/script\\u003e');
    expect(JSON.parse(text)).toEqual({ ...value, n: [1.5, null, 0] });
    expect(jsonForScript(undefined)).toBe('null');
  });
});

describe('report data', () => {
  const rec = (kind: 'epoch' | 'step', epoch: number, extra: Record<string, number>): MetricRecord => ({ kind, epoch, split: 'train', ...extra });
  const run = (variant: string, seed: number, records: MetricRecord[], decayEpochs = [2]): RunData => ({
    dir: `runs/${variant}-s${seed}`,
    manifest: {
      format: 1,
      name: `${variant}-s${seed}`,
      variant,
      seed,
      backend: 'cpu',
      config: {},
      decayEpochs,
      versions: {},
      startedAt: '2025-01-01T00:00:00Z',
      status: 'done',
      epochsDone: 4,
    },
    records,
  });

  it('aggregates seeds (mean, min, max), dedupes repeated records and positions steps within epochs', () => {
    const a = run('relu', 1, [
      rec('epoch', 0, { center: 1 }),
      rec('epoch', 1, { center: 99 }),
      rec('epoch', 1, { center: 2 }), // re-recorded after a resume: the last one wins
      ...[0, 1, 2, 3].map((i) => rec('step', 2, { step: 8 + i, iter: i, center: 10 + i })),
      rec('step', 1, { step: 4, iter: 0, center: 5 }),
    ]);
    const b = run('relu', 2, [rec('epoch', 0, { center: 3 }), rec('epoch', 1, { center: 4 })]);
    const d = prepareData([a, b], { windowEpochs: 1 });
    expect(d.variants).toEqual(['relu']);
    const src = { variants: d.variants, splits: d.splits, keys: d.keys, keyLabels: d.keys, xs: d.xs, series: d.series };
    const k = d.keys.indexOf('center');
    const rows = materialize(src, { kind: 'epoch', keys: [k], label: 'split' });
    expect(rows.map((r) => [r.epoch, r.x, r.mean, r.lo, r.hi, r.n])).toEqual([
      [0, 0.5, 2, 1, 3, 2],
      [1, 1.5, 3, 2, 4, 2],
    ]);
    const steps = materialize(src, { kind: 'step', keys: [k], label: 'split', from: 1, to: 3 });
    // epoch 1 starts at step 4, epoch 2 at step 8: 4 iterations per epoch.
    expect(steps.map((r) => [r.x, r.mean])).toEqual([
      [1, 5],
      [2, 10],
      [2.25, 11],
      [2.5, 12],
      [2.75, 13],
    ]);
    expect(steps[0]!.series).toBe('train (steps)');
    expect(d.windows).toEqual([{ decay: 2, e0: 1, e1: 2, x0: 1, x1: 3 }]);
  });

  it('buckets dense step data and keeps spikes in the band', () => {
    const records: MetricRecord[] = [];
    for (let s = 0; s < 7000; s++) records.push(rec('step', Math.floor(s / 1000), { step: s, iter: s % 1000, center: s === 3500 ? 100 : 1 }));
    const d = prepareData([run('relu', 1, records, [3])], { windowEpochs: 3, stepPointsPerWindow: 100 });
    expect(d.bucketed).toEqual([true]);
    const src = { variants: d.variants, splits: d.splits, keys: d.keys, keyLabels: d.keys, xs: d.xs, series: d.series };
    const rows = materialize(src, { kind: 'step', keys: [d.keys.indexOf('center')], label: 'split' });
    expect(rows.length).toBeLessThanOrEqual(101);
    expect(Math.max(...rows.map((r) => r.hi ?? 0))).toBe(100);
    expect(Math.max(...rows.map((r) => r.mean ?? 0))).toBeLessThan(100);
  });

  it("the page's row builder (ROWS_JS) gives the same rows as materialize", () => {
    const { runs } = suite();
    const d = prepareData(runs);
    const src: RowSource = { variants: d.variants, splits: d.splits, keys: d.keys, keyLabels: d.keys.map((k) => k.replace(/^.*\//, '')), xs: d.xs, series: d.series };
    const rows = new Function(`${ROWS_JS}; return rows;`)() as (p: RowSource, q: Query) => unknown[];
    const k = (name: string): number => d.keys.indexOf(name);
    const queries: Query[] = [
      { kind: 'epoch', keys: [k('center')], label: 'split' },
      { kind: 'epoch', keys: [k('cl_within'), k('cl_lag')], splits: [0], label: 'key', from: 5, to: 11 },
      { kind: 'step', keys: [k('center')], label: 'split', from: 5, to: 12 },
      { kind: 'step', keys: [k('dead_frac/conv1'), k('dead_frac/fc1')], label: 'key', from: 13, to: 20 },
    ];
    // As the page sees it: series and queries written under compact names, expanded by the page's own function.
    const rename = new Function(`return ${renameFields.toString()};`)() as typeof renameFields;
    const pageSrc = { ...src, series: rename(rename(src.series, SERIES_FIELDS), inverse(SERIES_FIELDS)) } as unknown as RowSource;
    expect(JSON.stringify(rename(src.series, SERIES_FIELDS))).not.toContain('"firstEpoch"');
    for (const q of queries) {
      const expected = materialize(src, q);
      expect(expected.length).toBeGreaterThan(0);
      const pageQuery = rename(rename([q], QUERY_FIELDS), inverse(QUERY_FIELDS))[0] as unknown as Query;
      expect(rows(pageSrc, pageQuery)).toEqual(expected);
    }
  });
});

describe('report page', () => {
  let browser: Browser | undefined;
  const { runs, analysis } = suite();

  beforeAll(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    if (!existsSync(CHROMIUM)) return;
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
    });
  });
  afterAll(async () => {
    await browser?.close();
  });

  const needBrowser = (): Browser => {
    if (!existsSync(CHROMIUM)) {
      throw new Error(`Chromium is needed for the report browser test but ${CHROMIUM} does not exist. Install it: apt-get update && apt-get install -y chromium`);
    }
    if (!browser) throw new Error('Chromium did not start');
    return browser;
  };

  it('interactive report: CSP, no external URLs, charts render in Chromium with no errors, requests or dialogs', async () => {
    const html = await buildReport({ title: `Center loss at LR decay ${HOSTILE_RUN}`, runs, analysis });
    const file = join(ARTIFACTS, 'report.html');
    writeReport(file, html);

    // Content-Security-Policy: only the page's own scripts (by hash), no eval, no network.
    const csp = /<meta http-equiv="Content-Security-Policy" content="([^"]+)">/.exec(html)?.[1];
    expect(csp).toBeDefined();
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("connect-src 'none'");
    const scriptSrc = /script-src ([^;]+)/.exec(csp!)![1]!;
    expect(scriptSrc).not.toContain('unsafe');
    const scripts = inlineScripts(html);
    expect(scripts.length).toBe(3);
    for (const s of scripts) expect(scriptSrc).toContain(`'sha256-${createHash('sha256').update(s, 'utf8').digest('base64')}'`);
    // Apart from namespace strings inside the vega bundles, no URL anywhere.
    let rest = html;
    for (const s of scripts) rest = rest.replace(s, '');
    expect(rest).not.toMatch(/https?:\/\//);
    expect(rest).not.toMatch(/\ssrc=|\shref="(?!#)/);
    // Hostile strings are escaped wherever they occur.
    expect(html.split(HOSTILE_RUN).length).toBe(1);
    expect(html).not.toContain('<!-- not a comment');
    expect(html).toContain(escapeHtml(HOSTILE_SENTENCE));
    expect(Buffer.byteLength(html)).toBeLessThan(1_500_000);
    const panels = [...html.matchAll(/data-panel="([^"]+)"/g)].map((m) => m[1]);
    for (const p of ['center', 'cl', 'feat', 'featsq', 'dead', 'drift', 'lr', 'efflr', 'ce', 'acc', 'total']) expect(panels).toContain(p);

    const { page, watch } = await openReport(needBrowser(), file);
    try {
      await page.waitForFunction(() => document.body.hasAttribute('data-charts'), undefined, { timeout: 120_000 });
      expect(await page.getAttribute('body', 'data-charts')).toBe('done');
      const charts = await page.$$eval('.chart', (els) => els.map((e) => [e.id, !!e.querySelector('svg, canvas')] as [string, boolean]));
      expect(charts.length).toBeGreaterThan(20);
      expect(charts.filter(([, ok]) => !ok)).toEqual([]);
      // The first screen (1400x900) answers: the sentences with verdicts and ratios, and the forest plot.
      await page.setViewportSize({ width: 1400, height: 900 });
      await page.evaluate(() => window.scrollTo(0, 0));
      const answer = await page.locator('#answer ul.answers li').allInnerTexts();
      expect(answer.length).toBeGreaterThan(0);
      expect(answer.join(' ')).toMatch(/x\d\.\d\d/);
      expect(answer.some((t) => /rises .*over its trend|no spike|not decided/.test(t))).toBe(true);
      const forest = (await page.locator('#answer svg.forest').boundingBox())!;
      expect(forest.y + forest.height).toBeLessThan(900);
      expect(await page.locator('#answer svg.forest circle').count()).toBe(analysis.results.filter((r) => r.split === 'train' && r.resolution === 'epoch' && r.metric === 'center' && r.n > 0).length);
      // Collapsed blocks (manifests, the long explanation) hold the hostile strings as text.
      await page.$$eval('details', (ds) => ds.forEach((d) => ((d as HTMLDetailsElement).open = true)));
      expect(await page.locator('#manifests').getByText(HOSTILE_RUN, { exact: true }).first().isVisible()).toBe(true);
      const bodyText = await page.locator('body').innerText();
      expect(bodyText).toContain('x <!-- not a comment --> & </script><script>alert(3)</script>');
      expect(bodyText).toContain(HOSTILE_SENTENCE);

      // Tooltip on an epoch point of the first chart.
      const point = page.locator('#chart-0 .mark-symbol path').first();
      await point.hover({ force: true });
      await page.waitForSelector('#vg-tooltip-element.visible', { timeout: 5000 });
      expect(await page.locator('#vg-tooltip-element').innerText()).toMatch(/mean/);

      // Scroll-zoom changes the x axis of a chart.
      const labels = async (): Promise<string> => (await page.locator('#chart-0 .role-axis-label').first().textContent()) ?? '';
      const before = await labels();
      const box = (await page.locator('#chart-0 svg').boundingBox())!;
      await page.mouse.move(box.x + box.width / 2, box.y + box.height / 3);
      await page.mouse.wheel(0, -400);
      await page.waitForTimeout(300);
      expect(await labels()).not.toBe(before);

      await page.screenshot({ path: join(ARTIFACTS, 'report.png'), fullPage: true });
      expect(watch.consoleErrors).toEqual([]);
      expect(watch.pageErrors).toEqual([]);
      expect(watch.dialogs).toEqual([]);
      expect(watch.requests).toEqual([pathToFileURL(file).href]);
    } finally {
      await page.close();
    }
  });

  it('static report: no scripts, inline SVG for every chart, renders without requests', async () => {
    const html = await buildReport({ title: 'Static report', runs, analysis, static: true });
    const file = join(ARTIFACTS, 'report-static.html');
    writeReport(file, html);
    expect(html).not.toMatch(/<script/i);
    expect(html).toContain("script-src 'none'");
    expect(html).not.toMatch(/https?:\/\//);
    const charts = html.match(/<div class="chart"/g)?.length ?? 0;
    expect(charts).toBeGreaterThan(20);
    expect(html.match(/<svg/g)?.length).toBe(charts + 1); // every chart, and the answer's forest plot
    expect(html).toContain(escapeHtml(HOSTILE_RUN));
    expect(html).not.toContain(HOSTILE_RUN);

    const { page, watch } = await openReport(needBrowser(), file);
    try {
      const ok = await page.$$eval('.chart', (els) => els.every((e) => !!e.querySelector('svg')));
      expect(ok).toBe(true);
      await page.$$eval('details', (ds) => ds.forEach((d) => ((d as HTMLDetailsElement).open = true)));
      expect(await page.locator('#manifests').getByText(HOSTILE_RUN, { exact: true }).first().isVisible()).toBe(true);
      await page.screenshot({ path: join(ARTIFACTS, 'report-static.png'), fullPage: true });
      expect(watch.consoleErrors).toEqual([]);
      expect(watch.pageErrors).toEqual([]);
      expect(watch.dialogs).toEqual([]);
      expect(watch.requests).toEqual([pathToFileURL(file).href]);
    } finally {
      await page.close();
    }
  });

  it('hostile variant names stay text in legends and tooltips; only existing keys get charts', async () => {
    const variant = '<img src=x onerror=alert(2)>&amp;';
    const plain = { epochs: 10, itersPerEpoch: 20, decayEpochs: [5], steps: 'windows' as const, instruments: false };
    const small = [syntheticRun({ ...plain, variant, seed: 1, spike: true }), syntheticRun({ ...plain, variant: 'prelu', seed: 1, spike: false })];
    const a = syntheticAnalysis(small, (v) => v === variant);
    for (const isStatic of [false, true]) {
      const html = await buildReport({ title: 'Hostile variant', runs: small, analysis: a, static: isStatic });
      let outside = html;
      for (const s of inlineScripts(html)) outside = outside.replace(s, '');
      expect(outside).not.toContain('<img');
      const panels = new Set([...html.matchAll(/data-panel="([^"]+)"/g)].map((m) => m[1]));
      expect([...panels].sort()).toEqual(['acc', 'ce', 'center', 'lr', 'total']);
      const file = join(ARTIFACTS, isStatic ? 'report-hostile-static.html' : 'report-hostile.html');
      writeReport(file, html);
      const { page, watch } = await openReport(needBrowser(), file);
      try {
        if (!isStatic) await page.waitForFunction(() => document.body.getAttribute('data-charts') === 'done', undefined, { timeout: 60_000 });
        expect(await page.locator('.chart svg').count()).toBe(await page.locator('.chart').count());
        // (Node's text measuring, without a canvas, shortens long legend labels in static mode.)
        expect(await page.locator('#chart-0 svg text', { hasText: isStatic ? '<img src=x onerror=alert' : variant }).count()).toBeGreaterThan(0);
        expect(await page.locator('img').count()).toBe(0);
        // The answer on the first screen names the variant as text, in its sentence and in the forest plot.
        expect(await page.locator('#answer ul.answers li').first().innerText()).toContain(variant);
        expect(await page.locator('#answer svg.forest text', { hasText: `${variant}, decay 5` }).count()).toBe(1);
        expect(watch.consoleErrors).toEqual([]);
        expect(watch.pageErrors).toEqual([]);
        expect(watch.dialogs).toEqual([]);
        expect(watch.requests).toEqual([pathToFileURL(file).href]);
      } finally {
        await page.close();
      }
    }
  });

  it('builds from minimal input: no runs, no results; a plain run with epoch records only', async () => {
    const empty: SuiteAnalysis = { suite: 'empty', thresholds: analysis.thresholds, results: [], checks: [], explanation: [] };
    for (const isStatic of [false, true]) {
      const html = await buildReport({ title: 'Empty', runs: [], analysis: empty, static: isStatic });
      expect(html).toContain('No decay results.');
      expect(html).not.toContain('data-panel=');
    }
    const plain = syntheticRun({ seed: 1, epochs: 6, itersPerEpoch: 10, decayEpochs: [3, 50], spike: false, variant: '', name: 'plain', steps: 'none', instruments: false });
    const html = await buildReport({ title: 'Plain', runs: [plain], analysis: empty, static: true });
    expect(html).toContain('LR decay at epoch 3');
    expect(html).not.toContain('LR decay at epoch 50');
    expect(html.match(/<svg/g)?.length).toBe(html.match(/<div class="chart"/g)?.length);
  });

  it('writeReport replaces the file atomically and leaves no temp file', () => {
    const dir = join(ARTIFACTS, 'atomic');
    const file = join(dir, 'r.html');
    writeReport(file, 'one');
    writeReport(file, 'two');
    expect(readFileSync(file, 'utf8')).toBe('two');
    expect(readdirSync(dir)).toEqual(['r.html']);
  });
});

describe('report --svg: every chart as a standalone SVG file, offline', () => {
  it('writes one file per chart and the forest plot, with no external reference', async () => {
    const runs = ['relu', 'prelu'].flatMap((variant) => [1, 2].map((seed) => syntheticRun({ variant, seed, epochs: 12, itersPerEpoch: 10, decayEpochs: [4, 8], spike: variant === 'relu', steps: 'none' })));
    const analysis = syntheticAnalysis(runs, (v) => v === 'relu');
    const dir = mkdtempSync(join(tmpdir(), 'sp-svg-'));
    const html = await buildReport({ title: 'svg', runs, analysis, svgDir: dir });
    const charts = html.match(/<div class="chart"/g)!.length;
    const files = readdirSync(dir).sort();
    expect(files.length).toBe(charts + 1);
    expect(files[0]).toBe('00-answer-forest.svg');
    for (const f of files) {
      const svg = readFileSync(join(dir, f), 'utf8');
      expect(svg.startsWith('<?xml')).toBe(true);
      expect(svg).toMatch(/<svg[^>]*xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
      expect(svg.replace(/xmlns(:xlink)?="[^"]*"/g, '')).not.toMatch(/https?:\/\//);
      expect(f).toMatch(/^\d\d-[A-Za-z0-9_.-]+\.svg$/);
    }
  });
});

/**
 * The default suite's recorded runs (probes/fer-demo.yaml, 12 runs with the fork; epoch records in
 * test/fixtures/report/fer-demo.json, written by scripts/make-report-fixture.mjs from runs/fer-demo),
 * with the roles the suite file states.
 */
function demoSuite(): { runs: RunData[]; analysis: SuiteAnalysis } {
  const fixture = JSON.parse(readFileSync(resolve('test/fixtures/report/fer-demo.json'), 'utf8')) as { runs: RunData[] };
  const suiteFile = loadSuite(resolve('probes/fer-demo.yaml'));
  return { runs: fixture.runs, analysis: analyzeRuns(suiteFile.name, fixture.runs, suiteFile.expect, suiteFile.thresholds, suiteFile.roles) };
}

describe('report on the recorded demo suite (Chromium, 1400x900)', () => {
  let browser: Browser | undefined;
  const { runs, analysis } = demoSuite();

  beforeAll(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    if (!existsSync(CHROMIUM)) throw new Error(`Chromium is needed for the report browser test but ${CHROMIUM} does not exist`);
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'] });
  });
  afterAll(async () => {
    await browser?.close();
  });

  it('the first screen answers: verdict sentences with ratios, causes, fixes and the forest plot; the page is short; no error, no request', async () => {
    const html = await buildReport({ title: 'spikeprobe: fer-demo', runs, analysis });
    const file = join(ARTIFACTS, 'report-demo.html');
    writeReport(file, html);
    const { page, watch } = await openReport(browser!, file);
    try {
      await page.setViewportSize({ width: 1400, height: 900 });
      await page.waitForFunction(() => document.body.getAttribute('data-charts') === 'done', undefined, { timeout: 120_000 });
      await page.evaluate(() => window.scrollTo(0, 0));
      const answer = buildAnswer(analysis);
      expect(answer.baseline).toBe('relu');
      // Every variant sentence is on the first screen and carries each decay's measured ratio on the train split.
      const items = page.locator('#answer ul.answers li:not(.more)');
      expect(await items.count()).toBe(answer.variants.length);
      for (let i = 0; i < answer.variants.length; i++) {
        const line = answer.variants[i]!;
        const li = items.nth(i);
        const text = await li.innerText();
        expect(text.startsWith(line.variant)).toBe(true);
        for (const r of line.results) expect(text).toContain(fmtRatio(r.ratioMean));
        expect(text).toMatch(/rises|no spike|not decided/);
        const box = (await li.boundingBox())!;
        expect(box.y + box.height).toBeLessThan(900);
      }
      expect(await items.first().innerText()).toMatch(/^relu \(baseline\): the train center loss rises x\d\.\d\d \(95% CI \d\.\d\d-\d\.\d\d, 3 seeds\)/);
      // The fork (cleaning the labels at the decay) is the first cause; then what the rise is made of; the fix states its effect and its test accuracy.
      const cause = page.locator('#answer ol.causes li').first();
      expect(await cause.innerText()).toContain('relu-clean6');
      expect(await page.locator('#answer ul.composition li').first().innerText()).toMatch(/^relu at 6: the mean of the 3 epochs after the decay is x\d\.\d\d times its trend = /);
      const fix = page.locator('#answer ul.fixes li').first();
      expect(await fix.innerText()).toMatch(/^prelu: (removes|shrinks|does not remove) the rise .*test accuracy \d\.\d{3} against \d\.\d{3}/);
      for (const el of [cause, fix, page.locator('#answer svg.forest')]) {
        const box = (await el.boundingBox())!;
        expect(box.y + box.height).toBeLessThan(900);
      }
      // The forest plot: a train dot per variant x decay, each row linking to that decay's panels.
      // (A fork's twin is left out at decays before its fork, where it repeats its parent's records.)
      const forkAt = new Map(analysis.forks!.map((f) => [f.fork, f.at]));
      const trainRows = analysis.results.filter((r) => r.split === 'train' && r.resolution === 'epoch' && r.metric === 'center' && r.n > 0 && !(r.decayEpoch < (forkAt.get(r.variant) ?? -Infinity)));
      expect(await page.locator('#answer svg.forest circle.split-train').count()).toBe(trainRows.length);
      const targets = await page.$$eval('#answer svg.forest a', (as) => as.map((a) => a.getAttribute('href')));
      for (const t of new Set(targets)) expect(await page.locator(t!).count()).toBe(1);
      // Decay panels lead with the center loss and its split; the rest is collapsed.
      for (const d of [6, 11]) {
        const open = await page.$$eval(`#decay-${d} > .grid .chart`, (els) => els.map((e) => e.getAttribute('data-panel')));
        expect(open).toEqual(['center', 'cl']);
        expect(await page.locator(`#decay-${d} details.more-charts .chart`).count()).toBeGreaterThan(3);
      }
      const height = await page.evaluate(() => document.documentElement.scrollHeight);
      console.log(`report-demo: page height ${height} px with every details element closed`);
      expect(height).toBeLessThan(12_000);
      await page.screenshot({ path: join(ARTIFACTS, 'report-demo-first-screen.png') });
      expect(watch.consoleErrors).toEqual([]);
      expect(watch.pageErrors).toEqual([]);
      expect(watch.requests).toEqual([pathToFileURL(file).href]);
    } finally {
      await page.close();
    }
  });

  it('saves the forest plot and a chart as SVG and PNG offline (no request, within the CSP)', async () => {
    const html = await buildReport({ title: 'spikeprobe: fer-demo', runs, analysis });
    const file = join(ARTIFACTS, 'report-demo-export.html');
    writeReport(file, html);
    const { page, watch } = await openReport(browser!, file);
    try {
      await page.waitForFunction(() => document.body.getAttribute('data-charts') === 'done', undefined, { timeout: 120_000 });
      for (const target of ['forest', 'chart-0']) {
        for (const format of ['svg', 'png']) {
          const [download] = await Promise.all([page.waitForEvent('download', { timeout: 20_000 }), page.click(`button[data-target="${target}"][data-export="${format}"]`)]);
          expect(download.suggestedFilename()).toBe(`${target === 'forest' ? 'forest' : 'decay6-center'}.${format}`);
          const bytes = readFileSync((await download.path())!);
          if (format === 'png') {
            expect(bytes.subarray(0, 8).toString('hex')).toBe('89504e470d0a1a0a');
            // IHDR width and height: the figure at twice its size.
            expect(bytes.readUInt32BE(16)).toBeGreaterThan(500);
            expect(bytes.readUInt32BE(20)).toBeGreaterThan(150);
          } else {
            const svg = bytes.toString('utf8');
            expect(svg).toMatch(/^<svg[^>]*xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
            expect(svg.replace(/xmlns(:xlink)?="[^"]*"/g, '')).not.toMatch(/https?:\/\//);
            expect(svg).toContain(target === 'forest' ? 'relu, decay 6' : 'center loss');
          }
        }
      }
      expect(await page.locator('[data-export-error]').count()).toBe(0);
      expect(watch.consoleErrors).toEqual([]);
      expect(watch.pageErrors).toEqual([]);
      expect(watch.requests).toEqual([pathToFileURL(file).href]);
    } finally {
      await page.close();
    }
  });

  it('the center panel of each decay marks the fitted trend and the measured peak the verdict used', async () => {
    const html = await buildReport({ title: 'marks', runs, analysis });
    const payload = JSON.parse(/<script type="application\/json" id="report-data">([\s\S]*?)<\/script>/.exec(html)![1]!) as {
      charts: { id: string; m?: { T: { variant: string; x: number; mean: number }[]; P: { variant: string; x: number; mean: number }[] } }[];
    };
    const ids = [6, 11].map((d) => /<section id="decay-(\d+)">[\s\S]*?<div class="chart" id="(chart-\d+)" data-panel="center"/.exec(html.slice(html.indexOf(`<section id="decay-${d}">`)))![2]!);
    for (const [i, d] of [6, 11].entries()) {
      const marks = payload.charts.find((c) => c.id === ids[i])!.m!;
      const results = analysis.results.filter((r) => r.split === 'train' && r.resolution === 'epoch' && r.metric === 'center' && r.decayEpoch === d && r.n > 0);
      expect(marks.P.map((p) => p.variant).sort()).toEqual(results.map((r) => r.variant).sort());
      for (const r of results) {
        const peak = marks.P.find((p) => p.variant === r.variant)!;
        const observed = r.seeds.reduce((a, s) => a + s.observed, 0) / r.seeds.length;
        expect(peak.mean).toBeCloseTo(observed, 3);
        expect(peak.x).toBeCloseTo(r.seeds.reduce((a, s) => a + s.at, 0) / r.seeds.length + 0.5, 3);
        // The trend runs over the pre window and the peak window, and passes through the expected value at the peak.
        const line = marks.T.filter((t) => t.variant === r.variant);
        expect(line.map((t) => t.x)).toEqual(Array.from({ length: analysis.thresholds.preWindow + analysis.thresholds.postWindow }, (_, k) => d - analysis.thresholds.preWindow + k + 0.5));
        if (r.seeds.every((s) => s.at === r.seeds[0]!.at)) {
          const at = line.find((t) => t.x === r.seeds[0]!.at + 0.5)!;
          expect(at.mean).toBeCloseTo(r.seeds.reduce((a, s) => a + s.expected, 0) / r.seeds.length, 3);
        }
      }
    }
  });

  it('static page: the same answer without scripts or buttons', async () => {
    const html = await buildReport({ title: 'spikeprobe: fer-demo', runs, analysis, static: true });
    expect(html).not.toMatch(/<script/i);
    expect(html).not.toContain('data-export');
    for (const line of buildAnswer(analysis).variants) expect(html).toContain(escapeHtml(line.sentence));
  });
});

describe('two suites side by side (report A B)', () => {
  it('puts both answers and one verdict table on a page without scripts; hostile names stay text', async () => {
    const demo = demoSuite();
    const dir = join(import.meta.dirname, 'fixtures', 'analysis', 'fer-like');
    const ferRuns: RunData[] = readdirSync(dir).map((f) => ({ dir: f, ...(JSON.parse(readFileSync(join(dir, f), 'utf8')) as Omit<RunData, 'dir'>) }));
    for (const r of ferRuns) if (r.manifest.variant === 'relu-clean') r.manifest.variant = HOSTILE_RUN;
    const fer = analyzeRuns('fer-like', ferRuns, [], {});
    const html = buildComparisonReport({ title: 'before vs after', suites: [{ label: 'fer-demo', analysis: demo.analysis, runs: demo.runs.length }, { label: 'fer-like', analysis: fer, runs: ferRuns.length }] });
    expect(html).not.toMatch(/<script/i);
    expect(html).toContain("script-src 'none'");
    expect(html).not.toContain(HOSTILE_RUN);
    const file = join(ARTIFACTS, 'report-compare.html');
    writeReport(file, html);
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu'] });
    try {
      const { page, watch } = await openReport(browser, file);
      await page.setViewportSize({ width: 1400, height: 900 });
      // Both answers, side by side on the first screen.
      const boxes = await page.$$eval('.compare-col', (cols) => cols.map((c) => c.getBoundingClientRect().toJSON() as DOMRect));
      expect(boxes.length).toBe(2);
      expect(boxes[1]!.x).toBeGreaterThan(boxes[0]!.x + boxes[0]!.width - 1);
      expect(boxes[1]!.y).toBe(boxes[0]!.y);
      for (const [i, a] of [demo.analysis, fer].entries()) {
        const first = buildAnswer(a).variants[0]!;
        expect(await page.locator(`#answer-${i + 1} ul.answers li`).first().innerText()).toBe(first.sentence);
      }
      // One row per variant x decay of either suite; each cell the suite's train ratio.
      const keys = new Set([...demo.analysis.results, ...fer.results].filter((r) => r.split === 'train' && r.resolution === 'epoch' && r.metric === 'center' && r.n > 0).map((r) => `${r.variant}|${r.decayEpoch}`));
      expect(await page.locator('table.compare tbody tr').count()).toBe(keys.size);
      expect(await page.getByText(HOSTILE_RUN, { exact: false }).count()).toBeGreaterThan(0);
      expect(await page.locator('img').count()).toBe(0);
      expect(watch.consoleErrors).toEqual([]);
      expect(watch.dialogs).toEqual([]);
      expect(watch.requests).toEqual([pathToFileURL(file).href]);
      await page.screenshot({ path: join(ARTIFACTS, 'report-compare.png') });
    } finally {
      await browser.close();
    }
  });
});
