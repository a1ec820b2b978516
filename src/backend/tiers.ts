/**
 * Which path each conv took (for src/bench/conv-tiers.ts, which measures the tiers the shipped
 * shapes reach): off by default, then one null check per conv. Paths: the compiled kernels'
 * loops ('winograd', 'rows', 'tiny': ./native/conv.c's conv_path), the fallbacks when those do
 * not apply ('xnnpack': stock wasm Conv2D; 'stock': stock wasm Conv2DBackpropInput; 'composed':
 * dW from stock kernels), and the model-side paths
 * of ./conv.ts ('cropped-taps', '2x2-matmul').
 */
export type ConvOp = 'fwd' | 'dx' | 'dw';

let counts: Map<string, number> | null = null;

/** Start (true: from zero) or stop counting. */
export function traceConvTiers(on: boolean): void {
  counts = on ? new Map() : null;
}

/** Whether convs are being counted (callers skip working out a path when not). */
export function tracingConvTiers(): boolean {
  return counts !== null;
}

/** Count one conv: x [N, H, W, Ci], w [KH, KW, Ci, Co]. */
export function noteConvTier(op: ConvOp, tier: string, x: readonly number[], w: readonly number[], stride: number): void {
  if (!counts) return;
  const key = `${op}\t${tier}\t${x[1]}x${x[2]}x${x[3]}\t${w[0]}x${w[1]}x${w[2]}x${w[3]}\t${stride}`;
  counts.set(key, (counts.get(key) ?? 0) + 1);
}

export interface ConvTierCount {
  op: ConvOp;
  tier: string;
  /** Input map per image: H x W x Ci. */
  input: string;
  /** Filter KH x KW x Ci x Co. */
  filter: string;
  stride: number;
  calls: number;
}

/** What was counted since traceConvTiers(true). */
export function convTierCounts(): ConvTierCount[] {
  return [...(counts ?? new Map<string, number>())].map(([k, calls]) => {
    const [op, tier, input, filter, stride] = k.split('\t') as [ConvOp, string, string, string, string];
    return { op, tier, input, filter, stride: Number(stride), calls };
  });
}
