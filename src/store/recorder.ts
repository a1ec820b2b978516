/**
 * A run's recorder: the lifecycle of a run directory in one place. open (the writer's lock, stale
 * temp files cleared, an existing run refused unless resuming, the checkpoint to resume from),
 * start or resume (the manifest; metrics past the resumed epoch dropped), epochDone (records,
 * checkpoint generations, kept checkpoints, manifest, heartbeat, in that order: an epoch is durable
 * once its checkpoint is), finish, fail, close.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { removeStaleTemps } from '../util/atomic.js';
import { InputError } from '../util/errors.js';
import { faultPoint } from '../util/fault.js';
import { previousOf, readCheckpointWithFallback, writeCheckpoint, type Checkpoint, type TensorEntry } from './checkpoint.js';
import { acquireLock, type RunLock } from './lock.js';
import { appendMetrics, CHECKPOINT, KEPT_DIR, keptCheckpoint, MANIFEST, readManifest, truncateMetrics, writeManifest } from './run-store.js';
import type { MetricRecord, RunManifest } from './types.js';

export interface OpenOptions {
  resume: boolean;
  breakLock?: boolean;
  notice: (msg: string) => void;
}

export class RunRecorder {
  private manifest?: RunManifest;

  private constructor(
    readonly dir: string,
    private readonly lock: RunLock,
    /** The manifest found there (resuming). */
    readonly previous: RunManifest | undefined,
    /** The newest checkpoint that verifies (resuming). */
    readonly checkpoint: Checkpoint | undefined,
  ) {}

  static open(dirIn: string, o: OpenOptions): RunRecorder {
    const dir = resolve(dirIn);
    mkdirSync(dir, { recursive: true });
    // One writer per run directory, taken before anything in it is read or written.
    const lock = acquireLock(dir, { breakLock: o.breakLock, notice: o.notice });
    try {
      removeStaleTemps(dir);
      removeStaleTemps(join(dir, KEPT_DIR));
      const has = existsSync(join(dir, MANIFEST));
      if (!o.resume && has) throw new InputError('a run already exists there: continue it with --resume, or pick another --name/--out', dir);
      if (!o.resume || !has) return new RunRecorder(dir, lock, undefined, undefined);
      const previous = readManifest(dir);
      const ck = join(dir, CHECKPOINT);
      const checkpoint = existsSync(ck) || existsSync(previousOf(ck)) ? readCheckpointWithFallback(ck, o.notice) : undefined;
      return new RunRecorder(dir, lock, previous, checkpoint);
    } catch (e) {
      lock.release();
      throw e;
    }
  }

  /** A new run: no records, this manifest. */
  start(m: RunManifest): void {
    truncateMetrics(this.dir, 0);
    this.manifest = m;
    writeManifest(this.dir, m);
  }

  /** Continue after `epochsDone` completed epochs: later records dropped, the manifest running again. */
  resume(epochsDone: number, patch: Partial<RunManifest>): void {
    truncateMetrics(this.dir, epochsDone);
    this.manifest = { ...this.previous!, status: 'running', epochsDone, endedAt: undefined, error: undefined, ...patch };
    writeManifest(this.dir, this.manifest);
  }

  /** An epoch completed: its records, then its checkpoint (and a kept copy for forks), then the manifest. */
  epochDone(epochsDone: number, records: MetricRecord[], snap: { meta: Record<string, unknown>; tensors: TensorEntry[] }, keepAs?: number): void {
    appendMetrics(this.dir, records);
    faultPoint('epoch-commit');
    writeCheckpoint(join(this.dir, CHECKPOINT), snap.meta, snap.tensors);
    if (keepAs !== undefined) writeCheckpoint(keptCheckpoint(this.dir, keepAs), snap.meta, snap.tensors, false);
    this.manifest!.epochsDone = epochsDone;
    writeManifest(this.dir, this.manifest!);
    this.lock.renew();
  }

  /** Records of an epoch that did not complete (a diverged one): kept, no checkpoint. */
  partialRecords(records: MetricRecord[]): void {
    appendMetrics(this.dir, records);
  }

  finish(status: RunManifest['status'], divergedAt?: RunManifest['divergedAt']): void {
    const m = this.manifest!;
    m.status = status;
    m.divergedAt = divergedAt;
    if (status !== 'running') m.endedAt = new Date().toISOString();
    writeManifest(this.dir, m);
  }

  /** Best effort: the cause (a full disk, a vanished folder) may block this write too. */
  fail(err: unknown): void {
    if (!this.manifest) return;
    this.manifest.status = 'failed';
    this.manifest.error = (err as Error).message;
    this.manifest.endedAt = new Date().toISOString();
    try {
      writeManifest(this.dir, this.manifest);
    } catch {
      // the caller's error says what happened
    }
  }

  close(): void {
    this.lock.release();
  }
}
