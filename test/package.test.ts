/**
 * The npm tarball: `npm pack` of the built tree ships what the CLI needs (dist/ without the
 * benches, probes/, examples/, README, LICENSE) and nothing else, and the packed CLI runs from a
 * project that installed it: its bin answers through npx, finds the demo's suite inside the
 * package, and trains a real tiny run. The project's dependencies are the repository's own
 * node_modules, linked in (no registry needed); the packed files are the tarball's.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
let tmp = '';
let files: string[] = [];
let project = '';

beforeAll(() => {
  tmp = mkdtempSync(path.join(tmpdir(), 'spikeprobe-pack-'));
  const out = execFileSync('npm', ['pack', '--json', '--pack-destination', tmp], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  const info = JSON.parse(out) as { filename: string; files: { path: string }[] }[];
  files = info[0]!.files.map((f) => f.path);
  project = path.join(tmp, 'project');
  const modules = path.join(project, 'node_modules');
  mkdirSync(path.join(modules, 'spikeprobe'), { recursive: true });
  execFileSync('tar', ['xzf', path.join(tmp, info[0]!.filename), '-C', path.join(modules, 'spikeprobe'), '--strip-components=1']);
  for (const name of readdirSync(path.join(ROOT, 'node_modules'))) {
    if (name === '.bin' || name === 'spikeprobe' || name.startsWith('.')) continue;
    symlinkSync(path.join(ROOT, 'node_modules', name), path.join(modules, name));
  }
  mkdirSync(path.join(modules, '.bin'));
  symlinkSync('../spikeprobe/dist/cli/main.js', path.join(modules, '.bin', 'spikeprobe'));
}, 120_000);

afterAll(() => {
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

const npx = (...args: string[]) =>
  spawnSync('npx', ['--no-install', 'spikeprobe', ...args], { cwd: project, encoding: 'utf8', env: { ...process.env, SPIKEPROBE_THREADS: '1' }, timeout: 150_000 });

describe('the npm tarball', () => {
  it('ships dist/, probes/, examples/, README and LICENSE, and nothing else', () => {
    const top = new Set(files.map((f) => f.split('/')[0]));
    expect([...top].sort()).toEqual(['LICENSE', 'README.md', 'dist', 'examples', 'package.json', 'probes']);
    expect(files).toContain('dist/cli/main.js');
    expect(files).toContain('probes/fer-demo.yaml');
    expect(files).toContain('examples/config.yaml');
    expect(files.some((f) => f.startsWith('dist/bench/'))).toBe(false);
    const licence = readFileSync(path.join(project, 'node_modules', 'spikeprobe', 'LICENSE'), 'utf8');
    const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { license: string };
    expect(pkg.license).toBe('MIT');
    expect(licence).toMatch(/^MIT License/);
  });

  it('runs from a project that installed it: npx, the demo suite inside the package, a tiny run', () => {
    const help = npx('demo', '--help');
    expect(help.status).toBe(0);
    expect(help.stdout).toContain('probes/fer-demo.yaml');
    const suite = path.join(project, 'node_modules', 'spikeprobe', 'probes', 'fer-demo.yaml');
    const dry = npx('run', suite, '--dry-run', '--out', path.join(tmp, 'runs-demo'));
    expect(dry.status, dry.stderr).toBe(0);
    expect(dry.stdout + dry.stderr).toMatch(/relu-s1/);
    expect(existsSync(path.join(tmp, 'runs-demo'))).toBe(false);
    const config = path.join(project, 'node_modules', 'spikeprobe', 'examples', 'config.yaml');
    const run = npx('train', '--config', config, '--preset', 'tiny', '--epochs', '1', '--out', path.join(tmp, 'runs'), '--name', 'packed', '-q');
    expect(run.status, run.stderr).toBe(0);
    const records = readFileSync(path.join(tmp, 'runs', 'packed', 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { kind: string; split?: string; center?: number });
    const epoch = records.find((r) => r.kind === 'epoch' && r.split === 'train');
    expect(epoch?.center).toBeGreaterThan(0);
  }, 180_000);
});
