import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readdirSync, renameSync, rmSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { faultPoint, type FaultSite } from './fault.js';

/** Name the file in an fs error that lacks it (a write(2) on a descriptor only says 'write'). */
export function withPath(e: unknown, path: string): unknown {
  const err = e as NodeJS.ErrnoException;
  if (err && typeof err === 'object' && err.code && err.path === undefined) err.path = path;
  return e;
}

/** Temp files are `.<name>.<pid>.tmp` beside their target. */
export function tempPath(path: string): string {
  return join(dirname(path), `.${basename(path)}.${process.pid}.tmp`);
}

/** fsync a directory, so that a rename in it is durable (best effort where the platform refuses). */
export function fsyncDir(dir: string): void {
  let fd: number | undefined;
  try {
    fd = openSync(dir, 'r');
    fsyncSync(fd);
  } catch {
    // some filesystems do not fsync directories
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/**
 * Write the bytes of `data` to a new temp file beside `path`, fsync it, and return the temp path.
 * On failure the temp file is removed and the error rethrown (nothing half-written stays).
 */
export function writeTemp(path: string, data: string | Uint8Array, site?: FaultSite): string {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = tempPath(path);
  let fd: number | undefined;
  try {
    fd = openSync(tmp, 'w');
    const buf = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
    const half = Math.floor(buf.length / 2);
    let off = 0;
    while (off < half) off += writeSync(fd, buf, off, half - off);
    if (site) faultPoint(site);
    while (off < buf.length) off += writeSync(fd, buf, off, buf.length - off);
    fsyncSync(fd);
    closeSync(fd);
    fd = undefined;
    return tmp;
  } catch (e) {
    if (fd !== undefined) closeSync(fd);
    rmSync(tmp, { force: true });
    throw withPath(e, path);
  }
}

/** Write a file so that readers see either the old content or the whole new one, never a torn one. */
export function writeFileAtomic(path: string, data: string | Uint8Array, site?: FaultSite): void {
  const tmp = writeTemp(path, data, site);
  try {
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
  fsyncDir(dirname(path));
}

/** Remove temp files a killed writer left in `dir` (`.*.tmp`); returns their names. */
export function removeStaleTemps(dir: string): string[] {
  if (!existsSync(dir)) return [];
  const stale = readdirSync(dir).filter((n) => n.startsWith('.') && n.endsWith('.tmp'));
  for (const n of stale) rmSync(join(dir, n), { force: true });
  return stale;
}
