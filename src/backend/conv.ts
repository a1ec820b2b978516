/**
 * The conv the model asks for, PyTorch's Conv2d with padding k//2 and no bias, and the speed paths
 * behind it that are not kernels: which shapes go to the compiled wasm kernels as they are
 * (channels % 8 on both sides), and, elsewhere (the cpu backend, odd channel counts), the cropped
 * filter for taps that only meet padding and the 3x3 conv on a 2x2 map as one matrix product.
 * Each path is the same sum as the padded conv (test/added-kernels.test.ts, test/model.test.ts).
 */
import * as tf from '@tensorflow/tfjs';
import { convFlavor } from './compiled.js';
import { noteConvTier } from './tiers.js';

type Pad4 = [[number, number], [number, number], [number, number], [number, number]];

/** The first and last filter taps along one axis that read at least one real (unpadded) input row. */
function liveTaps(inSize: number, k: number, stride: number, pad: number, outSize: number): [number, number] {
  let lo = k;
  let hi = -1;
  for (let t = 0; t < k; t++) {
    for (let o = 0; o < outSize; o++) {
      const r = o * stride - pad + t;
      if (r >= 0 && r < inSize) {
        lo = Math.min(lo, t);
        hi = Math.max(hi, t);
        break;
      }
    }
  }
  return [lo, hi];
}

/**
 * PyTorch's Conv2d(k, stride, padding=k//2, bias=False) (x NHWC, w [k, k, Ci, Co]). On the compiled
 * wasm kernels (channels % 8 == 0 on both sides) the kernels pick their own loops, dead taps
 * included. Elsewhere, on small feature maps (ResNet18 at 28x28:
 * 1x1 and 2x2 maps in the last stage) some taps of the filter only ever meet padding zeros; the
 * conv then runs with the filter cropped to the taps that meet real input (and the padding
 * shrunk to match), which is the same sum without the zero terms, and the gradient of the crop
 * (tf.slice) gives those taps the exact zero PyTorch computes for them. A 3x3 conv on a 1x1 map
 * becomes a 1x1 conv: 9x less work forward and backward.
 */
export function conv2dTorch(x: tf.Tensor4D, w: tf.Tensor, stride: number): tf.Tensor4D {
  const k = w.shape[0]!;
  const p = (k - 1) / 2; // PyTorch padding=k//2 for 3x3 and 7x7, 0 for 1x1
  // The compiled wasm conv kernels skip dead taps themselves (and run on the conv thread pool).
  const compiled = tf.getBackend() === 'wasm' && convFlavor() !== null && x.shape[3] % 8 === 0 && w.shape[3]! % 8 === 0;
  if (k === 3 && stride === 1 && x.shape[1] === 2 && x.shape[2] === 2 && !compiled) {
    noteConvTier('fwd', '2x2-matmul', x.shape, w.shape as number[], stride);
    return conv3x3On2x2(x, w as tf.Tensor4D);
  }
  if (k > 1) {
    const [, H, W] = x.shape;
    const OH = Math.floor((H + 2 * p - k) / stride) + 1;
    const OW = Math.floor((W + 2 * p - k) / stride) + 1;
    const [r0, r1] = liveTaps(H, k, stride, p, OH);
    const [c0, c1] = liveTaps(W, k, stride, p, OW);
    if (r1 >= r0 && c1 >= c0 && (r0 > 0 || c0 > 0 || r1 < k - 1 || c1 < k - 1)) {
      const kh = r1 - r0 + 1;
      const kw = c1 - c0 + 1;
      const top = p - r0;
      const left = p - c0;
      const bottom = (OH - 1) * stride + kh - H - top;
      const right = (OW - 1) * stride + kw - W - left;
      if (top >= 0 && left >= 0 && bottom >= 0 && right >= 0) {
        noteConvTier('fwd', 'cropped-taps', x.shape, w.shape as number[], stride);
        const wc = tf.slice(w as tf.Tensor4D, [r0, c0, 0, 0], [kh, kw, -1, -1]);
        const pad: Pad4 | 'valid' = top + bottom + left + right === 0 ? 'valid' : [[0, 0], [top, bottom], [left, right], [0, 0]];
        return tf.conv2d(x, wc, stride, pad);
      }
    }
  }
  const pad: Pad4 = [[0, 0], [p, p], [p, p], [0, 0]];
  return tf.conv2d(x, w as tf.Tensor4D, stride, p === 0 ? 'valid' : pad);
}

/** For output position (i,j) of a 2x2 map, the filter tap that input position (u,v) meets: [(i,j)][(u,v)]. */
const TAPS_2X2 = [0, 1, 2, 3].map((ij) => [0, 1, 2, 3].map((uv) => ((uv >> 1) - (ij >> 1) + 1) * 3 + ((uv & 1) - (ij & 1) + 1)));

/**
 * A 3x3, stride-1, padding-1 conv on a 2x2 map (ResNet18's third stage at 28x28) as one matrix
 * product: y[n, (i,j,c')] = sum over (u,v,c) of x[n, (u,v,c)] * Wbig[(u,v,c), (i,j,c')] with
 * Wbig's block for (u,v)->(i,j) the tap (u-i+1, v-j+1). Only the 16 tap-position pairs that meet
 * real input are multiplied (the padded conv does 36), and the backward is two plain matrix
 * products plus summing each tap's blocks, which is the gradient PyTorch's conv computes (its
 * other products are with padding zeros).
 */
function conv3x3On2x2(x: tf.Tensor4D, w: tf.Tensor4D): tf.Tensor4D {
  const [N, , , C] = x.shape;
  const Co = w.shape[3]!;
  const f = tf.customGrad(((xi: tf.Tensor, wi: tf.Tensor, save: tf.GradSaveFunc) => {
    const wbig = tf.tidy(() => {
      const w9 = tf.reshape(wi, [9, C, Co]);
      // Row block (u,v): [C, 4*Co] with column blocks (i,j), via [4(ij), C, Co] -> [C, 4(ij), Co].
      const rows = [0, 1, 2, 3].map((uv) => tf.reshape(tf.transpose(tf.gather(w9, TAPS_2X2.map((t) => t[uv]!)), [1, 0, 2]), [C, 4 * Co]));
      return tf.concat(rows, 0); // [4C, 4Co]
    });
    save([xi, wbig]);
    const y = tf.reshape(tf.matMul(tf.reshape(xi, [N, 4 * C]), wbig), [N, 2, 2, Co]);
    return {
      value: y,
      gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => {
        const [xs, wb] = saved as [tf.Tensor, tf.Tensor2D];
        const dY = tf.reshape(dy as tf.Tensor, [N, 4 * Co]) as tf.Tensor2D;
        // Explicit transposes keep both products on wasm's fast (non-transposed) matmul path.
        const dx = tf.reshape(tf.matMul(dY, tf.transpose(wb)), [N, 2, 2, C]);
        const dWbig = tf.matMul(tf.transpose(tf.reshape(xs, [N, 4 * C])), dY); // [4C, 4Co]
        // Block (u,v),(i,j) of dWbig -> [16 (uv,ij), C, Co], then sum the blocks of each tap.
        const blocks = tf.concat(
          [0, 1, 2, 3].map((uv) => tf.transpose(tf.reshape(tf.slice(dWbig, [uv * C, 0], [C, 4 * Co]), [C, 4, Co]), [1, 0, 2])),
          0,
        );
        const ids = tf.tensor1d([0, 1, 2, 3].flatMap((uv) => TAPS_2X2.map((t) => t[uv]!)), 'int32');
        const dw = tf.reshape(tf.unsortedSegmentSum(blocks, ids, 9), [3, 3, C, Co]);
        return [dx, dw];
      },
    };
  }) as unknown as Parameters<typeof tf.customGrad>[0]);
  return f(x, w) as tf.Tensor4D;
}
