/**
 * Rows for one chart query, written once: Node (the static render, src/report/data.ts materialize)
 * calls this function, and the interactive page runs the same function, inlined as text
 * (Function.prototype.toString of the compiled code, src/report/index.ts). So it is self-contained:
 * no imports at run time, no reference to anything outside its body.
 *
 * Epoch aggregates sit at the middle of their epoch (x = e + 0.5), so a value recorded for the first
 * epoch after a decay at d lies right of the rule drawn at x = d. Step rows get a hover target every
 * stride-th row, about `hoverPoints` per series.
 */
import type { Query, Row, RowSource } from './shapes.js';

export function materializeRows(src: RowSource, q: Query, hoverPoints: number): Row[] {
  const out: Row[] = [];
  const keys = new Set(q.keys);
  const splits = q.splits ? new Set(q.splits) : undefined;
  for (const ser of src.series) {
    if (ser.kind !== q.kind || !keys.has(ser.key)) continue;
    if (ser.kind === 'epoch' && splits && !splits.has(ser.split)) continue;
    const split = ser.kind === 'epoch' ? src.splits[ser.split]! : 'train';
    const label = q.label === 'key' ? src.keyLabels[ser.key]! : ser.kind === 'step' ? 'train (steps)' : split;
    let stride = 1;
    if (ser.kind === 'step') {
      let c = 0;
      for (const x of src.xs[ser.xIndex]!) if ((q.from === undefined || x >= q.from) && (q.to === undefined || x < q.to)) c++;
      stride = Math.max(1, Math.ceil(c / hoverPoints));
    }
    let pushed = 0;
    for (let i = 0; i < ser.mean.length; i++) {
      const mean = ser.mean[i];
      if (mean === null || mean === undefined) continue;
      let x: number;
      let epoch: number;
      if (ser.kind === 'epoch') {
        epoch = ser.firstEpoch + i;
        if ((q.from !== undefined && epoch < q.from) || (q.to !== undefined && epoch > q.to)) continue;
        x = epoch + 0.5;
      } else {
        x = src.xs[ser.xIndex]![i]!;
        if ((q.from !== undefined && x < q.from) || (q.to !== undefined && x >= q.to)) continue;
        epoch = Math.floor(x);
      }
      const variant = src.variants[ser.variant]!;
      const tt: Row['tt'] = { variant };
      tt[q.label === 'split' ? 'split' : 'series'] = label;
      if (ser.kind === 'epoch') tt.epoch = epoch;
      else tt['epoch position'] = x.toFixed(3);
      tt.mean = mean;
      if (ser.min) {
        tt.min = ser.min[i] ?? null;
        tt.max = ser.max![i] ?? null;
      }
      const n = typeof ser.seeds === 'number' ? ser.seeds : ser.seeds[i]!;
      tt.seeds = n;
      out.push({
        variant,
        series: label,
        key: src.keys[ser.key]!,
        split,
        epoch,
        x,
        mean,
        lo: ser.min ? ser.min[i]! : mean,
        hi: ser.max ? ser.max[i]! : mean,
        n,
        h: pushed++ % stride === 0,
        tt,
      });
    }
  }
  return out;
}
