import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { findChromium } from '../src/env/browser.js';

const ROOT = join(import.meta.dirname, '..');
const CLI = join(ROOT, 'dist', 'cli', 'main.js');

describe('a browser for the report tests: found, or one line saying what to install', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sp-env-'));
  const fake = join(dir, 'chromium');
  writeFileSync(fake, '#!/bin/sh\nexit 0\n');
  chmodSync(fake, 0o755);

  it('looks at SPIKEPROBE_CHROMIUM, then PATH, then system paths', () => {
    expect(findChromium({ SPIKEPROBE_CHROMIUM: fake, PATH: '' })).toEqual({ path: fake, how: 'SPIKEPROBE_CHROMIUM' });
    expect(findChromium({ PATH: dir })).toEqual({ path: fake, how: 'PATH' });
    const none = findChromium({ SPIKEPROBE_CHROMIUM: join(dir, 'nowhere'), PATH: dir });
    expect(none.path).toBeUndefined();
    expect(none.how).toMatch(/SPIKEPROBE_CHROMIUM=.*nowhere is not an executable file/);
  });

  it('the npm test gate stops with one line and exit 1 when none is reachable', () => {
    const r = spawnSync(process.execPath, [join(ROOT, 'scripts', 'check-browser.mjs')], {
      encoding: 'utf8',
      env: { PATH: '/nonexistent', SPIKEPROBE_CHROMIUM: join(dir, 'nowhere') },
    });
    expect(r.status).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/need Chromium .* install it: apt-get install -y chromium .*SPIKEPROBE_INSTALL_BROWSER=1 npm test/);
    const ok = spawnSync(process.execPath, [join(ROOT, 'scripts', 'check-browser.mjs')], { encoding: 'utf8', env: { PATH: '/nonexistent', SPIKEPROBE_CHROMIUM: fake } });
    expect(ok.status, ok.stderr).toBe(0);
  });
});

describe('spikeprobe doctor', () => {
  it('reports the backend, kernels, browser, PyTorch, data and disk, also as JSON', () => {
    const r = spawnSync(process.execPath, [CLI, 'doctor', '--json', '--backend', 'wasm'], { encoding: 'utf8', env: { ...process.env, SPIKEPROBE_CHROMIUM: '/nonexistent' } });
    expect(r.status, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout) as { items: { what: string; ok: boolean; detail: string; fix?: string }[] };
    const item = (w: string) => j.items.find((i) => i.what.startsWith(w))!;
    expect(item('backend').detail).toMatch(/^wasm/);
    expect(item('conv kernels').detail).toMatch(/thread/);
    expect(item('browser').ok).toBe(false);
    expect(item('browser').fix).toMatch(/apt-get install -y chromium/);
    expect(item('data: fashion-mnist').ok).toBe(true);
    expect(item('disk').detail).toMatch(/GiB free/);
    const text = spawnSync(process.execPath, [CLI, 'doctor', '--backend', 'wasm'], { encoding: 'utf8', env: { ...process.env, SPIKEPROBE_CHROMIUM: '/nonexistent' } });
    expect(text.stdout).toMatch(/MISS\s+browser/);
    expect(text.stdout).toMatch(/-> apt-get install -y chromium/);
  });
});

describe('output into a closed pipe', () => {
  it('ends quietly (no EPIPE stack trace)', () => {
    const r = spawnSync('bash', ['-c', `"${process.execPath}" "${CLI}" check --help | head -1; echo "rc=\${PIPESTATUS[0]}"`], { encoding: 'utf8' });
    expect(r.stdout).toMatch(/^Usage: spikeprobe check/);
    expect(r.stdout).toMatch(/rc=0/);
    expect(r.stderr).not.toMatch(/EPIPE|Error/);
  });
});

describe('Node versions: same seed, same backend, same numbers', () => {
  // CI lists the other Node binaries it tests (.ci/run: Node 22 and 24 from the registry).
  const others = (process.env.SPIKEPROBE_NODE_BINARIES ?? '').split(' ').filter(Boolean);
  it.skipIf(others.length === 0)(`a tiny run on ${others.length} other Node version(s) equals this one's, record for record`, () => {
    const dir = mkdtempSync(join(tmpdir(), 'sp-nodes-'));
    const cfg = join(dir, 'c.yaml');
    writeFileSync(cfg, 'lr: 0.05\nepochs: 3\ndecay_epochs: [1, 2]\ndecay_factors: [0.5, 0.1]\n');
    const runWith = (node: string, name: string) => {
      const r = spawnSync(node, [CLI, 'train', '--config', cfg, '--preset', 'tiny', '--out', dir, '--name', name, '--quiet'], { encoding: 'utf8', env: { ...process.env, SPIKEPROBE_BACKEND: 'wasm' } });
      expect(r.status, r.stderr).toBe(0);
      return readFileSync(join(dir, name, 'metrics.jsonl'), 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => ({ ...JSON.parse(l), seconds: 0 }));
    };
    const here = runWith(process.execPath, 'here');
    others.forEach((n, i) => {
      const v = spawnSync(n, ['--version'], { encoding: 'utf8' }).stdout.trim();
      expect(runWith(n, `other${i}`), `node ${v}`).toEqual(here);
    });
  });
});
