/**
 * Run tfjs-backend-wasm's single-threaded build on a SHARED WebAssembly.Memory, so that the conv
 * thread pool's workers (./pool.ts) can work on tensors where they live instead of on copies.
 *
 * The module defines and exports its memory. importSharedMemory() rewrites the binary so that it
 * imports `env.memory` instead, as a shared memory with the same minimum (nothing else changes:
 * memory index 0, its export, the data segments and every instruction stay valid). installed
 * through tfjs' own hooks: setWasmPaths(prefix, usePlatformFetch) makes the backend fetch its
 * binary through tf.env().platform.fetch, which serves the patched bytes for that prefix, and
 * WebAssembly.instantiate is wrapped for that one call to add the memory to its imports. Must run
 * before the wasm backend initialises; where anything fails the backend loads as usual, on its own
 * memory (the pool then copies).
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import * as tf from '@tensorflow/tfjs';

/** Pages (64 KiB) a shared heap may grow to: 4 GiB, as the unpatched module (and the conv module's shared build). */
export const SHARED_HEAP_MAX_PAGES = 65536;

const PREFIX = 'spikeprobe-shared-heap/';

function leb(bytes: Uint8Array, at: number): [number, number] {
  let v = 0;
  let shift = 0;
  let b: number;
  do {
    b = bytes[at++]!;
    v += (b & 0x7f) * 2 ** shift;
    shift += 7;
  } while (b & 0x80);
  return [v, at];
}

function uleb(n: number): number[] {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n = Math.floor(n / 128);
    if (n) b |= 0x80;
    out.push(b);
  } while (n);
  return out;
}

/**
 * A copy of wasm binary `bytes` whose one defined memory becomes an import env.memory, shared,
 * with the same minimum and `maxPages` as maximum. Throws where the binary does not have exactly
 * one defined memory and no imported one.
 */
export function importSharedMemory(bytes: Uint8Array, maxPages: number): { bytes: Uint8Array; minPages: number } {
  if (bytes[0] !== 0 || bytes[1] !== 0x61 || bytes[2] !== 0x73 || bytes[3] !== 0x6d) throw new Error('not a wasm binary');
  const sections: { id: number; body: Uint8Array }[] = [];
  for (let at = 8; at < bytes.length; ) {
    const id = bytes[at]!;
    const [size, start] = leb(bytes, at + 1);
    sections.push({ id, body: bytes.subarray(start, start + size) });
    at = start + size;
  }
  const mem = sections.filter((s) => s.id === 5);
  if (mem.length !== 1) throw new Error('expected one memory section');
  let [count, p] = leb(mem[0]!.body, 0);
  if (count !== 1) throw new Error(`expected one memory, found ${count}`);
  const flags = mem[0]!.body[p++]!;
  const [minPages] = leb(mem[0]!.body, p);
  if (flags & 2) throw new Error('memory is shared already');
  if (WebAssembly.Module.imports(new WebAssembly.Module(bytes as unknown as ArrayBuffer)).some((i) => i.kind === 'memory')) throw new Error('memory imported already');
  const name = (s: string) => [...uleb(s.length), ...Buffer.from(s, 'utf8')];
  const memoryImport = [...name('env'), ...name('memory'), 0x02, 0x03, ...uleb(minPages), ...uleb(maxPages)];
  const parts: Uint8Array[] = [bytes.subarray(0, 8)];
  let imported = false;
  for (const s of sections) {
    if (s.id === 5) continue;
    let body = s.body;
    if (s.id === 2) {
      const [n, rest] = leb(s.body, 0);
      body = Buffer.concat([Buffer.from(uleb(n + 1)), s.body.subarray(rest), Buffer.from(memoryImport)]);
      imported = true;
    } else if (s.id > 2 && s.id !== 0 && !imported) {
      parts.push(Buffer.from([2, ...uleb(memoryImport.length + 1), 1, ...memoryImport]));
      imported = true;
    }
    parts.push(Buffer.from([s.id, ...uleb(body.length)]), body);
  }
  return { bytes: new Uint8Array(Buffer.concat(parts)), minPages };
}

let tried = false;
let memory: WebAssembly.Memory | undefined;

/** The shared memory the wasm backend was instantiated on, if installSharedHeap() took effect. */
export function sharedHeap(): WebAssembly.Memory | undefined {
  return memory;
}

/**
 * Make the wasm backend, when it next initialises, load on a shared memory. Returns false where it
 * cannot (no SharedArrayBuffer, or the binary does not patch). Call once, before the wasm backend
 * initialises.
 */
export async function installSharedHeap(): Promise<boolean> {
  if (tried) return true;
  tried = true;
  if (typeof SharedArrayBuffer === 'undefined') return false;
  try {
    const require = createRequire(import.meta.url);
    const patched = new Map<string, { bytes: Uint8Array; minPages: number }>();
    const patchedFor = (file: string) => {
      let hit = patched.get(file);
      if (!hit) {
        const path = require.resolve(`@tensorflow/tfjs-backend-wasm/dist/${file}`);
        patched.set(file, (hit = importSharedMemory(readFileSync(path), SHARED_HEAP_MAX_PAGES)));
      }
      return hit;
    };
    // Fail here, not during the backend's init (tfjs would not catch it): the patched binary must
    // compile and a shared memory of its size must be available.
    const simd = patchedFor('tfjs-backend-wasm-simd.wasm');
    if (!WebAssembly.validate(simd.bytes as unknown as ArrayBuffer)) return false;
    new WebAssembly.Memory({ initial: simd.minPages, maximum: SHARED_HEAP_MAX_PAGES, shared: true });
    const platform = tf.env().platform as unknown as { fetch(path: string, init?: unknown): Promise<unknown> };
    const fetch = platform.fetch.bind(platform);
    const minPagesOf = new WeakMap<ArrayBuffer, number>();
    platform.fetch = async (path: string, init?: unknown) => {
      if (!String(path).startsWith(PREFIX)) return fetch(path, init);
      const p = patchedFor(String(path).slice(PREFIX.length));
      const copy = p.bytes.slice().buffer;
      minPagesOf.set(copy, p.minPages);
      const instantiate = WebAssembly.instantiate;
      // tfjs calls WebAssembly.instantiate(binary, imports) next: add the shared memory there.
      (WebAssembly as { instantiate: unknown }).instantiate = (binary: ArrayBuffer, imports: { env: Record<string, unknown> }) => {
        const minPages = minPagesOf.get(binary);
        if (minPages === undefined) return (instantiate as (...a: unknown[]) => unknown)(binary, imports);
        (WebAssembly as { instantiate: unknown }).instantiate = instantiate;
        memory = new WebAssembly.Memory({ initial: minPages, maximum: SHARED_HEAP_MAX_PAGES, shared: true });
        imports.env.memory = memory;
        return instantiate(binary, imports as WebAssembly.Imports);
      };
      return { ok: true, arrayBuffer: async () => copy };
    };
    const { setWasmPaths } = await import('@tensorflow/tfjs-backend-wasm');
    setWasmPaths(PREFIX, true);
    return true;
  } catch {
    return false;
  }
}
