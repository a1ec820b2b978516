/**
 * Forks' effects: each twin (manifest.fork) is paired with its parent run (same suite, by run name)
 * and every epoch metric is compared over the `window` epochs from the fork on: per seed the mean
 * over those epochs of parent minus twin, then the mean and t-interval across seeds. The change's
 * effect on a metric is minus that difference (twin - parent); parent minus twin is what the change
 * removed, e.g. for a twin without the decay at D, the center loss the decay added.
 */
import { meanInterval, meanOr } from './stats.js';
import type { ForkEffect, ForkMetricEffect, RunData } from './types.js';
import type { Split } from '../store/types.js';

export type { ForkEffect, ForkMetricEffect } from './types.js';

function windowMeans(r: RunData, at: number, window: number): Map<string, number> {
  const sums = new Map<string, { s: number; n: number }>();
  for (const rec of r.records) {
    if (rec.kind !== 'epoch' || rec.epoch < at || rec.epoch >= at + window) continue;
    for (const [k, v] of Object.entries(rec)) {
      if (typeof v !== 'number' || k === 'epoch' || k === 'seconds' || !Number.isFinite(v)) continue;
      const key = `${rec.split}\u0000${k}`;
      const e = sums.get(key) ?? { s: 0, n: 0 };
      e.s += v;
      e.n++;
      sums.set(key, e);
    }
  }
  return new Map([...sums].map(([k, e]) => [k, e.s / e.n]));
}

/** Pair every twin with its parent and measure the change's effect on every metric. */
export function forkEffects(runs: readonly RunData[], window = 3, confidence = 0.95): ForkEffect[] {
  const byName = new Map(runs.map((r) => [r.manifest.name, r]));
  const groups = new Map<string, { fork: string; parent: string; at: number; set: Record<string, unknown>; pairs: [RunData, RunData][] }>();
  for (const twin of runs) {
    const f = twin.manifest.fork;
    if (!f) continue;
    const parent = byName.get(f.parent);
    if (!parent) continue;
    const key = `${twin.manifest.variant}\u0000${f.at}`;
    const g = groups.get(key) ?? { fork: twin.manifest.variant || twin.manifest.name, parent: parent.manifest.variant || parent.manifest.name, at: f.at, set: f.set, pairs: [] };
    g.pairs.push([parent, twin]);
    groups.set(key, g);
  }
  const out: ForkEffect[] = [];
  for (const g of groups.values()) {
    const per = new Map<string, ForkMetricEffect['perSeed']>();
    for (const [p, t] of g.pairs) {
      const pm = windowMeans(p, g.at, window);
      const tm = windowMeans(t, g.at, window);
      for (const [k, pv] of pm) {
        const tv = tm.get(k);
        if (tv === undefined) continue;
        const list = per.get(k) ?? [];
        list.push({ seed: t.manifest.seed, parent: pv, twin: tv, diff: pv - tv });
        per.set(k, list);
      }
    }
    const metrics: ForkMetricEffect[] = [...per].map(([k, perSeed]) => {
      const [split, metric] = k.split('\u0000') as [Split, string];
      return {
        split,
        metric,
        perSeed,
        diff: meanInterval(perSeed.map((s) => s.diff), confidence),
        parentMean: meanOr(perSeed.map((s) => s.parent)),
        twinMean: meanOr(perSeed.map((s) => s.twin)),
      };
    });
    metrics.sort((a, b) => (a.split === b.split ? a.metric.localeCompare(b.metric) : a.split.localeCompare(b.split)));
    out.push({ fork: g.fork, parent: g.parent, at: g.at, set: g.set, window, metrics });
  }
  return out.sort((a, b) => a.fork.localeCompare(b.fork) || a.at - b.at);
}
