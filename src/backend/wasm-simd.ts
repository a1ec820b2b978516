/**
 * WebAssembly SIMD loops for the BatchNorm kernels of fast-kernels.ts on the 'wasm' backend.
 *
 * A tiny module, assembled here byte by byte (no toolchain), that imports the tfjs wasm backend's
 * own WebAssembly.Memory, so it reads and writes tensors where they live. Every function walks a
 * channels-last [M, C] array (C a multiple of 4) with f32x4 vectors; per-channel sums are
 * accumulated in float64 (f64x2) like PyTorch's CPU BatchNorm statistics. Per-channel vectors
 * (mean, scales, sums) live in a scratch block the caller allocates with the backend's malloc.
 * Offsets are byte addresses in that memory.
 *
 *   sum(x, n, C, acc)                       acc[c] += sum_m x[m,c]                       (f64)
 *   sumsq(x, n, C, mean, acc)               acc[c] += sum_m (x[m,c] - mean[c])^2         (f64)
 *   apply(x, y, n, C, a, b)                 y[m,c] = x[m,c] * a[c] + b[c]                (f32)
 *   gradsums(dy, x, n, C, mean, s, d)       s[c] += sum dy;  d[c] += sum (x - mean) * dy  (f64)
 *   graddx(dy, x, dx, n, C, mean, gm, k, sc)  dx = (dy - gm[c] - (x - mean[c]) * k[c]) * sc[c]
 *
 *   cmple / cmpgt(x, out, blocks, s)       out[i] = x[i] <= s / x[i] > s  (bytes 0/1, 16 per block)
 *   copy3 / copy3v                          3-deep strided copy of 4- / 16-byte values (transpose)
 *
 * (n = number of elements; the loops assume n > 0 and n % C == 0.)
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
const I32_EQ = [0x46];
const I32_LT_U = [0x49];
const SELECT = [0x1b];
const simd = (op: number, ...imm: number[]) => [0xfd, ...u32(op), ...imm];
const load = (offset = 0) => simd(0x00, 0, ...u32(offset)); // v128.load, align hint 1
const store = (offset = 0) => simd(0x0b, 0, ...u32(offset)); // v128.store
const F32X4_ADD = simd(0xe4);
const F32X4_SUB = simd(0xe5);
const F32X4_MUL = simd(0xe6);
const F64X2_ADD = simd(0xf0);
const F64X2_MUL = simd(0xf2);
const PROMOTE_LOW = simd(0x5f); // f64x2.promote_low_f32x4
const HIGH_TO_LOW = simd(0x0d, 8, 9, 10, 11, 12, 13, 14, 15, 8, 9, 10, 11, 12, 13, 14, 15); // i8x16.shuffle

/**
 * A function over [M, C] arrays: params are i32 (addresses, n, C); locals k (byte offset into the
 * element arrays, 0..4n step 16), kEnd, j (byte offset of the channel group, 0..4C step 16), jEnd,
 * then `extraV128` v128 temporaries. `body` is one iteration; the loop runs while k < kEnd.
 */
function loopFunc(nParams: number, nIdx: number, cIdx: number, extraV128: number, body: (L: { k: number; j: number; v: (i: number) => number }) => number[]): { params: number; code: number[] } {
  const k = nParams;
  const kEnd = nParams + 1;
  const j = nParams + 2;
  const jEnd = nParams + 3;
  const v = (i: number) => nParams + 4 + i;
  const locals = [[...u32(4), I32], ...(extraV128 > 0 ? [[...u32(extraV128), V128]] : [])];
  const code = [
    ...vec(locals),
    ...get(nIdx), ...i32c(2), ...I32_SHL, ...set(kEnd),
    ...get(cIdx), ...i32c(2), ...I32_SHL, ...set(jEnd),
    ...i32c(0), ...set(k),
    ...i32c(0), ...set(j),
    0x03, 0x40, // loop
    ...body({ k, j, v }),
    // k += 16
    ...get(k), ...i32c(16), ...I32_ADD, ...set(k),
    // j = (j + 16 == jEnd) ? 0 : j + 16
    ...i32c(0), ...get(j), ...i32c(16), ...I32_ADD, ...tee(j), ...get(j), ...get(jEnd), ...I32_EQ, ...SELECT, ...set(j),
    ...get(k), ...get(kEnd), ...I32_LT_U, 0x0d, 0x00, // br_if loop
    0x0b, // end loop
    0x0b, // end function
  ];
  return { params: nParams, code: [...u32(code.length), ...code] };
}

/** addr = base + off */
const at = (base: number, off: number) => [...get(base), ...get(off), ...I32_ADD];
/** Add the two f64x2 halves of the f32x4 in local `src` to the f64 accumulators at acc + 2j. */
function accumulate(acc: number, j: number, src: number, square: boolean): number[] {
  const lo = [...get(src), ...PROMOTE_LOW];
  const hi = [...get(src), ...get(src), ...HIGH_TO_LOW, ...PROMOTE_LOW];
  const value = (h: number[]) => (square ? [...h, ...h, ...F64X2_MUL] : h);
  const addr = [...get(acc), ...get(j), ...i32c(1), ...I32_SHL, ...I32_ADD];
  return [
    ...addr, ...addr, ...load(0), ...value(lo), ...F64X2_ADD, ...store(0),
    ...addr, ...addr, ...load(16), ...value(hi), ...F64X2_ADD, ...store(16),
  ];
}

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
  // sum(x, n, C, acc)
  funcs.push({
    name: 'sum',
    f: loopFunc(4, 1, 2, 1, ({ k, j, v }) => [...at(0, k), ...load(), ...set(v(0)), ...accumulate(3, j, v(0), false)]),
  });
  // sumsq(x, n, C, mean, acc)
  funcs.push({
    name: 'sumsq',
    f: loopFunc(5, 1, 2, 1, ({ k, j, v }) => [
      ...at(0, k), ...load(), ...at(3, j), ...load(), ...F32X4_SUB, ...set(v(0)),
      ...accumulate(4, j, v(0), true),
    ]),
  });
  // apply(x, y, n, C, a, b)
  funcs.push({
    name: 'apply',
    f: loopFunc(6, 2, 3, 0, ({ k, j }) => [
      ...at(1, k),
      ...at(0, k), ...load(), ...at(4, j), ...load(), ...F32X4_MUL, ...at(5, j), ...load(), ...F32X4_ADD,
      ...store(),
    ]),
  });
  // gradsums(dy, x, n, C, mean, accSum, accDot)
  funcs.push({
    name: 'gradsums',
    f: loopFunc(7, 2, 3, 2, ({ k, j, v }) => [
      ...at(0, k), ...load(), ...set(v(0)),
      ...at(1, k), ...load(), ...at(4, j), ...load(), ...F32X4_SUB, ...get(v(0)), ...F32X4_MUL, ...set(v(1)),
      ...accumulate(5, j, v(0), false),
      ...accumulate(6, j, v(1), false),
    ]),
  });
  // graddx(dy, x, dx, n, C, mean, gm, k, sc)
  funcs.push({
    name: 'graddx',
    f: loopFunc(9, 3, 4, 0, ({ k, j }) => [
      ...at(2, k),
      ...at(0, k), ...load(), ...at(6, j), ...load(), ...F32X4_SUB,
      ...at(1, k), ...load(), ...at(5, j), ...load(), ...F32X4_SUB, ...at(7, j), ...load(), ...F32X4_MUL,
      ...F32X4_SUB,
      ...at(8, j), ...load(), ...F32X4_MUL,
      ...store(),
    ]),
  });

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

export interface SimdBn {
  sum(x: number, n: number, C: number, acc: number): void;
  sumsq(x: number, n: number, C: number, mean: number, acc: number): void;
  apply(x: number, y: number, n: number, C: number, a: number, b: number): void;
  gradsums(dy: number, x: number, n: number, C: number, mean: number, accSum: number, accDot: number): void;
  graddx(dy: number, x: number, dx: number, n: number, C: number, mean: number, gm: number, k: number, sc: number): void;
  cmple(x: number, out: number, blocks: number, sPtr: number): void;
  cmpgt(x: number, out: number, blocks: number, sPtr: number): void;
  copy3(src: number, dst: number, n1: number, s1: number, d1: number, n2: number, s2: number, d2: number, n3: number, s3: number, d3: number): void;
  copy3v(src: number, dst: number, n1: number, s1: number, d1: number, n2: number, s2: number, d2: number, n3: number, s3: number, d3: number): void;
}

const instances = new WeakMap<WebAssembly.Memory, SimdBn | null>();

/** The SIMD functions bound to `memory` (the wasm backend's heap, shared or not), or null where unavailable. */
export function simdBn(memory: WebAssembly.Memory | undefined): SimdBn | null {
  if (!memory) return null;
  if (instances.has(memory)) return instances.get(memory)!;
  let out: SimdBn | null = null;
  try {
    const shared = typeof SharedArrayBuffer !== 'undefined' && memory.buffer instanceof SharedArrayBuffer;
    const mod = new WebAssembly.Module(buildModule(shared));
    out = new WebAssembly.Instance(mod, { env: { memory } }).exports as unknown as SimdBn;
  } catch {
    out = null;
  }
  instances.set(memory, out);
  return out;
}
