/**
 * `spikeprobe export RUN_OR_SUITE_DIR --tensorboard DIR`: a spikeprobe run's records as TensorBoard
 * event files, to open in the TensorBoard one already uses.
 *
 * Layout: a suite's runs go to DIR/<variant>/s<seed>/ (`spikeprobe analyze DIR` reads them back as
 * variants and seeds), a single run to DIR/<run name>/. In each run folder one file holds the
 * epoch records (step = epoch; tags `<split>/<key>`, e.g. `train/center`, `valid/center`,
 * `train/lr`) and, where the run has step records, steps/ holds one more with the step records
 * (step = global step, tags `train/<key>`) and an `epoch` scalar at the first step of every epoch.
 * Scalars are written as simple_value (float32), as PyTorch's SummaryWriter writes them; the
 * file_version event names spikeprobe as its writer, so analyze maps the tags back exactly.
 * Files are written whole (atomic rename); an existing export folder is refused.
 */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { RunData } from '../analysis/types.js';
import { fileVersionEvent, scalarEvent } from '../ingest/events.js';
import { isRunDir, listRunDirs, readManifest, readMetrics, RUN_NAME } from '../store/run-store.js';
import type { MetricRecord } from '../store/types.js';
import { writeFileAtomic } from '../util/atomic.js';
import { InputError } from '../util/errors.js';

export interface ExportCliOptions {
  tensorboard?: string;
}

const RESERVED = new Set(['kind', 'epoch', 'split', 'step', 'iter']);

function numericEntries(r: MetricRecord, prefix: string): [string, number][] {
  const out: [string, number][] = [];
  for (const [k, v] of Object.entries(r)) {
    if (RESERVED.has(k) || typeof v !== 'number' || !Number.isFinite(v)) continue;
    out.push([`${prefix}/${k}`, v]);
  }
  return out;
}

function eventFile(wall0: number, events: Uint8Array[]): Uint8Array {
  const parts = [fileVersionEvent(wall0), ...events];
  return Buffer.concat(parts);
}

/** The event files of one run: [relative path, bytes]. */
export function runEventFiles(run: RunData): [string, Uint8Array][] {
  const wall0 = Math.floor((Date.parse(run.manifest.startedAt) || 0) / 1000);
  const name = `events.out.tfevents.${wall0}.spikeprobe`;
  const epochs = run.records.filter((r) => r.kind === 'epoch');
  const byEpoch = new Map<number, [string, number][]>();
  for (const r of epochs) {
    let list = byEpoch.get(r.epoch);
    if (!list) byEpoch.set(r.epoch, (list = []));
    list.push(...numericEntries(r, r.split));
  }
  const files: [string, Uint8Array][] = [
    [name, eventFile(wall0, [...byEpoch].sort((a, b) => a[0] - b[0]).map(([e, vals]) => scalarEvent(wall0 + e, e, vals)))],
  ];
  const steps = run.records.filter((r) => r.kind === 'step' && typeof r.step === 'number' && typeof r.iter === 'number').sort((a, b) => a.step! - b.step!);
  if (steps.length > 0) {
    const spe = 1 + steps.reduce((m, r) => Math.max(m, r.iter!), 0);
    const starts = new Map<number, number>();
    for (const r of steps) if (!starts.has(r.epoch)) starts.set(r.epoch, r.step! - r.iter!);
    const maxEpoch = steps[steps.length - 1]!.epoch;
    // The epoch counter at each epoch's first step, then every step record, in step order.
    const items: { step: number; order: number; vals: [string, number][] }[] = [];
    for (let e = 0; e <= maxEpoch; e++) items.push({ step: starts.get(e) ?? e * spe, order: 0, vals: [['epoch', e]] });
    for (const r of steps) items.push({ step: r.step!, order: 1, vals: numericEntries(r, 'train') });
    items.sort((x, y) => x.step - y.step || x.order - y.order);
    const events = items.map((it) => scalarEvent(wall0, it.step, it.vals));
    files.push([join('steps', name), eventFile(wall0, events)]);
  }
  return files;
}

function loadRun(dir: string): RunData {
  return { dir, manifest: readManifest(dir), records: readMetrics(dir) };
}

export function exportCommand(target: string, o: ExportCliOptions): void {
  if (o.tensorboard === undefined) throw new InputError('say where to write the event files: --tensorboard DIR', undefined, '--tensorboard');
  if (!existsSync(target)) throw new InputError('no such run or runs directory', target);
  const single = isRunDir(target);
  const runs = (single ? [target] : listRunDirs(target)).map(loadRun);
  if (runs.length === 0) throw new InputError('not a run directory and no run directories inside (no */manifest.json)', target);
  const out = resolve(o.tensorboard);
  const plan: [string, Uint8Array][] = [];
  for (const run of runs) {
    const v = run.manifest.variant;
    const folder = single || v === '' ? [run.manifest.name] : [v, `s${run.manifest.seed}`];
    for (const part of folder) {
      if (!RUN_NAME.test(part)) throw new InputError(`'${part}' cannot be a folder name`, join(run.dir, 'manifest.json'), single ? 'name' : 'variant');
    }
    for (const [rel, bytes] of runEventFiles(run)) plan.push([join(out, ...folder, rel), bytes]);
  }
  const seen = new Set<string>();
  for (const [p] of plan) {
    if (seen.has(p)) throw new InputError(`two runs would write ${p} (same variant and seed)`, target);
    seen.add(p);
    if (existsSync(p)) throw new InputError('already exported here; remove it or choose another --tensorboard folder', p);
  }
  for (const [p, bytes] of plan) writeFileAtomic(p, bytes);
  process.stdout.write(`wrote ${plan.length} event file(s) for ${runs.length} run(s) into ${out}\n  open with: tensorboard --logdir ${out}\n`);
}
