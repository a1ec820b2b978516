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
import { buildReport, escapeHtml, jsonForScript, materialize, prepareData, writeReport } from '../src/report/index.js';
import { ROWS_JS, type Query, type RowSource } from '../src/report/data.js';
import { syntheticAnalysis, syntheticRun } from '../src/bench/synthetic-report.js';

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
    const src = { variants: d.variants, splits: d.splits, keys: d.keys, klab: d.keys, xs: d.xs, series: d.series };
    const k = d.keys.indexOf('center');
    const rows = materialize(src, { t: 'e', k: [k], lab: 'split' });
    expect(rows.map((r) => [r.epoch, r.x, r.mean, r.lo, r.hi, r.n])).toEqual([
      [0, 0.5, 2, 1, 3, 2],
      [1, 1.5, 3, 2, 4, 2],
    ]);
    const steps = materialize(src, { t: 's', k: [k], lab: 'split', a: 1, b: 3 });
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
    const src = { variants: d.variants, splits: d.splits, keys: d.keys, klab: d.keys, xs: d.xs, series: d.series };
    const rows = materialize(src, { t: 's', k: [d.keys.indexOf('center')], lab: 'split' });
    expect(rows.length).toBeLessThanOrEqual(101);
    expect(Math.max(...rows.map((r) => r.hi ?? 0))).toBe(100);
    expect(Math.max(...rows.map((r) => r.mean ?? 0))).toBeLessThan(100);
  });

  it("the page's row builder (ROWS_JS) gives the same rows as materialize", () => {
    const { runs } = suite();
    const d = prepareData(runs);
    const src: RowSource = { variants: d.variants, splits: d.splits, keys: d.keys, klab: d.keys.map((k) => k.replace(/^.*\//, '')), xs: d.xs, series: d.series };
    const rows = new Function(`${ROWS_JS}; return rows;`)() as (p: RowSource, q: Query) => unknown[];
    const k = (name: string): number => d.keys.indexOf(name);
    const queries: Query[] = [
      { t: 'e', k: [k('center')], lab: 'split' },
      { t: 'e', k: [k('cl_within'), k('cl_lag')], s: [0], lab: 'key', a: 5, b: 11 },
      { t: 's', k: [k('center')], lab: 'split', a: 5, b: 12 },
      { t: 's', k: [k('dead_frac/conv1'), k('dead_frac/fc1')], lab: 'key', a: 13, b: 20 },
    ];
    for (const q of queries) {
      const expected = materialize(src, q);
      expect(expected.length).toBeGreaterThan(0);
      expect(rows(src, q)).toEqual(expected);
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
      expect(await page.locator('#manifests').getByText(HOSTILE_RUN, { exact: true }).first().isVisible()).toBe(true);
      // The first screen (1400x900) answers: the sentences with verdicts and ratios, and the forest plot.
      await page.setViewportSize({ width: 1400, height: 900 });
      await page.evaluate(() => window.scrollTo(0, 0));
      const answer = await page.locator('#answer ul.answers li').allInnerTexts();
      expect(answer.length).toBeGreaterThan(0);
      expect(answer.join(' ')).toMatch(/x\d\.\d\d/);
      expect(answer.some((t) => /rises over its trend|no spike|not decided/.test(t))).toBe(true);
      const forest = (await page.locator('#answer svg.forest').boundingBox())!;
      expect(forest.y + forest.height).toBeLessThan(900);
      expect(await page.locator('#answer svg.forest circle').count()).toBe(analysis.results.filter((r) => r.split === 'train' && r.resolution === 'epoch' && r.n > 0).length);
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
