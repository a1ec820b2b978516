// Probe: can tfjs-backend-wasm's single-threaded SIMD build run on a SHARED WebAssembly.Memory?
// (If so, the conv pool's workers could work on tensors in place instead of on copies, and the
// BatchNorm/element-wise passes could be split over threads too; see README, Benchmarks.)
// The module defines and exports its memory; this rewrites the binary so that it imports
// env.memory as a shared memory (limits flag 0x03, same minimum, maximum 2 GB) instead, serves the
// patched bytes through setWasmPaths(..., usePlatformFetch) and tf.env().platform.fetch, and
// hands the shared memory to WebAssembly.instantiate. Then it runs a conv, grows the heap and
// compares with the cpu backend. Result here (Node 20, tfjs 4.22): it works, heap shared: true,
// growth fine, same sums. spikeprobe now does this itself (src/backend/shared-heap.ts).
//   node bench/shared-heap-probe.mjs
import { readFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
const leb = (b, o) => { let r = 0, s = 0, x; do { x = b[o++]; r |= (x & 0x7f) << s; s += 7; } while (x & 0x80); return [r >>> 0, o]; };
const enc = (n) => { const o = []; do { let x = n & 0x7f; n >>>= 7; if (n) x |= 0x80; o.push(x); } while (n); return o; };
function patch(bytes, maxPages) {
  const out = [Buffer.from(bytes.subarray(0, 8))];
  let o = 8, memMin = null;
  const secs = [];
  while (o < bytes.length) { const id = bytes[o]; let [size, p] = leb(bytes, o + 1); secs.push({ id, body: bytes.subarray(p, p + size) }); o = p + size; }
  const mem = secs.find((s) => s.id === 5);
  { let [n, p] = leb(mem.body, 0); if (n !== 1) throw new Error('mems ' + n); const flag = mem.body[p++]; [memMin, p] = leb(mem.body, p); console.log('memory flag', flag, 'min', memMin); }
  for (const s of secs) {
    if (s.id === 5) continue;
    let body = Buffer.from(s.body);
    if (s.id === 2) {
      let [n, p] = leb(s.body, 0);
      const name = (t) => [...enc(t.length), ...Buffer.from(t)];
      body = Buffer.concat([Buffer.from(enc(n + 1)), Buffer.from(s.body.subarray(p)), Buffer.from([...name('env'), ...name('memory'), 0x02, 0x03, ...enc(memMin), ...enc(maxPages)])]);
    }
    out.push(Buffer.from([s.id, ...enc(body.length)]), body);
  }
  return new Uint8Array(Buffer.concat(out));
}
const orig = readFileSync('node_modules/@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-simd.wasm');
const patched = patch(orig, 32768);
let memory;
const realInst = WebAssembly.instantiate;
WebAssembly.instantiate = async (bin, imports) => {
  if (imports?.env && WebAssembly.Module.imports(new WebAssembly.Module(bin)).some((i) => i.kind === 'memory')) {
    const min = 256; // pages; grown by the module as needed
    memory = new WebAssembly.Memory({ initial: Math.max(min, 1), maximum: 32768, shared: true });
    imports.env.memory = memory;
  }
  return realInst(bin, imports);
};
tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', false);
setWasmPaths('/spikeprobe-patched/', true);
const platform = tf.env().platform;
const realFetch = platform.fetch.bind(platform);
platform.fetch = async (path, init) => String(path).startsWith('/spikeprobe-patched/') ? { ok: true, arrayBuffer: async () => patched } : realFetch(path, init);
await tf.setBackend('wasm'); await tf.ready();
const b = tf.backend();
console.log('backend', tf.getBackend(), 'heap shared:', b.wasm.HEAPU8.buffer instanceof SharedArrayBuffer, 'memory', memory?.buffer.byteLength);
const x = tf.randomNormal([64, 28, 28, 16]), w = tf.randomNormal([3, 3, 16, 16]);
const y = tf.conv2d(x, w, 1, 'same');
const big = tf.ones([4000, 4000]); // force growth
console.log('conv ok', y.shape, (await y.sum().data())[0].toFixed(2), 'after growth', b.wasm.HEAPU8.buffer.byteLength, (await big.sum().data())[0]);
await tf.setBackend('cpu'); const yc = tf.conv2d(tf.tensor(await x.data(), x.shape), tf.tensor(await w.data(), w.shape), 1, 'same');
console.log('cpu sum', (await yc.sum().data())[0].toFixed(2));
