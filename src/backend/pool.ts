/**
 * Threads for the compiled kernels (./compiled-kernels.ts, ./compiled-bn.ts) under Node.
 *
 * tfjs-backend-wasm runs its single-threaded build under Node (its threaded build needs worker
 * script paths Node does not give it). The pool keeps `threads - 1` worker_threads, each running
 * the shared-memory build of the same conv module. Where the backend's heap is shared
 * (./shared-heap.ts, the default with 2+ threads) the workers run on it and compute their part of
 * a conv in place; otherwise (an unshared heap) they run on a SharedArrayBuffer heap of the pool's
 * own, on copies of the inputs they need, and the results are copied back (13% slower per small
 * ResNet step on 2 threads, measured). A conv is split in `threads` parts, part 0 on the calling
 * thread. The forward conv and the input gradient are split by images; the filter gradient
 * by 8-column blocks of dw, so every output element is computed by the same code in the same
 * order as with one thread: results are bit-identical whatever the thread count (tested).
 * On a shared heap the pool also runs the BatchNorm passes (./compiled-bn.ts, split by rows), the
 * SGD step of large parameters and MaxPoolGrad (./compiled-kernels.ts, by element blocks and images).
 *
 * Workers are unref'd (they never keep the process alive). After a job a worker spins for up to
 * SPIN_MS for the next one, then sleeps on Atomics: an idle pool costs nothing. SPIKEPROBE_THREADS=n sets the thread count (default: the cores Node reports, at
 * most 4); 1 turns the pool off.
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { InputError } from '../util/errors.js';
import { convWorkerMain } from './pool-worker.js';

/** The worker's whole program: ./pool-worker.ts, run as eval'd CommonJS (no file path to resolve from dist/ or src/). */
const WORKER_SOURCE = `(${convWorkerMain.toString()})();`;

/** The module's exports a worker can run, by index (a job names its op by that index). */
const OPS = ['conv_fwd', 'conv_bwd_input', 'conv_bwd_filter', 'bn_sum', 'bn_sumsq', 'bn_apply', 'bn_gsums', 'bn_gdx', 'sgd_step_p', 'maxpool_grad'] as const;
export type PoolOp = (typeof OPS)[number];
export const OP_FWD = 0;
export const OP_BWD_INPUT = 1;
export const OP_BWD_FILTER = 2;
/** The index of an export in a job. */
export const opIndex = (name: PoolOp): number => OPS.indexOf(name);

const CTRL_INTS = 8 + 8 * 24;
/**
 * How long a worker (after a job) and the calling thread (waiting for one) spin before they
 * sleep on Atomics.wait: the small ResNet's median step on 2 threads went from 223 to 217 ms over
 * 10 alternating runs here (and its best from 215 to 166 ms). No spinning where there are more
 * threads than cores (a spinning thread would take a core another one needs).
 */
const SPIN_MS = 15;
/**
 * Bytes of the compiled module's shadow stack per instance (the locals clang keeps in memory:
 * a few KB at most). Every instance gets a region of its own: the module's default stack pointer
 * (1024, growing down) would write into bytes of the memory someone else owns.
 */
export const STACK_BYTES = 64 * 1024;
const WAIT_LIMIT_MS = 120_000;
const PAGE = 65536;

interface Slot {
  worker: Worker;
  ctrl: Int32Array;
  seq: number;
}

export class ConvPool {
  readonly threads: number;
  private readonly spinMs: number;
  readonly memory: WebAssembly.Memory;
  /** Whether the workers run on the caller's heap (no copies). */
  readonly inPlace: boolean;
  /** First byte of the pool's own heap that callers may use (the workers' stacks lie below it). */
  readonly base: number;
  private readonly slots: Slot[];

  /**
   * `heap`: a shared memory the workers compute on in place (the wasm backend's own heap, see
   * ./shared-heap.ts), with `stacks`, the byte address of (threads - 1) * STACK_BYTES the caller
   * allocated in it for the workers' stacks; without it the pool has a heap of its own (stacks at
   * its start, `base` after them) and callers copy in and out.
   */
  constructor(threads: number, module: WebAssembly.Module, relaxedFlag: boolean, heap?: WebAssembly.Memory, stacks = 0) {
    this.threads = threads;
    this.spinMs = threads <= availableParallelism() ? SPIN_MS : 0;
    this.inPlace = heap !== undefined;
    this.memory = heap ?? new WebAssembly.Memory({ initial: 256, maximum: 32768, shared: true });
    this.base = heap ? 0 : (threads - 1) * STACK_BYTES;
    this.slots = [];
    for (let i = 1; i < threads; i++) {
      const ctrl = new Int32Array(new SharedArrayBuffer(CTRL_INTS * 4));
      const stackTop = stacks + i * STACK_BYTES;
      const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { module, memory: this.memory, ctrl: ctrl.buffer, relaxedFlag, spinMs: this.spinMs, ops: OPS, stackTop } });
      worker.unref();
      this.slots.push({ worker, ctrl, seq: 0 });
    }
  }

  /** Make the shared heap at least `bytes` long. */
  reserve(bytes: number): void {
    const have = this.memory.buffer.byteLength;
    if (bytes > have) this.memory.grow(Math.ceil((bytes - have) / PAGE));
  }

  /** The shared heap as floats (a fresh view: the heap may have grown). */
  f32(): Float32Array {
    return new Float32Array(this.memory.buffer);
  }

  /**
   * Start `op` on worker `i` (0-based: thread i + 1), once per entry of `calls` (integer
   * arguments, all of one length), one after the other.
   */
  post(i: number, op: number, ...calls: number[][]): void {
    const s = this.slots[i]!;
    const n = calls[0]?.length ?? 0;
    if (calls.some((a) => a.length !== n) || 8 + n * calls.length > CTRL_INTS) throw new Error('pool: bad job');
    s.ctrl[2] = op;
    s.ctrl[3] = n;
    s.ctrl[5] = calls.length;
    calls.forEach((a, j) => s.ctrl.set(a, 8 + j * n));
    s.seq++;
    Atomics.store(s.ctrl, 0, s.seq);
    Atomics.notify(s.ctrl, 0);
  }

  /**
   * Wait for worker `i`'s job to end; throws if it failed, or if it has not answered for
   * WAIT_LIMIT_MS (a worker that died cannot say so: its exit event needs the event loop this
   * synchronous wait is blocking).
   */
  wait(i: number): void {
    const s = this.slots[i]!;
    const start = Date.now();
    const spinEnd = performance.now() + this.spinMs;
    while (Atomics.load(s.ctrl, 1) !== s.seq && performance.now() < spinEnd);
    for (;;) {
      const done = Atomics.load(s.ctrl, 1);
      if (done === s.seq) break;
      if (Date.now() - start > WAIT_LIMIT_MS) throw new Error(`pool: worker ${i + 1} did not answer in ${WAIT_LIMIT_MS / 1000} s`);
      Atomics.wait(s.ctrl, 1, done, 1000);
    }
    if (s.ctrl[4] !== 0) throw new Error('pool: a worker failed');
  }

  close(): void {
    for (const s of this.slots) {
      Atomics.store(s.ctrl, 0, -1);
      Atomics.notify(s.ctrl, 0);
      void s.worker.terminate();
    }
    this.slots.length = 0;
  }
}

/** Threads wanted: SPIKEPROBE_THREADS, else the cores Node reports (at most 4). */
export function wantedThreads(): number {
  const env = process.env.SPIKEPROBE_THREADS;
  if (env !== undefined && env.trim() !== '') {
    const n = Number(env);
    if (!Number.isInteger(n) || n < 1 || n > 64) throw new InputError(`must be an integer from 1 to 64, got '${env}'`, undefined, 'SPIKEPROBE_THREADS');
    return n;
  }
  return Math.max(1, Math.min(4, availableParallelism()));
}

/** Split [0, n) into `parts` contiguous ranges as even as possible (earlier ones no shorter). */
export function splitRange(n: number, parts: number): [number, number][] {
  const out: [number, number][] = [];
  let a = 0;
  for (let i = 0; i < parts; i++) {
    const len = Math.floor(n / parts) + (i < n % parts ? 1 : 0);
    out.push([a, a + len]);
    a += len;
  }
  return out;
}
