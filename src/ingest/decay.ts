/**
 * Decay epochs from a learning-rate series: the epochs where the lr drops. The series used is the
 * first that has at least two points of: train epoch records, train step records (by step), epoch
 * records of any other split. A point is a decay when its lr is below (1 - minDrop) times the
 * previous point's (minDrop default 0.01, so float noise in a printed lr is not a decay); its
 * epoch is the decay epoch. Increases (warm-up, restarts) are not decays.
 *
 * Note: the store's convention is that an epoch record's lr is the lr used during that epoch.
 * Logs that write the lr after the scheduler stepped at the end of an epoch show the drop one
 * epoch early; give the decay epochs explicitly for those.
 */
import type { MetricRecord } from '../store/types.js';

export interface DetectDecayOptions {
  key?: string;
  minDrop?: number;
}

export function detectDecayEpochs(records: readonly MetricRecord[], opts: DetectDecayOptions = {}): number[] {
  const key = opts.key ?? 'lr';
  const minDrop = opts.minDrop ?? 0.01;
  const has = (r: MetricRecord) => typeof r[key] === 'number' && Number.isFinite(r[key] as number);
  const candidates: MetricRecord[][] = [
    records.filter((r) => r.kind === 'epoch' && r.split === 'train' && has(r)).sort((a, b) => a.epoch - b.epoch),
    records.filter((r) => r.kind === 'step' && r.split === 'train' && has(r)).sort((a, b) => (a.step ?? 0) - (b.step ?? 0)),
    ...(['valid', 'test'] as const).map((s) => records.filter((r) => r.kind === 'epoch' && r.split === s && has(r)).sort((a, b) => a.epoch - b.epoch)),
  ];
  const series = candidates.find((c) => c.length >= 2);
  if (!series) return [];
  const out = new Set<number>();
  for (let i = 1; i < series.length; i++) {
    const prev = series[i - 1]![key] as number;
    const cur = series[i]![key] as number;
    if (cur < prev * (1 - minDrop)) out.add(series[i]!.epoch);
  }
  return [...out].sort((a, b) => a - b);
}
