/**
 * `--jobs N`: train a suite's runs in N child processes at once (each a `spikeprobe run` of its
 * share of the runs into the same runs directory), so that every core trains. On a 2-core
 * machine two 1-thread processes train the small ResNet faster than one process on 2 threads:
 * the conv thread pool splits only the convolutions (BatchNorm, element-wise ops and the rest of
 * a step stay on one thread), while two processes run whole steps side by side.
 *
 * Each run's numbers do not depend on the process that trains it (same seed, same backend, and
 * the conv kernels give the same bits for any thread count): `--jobs` changes the time, not the
 * results (tested). Children get SPIKEPROBE_THREADS = threads / N (at least 1) and write their
 * runs durably as a single process would; a run killed with them resumes with --resume.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { wantedThreads } from '../backend/index.js';
import { selectWithForks, type Job } from '../suite/load.js';
import { InputError } from '../util/errors.js';
import { ownerToken } from '../store/lock.js';
import { StoppedBySignal } from './signals.js';

/** The --jobs value: a positive integer or 'auto' (the cores Node reports, at most 8), capped by the runs to train. */
export function parseJobs(value: string | undefined, runs: number): number {
  if (value === undefined) return 1;
  const n = value === 'auto' ? Math.min(8, availableParallelism()) : Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 64) throw new InputError(`expected an integer from 1 to 64 or 'auto', got '${value}'`, undefined, '--jobs');
  return Math.max(1, Math.min(n, runs));
}

/** Conv threads each of `n` children gets: SPIKEPROBE_THREADS (or the default) / n, at least 1. */
export function childThreads(n: number): number {
  return Math.max(1, Math.floor(wantedThreads() / n));
}

/** The runs of `todo` child k of n trains: k, k + n, k + 2n, ..., each with its forks after it. */
export function childShare(todo: Job[], k: number, n: number): Job[] {
  return selectWithForks(todo, (i) => i % n === k);
}

export interface ChildRunOptions {
  /** The CLI script (process.argv[1] of this process). */
  cli: string;
  suiteFile: string;
  outDir: string;
  /** Options passed through to every child: --config, --seeds, --backend, --resume, --quiet. */
  passThrough: string[];
  quiet: boolean;
}

/**
 * Train `todo` in `n` children. Their output lines are relayed with a "runner k/n:" prefix; the first
 * child that fails stops the others and its last error line becomes this process's error (exit 2
 * for bad input, as the child's).
 */
export async function runInChildren(todo: Job[], n: number, o: ChildRunOptions): Promise<void> {
  const threads = childThreads(n);
  const children: ChildProcess[] = [];
  const lastError: string[] = new Array<string>(n).fill('');
  const relay = (k: number, stream: NodeJS.ReadableStream | null) => {
    let buf = '';
    stream?.setEncoding('utf8');
    stream?.on('data', (chunk: string) => {
      buf += chunk;
      let at: number;
      while ((at = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, at).replace(/\r/g, '');
        buf = buf.slice(at + 1);
        if (line.startsWith('spikeprobe: ')) lastError[k] = line.slice('spikeprobe: '.length);
        if (!o.quiet || line.startsWith('spikeprobe: ')) process.stderr.write(`runner ${k + 1}/${n}: ${line}\n`);
      }
    });
  };
  // Each runner is asked once: a second SIGTERM would make it stop at once instead of at a safe point.
  const asked = new Set<ChildProcess>();
  const stopAll = () => {
    for (const c of children) {
      if (c.exitCode === null && c.signalCode === null && !asked.has(c)) {
        asked.add(c);
        c.kill('SIGTERM');
      }
    }
  };
  let stopped: NodeJS.Signals | undefined;
  const onSignal = (sig: NodeJS.Signals) => {
    stopped = sig;
    stopAll();
    process.stderr.write(`spikeprobe: ${sig}: stopped ${n} runners; finished epochs are kept (continue with --resume)\n`);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    const results = await Promise.all(
      Array.from({ length: n }, (_, k) => {
        const ids = childShare(todo, k, n).map((j) => j.id);
        const args = [o.cli, 'run', o.suiteFile, '--out', o.outDir, '--runner-of', ids.join(','), '--no-report', ...o.passThrough];
        // The runners share this process's lock token: one owner of the runs directory.
        const child = spawn(process.execPath, args, { env: { ...process.env, SPIKEPROBE_THREADS: String(threads), SPIKEPROBE_LOCK_TOKEN: ownerToken() }, stdio: ['ignore', 'pipe', 'pipe'] });
        children.push(child);
        relay(k, child.stdout);
        relay(k, child.stderr);
        return new Promise<{ k: number; code: number }>((res) =>
          child.on('close', (code, signal) => {
            const c = code ?? (signal ? 1 : 0);
            if (c !== 0) stopAll();
            res({ k, code: c });
          }),
        );
      }),
    );
    if (stopped) throw new StoppedBySignal(stopped); // the runs keep their finished epochs
    const failed = results.find((r) => r.code !== 0 && lastError[r.k]) ?? results.find((r) => r.code !== 0);
    if (failed) {
      const msg = lastError[failed.k] || `runner ${failed.k + 1} of ${n} exited with code ${failed.code}`;
      if (failed.code === 2) throw new InputError(msg);
      throw new Error(msg);
    }
  } finally {
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
  }
}
