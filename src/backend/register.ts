/**
 * Registering spikeprobe's kernels with tfjs: on 'wasm' the stock kernels it replaces
 * (./replaced-kernels.ts) and the kernels it adds (./added-kernels.ts); on 'cpu' the added ones.
 * Idempotent; each returns the names registered.
 */
import { registerAddedKernels } from './added-kernels.js';
import { registerReplacedKernels } from './replaced-kernels.js';

/** Call after importing @tensorflow/tfjs-backend-wasm, before or after tf.setBackend('wasm'). */
export function registerWasmTrainingKernels(): string[] {
  return [...registerReplacedKernels(), ...registerAddedKernels('wasm')];
}

export function registerCpuKernels(): string[] {
  return registerAddedKernels('cpu');
}
