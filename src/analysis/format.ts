/**
 * Number formatting, one function per meaning, shared by the explanation (src/analysis), the
 * report (src/report) and the terminal tables (src/cli). Non-finite values print as '—' except
 * where a meaning says otherwise.
 */

const DASH = '—';

/** A ratio over the trend: 'x1.41' (two decimals). */
export function fmtRatio(v: number): string {
  return Number.isFinite(v) ? `x${v.toFixed(2)}` : DASH;
}

/** A ratio's bare number, for interval bounds and table cells: '1.41'. */
export function fmtRatioNum(v: number): string {
  return Number.isFinite(v) ? v.toFixed(2) : DASH;
}

/** An interval of ratios: '1.22-1.60' (two decimals each). */
export function fmtRatioCi(ci: readonly [number, number]): string {
  return `${fmtRatioNum(ci[0])}-${fmtRatioNum(ci[1])}`;
}

/** An interval of values that may be negative (differences): '-0.05..0.12' (3 significant digits each). */
export function fmtDiffCi(ci: readonly [number, number]): string {
  return `${fmtValue(ci[0])}..${fmtValue(ci[1])}`;
}

/** A share of a whole: '42%' (whole percent). */
export function fmtPct(v: number): string {
  return Number.isFinite(v) ? `${Math.round(v * 100)}%` : DASH;
}

/** A relative change: '+12%', '-57%'; from zero: 'from 0 up' / 'from 0 down'. */
export function fmtSignedPct(v: number): string {
  if (v === Infinity) return 'from 0 up';
  if (v === -Infinity) return 'from 0 down';
  if (!Number.isFinite(v)) return DASH;
  const p = Math.round(v * 100);
  return `${p >= 0 ? '+' : ''}${p}%`;
}

/** A measured value (a loss, a norm, a learning rate, a difference): 3 significant digits (0.910, 2.67, 0.0100), whole numbers from 1000 on. */
export function fmtValue(v: number): string {
  if (!Number.isFinite(v)) return DASH;
  if (v === 0) return '0';
  if (Math.abs(v) >= 1000) return v.toFixed(0);
  return v.toPrecision(3);
}

/** A signed measured value: '+0.66', '-0.03'. */
export function fmtSignedValue(v: number): string {
  if (!Number.isFinite(v)) return DASH;
  return (v > 0 ? '+' : '') + fmtValue(v);
}

/** A fraction of units or samples (dead units, memorised labels): '0.02' (two decimals). */
export function fmtFraction(v: number): string {
  return Number.isFinite(v) ? v.toFixed(2) : DASH;
}

/** An accuracy (a fraction): '0.714' (three decimals). */
export function fmtAcc(v: number): string {
  return Number.isFinite(v) ? v.toFixed(3) : DASH;
}

/** A change of accuracy in points: '+0.7 points', '-3.0 points'. */
export function fmtAccPoints(d: number): string {
  if (!Number.isFinite(d)) return DASH;
  const p = d * 100;
  return `${p >= 0 ? '+' : ''}${p.toFixed(1)} points`;
}

/**
 * A value in a detail table (per-seed measurements, manifests): `digits` significant digits,
 * exponent notation for very large and very small magnitudes.
 */
export function fmtDetail(v: number | undefined | null, digits = 4): string {
  if (v === undefined || v === null || !Number.isFinite(v)) return DASH;
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a >= 1e5 || a < 1e-3) return v.toExponential(digits - 1).replace(/\.?0+e/, 'e');
  return String(Number(v.toPrecision(digits)));
}

/** A signed detail value: '+0.1234'. */
export function fmtSignedDetail(v: number | undefined): string {
  if (v === undefined || !Number.isFinite(v)) return DASH;
  return (v > 0 ? '+' : '') + fmtDetail(v);
}

/** A number in a fixed-width terminal table: integers as they are, else 4 decimals (1 from 100 on), exponents at the extremes. */
export function fmtCell(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  if (Number.isInteger(v) && Math.abs(v) < 1e6) return String(v);
  const a = Math.abs(v);
  if (a !== 0 && (a < 1e-3 || a >= 1e5)) return v.toExponential(2);
  return a >= 100 ? v.toFixed(1) : v.toFixed(4);
}

/** A duration: '42s', '6m35s', '2h05m'; '?' when unknown. */
export function fmtSeconds(s: number): string {
  if (!Number.isFinite(s)) return '?';
  const sec = Math.round(s);
  if (sec < 60) return `${sec}s`;
  if (sec < 3600) return `${Math.floor(sec / 60)}m${String(sec % 60).padStart(2, '0')}s`;
  const min = Math.round(s / 60);
  return `${Math.floor(min / 60)}h${String(min % 60).padStart(2, '0')}m`;
}
