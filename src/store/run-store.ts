import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, readdirSync, statSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { withPath, writeFileAtomic } from '../util/atomic.js';
import { faultPoint } from '../util/fault.js';
import { InputError } from '../util/errors.js';
import type { MetricRecord, RunManifest } from './types.js';

/** Run names become folder names: one plain segment (never '..' or a path), so a run stays in its folder. */
export const RUN_NAME = /^(?=.{1,128}$)[A-Za-z0-9][A-Za-z0-9_-]*(\.[A-Za-z0-9_-]+)*$/;

/** File names inside a run directory. */
export const MANIFEST = 'manifest.json';
export const METRICS = 'metrics.jsonl';
export const CHECKPOINT = 'checkpoint.bin';
/** Kept checkpoints (forks start from them): checkpoints/after-epoch-<E>.bin, E 0-based. */
export const KEPT_DIR = 'checkpoints';
export function keptCheckpoint(dir: string, epoch: number): string {
  return join(dir, KEPT_DIR, `after-epoch-${epoch}.bin`);
}

export function writeManifest(dir: string, m: RunManifest): void {
  writeFileAtomic(join(dir, MANIFEST), JSON.stringify(m, null, 1) + '\n', 'manifest-write');
}

export function readManifest(dir: string): RunManifest {
  const p = join(dir, MANIFEST);
  if (!existsSync(p)) throw new InputError('not a run directory (no manifest.json)', dir);
  try {
    return JSON.parse(readFileSync(p, 'utf8')) as RunManifest;
  } catch (e) {
    throw new InputError(`unreadable manifest: ${(e as Error).message}`, p);
  }
}

/** Append records as JSON lines and fsync, so that a completed epoch survives a kill. */
export function appendMetrics(dir: string, records: MetricRecord[]): void {
  if (records.length === 0) return;
  mkdirSync(dir, { recursive: true });
  const p = join(dir, METRICS);
  const buf = Buffer.from(records.map((r) => JSON.stringify(r)).join('\n') + '\n', 'utf8');
  const fd = openSync(p, 'a');
  try {
    // A kill between the two halves leaves a torn last line: readMetrics drops it, resume rewrites.
    const half = Math.floor(buf.length / 2);
    let off = 0;
    while (off < half) off += writeSync(fd, buf, off, half - off);
    faultPoint('metrics-append');
    while (off < buf.length) off += writeSync(fd, buf, off, buf.length - off);
    fsyncSync(fd);
  } catch (e) {
    throw withPath(e, p);
  } finally {
    closeSync(fd);
  }
}

/**
 * Read metrics.jsonl. A torn last line (a kill in the middle of a write) is ignored; a torn line
 * anywhere else is an error.
 */
export function readMetrics(dir: string): MetricRecord[] {
  const p = join(dir, METRICS);
  if (!existsSync(p)) return [];
  const lines = readFileSync(p, 'utf8').split('\n');
  const out: MetricRecord[] = [];
  lines.forEach((line, i) => {
    if (line.trim() === '') return;
    try {
      out.push(JSON.parse(line) as MetricRecord);
    } catch {
      const last = lines.slice(i + 1).every((l) => l.trim() === '');
      if (!last) throw new InputError(`torn or malformed JSON line ${i + 1}`, p);
    }
  });
  return out;
}

/** Keep only the records of epochs < epochsDone (used on resume), rewritten atomically. */
export function truncateMetrics(dir: string, epochsDone: number): MetricRecord[] {
  const kept = readMetrics(dir).filter((r) => r.epoch < epochsDone);
  writeFileAtomic(join(dir, METRICS), kept.map((r) => JSON.stringify(r) + '\n').join(''));
  return kept;
}

export function isRunDir(dir: string): boolean {
  return existsSync(join(dir, MANIFEST));
}

/** Run directories directly inside `root` (or `root` itself if it is one), sorted by name. */
export function listRunDirs(root: string): string[] {
  if (!existsSync(root)) throw new InputError('directory not found', root);
  if (isRunDir(root)) return [root];
  return readdirSync(root)
    .map((n) => join(root, n))
    .filter((p) => statSync(p).isDirectory() && isRunDir(p))
    .sort();
}
