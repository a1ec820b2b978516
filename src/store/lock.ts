/**
 * One writer per run directory. `.lock` is created atomically (O_EXCL) and holds the owner's pid,
 * host and token and a heartbeat time that the owner renews while it trains (every LEASE/4 and at
 * every epoch end). A second writer is refused with one line naming the owner, unless the lock is
 * stale: its owner is on this host and no longer alive, or (any host, e.g. a task requeued onto
 * another node) its heartbeat is older than the lease. `breakLock` takes it regardless. Processes
 * that share an owner token (a suite and its --jobs runners: SPIKEPROBE_LOCK_TOKEN) are one owner.
 */
import { closeSync, existsSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { writeFileAtomic } from '../util/atomic.js';
import { InputError } from '../util/errors.js';

export const LOCK_FILE = '.lock';

/** Lease of a heartbeat, ms: SPIKEPROBE_LOCK_LEASE_S or 120 s. */
export function leaseMs(): number {
  const s = Number(process.env.SPIKEPROBE_LOCK_LEASE_S ?? 120);
  return (Number.isFinite(s) && s > 0 ? s : 120) * 1000;
}

export interface LockInfo {
  pid: number;
  host: string;
  token: string;
  startedAt: string;
  heartbeat: string;
}

/** This process's owner token: inherited from a suite parent, else host:pid. */
export function ownerToken(): string {
  return process.env.SPIKEPROBE_LOCK_TOKEN || `${hostname()}:${process.pid}`;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function readLock(path: string): LockInfo | undefined {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as LockInfo;
  } catch {
    return undefined; // torn or vanished: treated as stale
  }
}

export class RunLock {
  private timer?: NodeJS.Timeout;
  private released = false;
  /** `owned` false: the lock file belongs to this process's owner (a suite parent): renew and release leave it alone. */
  constructor(
    readonly path: string,
    private info: LockInfo,
    private readonly owned = true,
  ) {
    if (!owned) return;
    this.timer = setInterval(() => this.renew(), Math.max(1000, leaseMs() / 4));
    this.timer.unref();
  }

  /** Renew the heartbeat (errors such as a full disk are ignored here: the next write reports them). */
  renew(): void {
    if (this.released || !this.owned) return;
    try {
      this.info = { ...this.info, heartbeat: new Date().toISOString() };
      writeFileAtomic(this.path, JSON.stringify(this.info) + '\n');
    } catch {
      // the lease may lapse; the owner's next durable write fails loudly if the disk is the cause
    }
  }

  release(): void {
    if (this.released) return;
    this.released = true;
    if (!this.owned) return;
    if (this.timer) clearInterval(this.timer);
    const cur = readLock(this.path);
    if (!cur || cur.token === this.info.token) rmSync(this.path, { force: true });
  }
}

/**
 * Take the lock of `dir`, or throw an InputError naming its owner. `notice` hears about stale locks
 * taken over.
 */
export function acquireLock(dir: string, opts: { breakLock?: boolean; notice?: (msg: string) => void } = {}): RunLock {
  const path = join(dir, LOCK_FILE);
  const now = new Date().toISOString();
  const info: LockInfo = { pid: process.pid, host: hostname(), token: ownerToken(), startedAt: now, heartbeat: now };
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const fd = openSync(path, 'wx');
      try {
        writeSync(fd, JSON.stringify(info) + '\n');
      } finally {
        closeSync(fd);
      }
      return new RunLock(path, info);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    const cur = readLock(path);
    if (cur && cur.token === info.token) return new RunLock(path, info, false); // the same owner (a suite's runner)
    const age = cur ? Date.now() - Date.parse(cur.heartbeat) : Infinity;
    const dead = cur !== undefined && cur.host === info.host && !alive(cur.pid);
    const stale = !cur || dead || age > leaseMs();
    if (!stale && !opts.breakLock) {
      throw new InputError(
        `another spikeprobe is writing this run (pid ${cur!.pid} on ${cur!.host}, since ${cur!.startedAt}, heartbeat ${Math.round(age / 1000)} s ago); wait for it, or take over with --break-lock if it is gone`,
        dir,
      );
    }
    opts.notice?.(
      `${dir}: taking over the lock of ${cur ? `pid ${cur.pid} on ${cur.host}` : 'an unreadable lock'} (${opts.breakLock && !stale ? '--break-lock' : dead ? 'that process is gone' : `no heartbeat for ${Math.round(age / 1000)} s`})`,
    );
    rmSync(path, { force: true });
  }
  throw new InputError('could not take the run lock (it keeps changing hands)', dir);
}

export function lockOwner(dir: string): LockInfo | undefined {
  const p = join(dir, LOCK_FILE);
  return existsSync(p) ? readLock(p) : undefined;
}
