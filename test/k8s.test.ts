import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Job } from 'kubernetes-models/batch/v1';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { loadSuite } from '../src/suite/load.js';

const ROOT = join(import.meta.dirname, '..');
const MANIFEST = join(ROOT, 'examples', 'k8s-indexed-job.yaml');

describe('examples/k8s-indexed-job.yaml', () => {
  const doc = parse(readFileSync(MANIFEST, 'utf8'));

  it('is a valid batch/v1 Job by the Kubernetes schema (and the validator rejects a broken one)', () => {
    expect(() => new Job(doc).validate()).not.toThrow();
    const broken = structuredClone(doc);
    broken.spec.completions = 'four';
    expect(() => new Job(broken).validate()).toThrow(/completions must be integer/);
  });

  it('its container command, run locally as a dry run for every index, covers the suite once (shard i/N, N = completions)', () => {
    const spec = doc.spec;
    const n = spec.completions as number;
    expect(spec.parallelism).toBe(n);
    expect(spec.completionMode).toBe('Indexed');
    const c = spec.template.spec.containers[0];
    expect(c.command).toEqual(['bash', '-c']);
    const script = (c.args as string[]).join(' ');
    expect(script).toContain(`--shard \${JOB_COMPLETION_INDEX}/${n}`);
    expect(script).toContain('--resume');
    const suiteFile = /run (\S+\.yaml)/.exec(script)![1]!;
    const seen: string[] = [];
    for (let i = 0; i < n; i++) {
      // The pod's command, in the checkout (workingDir /app), with --dry-run: nothing is trained or written.
      const r = spawnSync('bash', ['-c', `${script} --dry-run`], { cwd: ROOT, encoding: 'utf8', env: { ...process.env, JOB_COMPLETION_INDEX: String(i) } });
      expect(r.status, r.stderr).toBe(0);
      expect(r.stderr).toMatch(new RegExp(`in shard ${i}/${n} \\(dry run`));
      for (const line of r.stdout.trim().split('\n')) {
        const [id, , dir] = line.split('\t');
        expect(dir).toBe(`/runs/shard-${i}/${id}`);
        seen.push(id!);
      }
    }
    const all = loadSuite(join(ROOT, suiteFile)).jobs.map((j) => j.id);
    expect(seen.sort()).toEqual([...all].sort());
  });
});
