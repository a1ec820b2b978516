import * as tf from '@tensorflow/tfjs';
import { createRequire } from 'node:module';
import { dirname, sep } from 'node:path';
import { InputError } from '../util/errors.js';
import { wantedThreads } from './pool.js';
import { convThreads } from './compiled.js';

/**
 * Picks the best loadable tfjs backend at run time: tfjs-node-gpu, then tfjs-node (both optional
 * dependencies whose install downloads libtensorflow and so often fails), then wasm, then cpu.
 * A native package installed with its scripts skipped resolves but throws on import: each is
 * tried with a dynamic import() in try/catch. On wasm, the training kernels stock wasm lacks are
 * registered before use.
 */

export const BACKEND_CHOICES = ['auto', 'node-gpu', 'node', 'wasm', 'cpu'] as const;
export type BackendChoice = (typeof BACKEND_CHOICES)[number];

export interface BackendInfo {
  /** The tfjs backend name in use ('tensorflow', 'wasm', 'cpu'). */
  name: string;
  /** Which package provided it. */
  provider: string;
  /** Backends tried before it and why they were skipped. */
  skipped: { choice: string; reason: string }[];
  /** Kernels spikeprobe registered for this backend. */
  shims: string[];
  /**
   * wasm only: the build of the compiled conv kernels in use ('relaxed-simd-fma' fuses multiply
   * and add, 'simd128' does not; the two round apart), or 'xnnpack' where neither loads.
   */
  convBuild?: string;
  /**
   * wasm only: 'shared' where the backend's heap is a shared memory the conv threads work on in
   * place (./shared-heap.ts; SPIKEPROBE_SHARED_HEAP=0 turns it off), 'own' otherwise.
   */
  heap?: 'shared' | 'own';
}

let current: BackendInfo | undefined;

/** What a run's manifest records of the backend: its name and, on wasm, the compiled build and its threads. */
export function backendRecord(info: BackendInfo): { backend: string; kernels?: string; threads?: number } {
  return { backend: info.name, ...(info.convBuild ? { kernels: info.convBuild, threads: convThreads() } : {}) };
}

async function tryNative(pkg: string): Promise<void> {
  // A variable specifier keeps bundlers and tsc from resolving the optional package statically.
  const spec: string = pkg;
  await import(spec);
  if (!tf.findBackend('tensorflow')) throw new Error(`${pkg} loaded but registered no 'tensorflow' backend`);
  const ok = await tf.setBackend('tensorflow');
  if (!ok) throw new Error(`${pkg}: backend failed to initialise`);
}

async function tryWasm(): Promise<string[]> {
  await import('@tensorflow/tfjs-backend-wasm');
  // With conv threads, a shared heap lets the pool's workers read and write tensors in place.
  let shared = false;
  if (wantedThreads() >= 2 && process.env.SPIKEPROBE_SHARED_HEAP !== '0' && !tf.engine().registry.wasm) {
    const { installSharedHeap } = await import('./shared-heap.js');
    shared = await installSharedHeap();
  }
  let ok = await tf.setBackend('wasm');
  if (!ok && shared) {
    // The patched binary did not load here: the stock one, from the package's own folder.
    const { setWasmPaths } = await import('@tensorflow/tfjs-backend-wasm');
    setWasmPaths(dirname(createRequire(import.meta.url).resolve('@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-simd.wasm')) + sep, false);
    ok = await tf.setBackend('wasm');
  }
  if (!ok) throw new Error('wasm backend failed to initialise');
  await tf.ready();
  const { registerWasmTrainingKernels } = await import('./register.js');
  return registerWasmTrainingKernels();
}

export function parseBackendChoice(v: string | undefined, field = '--backend'): BackendChoice {
  const s = (v ?? 'auto').trim().toLowerCase();
  const alias: Record<string, BackendChoice> = { tensorflow: 'node', 'tfjs-node': 'node', 'tfjs-node-gpu': 'node-gpu', gpu: 'node-gpu' };
  const c = (alias[s] ?? s) as BackendChoice;
  if (!BACKEND_CHOICES.includes(c)) throw new InputError(`unknown backend '${v}' (choose ${BACKEND_CHOICES.join(', ')})`, undefined, field);
  return c;
}

/** Select and initialise a backend. `choice` defaults to $SPIKEPROBE_BACKEND, then 'auto'. */
/**
 * The @tensorflow version the backend is built against: shared-heap.ts patches tfjs-backend-wasm's
 * binary and the kernels use its module's internals (_malloc, the memory), so package.json pins it.
 */
export const TFJS_VERSION = '4.22.0';
let versionChecked = false;

function checkTfjsVersion(): void {
  if (versionChecked) return;
  versionChecked = true;
  const found = tf.version_core;
  if (found !== TFJS_VERSION) {
    process.stderr.write(`spikeprobe: warning: @tensorflow/tfjs-core ${found} is installed, spikeprobe is built against ${TFJS_VERSION} (its wasm kernels patch that binary and use its internals): run npm ci, or install @tensorflow/*@${TFJS_VERSION}\n`);
  }
}

export async function selectBackend(choice?: string): Promise<BackendInfo> {
  checkTfjsVersion();
  const fromEnv = choice === undefined && process.env.SPIKEPROBE_BACKEND !== undefined;
  const c = parseBackendChoice(choice ?? process.env.SPIKEPROBE_BACKEND, fromEnv ? 'SPIKEPROBE_BACKEND' : '--backend');
  wantedThreads(); // a bad SPIKEPROBE_THREADS is an input error now, not a failed kernel later
  if (current && (c === 'auto' || choiceMatches(c, current))) return current;
  const order: BackendChoice[] = c === 'auto' ? ['node-gpu', 'node', 'wasm', 'cpu'] : [c];
  const skipped: BackendInfo['skipped'] = [];
  for (const o of order) {
    try {
      let shims: string[] = [];
      let provider: string;
      let convBuild: string | undefined;
      let heap: BackendInfo['heap'];
      if (o === 'node-gpu') {
        await tryNative('@tensorflow/tfjs-node-gpu');
        provider = '@tensorflow/tfjs-node-gpu';
      } else if (o === 'node') {
        await tryNative('@tensorflow/tfjs-node');
        provider = '@tensorflow/tfjs-node';
      } else if (o === 'wasm') {
        shims = await tryWasm();
        provider = '@tensorflow/tfjs-backend-wasm';
        const { convFlavor } = await import('./compiled.js');
        convBuild = convFlavor() ?? 'xnnpack';
        const { sharedHeap } = await import('./shared-heap.js');
        heap = sharedHeap() ? 'shared' : 'own';
      } else {
        const ok = await tf.setBackend('cpu');
        if (!ok) throw new Error('cpu backend failed to initialise');
        const { registerCpuKernels } = await import('./register.js');
        shims = registerCpuKernels();
        provider = '@tensorflow/tfjs-backend-cpu';
      }
      await tf.ready();
      current = { name: tf.getBackend(), provider, skipped, shims, ...(convBuild ? { convBuild } : {}), ...(heap ? { heap } : {}) };
      return current;
    } catch (e) {
      const reason = (e instanceof Error ? e.message : String(e)).split('\n')[0]!.slice(0, 200);
      if (c !== 'auto') throw new InputError(`backend '${o}' is not available here: ${reason}`, undefined, fromEnv ? 'SPIKEPROBE_BACKEND' : '--backend');
      skipped.push({ choice: o, reason });
    }
  }
  throw new Error('no tfjs backend could be initialised');
}

function choiceMatches(c: BackendChoice, info: BackendInfo): boolean {
  if (c === 'wasm' || c === 'cpu') return info.name === c;
  return info.provider === (c === 'node' ? '@tensorflow/tfjs-node' : '@tensorflow/tfjs-node-gpu');
}

export function currentBackend(): BackendInfo | undefined {
  return current;
}
