/**
 * The conv pool's worker program (src/backend/pool.ts), a real module that tsc checks. The pool
 * starts each worker with `(${convWorkerMain.toString()})()` as eval'd CommonJS, so this function is
 * self-contained: it reaches Node only through `require` inside its body, and nothing outside it.
 *
 * Protocol on the shared Int32Array c: c[0] the job sequence (-1: exit), c[1] the job done, c[2] the
 * op index, c[3] the arguments per call, c[4] 1 after a failure, c[5] the calls; arguments from c[8].
 */
export function convWorkerMain(): void {
  /* eslint-disable @typescript-eslint/no-require-imports */
  const { workerData } = require('node:worker_threads') as typeof import('node:worker_threads');
  if (workerData.relaxedFlag) (require('node:v8') as typeof import('node:v8')).setFlagsFromString('--experimental-wasm-relaxed-simd');
  const k = new WebAssembly.Instance(workerData.module, { env: { memory: workerData.memory } }).exports as Record<string, unknown>;
  // The module's shadow stack (locals it keeps in memory): a region of this worker's own.
  (k.__stack_pointer as WebAssembly.Global).value = workerData.stackTop;
  const c = new Int32Array(workerData.ctrl);
  const ops = (workerData.ops as string[]).map((name) => k[name] as (...args: number[]) => void);
  let seen = 0;
  for (;;) {
    // Spin a while before sleeping: the next conv of a training step comes within a few ms, and a
    // sleeping worker took ~0.9 ms per conv to wake on this 2-vCPU VM, measured.
    const spinEnd = performance.now() + workerData.spinMs;
    while (Atomics.load(c, 0) === seen && performance.now() < spinEnd);
    Atomics.wait(c, 0, seen);
    seen = Atomics.load(c, 0);
    if (seen < 0) break;
    try {
      for (let i = 0, at = 8; i < c[5]!; i++, at += c[3]!) ops[c[2]!]!(...Array.from(c.subarray(at, at + c[3]!)));
      c[4] = 0;
    } catch {
      c[4] = 1;
    }
    Atomics.store(c, 1, seen);
    Atomics.notify(c, 1);
  }
}
