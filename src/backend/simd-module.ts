/**
 * WebAssembly SIMD copy and compare loops for ./replaced-kernels.ts on the 'wasm' backend (Transpose,
 * Slice, GatherV2, scalar LessEqual/Greater). (The BatchNorm passes are compiled C now:
 * ./native/conv.c through ./compiled-bn.ts.)
 *
 * A tiny module, assembled here byte by byte (no toolchain), that imports the tfjs wasm backend's
 * own WebAssembly.Memory, so it reads and writes tensors where they live. Offsets are byte
 * addresses in that memory.
 *
 *   cmple / cmpgt(x, out, blocks, s)       out[i] = x[i] <= s / x[i] > s  (bytes 0/1, 16 per block)
 *   copy3 / copy3v                          3-deep strided copy of 4- / 16-byte values (transpose)
 */

// --- encoding --------------------------------------------------------------------------------

function u32(v: number): number[] {
  const out: number[] = [];
  do {
    let b = v & 0x7f;
    v >>>= 7;
    if (v !== 0) b |= 0x80;
    out.push(b);
  } while (v !== 0);
  return out;
}

function s32(v: number): number[] {
  const out: number[] = [];
  for (;;) {
    const b = v & 0x7f;
    v >>= 7;
    if ((v === 0 && (b & 0x40) === 0) || (v === -1 && (b & 0x40) !== 0)) {
      out.push(b);
      return out;
    }
    out.push(b | 0x80);
  }
}

const name = (s: string): number[] => {
  const bytes = Array.from(new TextEncoder().encode(s));
  return [...u32(bytes.length), ...bytes];
};
const vec = (items: number[][]): number[] => [...u32(items.length), ...items.flat()];
const section = (id: number, body: number[]): number[] => [id, ...u32(body.length), ...body];

const I32 = 0x7f;
const V128 = 0x7b;

// Instructions.
const get = (i: number) => [0x20, ...u32(i)];
const set = (i: number) => [0x21, ...u32(i)];
const tee = (i: number) => [0x22, ...u32(i)];
const i32c = (v: number) => [0x41, ...s32(v)];
const I32_ADD = [0x6a];
const I32_SHL = [0x74];
const I32_LT_U = [0x49];
const simd = (op: number, ...imm: number[]) => [0xfd, ...u32(op), ...imm];
const load = (offset = 0) => simd(0x00, 0, ...u32(offset)); // v128.load, align hint 1
const store = (offset = 0) => simd(0x0b, 0, ...u32(offset)); // v128.store

const I32_MUL = [0x6c];
const I32_NE = [0x47];
const I32_LOAD = [0x28, 2, 0];
const I32_STORE = [0x36, 2, 0];

/**
 * copy3(src, dst, n1, s1, d1, n2, s2, d2, n3, s3, d3): a 3-deep strided copy of 4-byte values
 * (strides in bytes, every extent >= 1), dst[a*d1 + b*d2 + c*d3] = src[a*s1 + b*s2 + c*s3]; with
 * `vector`, 16-byte values. A transpose is a copy3 whose inner loop reads sequentially.
 */
function copy3(vector: boolean): { params: number; code: number[] } {
  const [src, dst, n1, s1, d1, n2, s2, d2, n3, s3, d3] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
  const [a, b, ps, pd, endS, baseS, baseD, rowS, rowD] = [11, 12, 13, 14, 15, 16, 17, 18, 19];
  const mov = vector ? [...get(pd), ...get(ps), ...load(), ...store()] : [...get(pd), ...get(ps), ...I32_LOAD, ...I32_STORE];
  const code = [
    ...vec([[...u32(9), I32]]),
    ...i32c(0), ...set(a), ...get(src), ...set(baseS), ...get(dst), ...set(baseD),
    0x03, 0x40, // loop A
    ...get(baseS), ...set(rowS), ...get(baseD), ...set(rowD), ...i32c(0), ...set(b),
    0x03, 0x40, // loop B
    ...get(rowS), ...tee(ps), ...get(n3), ...get(s3), ...I32_MUL, ...I32_ADD, ...set(endS),
    ...get(rowD), ...set(pd),
    0x03, 0x40, // loop C
    ...mov,
    ...get(ps), ...get(s3), ...I32_ADD, ...tee(ps),
    ...get(pd), ...get(d3), ...I32_ADD, ...set(pd),
    ...get(endS), ...I32_NE, 0x0d, 0x00,
    0x0b,
    ...get(rowS), ...get(s2), ...I32_ADD, ...set(rowS),
    ...get(rowD), ...get(d2), ...I32_ADD, ...set(rowD),
    ...get(b), ...i32c(1), ...I32_ADD, ...tee(b), ...get(n2), ...I32_LT_U, 0x0d, 0x00,
    0x0b,
    ...get(baseS), ...get(s1), ...I32_ADD, ...set(baseS),
    ...get(baseD), ...get(d1), ...I32_ADD, ...set(baseD),
    ...get(a), ...i32c(1), ...I32_ADD, ...tee(a), ...get(n1), ...I32_LT_U, 0x0d, 0x00,
    0x0b,
    0x0b,
  ];
  return { params: 11, code: [...u32(code.length), ...code] };
}

/**
 * cmp(x, out, blocks, sPtr): out[i] = x[i] OP s ? 1 : 0 for 16 * blocks float32 values (bytes out),
 * s = the float32 at sPtr; OP is f32x4.le (0x45) or f32x4.gt (0x44). NaN compares false.
 */
function compare(op: number): { params: number; code: number[] } {
  const [x, out, blocks, sPtr, end, S] = [0, 1, 2, 3, 4, 5];
  const cmp4 = (off: number) => [...get(x), ...load(off), ...get(S), ...simd(op)];
  const code = [
    ...vec([[...u32(1), I32], [...u32(1), V128]]),
    ...get(sPtr), ...simd(0x09, 2, 0), ...set(S), // v128.load32_splat
    ...get(x), ...get(blocks), ...i32c(6), ...I32_SHL, ...I32_ADD, ...set(end),
    0x03, 0x40,
    ...get(out),
    ...cmp4(0), ...cmp4(16), ...simd(0x85), // i16x8.narrow_i32x4_s
    ...cmp4(32), ...cmp4(48), ...simd(0x85),
    ...simd(0x65), // i8x16.narrow_i16x8_s: -1 / 0 per value
    ...simd(0x60), // i8x16.abs: 1 / 0
    ...store(),
    ...get(x), ...i32c(64), ...I32_ADD, ...tee(x),
    ...get(out), ...i32c(16), ...I32_ADD, ...set(out),
    ...get(end), ...I32_NE, 0x0d, 0x00,
    0x0b,
    0x0b,
  ];
  return { params: 4, code: [...u32(code.length), ...code] };
}

function buildModule(shared = false): Uint8Array<ArrayBuffer> {
  const funcs: { name: string; f: { params: number; code: number[] } }[] = [];
  funcs.push({ name: 'cmple', f: compare(0x45) });
  funcs.push({ name: 'cmpgt', f: compare(0x44) });
  funcs.push({ name: 'copy3', f: copy3(false) });
  funcs.push({ name: 'copy3v', f: copy3(true) });

  const types = funcs.map(({ f }) => [0x60, ...vec(Array.from({ length: f.params }, () => [I32])), 0x00]);
  return new Uint8Array([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    ...section(1, vec(types)),
    // memory, min 0 pages; or shared, max 4 GiB (the backend's heap under the conv pool: ./shared-heap.ts)
    ...section(2, vec([[...name('env'), ...name('memory'), 0x02, ...(shared ? [0x03, 0x00, ...u32(65536)] : [0x00, 0x00])]])),
    ...section(3, vec(funcs.map((_, i) => u32(i)))),
    ...section(7, vec(funcs.map(({ name: n }, i) => [...name(n), 0x00, ...u32(i)]))),
    ...section(10, vec(funcs.map(({ f }) => f.code))),
  ]);
}

export interface SimdOps {
  cmple(x: number, out: number, blocks: number, sPtr: number): void;
  cmpgt(x: number, out: number, blocks: number, sPtr: number): void;
  copy3(src: number, dst: number, n1: number, s1: number, d1: number, n2: number, s2: number, d2: number, n3: number, s3: number, d3: number): void;
  copy3v(src: number, dst: number, n1: number, s1: number, d1: number, n2: number, s2: number, d2: number, n3: number, s3: number, d3: number): void;
}

const instances = new WeakMap<WebAssembly.Memory, SimdOps | null>();

/** The SIMD functions bound to `memory` (the wasm backend's heap, shared or not), or null where unavailable. */
export function simdOps(memory: WebAssembly.Memory | undefined): SimdOps | null {
  if (!memory) return null;
  if (instances.has(memory)) return instances.get(memory)!;
  let out: SimdOps | null = null;
  try {
    const shared = typeof SharedArrayBuffer !== 'undefined' && memory.buffer instanceof SharedArrayBuffer;
    const mod = new WebAssembly.Module(buildModule(shared));
    out = new WebAssembly.Instance(mod, { env: { memory } }).exports as unknown as SimdOps;
  } catch {
    out = null;
  }
  instances.set(memory, out);
  return out;
}
