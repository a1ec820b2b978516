import { spawnSync } from 'node:child_process';
import { cpSync, rmSync, existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { mkdirSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { findChromium } from '../src/env/browser.js';
import { chromium } from 'playwright-core';
import { readMetrics } from '../src/store/run-store.js';

const CLI = join(import.meta.dirname, '..', 'dist', 'cli', 'main.js');
const SUITES = join(import.meta.dirname, 'fixtures', 'suites');

function cli(args: string[], cwd: string) {
  const r = spawnSync(process.execPath, [CLI, ...args], { cwd, encoding: 'utf8', env: { ...process.env, SPIKEPROBE_BACKEND: 'wasm' } });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

describe('bad suites exit 2 with a clear message and write nothing', () => {
  const cases: [string, RegExp][] = [
    ['bad-key.yaml', /bad-key\.yaml:7: variants\.prelu\.model\.activaton: unknown key 'activaton'/],
    ['bad-yaml.yaml', /bad-yaml\.yaml:\d+: malformed YAML/],
    ['missing-variant.yaml', /missing-variant\.yaml:8: expect\.1\.variant: no variant 'prelu' in this suite/],
  ];
  for (const [file, re] of cases) {
    it(file, () => {
      const cwd = mkdtempSync(join(tmpdir(), 'sp-bad-'));
      for (const cmd of ['run', 'check']) {
        const r = cli([cmd, join(SUITES, file)], cwd);
        expect(r.code, r.err).toBe(2);
        expect(r.err.trim().split('\n')).toHaveLength(1);
        expect(r.err).toMatch(re);
      }
      expect(readdirSync(cwd)).toEqual([]);
    });
  }
});

describe('a tiny real suite: run, check (both exit codes), shards and merge', () => {
  const cwd = mkdtempSync(join(tmpdir(), 'sp-suite-'));
  let run: ReturnType<typeof cli>;
  beforeAll(() => {
    run = cli(['run', join(SUITES, 'smoke.yaml'), '--quiet'], cwd);
  });

  it('records every variant x seed durably and writes the report', () => {
    expect(run.code, run.err).toBe(0);
    const dir = join(cwd, 'runs', 'smoke');
    expect(readdirSync(dir).sort()).toEqual(['prelu-s1', 'prelu-s2', 'relu-s1', 'relu-s2', 'suite.json']);
    for (const r of ['prelu-s1', 'relu-s2']) {
      const m = JSON.parse(readFileSync(join(dir, r, 'manifest.json'), 'utf8'));
      expect(m.status).toBe('done');
      expect(m.suite).toBe('smoke');
      expect(readMetrics(join(dir, r)).filter((x) => x.kind === 'epoch' && x.split === 'test')).toHaveLength(10);
    }
    expect(existsSync(join(cwd, 'reports', 'smoke.html'))).toBe(true);
    expect(run.out).toMatch(/relu\s+train\s+epoch\s+4/);
  });

  it('the report built from the real recorded runs renders every chart in headless Chromium, offline', async () => {
    const file = join(cwd, 'reports', 'smoke.html');
    const html = readFileSync(file, 'utf8');
    expect(html).toMatch(/http-equiv="Content-Security-Policy" content="default-src 'none'/);
    expect(html).not.toMatch(/<script[^>]+src=/);
    const browser = await chromium.launch({
      executablePath: findChromium().path,
      args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
    });
    try {
      const page = await browser.newPage({ viewport: { width: 1300, height: 900 } });
      const errors: string[] = [];
      const requests: string[] = [];
      page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
      page.on('pageerror', (e) => errors.push(String(e)));
      page.on('request', (r) => requests.push(r.url()));
      await page.goto(pathToFileURL(file).href, { waitUntil: 'load' });
      await page.waitForFunction(() => document.body.hasAttribute('data-charts'), undefined, { timeout: 120_000 });
      const charts = await page.$$eval('.chart', (cs) => cs.map((c) => [c.id, Boolean(c.querySelector('svg, canvas')), c.textContent?.slice(0, 200)] as const));
      expect(charts.length).toBeGreaterThan(5);
      expect(charts.filter(([, ok]) => !ok)).toEqual([]);
      expect(await page.getAttribute('body', 'data-charts')).toBe('done');
      expect(errors).toEqual([]);
      expect(requests).toEqual([pathToFileURL(file).href]);
      // The verdict table and the explanation carry the measured numbers of these runs.
      const text = await page.textContent('body');
      expect(text).toMatch(/relu/);
      expect(text).toMatch(/prelu/);
      mkdirSync('test-artifacts', { recursive: true });
      await page.screenshot({ path: join('test-artifacts', 'report-real-runs.png'), fullPage: true });
    } finally {
      await browser.close();
    }
  });

  it('check exits 0 when the expectations hold, without training again', () => {
    const before = readFileSync(join(cwd, 'runs', 'smoke', 'relu-s1', 'metrics.jsonl'), 'utf8');
    const r = cli(['check', join(SUITES, 'smoke.yaml')], cwd);
    expect(r.code, r.err + r.out).toBe(0);
    expect(r.out).toMatch(/PASS: 4\/4/);
    expect(readFileSync(join(cwd, 'runs', 'smoke', 'relu-s1', 'metrics.jsonl'), 'utf8')).toBe(before);
    const j = cli(['check', join(cwd, 'runs', 'smoke'), '--json'], cwd);
    expect(j.code).toBe(0);
    const parsed = JSON.parse(j.out);
    expect(parsed.pass).toBe(true);
    expect(parsed.checks.map((c: { variant: string; split: string }) => `${c.variant}/${c.split}`)).toEqual(['relu/train', 'relu/train', 'prelu/test', 'prelu/test']);
  });

  it('check exits 1 when an expectation fails', () => {
    const r = cli(['check', join(SUITES, 'impossible.yaml'), '--out', join(cwd, 'runs', 'smoke'), '--no-run'], cwd);
    expect(r.code, r.err + r.out).toBe(1);
    expect(r.out).toMatch(/FAIL: 0\/4/);
  });

  it('--shard i/n splits the jobs deterministically and merge joins them into the same runs', () => {
    const a = cli(['run', join(SUITES, 'smoke.yaml'), '--shard', '0/3', '--out', join(cwd, 'shard0'), '--quiet', '--seeds', '2'], cwd);
    expect(a.code, a.err).toBe(0);
    expect(readdirSync(join(cwd, 'shard0')).filter((n) => n !== 'suite.json').sort()).toEqual(['prelu-s2', 'relu-s1']);
    // Shards 1 and 2 hold the other jobs: reuse the finished runs instead of training them again.
    for (const [s, ids] of [[1, ['relu-s2']], [2, ['prelu-s1']]] as const) {
      for (const id of ids) cpSync(join(cwd, 'runs', 'smoke', id), join(cwd, `shard${s}`, id), { recursive: true });
      const r = cli(['run', join(SUITES, 'smoke.yaml'), '--shard', `${s}/3`, '--out', join(cwd, `shard${s}`), '--quiet'], cwd);
      expect(r.code, r.err).toBe(0);
      expect(r.err).toMatch(/already recorded/);
    }
    const m = cli(['merge', join(cwd, 'merged'), join(cwd, 'shard0'), join(cwd, 'shard1'), join(cwd, 'shard2')], cwd);
    expect(m.code, m.err).toBe(0);
    expect(readdirSync(join(cwd, 'merged')).sort()).toEqual(['prelu-s1', 'prelu-s2', 'relu-s1', 'relu-s2', 'suite.json']);
    // Same seed, same backend: the shard's own training equals the unsharded one.
    const strip = (d: string) => readMetrics(d).map((x) => ({ ...x, seconds: 0 }));
    expect(strip(join(cwd, 'merged', 'relu-s1'))).toEqual(strip(join(cwd, 'runs', 'smoke', 'relu-s1')));
    expect(cli(['check', join(cwd, 'merged')], cwd).code).toBe(0);
    expect(cli(['run', join(SUITES, 'smoke.yaml'), '--shard', '3/3'], cwd).code).toBe(2);
  });

  it('merge refuses unfinished runs unless --partial; check fails on missing runs unless --allow-missing', () => {
    // A shard with one unfinished run (its manifest says running) and one missing run.
    const sh = join(cwd, 'shard-partial');
    cpSync(join(cwd, 'runs', 'smoke'), sh, { recursive: true });
    const man = join(sh, 'relu-s2', 'manifest.json');
    writeFileSync(man, JSON.stringify({ ...JSON.parse(readFileSync(man, 'utf8')), status: 'running', epochsDone: 1 }));
    rmSync(join(sh, 'prelu-s2'), { recursive: true });
    const m = cli(['merge', join(cwd, 'merged-partial'), sh], cwd);
    expect(m.code, m.err).toBe(2);
    expect(m.err.trim().split('\n')).toHaveLength(1);
    expect(m.err).toMatch(/1 run\(s\) not finished: relu-s2 \(running\).*--partial/);
    expect(existsSync(join(cwd, 'merged-partial'))).toBe(false);
    const p = cli(['merge', join(cwd, 'merged-partial'), sh, '--partial'], cwd);
    expect(p.code, p.err).toBe(0);
    const c = cli(['check', join(cwd, 'merged-partial')], cwd);
    expect(c.code, c.out + c.err).toBe(1);
    expect(c.out).toMatch(/2 expected run\(s\) missing or unfinished: .*relu-s2/);
    expect(c.out).toMatch(/prelu-s2/);
    const allowed = cli(['check', join(cwd, 'merged-partial'), '--allow-missing'], cwd);
    expect(allowed.code, allowed.out + allowed.err).toBe(0);
  });

  it('--jobs 2 trains the runs in 2 processes into one runs directory, with the numbers of one process', () => {
    const out = join(cwd, 'jobs2');
    const r = cli(['run', join(SUITES, 'smoke.yaml'), '--jobs', '2', '--out', out, '--no-report'], cwd);
    expect(r.code, r.err).toBe(0);
    expect(r.err).toMatch(/4 of 4 runs to train in 2 processes/);
    expect(r.err).toMatch(/runner 1\/2: .*relu-s1: done; this runner's share ETA /);
    expect(r.err).toMatch(/runner 2\/2: .*relu-s2: done; this runner's share ETA /);
    expect(r.out).toMatch(/relu\s+train\s+epoch\s+4/); // the parent analyses once all are in
    expect(readdirSync(out).sort()).toEqual(['prelu-s1', 'prelu-s2', 'relu-s1', 'relu-s2', 'suite.json']);
    const strip = (d: string) => readMetrics(d).map((x) => ({ ...x, seconds: 0 }));
    for (const id of ['prelu-s1', 'prelu-s2', 'relu-s1', 'relu-s2']) expect(strip(join(out, id)), id).toEqual(strip(join(cwd, 'runs', 'smoke', id)));
    // Finished runs are not trained again; a bad value is a one-line input error.
    const again = cli(['run', join(SUITES, 'smoke.yaml'), '--jobs', '2', '--out', out, '--no-report'], cwd);
    expect(again.err).toMatch(/already recorded/);
    const bad = cli(['run', join(SUITES, 'smoke.yaml'), '--jobs', '0', '--out', join(cwd, 'jobs0')], cwd);
    expect(bad.code).toBe(2);
    expect(bad.err.trim().split('\n')).toHaveLength(1);
    expect(bad.err).toMatch(/--jobs: expected an integer from 1 to 64 or 'auto', got '0'/);
  });
});
