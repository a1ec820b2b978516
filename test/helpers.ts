import * as tf from '@tensorflow/tfjs';
import { expect } from 'vitest';
import { selectBackend } from '../src/backend/select.js';
import { InputError } from '../src/util/errors.js';

/** Backends every numerical test runs on. Native ones join when installed. */
export const TEST_BACKENDS = ['cpu', 'wasm'] as const;

export async function useBackend(name: string): Promise<void> {
  await selectBackend(name);
  expect(tf.getBackend()).toBe(name);
}

export function flat(a: unknown): number[] {
  return (Array.isArray(a) ? a.flat(Infinity) : [a]) as number[];
}

/** Element-wise |a-b| <= atol + rtol*|b|, with a readable failure. */
export function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, rtol = 1e-5, atol = 1e-6, what = ''): void {
  expect(actual.length, `${what} length`).toBe(expected.length);
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i]!;
    const e = expected[i]!;
    if (!(Math.abs(a - e) <= atol + rtol * Math.abs(e))) {
      throw new Error(`${what}[${i}]: got ${a}, expected ${e} (|diff| ${Math.abs(a - e)})`);
    }
  }
}

/** Deterministic pseudo-random values in [-1, 1) (xorshift32). */
export function randomValues(n: number, seed: number): Float32Array {
  let s = seed >>> 0 || 1;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    out[i] = s / 2 ** 31 - 1;
  }
  return out;
}

/** max |a - b| / max |b| (b is the reference; max |a - b| where b is all zeros). */
export function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let d = 0;
  let r = 0;
  for (let i = 0; i < b.length; i++) {
    d = Math.max(d, Math.abs(a[i]! - b[i]!));
    r = Math.max(r, Math.abs(b[i]!));
  }
  return r === 0 ? d : d / r;
}

/** The InputError that f throws (the test fails where it throws nothing or something else). */
export function inputError(f: () => unknown): InputError {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(InputError);
    return e as InputError;
  }
  throw new Error('expected an InputError');
}
