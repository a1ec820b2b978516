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
import type { Query, Row, RowSource } from '../data.js';

export function materializeRows(src: RowSource, q: Query, hoverPoints: number): Row[] {
  const out: Row[] = [];
  const keys = new Set(q.k);
  const splits = q.s ? new Set(q.s) : undefined;
  for (const ser of src.series) {
    if (ser.t !== q.t || !keys.has(ser.k)) continue;
    if (ser.t === 'e' && splits && !splits.has(ser.s)) continue;
    const split = ser.t === 'e' ? src.splits[ser.s]! : 'train';
    const label = q.lab === 'key' ? src.klab[ser.k]! : ser.t === 's' ? 'train (steps)' : split;
    let stride = 1;
    if (ser.t === 's') {
      let c = 0;
      for (const x of src.xs[ser.xi]!) if ((q.a === undefined || x >= q.a) && (q.b === undefined || x < q.b)) c++;
      stride = Math.max(1, Math.ceil(c / hoverPoints));
    }
    let pushed = 0;
    for (let i = 0; i < ser.m.length; i++) {
      const mean = ser.m[i];
      if (mean === null || mean === undefined) continue;
      let x: number;
      let epoch: number;
      if (ser.t === 'e') {
        epoch = ser.e0 + i;
        if ((q.a !== undefined && epoch < q.a) || (q.b !== undefined && epoch > q.b)) continue;
        x = epoch + 0.5;
      } else {
        x = src.xs[ser.xi]![i]!;
        if ((q.a !== undefined && x < q.a) || (q.b !== undefined && x >= q.b)) continue;
        epoch = Math.floor(x);
      }
      const variant = src.variants[ser.v]!;
      const tt: Row['tt'] = { variant };
      tt[q.lab === 'split' ? 'split' : 'series'] = label;
      if (ser.t === 'e') tt.epoch = epoch;
      else tt['epoch position'] = x.toFixed(3);
      tt.mean = mean;
      if (ser.lo) {
        tt.min = ser.lo[i] ?? null;
        tt.max = ser.hi![i] ?? null;
      }
      const n = typeof ser.n === 'number' ? ser.n : ser.n[i]!;
      tt.seeds = n;
      out.push({
        variant,
        series: label,
        key: src.keys[ser.k]!,
        split,
        epoch,
        x,
        mean,
        lo: ser.lo ? ser.lo[i]! : mean,
        hi: ser.hi ? ser.hi[i]! : mean,
        n,
        h: pushed++ % stride === 0,
        tt,
      });
    }
  }
  return out;
}
