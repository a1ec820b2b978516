/** One formatter per meaning (src/analysis/format.ts), shared by the explanation, the report and the terminal. */
import { describe, expect, it } from 'vitest';
import {
  fmtAcc,
  fmtAccPoints,
  fmtCell,
  fmtDetail,
  fmtDiffCi,
  fmtFraction,
  fmtPct,
  fmtRatio,
  fmtRatioCi,
  fmtRatioNum,
  fmtSeconds,
  fmtSignedDetail,
  fmtSignedPct,
  fmtSignedValue,
  fmtValue,
} from '../src/analysis/format.js';

describe('number formatters', () => {
  it('ratios: x and two decimals; intervals as lo-hi; non-finite as a dash', () => {
    expect(fmtRatio(1.4149)).toBe('x1.41');
    expect(fmtRatio(0.925)).toBe('x0.93');
    expect(fmtRatioNum(1.6)).toBe('1.60');
    expect(fmtRatioCi([1.2249, 1.6])).toBe('1.22-1.60');
    expect(fmtRatio(NaN)).toBe('—');
    expect(fmtRatioCi([NaN, Infinity])).toBe('—-—');
  });

  it('shares and relative changes: whole percent, signed where a change', () => {
    expect(fmtPct(0.874)).toBe('87%');
    expect(fmtPct(-0.05)).toBe('-5%');
    expect(fmtSignedPct(0.124)).toBe('+12%');
    expect(fmtSignedPct(-0.5712)).toBe('-57%');
    expect(fmtSignedPct(0)).toBe('+0%');
    expect(fmtSignedPct(Infinity)).toBe('from 0 up');
    expect(fmtSignedPct(-Infinity)).toBe('from 0 down');
    expect(fmtSignedPct(NaN)).toBe('—');
  });

  it('values (losses, differences): 3 significant digits, whole from 1000; signed and interval forms', () => {
    expect(fmtValue(2.6712)).toBe('2.67');
    expect(fmtValue(0.15812)).toBe('0.158');
    expect(fmtValue(0.000123456)).toBe('0.000123');
    expect(fmtValue(0.91)).toBe('0.910');
    expect(fmtValue(0.01)).toBe('0.0100');
    expect(fmtValue(1234.5)).toBe('1235');
    expect(fmtValue(0)).toBe('0');
    expect(fmtSignedValue(0.663)).toBe('+0.663');
    expect(fmtSignedValue(-0.03)).toBe('-0.0300');
    expect(fmtDiffCi([-0.0512, 1.1712])).toBe('-0.0512..1.17');
    expect(fmtValue(NaN)).toBe('—');
  });

  it('fractions of units or samples: two decimals', () => {
    expect(fmtFraction(0.0234)).toBe('0.02');
    expect(fmtFraction(0.745)).toBe('0.74');
    expect(fmtFraction(NaN)).toBe('—');
  });

  it('accuracies: three decimals; differences in points', () => {
    expect(fmtAcc(0.71449)).toBe('0.714');
    expect(fmtAccPoints(0.7212 - 0.7145)).toBe('+0.7 points');
    expect(fmtAccPoints(-0.0301)).toBe('-3.0 points');
  });

  it('detail tables: significant digits, exponents at the extremes', () => {
    expect(fmtDetail(1.234567)).toBe('1.235');
    expect(fmtDetail(123456)).toBe('1.235e+5');
    expect(fmtDetail(0.0000123)).toBe('1.23e-5');
    expect(fmtDetail(undefined)).toBe('—');
    expect(fmtDetail(0.1234567, 6)).toBe('0.123457');
    expect(fmtSignedDetail(0.5)).toBe('+0.5');
    expect(fmtSignedDetail(-2)).toBe('-2');
  });

  it('terminal cells and durations', () => {
    expect(fmtCell(3)).toBe('3');
    expect(fmtCell(1.23456)).toBe('1.2346');
    expect(fmtCell(123.456)).toBe('123.5');
    expect(fmtCell(0.0001)).toBe('1.00e-4');
    expect(fmtCell(NaN)).toBe('NaN');
    expect(fmtSeconds(42.4)).toBe('42s');
    expect(fmtSeconds(59.6)).toBe('1m00s');
    expect(fmtSeconds(395)).toBe('6m35s');
    expect(fmtSeconds(119.7)).toBe('2m00s');
    expect(fmtSeconds(7500)).toBe('2h05m');
    expect(fmtSeconds(NaN)).toBe('?');
  });
});
