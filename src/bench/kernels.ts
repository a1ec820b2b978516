/**
 * Micro-benchmark of the wasm training kernels (src/backend/replaced-kernels.ts) on
 * the conv shapes of a small ResNet: batch 64, 28x28x1 input, widths 16/32/64.
 *
 *   npx tsc -p tsconfig.json && node dist/bench/kernels.js [--reps N] [--batch N]
 *
 * Prints, per layer, ms per call (median over reps, after one warm-up) of:
 *   fwd      the stock wasm Conv2D (XNNPACK), for scale;
 *   dW       our Conv2DBackpropFilter (missing from stock wasm);
 *   dx       our Conv2DBackpropInput;
 *   dx-stock the stock wasm Conv2DBackpropInput it replaces.
 */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { registerWasmTrainingKernels } from '../backend/register.js';

type Shape4 = [number, number, number, number];
type Pad = 'valid' | [[number, number], [number, number], [number, number], [number, number]];

interface Layer {
  name: string;
  hw: number; // input height = width
  cin: number;
  cout: number;
  k: number;
  stride: number;
  pad: Pad;
}

const PAD1: Pad = [[0, 0], [1, 1], [1, 1], [0, 0]];

const LAYERS: Layer[] = [
  { name: 'stem 3x3 1->16', hw: 28, cin: 1, cout: 16, k: 3, stride: 1, pad: PAD1 },
  { name: 'stage1 3x3 16->16', hw: 28, cin: 16, cout: 16, k: 3, stride: 1, pad: PAD1 },
  { name: 'stage2 3x3/2 16->32', hw: 28, cin: 16, cout: 32, k: 3, stride: 2, pad: PAD1 },
  { name: 'stage2 1x1/2 16->32', hw: 28, cin: 16, cout: 32, k: 1, stride: 2, pad: 'valid' },
  { name: 'stage2 3x3 32->32', hw: 14, cin: 32, cout: 32, k: 3, stride: 1, pad: PAD1 },
  { name: 'stage3 3x3/2 32->64', hw: 14, cin: 32, cout: 64, k: 3, stride: 2, pad: PAD1 },
  { name: 'stage3 1x1/2 32->64', hw: 14, cin: 32, cout: 64, k: 1, stride: 2, pad: 'valid' },
  { name: 'stage3 3x3 64->64', hw: 7, cin: 64, cout: 64, k: 3, stride: 1, pad: PAD1 },
];

function argValue(flag: string, fallback: number): number {
  const i = process.argv.indexOf(flag);
  if (i < 0 || i + 1 >= process.argv.length) return fallback;
  const v = Number(process.argv[i + 1]);
  if (!Number.isInteger(v) || v <= 0) throw new Error(`${flag} expects a positive integer`);
  return v;
}

/** Median ms per call of `f` (each result disposed), after one warm-up call. */
function timeIt(f: () => tf.Tensor | tf.TensorInfo, reps: number): number {
  const dispose = (r: tf.Tensor | tf.TensorInfo): void => {
    if (r instanceof tf.Tensor) r.dispose();
    else tf.backend().disposeData(r.dataId);
  };
  dispose(f());
  const times: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    const r = f();
    times.push(performance.now() - t0); // wasm kernels are synchronous
    dispose(r);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)];
}

async function main(): Promise<void> {
  const reps = argValue('--reps', 10);
  const batch = argValue('--batch', 64);
  await tf.setBackend('wasm');
  await tf.ready();
  const stockBackpropInput = tf.getKernel(tf.Conv2DBackpropInput, 'wasm');
  const registered = registerWasmTrainingKernels();
  console.log(`wasm backend, batch ${batch}, median of ${reps}; registered: ${registered.join(', ')}`);

  const rows: Record<string, string>[] = [];
  const totals = { fwd: 0, dW: 0, dx: 0, dxStock: 0 };
  for (const l of LAYERS) {
    const xShape: Shape4 = [batch, l.hw, l.hw, l.cin];
    const fShape: Shape4 = [l.k, l.k, l.cin, l.cout];
    const info = tf.backend_util.computeConv2DInfo(xShape, fShape, l.stride, 1, l.pad);
    const x = tf.randomNormal(xShape);
    const w = tf.randomNormal(fShape);
    const dy = tf.randomNormal(info.outShape);
    const attrs = { strides: l.stride, pad: l.pad, dataFormat: 'NHWC' } as const;
    const fwd = timeIt(() => tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, l.stride, l.pad), reps);
    const dW = timeIt(() => tf.engine().runKernel(tf.Conv2DBackpropFilter, { x, dy },
      { ...attrs, filterShape: fShape }) as tf.Tensor, reps);
    const dx = timeIt(() => tf.engine().runKernel(tf.Conv2DBackpropInput, { dy, filter: w },
      { ...attrs, inputShape: xShape }) as tf.Tensor, reps);
    const dxStock = timeIt(() => {
      const out = stockBackpropInput.kernelFunc({
        inputs: { dy, filter: w }, backend: tf.backend(), attrs: { ...attrs, inputShape: xShape },
      });
      if (Array.isArray(out)) throw new Error('unexpected outputs');
      return out;
    }, reps);
    tf.dispose([x, w, dy]);
    totals.fwd += fwd;
    totals.dW += dW;
    totals.dx += dx;
    totals.dxStock += dxStock;
    rows.push({ layer: l.name, fwd: fwd.toFixed(2), dW: dW.toFixed(2), dx: dx.toFixed(2), 'dx-stock': dxStock.toFixed(2) });
  }
  rows.push({
    layer: 'total', fwd: totals.fwd.toFixed(2), dW: totals.dW.toFixed(2), dx: totals.dx.toFixed(2),
    'dx-stock': totals.dxStock.toFixed(2),
  });
  console.log('ms per call:');
  console.table(rows);
  console.log(`live tensors after bench: ${tf.memory().numTensors}`);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
