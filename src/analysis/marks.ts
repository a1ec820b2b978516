/**
 * What the decay panels mark on the center loss: per variant and decay (train split, epoch means),
 * the fitted pre-decay trend evaluated over the trend and peak windows, and the measured peak; each
 * the mean over the seeds the verdict used. Epoch e's value sits at x = e + 0.5, as the report draws
 * epoch means.
 */
import { measureRunDecay } from './spike.js';
import { predictTrend } from './trend.js';
import type { RunData, SpikeThresholds } from './types.js';

export interface DecayMarks {
  variant: string;
  decay: number;
  /** The trend line: x = epoch + 0.5, y = mean over seeds of each seed's trend. */
  trend: { x: number; y: number }[];
  /** The peak: mean over seeds of each seed's peak position and value, and of the trend there. */
  peak: { x: number; observed: number; expected: number; ratio: number; n: number };
}

const variantOf = (r: RunData): string => (r.manifest.variant !== '' ? r.manifest.variant : r.manifest.name);

export function decayMarks(runs: readonly RunData[], decays: readonly number[], th: SpikeThresholds, metric = 'center'): DecayMarks[] {
  const variants = [...new Set(runs.map(variantOf))];
  const out: DecayMarks[] = [];
  for (const v of variants) {
    for (const d of decays) {
      const lines: number[][] = [];
      const peaks: { at: number; observed: number; expected: number }[] = [];
      const xs = Array.from({ length: th.preWindow + th.postWindow }, (_, i) => d - th.preWindow + i);
      for (const run of runs) {
        if (variantOf(run) !== v || !run.manifest.decayEpochs.includes(d)) continue;
        const m = measureRunDecay(run, 'train', 'epoch', d, th, { metric, attribution: false });
        if (typeof m === 'string') continue;
        lines.push(xs.map((x) => predictTrend(m.measure.trend, x)));
        peaks.push({ at: m.spike.at, observed: m.spike.observed, expected: m.spike.expected });
      }
      if (peaks.length === 0) continue;
      const mean = (a: number[]) => a.reduce((s, x) => s + x, 0) / a.length;
      const observed = mean(peaks.map((p) => p.observed));
      const expected = mean(peaks.map((p) => p.expected));
      out.push({
        variant: v,
        decay: d,
        trend: xs.map((x, i) => ({ x: x + 0.5, y: mean(lines.map((l) => l[i]!)) })).filter((p) => Number.isFinite(p.y)),
        peak: { x: mean(peaks.map((p) => p.at)) + 0.5, observed, expected, ratio: mean(peaks.map((p) => p.observed / p.expected)), n: peaks.length },
      });
    }
  }
  return out;
}
