/**
 * The trend a loss curve was following before a learning-rate decay, fitted over the pre-decay
 * window and extrapolated past it. A falling loss is not summarised by its last value: the trend
 * is a least-squares line through the window, either on the values themselves ('linear') or on
 * their logarithms ('log', i.e. an exponential decay y = exp(b + m·x), which never extrapolates
 * below zero). 'auto' (the default) uses 'log' when every value is > 0 and 'linear' otherwise.
 */
import { linearRegression } from 'simple-statistics';

export type TrendMode = 'linear' | 'log';
export type TrendModeOption = TrendMode | 'auto';

export interface Trend {
  mode: TrendMode;
  /** Line in (x, y) for 'linear', in (x, ln y) for 'log'. */
  slope: number;
  intercept: number;
  /** Points the line was fitted on. */
  n: number;
  xMin: number;
  xMax: number;
  /** Root-mean-square residual of the fit, in the fitted space (y or ln y). 0 when n <= 2. */
  residualRms: number;
}

/**
 * Fit the trend through (xs[i], ys[i]). One point gives a flat line through it; zero points or
 * non-finite values throw (callers filter first). Identical xs give a flat line at the mean.
 */
export function fitTrend(xs: readonly number[], ys: readonly number[], mode: TrendModeOption = 'auto'): Trend {
  if (xs.length !== ys.length) throw new RangeError(`fitTrend: ${xs.length} x positions but ${ys.length} values`);
  if (xs.length === 0) throw new RangeError('fitTrend: no points to fit');
  for (let i = 0; i < xs.length; i++) {
    if (!Number.isFinite(xs[i]!) || !Number.isFinite(ys[i]!)) {
      throw new RangeError(`fitTrend: non-finite point (${xs[i]}, ${ys[i]}) at index ${i}`);
    }
  }
  const resolved: TrendMode = mode === 'auto' ? (ys.every((y) => y > 0) ? 'log' : 'linear') : mode;
  if (resolved === 'log' && !ys.every((y) => y > 0)) {
    throw new RangeError('fitTrend: a log trend needs every value > 0');
  }
  const fy = resolved === 'log' ? ys.map((y) => Math.log(y)) : ys.slice();
  const xMin = Math.min(...xs);
  const xMax = Math.max(...xs);
  let slope = 0;
  let intercept: number;
  if (xs.length === 1 || xMin === xMax) {
    intercept = fy.reduce((a, b) => a + b, 0) / fy.length;
  } else {
    const fit = linearRegression(xs.map((x, i) => [x, fy[i]!]));
    slope = fit.m;
    intercept = fit.b;
  }
  let ss = 0;
  for (let i = 0; i < xs.length; i++) {
    const r = fy[i]! - (intercept + slope * xs[i]!);
    ss += r * r;
  }
  const residualRms = xs.length > 2 ? Math.sqrt(ss / (xs.length - 2)) : 0;
  return { mode: resolved, slope, intercept, n: xs.length, xMin, xMax, residualRms };
}

/** Value of the trend at x (in the original units of y). */
export function predictTrend(trend: Trend, x: number): number {
  const v = trend.intercept + trend.slope * x;
  return trend.mode === 'log' ? Math.exp(v) : v;
}

/** Fit over (xs, ys) and evaluate the trend at `at`. */
export function extrapolate(xs: readonly number[], ys: readonly number[], at: number, mode: TrendModeOption = 'auto'): number {
  return predictTrend(fitTrend(xs, ys, mode), at);
}

/**
 * Fit the trend over the points with x in [decayAt - preWindow, decayAt) — the `preWindow`
 * positions before the decay — or undefined when fewer than `minPoints` (default 2) fall there.
 */
export function fitPreWindow(
  xs: readonly number[],
  ys: readonly number[],
  decayAt: number,
  preWindow: number,
  mode: TrendModeOption = 'auto',
  minPoints = 2,
): Trend | undefined {
  const px: number[] = [];
  const py: number[] = [];
  for (let i = 0; i < xs.length; i++) {
    const x = xs[i]!;
    const y = ys[i]!;
    if (x >= decayAt - preWindow && x < decayAt && Number.isFinite(x) && Number.isFinite(y)) {
      px.push(x);
      py.push(y);
    }
  }
  if (px.length < minPoints) return undefined;
  return fitTrend(px, py, mode);
}
