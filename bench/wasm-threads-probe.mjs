// Probe: can tfjs-backend-wasm's THREADED build run under Node? (tfjs disables it there:
// WASM_HAS_MULTITHREAD_SUPPORT is false for IS_NODE, and its pthread worker is a blob: URL, which
// node's worker_threads refuses: ERR_WORKER_PATH.) Workarounds used here: force the flag; write
// the worker script ('\n' escaped as tfjs does) to a .cjs file and hand it out through a patched
// URL.createObjectURL during init; inside the worker, make createObjectURL return a file holding
// the Emscripten glue (the worker importScripts() it). Then time one conv.
//   node bench/wasm-threads-probe.mjs [threads]
import * as tf from '@tensorflow/tfjs';
import { createRequire } from 'node:module';
import { rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
const require = createRequire(import.meta.url);
const wasmMod = await import('@tensorflow/tfjs-backend-wasm');
const { wasmWorkerContents } = require('@tensorflow/tfjs-backend-wasm/wasm-out/tfjs-backend-wasm-threaded-simd.worker.js');
const factory = require('@tensorflow/tfjs-backend-wasm/wasm-out/tfjs-backend-wasm-threaded-simd.js');
const mainPath = join(tmpdir(), `spikeprobe-wasm-main-${process.pid}.cjs`);
writeFileSync(mainPath, `var WasmBackendModuleThreadedSimd = ${factory.toString()}`);
const workerPath = join(tmpdir(), `spikeprobe-wasm-worker-${process.pid}.cjs`);
writeFileSync(workerPath, `URL.createObjectURL = () => ${JSON.stringify(mainPath)}; URL.revokeObjectURL = () => {};\n` + wasmWorkerContents.replace(/\n/g, '\\n'));
const orig = URL.createObjectURL;
URL.createObjectURL = () => workerPath;
tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', true);
wasmMod.setThreadsCount(Number(process.argv[2] ?? 2));
const ok = await tf.setBackend('wasm');
await tf.ready();
URL.createObjectURL = orig;
const tc = tf.backend().wasm.tfjs.getThreadsCount ? tf.backend().wasm.tfjs.getThreadsCount() : 'n/a';
console.log('ok', ok, 'threads', wasmMod.getThreadsCount(), 'pool', tc, Object.keys(tf.backend().wasm).filter(k => /emory/.test(k)), tf.backend().wasm.HEAPU8.buffer instanceof SharedArrayBuffer);
const x = tf.randomNormal([128,28,28,16]), w = tf.randomNormal([3,3,16,16]);
const P = [[0,0],[1,1],[1,1],[0,0]];
const ts = [];
for (let i = 0; i < 7; i++) { const t = performance.now(); const y = tf.conv2d(x, w, 1, P); y.dataSync(); ts.push(performance.now()-t); y.dispose(); }
console.log('conv ms', ts.map(t=>t.toFixed(1)).join(' '));
rmSync(mainPath, { force: true });
rmSync(workerPath, { force: true });
process.exit(0);
