/**
 * Bilinear resizing with the semantics of PyTorch's
 * `F.interpolate(x, size=(H', W'), mode='bilinear', align_corners=False, antialias=False)`.
 * Written here because tfjs' resizeBilinear rounds differently (half_pixel_centers without the
 * clamp of negative source coordinates) and the data room stays free of tensors; tested against
 * values PyTorch 1.13 produced (scripts/gen-resize-fixture.py -> test/fixtures/resize.json).
 *
 * Per output index o along an axis of in -> out: src = max(0, (o + 0.5) * in / out - 0.5),
 * i0 = floor(src), i1 = min(i0 + 1, in - 1), weight of i1 = src - i0.
 */

interface Axis {
  i0: Int32Array;
  i1: Int32Array;
  w1: Float32Array;
}

function axis(inSize: number, outSize: number): Axis {
  const i0 = new Int32Array(outSize);
  const i1 = new Int32Array(outSize);
  const w1 = new Float32Array(outSize);
  const scale = Math.fround(inSize / outSize);
  for (let o = 0; o < outSize; o++) {
    const src = Math.max(0, Math.fround(Math.fround(scale * (o + 0.5)) - 0.5));
    const lo = Math.min(Math.floor(src), inSize - 1);
    i0[o] = lo;
    i1[o] = Math.min(lo + 1, inSize - 1);
    w1[o] = Math.fround(src - lo);
  }
  return { i0, i1, w1 };
}

/** Resize n NHWC images of h x w x c to outH x outW x c; returns a new array. */
export function resizeBilinear(x: Float32Array, n: number, h: number, w: number, c: number, outH: number, outW: number): Float32Array {
  if (x.length !== n * h * w * c) throw new RangeError(`resizeBilinear: x has ${x.length} values, expected ${n}*${h}*${w}*${c}`);
  const ay = axis(h, outH);
  const ax = axis(w, outW);
  const out = new Float32Array(n * outH * outW * c);
  const inRow = w * c;
  for (let s = 0; s < n; s++) {
    const base = s * h * inRow;
    const obase = s * outH * outW * c;
    for (let oy = 0; oy < outH; oy++) {
      const r0 = base + ay.i0[oy]! * inRow;
      const r1 = base + ay.i1[oy]! * inRow;
      const wy1 = ay.w1[oy]!;
      const wy0 = 1 - wy1;
      for (let ox = 0; ox < outW; ox++) {
        const c0 = ax.i0[ox]! * c;
        const c1 = ax.i1[ox]! * c;
        const wx1 = ax.w1[ox]!;
        const wx0 = 1 - wx1;
        const o = obase + (oy * outW + ox) * c;
        for (let k = 0; k < c; k++) {
          out[o + k] =
            wy0 * (wx0 * x[r0 + c0 + k]! + wx1 * x[r0 + c1 + k]!) + wy1 * (wx0 * x[r1 + c0 + k]! + wx1 * x[r1 + c1 + k]!);
        }
      }
    }
  }
  return out;
}
