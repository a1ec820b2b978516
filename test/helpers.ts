import * as tf from '@tensorflow/tfjs';
import { expect } from 'vitest';
import { selectBackend } from '../src/backend/select.js';

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
