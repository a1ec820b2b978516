/*
 * spikeprobe's compiled kernels for the tfjs wasm backend (loaded by src/backend/compiled.ts; called
 * by src/backend/compiled-kernels.ts and compiled-bn.ts):
 *  - conv_fwd, conv_bwd_input, conv_bwd_filter: forward, input gradient and filter gradient of a
 *    2-D convolution in NHWC with explicit padding, on one register-blocked GEMM micro-kernel
 *    (MR = 4 rows x 8 columns of float32, f32x4 vectors; 5 and 6 rows spill registers in V8 and
 *    run slower, measured). Which loops feed it:
 *     - 3x3, stride-1, pad-1 convs that keep the map size, on maps of at least 4x4 (fwd, dx
 *       and dW): Winograd F(4x4, 3x3) (conv_wino4, conv_wino4_filter: 4x fewer multiplies than
 *       direct; max error ~2e-6-1e-5 of the largest value against the cpu backend);
 *     - other maps over 16 positions: gathered rows with K = taps x channels contiguous (im2col
 *       chunks for the forward and dW, dy rows per stride phase for dx);
 *     - maps of at most 16 positions: position-major loops over live taps only (tiny maps);
 *  - add_into (summing the filter gradient's partials), maxpool_grad, sgd_step (fused SGD),
 *    act_stats (per-channel max and count of non-positive values, for the dead-units instrument),
 *    relu_grad (ReLU's gradient in one pass);
 *  - bn_sum, bn_sumsq, bn_apply, bn_gsums, bn_gdx: training-mode BatchNorm passes over a range of
 *    rows, with the residual add and ReLU fused in (src/backend/compiled-bn.ts).
 * scripts/build-wasm.mjs compiles it with relaxed SIMD (f32x4.relaxed_madd: a fused multiply-add
 * where the CPU has one) and with plain SIMD128 (multiply, then add), each for the backend's own
 * memory and for a shared memory (the conv thread pool). The module imports that memory and uses
 * no data segment and no libc: every buffer is a byte offset the caller allocated. Locals clang
 * keeps in memory go on its shadow stack, whose pointer (__stack_pointer) is exported: the caller
 * gives every instance a stack region of its own (the default, 1024 growing down, would write
 * into memory the module does not own).
 *
 * Shapes: x [N,H,W,Ci], w [KH,KW,Ci,Co], y/dy [N,OH,OW,Co]; T = KH*KW taps.
 */
#include <wasm_simd128.h>

typedef v128_t V;
#define EXPORT(name) __attribute__((export_name(name)))
#ifdef RELAXED
#define MADD(acc, a, b) __builtin_wasm_relaxed_madd_f32x4((a), (b), (acc))
#else
#define MADD(acc, a, b) wasm_f32x4_add((acc), wasm_f32x4_mul((a), (b)))
#endif
#ifndef MR
#define MR 4
#endif
/* Output maps of at most this many positions take the tiny-map loops (position-major, taps that
 * only meet padding skipped). Skipping adds no term the full loops would not add as an exact zero. */
#ifndef TINY
#define TINY 16
#endif

EXPORT("flavor") int flavor(void) {
#ifdef RELAXED
  return 1;
#else
  return 0;
#endif
}

/*
 * C[r][0..8) (=|+=) sum_t sum_k A[t][r][k*as] * B[t][k*bs + 0..8), r < 4.
 * A: nT*4 row pointers (t-major), B: nT pointers, C: 4 output pointers.
 */
static inline __attribute__((always_inline)) void micro(int nT, const float *const *A, const float *const *B, int K, int as,
                                                        int bs, float *const *C, int accumulate) {
  V c[MR][2];
#pragma clang loop unroll(full)
  for (int r = 0; r < MR; r++) c[r][0] = c[r][1] = wasm_f32x4_splat(0.f);
  for (int t = 0; t < nT; t++) {
    const float *a[MR];
#pragma clang loop unroll(full)
    for (int r = 0; r < MR; r++) a[r] = A[MR * t + r];
    const float *b = B[t];
    /* Fixed row bases and one running offset each for A and B: stepping the MR row pointers
     * instead took ~1.8x as long, measured (27 against 49 GFLOP/s). */
    for (int k = 0, ka = 0, kb = 0; k < K; k++, ka += as, kb += bs) {
      const V b0 = wasm_v128_load(b + kb), b1 = wasm_v128_load(b + kb + 4);
#pragma clang loop unroll(full)
      for (int r = 0; r < MR; r++) {
        const V x = wasm_v128_load32_splat(a[r] + ka);
        c[r][0] = MADD(c[r][0], x, b0);
        c[r][1] = MADD(c[r][1], x, b1);
      }
    }
  }
#pragma clang loop unroll(full)
  for (int r = 0; r < MR; r++) {
    float *o = C[r];
    if (accumulate) {
      c[r][0] = wasm_f32x4_add(c[r][0], wasm_v128_load(o));
      c[r][1] = wasm_f32x4_add(c[r][1], wasm_v128_load(o + 4));
    }
    wasm_v128_store(o, c[r][0]);
    wasm_v128_store(o + 4, c[r][1]);
  }
}

/* Floats between the 36 planes of a Winograd V/M block beyond their size: planes a multiple of
 * 4 KB apart would share cache sets (the transforms touch all of them at once). */
#define WINO_PAD 32

/*
 * Whether conv geometry takes the Winograd path: 3x3, stride 1, pad 1, the map kept, both sides
 * at least 4 (fwd: Ci % 4, Co % 8; the caller swaps for dx). Smaller maps take the tiny-map or
 * gathered-row loops.
 */
static int wino_applies(int H, int W, int OH, int OW, int Ci, int Co, int KH, int KW, int sh, int sw, int pt, int pl) {
  return KH == 3 && KW == 3 && sh == 1 && sw == 1 && pt == 1 && pl == 1 && OH == H && OW == W && H >= 4 && W >= 4 &&
         Ci % 4 == 0 && Co % 8 == 0;
}

/*
 * Which loops a conv takes: op 0 forward, 1 input gradient, 2 filter gradient; returns 0 Winograd,
 * 1 gathered rows, 2 tiny map. The kernels below branch on it; exported for the measurement of
 * which shapes take which loops (src/bench/conv-tiers.ts).
 */
EXPORT("conv_path") int conv_path(int op, int H, int W, int Ci, int OH, int OW, int Co, int KH, int KW, int sh, int sw, int pt, int pl) {
  if (op == 1 ? wino_applies(OH, OW, H, W, Co, Ci, KH, KW, sh, sw, pt, pl) : wino_applies(H, W, OH, OW, Ci, Co, KH, KW, sh, sw, pt, pl))
    return 0;
  if (op == 0) return OH * OW > TINY ? 1 : 2;
  if (op == 1) return H * W <= TINY ? 2 : 1;
  return OH * OW <= TINY && Ci % MR == 0 ? 2 : 1;
}

/* C[r][0..8) = sum_k A[r*as + k] * B[k*8 + 0..8) for r < MR (B packed 8 wide; output rows
 * through pointers). */
static inline __attribute__((always_inline)) void micro_p(const float *A, int as, const float *B, int K,
                                                          float *const *C) {
  V c[MR][2];
#pragma clang loop unroll(full)
  for (int r = 0; r < MR; r++) c[r][0] = c[r][1] = wasm_f32x4_splat(0.f);
  const float *a[MR];
#pragma clang loop unroll(full)
  for (int r = 0; r < MR; r++) a[r] = A + r * as;
  for (int k = 0; k < K; k++) {
    V b0 = wasm_v128_load(B), b1 = wasm_v128_load(B + 4);
    B += 8;
#pragma clang loop unroll(full)
    for (int r = 0; r < MR; r++) {
      V x = wasm_v128_load32_splat(a[r] + k);
      c[r][0] = MADD(c[r][0], x, b0);
      c[r][1] = MADD(c[r][1], x, b1);
    }
  }
#pragma clang loop unroll(full)
  for (int r = 0; r < MR; r++) {
    wasm_v128_store(C[r], c[r][0]);
    wasm_v128_store(C[r] + 4, c[r][1]);
  }
}

/* The same with output rows cs floats apart. */
static inline __attribute__((always_inline)) void micro_s(const float *A, int as, const float *B, int K, float *C, int cs) {
  float *outs[MR];
#pragma clang loop unroll(full)
  for (int r = 0; r < MR; r++) outs[r] = C + r * cs;
  micro_p(A, as, B, K, outs);
}

/*
 * Winograd F(4x4, 3x3) (Lavin & Gray's points 0, 1, -1, 2, -2) for the 3x3, stride-1, pad-1 convs
 * that keep the map size (most of a ResNet's work): 6x6 input tiles, 4x4 output tiles, 36
 * multiplies per tile and channel pair for 16 outputs instead of 144. Per block of TB tiles: the
 * input tiles are transformed (V = B^T d B, SIMD over channels: NHWC keeps them contiguous), 36
 * GEMMs M[e] = V[e] . U[e] run on the micro-kernel, and the outputs are transformed back
 * (Y = A^T M A). A tile's result does not depend on which block it falls in, so splitting the
 * images over threads gives the same bits. F(4x4) took 0.61-0.94x the time of the F(2x2, 3x3) it
 * replaced on the ResNets' shapes (measured), with a max error of 2e-6 to 1.1e-5 of the largest
 * value against the cpu backend instead of 2e-7 to 1.1e-6.
 *   B^T = [4 0 -5 0 1 0; 0 -4 -4 1 1 0; 0 4 -4 -1 1 0; 0 -2 -1 2 1 0; 0 2 -1 -2 1 0; 0 4 0 -5 0 1]
 *   G   = [1/4 0 0; -1/6 -1/6 -1/6; -1/6 1/6 -1/6; 1/24 1/12 1/6; 1/24 -1/12 1/6; 0 0 1]
 *   A^T = [1 1 1 1 1 0; 0 1 -1 2 -2 0; 0 1 1 4 4 0; 0 1 -1 8 -8 1]
 */

/*
 * Tiles per block of the forward: V and M blocks of 36 * TB * (Ci + Co) floats, ~1.2 MB (a block
 * streams all 36 transformed filters U once: blocks of ~128 KB ran 1.0-1.25x slower, most on the
 * 128-channel 4x4 maps, measured), TB a multiple of MR and at most 128. Tiles per block of the
 * filter gradient: ~7281 / (Ci + Co), 16 to 128 (larger and smaller measured the same).
 */
#ifndef WINO4_BLOCK
#define WINO4_BLOCK 8192
#endif
#ifndef WINO4_MAX_TB
#define WINO4_MAX_TB 128
#endif
#ifndef WINO4_DW_TILES
#define WINO4_DW_TILES 7281
#endif
#ifndef WINO4_DW_MAX
#define WINO4_DW_MAX 128
#endif
static int wino4_tb(int Ci, int Co) {
  int tb = WINO4_BLOCK / (Ci + Co);
  tb -= tb % MR;
  if (tb < 2 * MR) tb = 2 * MR;
  if (tb > WINO4_MAX_TB) tb = WINO4_MAX_TB;
  return tb;
}
static int wino4_tb_dw(int Ci, int Co) {
  int tb = WINO4_DW_TILES / (Ci + Co);
  if (tb < 16) tb = 16;
  if (tb > WINO4_DW_MAX) tb = WINO4_DW_MAX;
  return tb;
}
/* Floats of scratch the Winograd path needs (U or S, V block, M or D block, zero row, slack). */
static int wino4_floats(int Ci, int Co) {
  const int tb = wino4_tb(Ci, Co) > wino4_tb_dw(Ci, Co) ? wino4_tb(Ci, Co) : wino4_tb_dw(Ci, Co);
  return 36 * Ci * Co + 36 * (tb * (Ci + Co) + 2 * WINO_PAD) + (Ci > Co ? Ci : Co) + 16 + 16;
}

/* r = B^T d along one dimension (6 values). */
static inline __attribute__((always_inline)) void bt6(const V d[6], V r[6]) {
  /* Multiply-adds (fused in the relaxed build): ~30% fewer operations than multiply, then add. */
  const V four = wasm_f32x4_splat(4.f), mfour = wasm_f32x4_splat(-4.f), mfive = wasm_f32x4_splat(-5.f),
          two = wasm_f32x4_splat(2.f), mtwo = wasm_f32x4_splat(-2.f);
  const V a = wasm_f32x4_sub(d[4], d[2]), b = wasm_f32x4_sub(d[3], d[1]);
  r[0] = MADD(MADD(d[4], four, d[0]), mfive, d[2]);
  r[1] = MADD(wasm_f32x4_add(d[3], d[4]), mfour, wasm_f32x4_add(d[1], d[2]));
  r[2] = MADD(wasm_f32x4_sub(d[4], d[3]), four, wasm_f32x4_sub(d[1], d[2]));
  r[3] = MADD(a, two, b);
  r[4] = MADD(a, mtwo, b);
  r[5] = MADD(MADD(d[5], four, d[1]), mfive, d[3]);
}

/* V = B^T d B of the 6x6 input tile at rows 4ty-1.., columns 4tx-1.. (zero outside the map). */
static inline __attribute__((always_inline)) void wino4_in(const float *x, int n, int ty, int tx, int H, int W, int Ci,
                                                           const float *zero, float *v, int VS) {
  const float *d[36];
  for (int i = 0; i < 6; i++) {
    const int ih = 4 * ty - 1 + i;
    for (int j = 0; j < 6; j++) {
      const int iw = 4 * tx - 1 + j;
      d[i * 6 + j] = (ih >= 0 && ih < H && iw >= 0 && iw < W) ? x + ((n * H + ih) * W + iw) * Ci : zero;
    }
  }
  for (int c = 0; c < Ci; c += 4) {
    V r[6][6];
#pragma clang loop unroll(full)
    for (int j = 0; j < 6; j++) {
      V col[6], out[6];
#pragma clang loop unroll(full)
      for (int i = 0; i < 6; i++) col[i] = wasm_v128_load(d[i * 6 + j] + c);
      bt6(col, out);
#pragma clang loop unroll(full)
      for (int i = 0; i < 6; i++) r[i][j] = out[i];
    }
#pragma clang loop unroll(full)
    for (int i = 0; i < 6; i++) {
      V out[6];
      bt6(r[i], out);
#pragma clang loop unroll(full)
      for (int j = 0; j < 6; j++) wasm_v128_store(v + (i * 6 + j) * VS + c, out[j]);
    }
  }
}

/* y = A^T m along one dimension (6 -> 4 values). */
static inline __attribute__((always_inline)) void at6(const V m[6], V y[4]) {
  const V two = wasm_f32x4_splat(2.f), four = wasm_f32x4_splat(4.f), eight = wasm_f32x4_splat(8.f);
  const V s12 = wasm_f32x4_add(m[1], m[2]), d12 = wasm_f32x4_sub(m[1], m[2]);
  const V s34 = wasm_f32x4_add(m[3], m[4]), d34 = wasm_f32x4_sub(m[3], m[4]);
  y[0] = wasm_f32x4_add(wasm_f32x4_add(m[0], s12), s34);
  y[1] = MADD(d12, two, d34);
  y[2] = MADD(s12, four, s34);
  y[3] = MADD(wasm_f32x4_add(d12, m[5]), eight, d34);
}

/* G's fractions. */
#define SIXTH (1.f / 6.f)
#define TWELFTH (1.f / 12.f)
#define TWENTYFOURTH (1.f / 24.f)

/* u = G g (3 -> 6 values), 4 lanes at a time: g6's operations, lane by lane. */
static inline __attribute__((always_inline)) void g6v(V g0, V g1, V g2, V u[6]) {
  const V a = wasm_f32x4_add(wasm_f32x4_mul(g0, wasm_f32x4_splat(TWENTYFOURTH)), wasm_f32x4_mul(g2, wasm_f32x4_splat(SIXTH)));
  const V b = wasm_f32x4_mul(g1, wasm_f32x4_splat(TWELFTH));
  u[0] = wasm_f32x4_mul(g0, wasm_f32x4_splat(0.25f));
  u[1] = wasm_f32x4_mul(wasm_f32x4_neg(wasm_f32x4_add(wasm_f32x4_add(g0, g1), g2)), wasm_f32x4_splat(SIXTH));
  u[2] = wasm_f32x4_mul(wasm_f32x4_neg(wasm_f32x4_add(wasm_f32x4_sub(g0, g1), g2)), wasm_f32x4_splat(SIXTH));
  u[3] = wasm_f32x4_add(a, b);
  u[4] = wasm_f32x4_sub(a, b);
  u[5] = g2;
}

/* 4 floats p[0], p[s], p[2s], p[3s]. */
static inline __attribute__((always_inline)) V load_strided(const float *p, int s) {
  return s == 1 ? wasm_v128_load(p) : wasm_f32x4_make(p[0], p[s], p[2 * s], p[3 * s]);
}

/*
 * U[e][nb][ci][8] = (G g G^T)[e] for the filter g read at g + kh*skh + kw*skw + ci*sci + co*sco,
 * 4 output channels at a time.
 */
static void wino4_filter(const float *g, float *U, int Ci, int Co, int skh, int skw, int sci, int sco) {
  const int NB = Co / 8;
  for (int ci = 0; ci < Ci; ci++)
    for (int co = 0; co < Co; co += 4) {
      const float *gp = g + ci * sci + co * sco;
      V t[6][3];
#pragma clang loop unroll(full)
      for (int j = 0; j < 3; j++) {
        V u[6];
        g6v(load_strided(gp + j * skw, sco), load_strided(gp + skh + j * skw, sco), load_strided(gp + 2 * skh + j * skw, sco), u);
#pragma clang loop unroll(full)
        for (int i = 0; i < 6; i++) t[i][j] = u[i];
      }
#pragma clang loop unroll(full)
      for (int i = 0; i < 6; i++) {
        V u[6];
        g6v(t[i][0], t[i][1], t[i][2], u);
#pragma clang loop unroll(full)
        for (int j = 0; j < 6; j++) wasm_v128_store(U + (((i * 6 + j) * NB + co / 8) * Ci + ci) * 8 + co % 8, u[j]);
      }
    }
}

/*
 * y = conv3x3(x, g), stride 1, pad 1, y the size of x. g[kh][kw][ci][co] is read at
 * g + kh*skh + kw*skw + ci*sci + co*sco (so the input gradient passes the flipped, transposed
 * filter as strides). Ci % 4 == 0, Co % 8 == 0.
 */
static void conv_wino4(const float *x, const float *g, float *y, int N, int H, int W, int Ci, int Co, int skh, int skw,
                       int sci, int sco, char *scratch) {
  const int NB = Co / 8, TB = wino4_tb(Ci, Co), TH = (H + 3) / 4, TW = (W + 3) / 4, TT = N * TH * TW;
  float *U = (float *)(((unsigned)scratch + 15) & ~15u);
  const int VS = TB * Ci + WINO_PAD, MS = TB * Co + WINO_PAD;
  float *Vb = U + 36 * Ci * Co, *Mb = Vb + 36 * VS, *zero = Mb + 36 * MS;
  for (int c = 0; c < Ci; c++) zero[c] = 0.f;
  wino4_filter(g, U, Ci, Co, skh, skw, sci, sco);
  int n = 0, ty = 0, tx = 0;
  for (int t0 = 0; t0 < TT; t0 += TB) {
    const int tb = TT - t0 < TB ? TT - t0 : TB, tbr = (tb + MR - 1) / MR * MR;
    int bn = n, by = ty, bx = tx;
    for (int t = 0; t < tbr; t++) {
      float *v = Vb + t * Ci;
      if (t >= tb) {
        for (int e = 0; e < 36; e++)
          for (int c = 0; c < Ci; c++) v[e * VS + c] = 0.f;
        continue;
      }
      wino4_in(x, bn, by, bx, H, W, Ci, zero, v, VS);
      if (++bx == TW) {
        bx = 0;
        if (++by == TH) {
          by = 0;
          bn++;
        }
      }
    }
    for (int e = 0; e < 36; e++)
      for (int nb = 0; nb < NB; nb++) {
        const float *B = U + (e * NB + nb) * Ci * 8;
        for (int r0 = 0; r0 < tbr; r0 += MR)
          micro_s(Vb + e * VS + r0 * Ci, Ci, B, Ci, Mb + e * MS + r0 * Co + nb * 8, Co);
      }
    /* Output transform: y[4x4 tile] = A^T M A, rows and columns beyond the map dropped. */
    for (int t = 0; t < tb; t++) {
      const float *m = Mb + t * Co;
      const int oh = 4 * ty, ow = 4 * tx, nh = H - oh < 4 ? H - oh : 4, nw = W - ow < 4 ? W - ow : 4;
      float *o = y + ((n * H + oh) * W + ow) * Co;
      for (int c = 0; c < Co; c += 4) {
        V s[4][6];
#pragma clang loop unroll(full)
        for (int j = 0; j < 6; j++) {
          V col[6], out[4];
#pragma clang loop unroll(full)
          for (int i = 0; i < 6; i++) col[i] = wasm_v128_load(m + (i * 6 + j) * MS + c);
          at6(col, out);
#pragma clang loop unroll(full)
          for (int i = 0; i < 4; i++) s[i][j] = out[i];
        }
#pragma clang loop unroll(full)
        for (int i = 0; i < 4; i++) {
          V out[4];
          at6(s[i], out);
          if (i < nh)
#pragma clang loop unroll(full)
            for (int j = 0; j < 4; j++)
              if (j < nw) wasm_v128_store(o + (i * W + j) * Co + c, out[j]);
        }
      }
      if (++tx == TW) {
        tx = 0;
        if (++ty == TH) {
          ty = 0;
          n++;
        }
      }
    }
  }
}

/*
 * im2col rows of output pixels [p0, p0 + pc): A[pi][t*Ci + ci] = x at tap t of pixel p0 + pi (zero
 * where the tap reads padding), columns R..Rp zeroed. Pixel coordinates are stepped along
 * without divisions, and taps of pixels whose window lies inside the map are copied without
 * bounds checks.
 */
static void im2col(const float *x, float *A, int Rp, int p0, int pc, int H, int W, int Ci, int OH, int OW, int KH,
                   int KW, int sh, int sw, int pt, int pl) {
  const int R = KH * KW * Ci;
  int n = p0 / (OH * OW), q = p0 - n * (OH * OW), oh = q / OW, ow = q - oh * OW;
  for (int pi = 0; pi < pc; pi++) {
    float *a = A + pi * Rp;
    const int ih0 = oh * sh - pt, iw0 = ow * sw - pl;
    if (ih0 >= 0 && ih0 + KH <= H && iw0 >= 0 && iw0 + KW <= W) {
      const float *src = x + ((n * H + ih0) * W + iw0) * Ci;
      for (int kh = 0; kh < KH; kh++, src += W * Ci)
        for (int c = 0; c < KW * Ci; c++) a[kh * KW * Ci + c] = src[c];
    } else {
      for (int kh = 0; kh < KH; kh++) {
        const int ih = ih0 + kh;
        for (int kw = 0; kw < KW; kw++) {
          const int iw = iw0 + kw;
          float *dst = a + (kh * KW + kw) * Ci;
          if (ih >= 0 && ih < H && iw >= 0 && iw < W) {
            const float *src = x + ((n * H + ih) * W + iw) * Ci;
            for (int c = 0; c < Ci; c++) dst[c] = src[c];
          } else {
            for (int c = 0; c < Ci; c++) dst[c] = 0.f;
          }
        }
      }
    }
    for (int c = R; c < Rp; c++) a[c] = 0.f;
    if (++ow == OW) {
      ow = 0;
      if (++oh == OH) {
        oh = 0;
        n++;
      }
    }
  }
}

/* Output pixels per chunk of gathered GEMM rows (im2col rows of the forward conv, dy rows of a
 * phase of the input gradient): with rows of K = taps x channels contiguous floats the
 * micro-kernel runs ~1.7x faster than through per-tap row pointers (K = channels per tap),
 * measured on the stride-2 convs of the small ResNet, gathering included. */
#define CHUNK 64

/* Bytes of scratch conv_fwd / conv_bwd_input need (the caller allocates them). */
EXPORT("fwd_scratch") int fwd_scratch(int T, int Ci, int Co) {
  /* packed weights + row pointers (MR*T) + B pointers (T) + MR output pointers + 8-float dummy row
   * + zero row + tap list (3*T) + MR output base pointers */
  /* + gathered rows (CHUNK x (T*max(Ci, Co) + 4)) and a phase's packed filter (T*Ci*Co) */
  const int direct = T * Ci * Co + MR * T + T + MR + 8 + Ci + Co + 8 + 3 * T + MR + CHUNK * (T * (Ci > Co ? Ci : Co) + 4) +
                     T * Ci * Co + 8 + CHUNK + 8;
  /* 3x3 filters may take the Winograd path, forward (Ci -> Co) or input gradient (Co -> Ci). */
  const int a = T == 9 ? wino4_floats(Ci, Co) : 0, b = T == 9 ? wino4_floats(Co, Ci) : 0;
  const int most = direct > a ? (direct > b ? direct : b) : (a > b ? a : b);
  return 4 * most + 64;
}

/* The scratch of conv_fwd / conv_bwd_input (see fwd_scratch), with the filter packed into it. */
typedef struct {
  float *Bp, *dummy, *zero;
  const float **rows, **bptr;
  float **outs;
} Layout;

/*
 * Lay out `scratch` and pack the filter: Bp[nb][t][k][j] = w[t*Ci*Co + k*sk + (nb*8 + j)*sj] for
 * nb < NB, k < K; zero the zero row (max(Ci, Co) floats).
 */
static inline __attribute__((always_inline)) Layout layout(char *scratch, const float *w, int T, int Ci, int Co, int NB,
                                                           int K, int sk, int sj) {
  Layout L;
  L.Bp = (float *)(((unsigned)scratch + 15) & ~15u);
  L.rows = (const float **)(L.Bp + T * Ci * Co);
  L.bptr = L.rows + MR * T;
  L.outs = (float **)(L.bptr + T);
  L.dummy = (float *)(L.outs + MR);
  L.zero = L.dummy + 8;
  for (int i = 0; i < (Ci > Co ? Ci : Co); i++) L.zero[i] = 0.f;
  for (int nb = 0; nb < NB; nb++)
    for (int t = 0; t < T; t++)
      for (int k = 0; k < K; k++)
        for (int j = 0; j < 8; j++) L.Bp[((nb * T + t) * K + k) * 8 + j] = w[t * Ci * Co + k * sk + (nb * 8 + j) * sj];
  return L;
}

/* Groups of 8-column blocks sized so that a group's packed weights stay near 128 KB (L2). */
static int group_blocks(int K, int blocks) {
  int g = (128 * 1024) / (K * 8 * 4);
  if (g < 1) g = 1;
  if (g > blocks) g = blocks;
  return g;
}

/*
 * y = conv2d(x, w), stride (sh, sw), padding (pt, pl) before; Co % 8 == 0.
 */
EXPORT("conv_fwd")
void conv_fwd(const float *x, const float *w, float *y, int N, int H, int W, int Ci, int OH, int OW, int Co, int KH,
              int KW, int sh, int sw, int pt, int pl, char *scratch) {
  const int path = conv_path(0, H, W, Ci, OH, OW, Co, KH, KW, sh, sw, pt, pl);
  if (path == 0) {
    conv_wino4(x, w, y, N, H, W, Ci, Co, 3 * Ci * Co, Ci * Co, Co, 1, scratch);
    return;
  }
  const int T = KH * KW, NB = Co / 8;
  /* Bp[nb][t][ci][8] = w[t][ci][nb*8 + j] */
  const Layout L = layout(scratch, w, T, Ci, Co, NB, Ci, Co, 1);
  float *Bp = L.Bp, *dummy = L.dummy, *zero = L.zero;
  const float **rows = L.rows, **bptr = L.bptr;
  float **outs = L.outs;
  const int P = N * OH * OW, G = group_blocks(T * Ci, NB);
  if (path == 1) {
    /* im2col chunks, K = T*Ci per row. Bp[nb] is then [R][8] already. */
    const int R = T * Ci, Rp = (R + 3) & ~3;
    float *A = (float *)(((unsigned)(L.zero + Ci + Co + 8 + 3 * T + MR) + 15) & ~15u);
    for (int p0 = 0; p0 < P; p0 += CHUNK) {
      const int pc = P - p0 < CHUNK ? P - p0 : CHUNK, pcr = (pc + MR - 1) / MR * MR;
      im2col(x, A, Rp, p0, pc, H, W, Ci, OH, OW, KH, KW, sh, sw, pt, pl);
      for (int pi = pc; pi < pcr; pi++)
        for (int c = 0; c < Rp; c++) A[pi * Rp + c] = 0.f;
      for (int nb = 0; nb < NB; nb++)
        for (int r0 = 0; r0 < pcr; r0 += MR) {
          if (r0 + MR <= pc) {
            micro_s(A + r0 * Rp, Rp, Bp + nb * R * 8, R, y + (p0 + r0) * Co + nb * 8, Co);
          } else { /* last rows: through the dummy row */
            for (int r = 0; r < MR; r++) outs[r] = r0 + r < pc ? y + (p0 + r0 + r) * Co + nb * 8 : dummy;
            for (int r = 0; r < MR; r++) rows[r] = A + (r0 + r) * Rp;
            bptr[0] = Bp + nb * R * 8;
            micro(1, rows, bptr, R, 1, 8, outs, 0);
          }
        }
    }
    return;
  }
  if (path == 2) {
    /* Tiny maps: one output position at a time, live taps only; per 8-column block, MR images
     * per tile over all images (the block's live-tap weights, nT x Ci x 8 floats, stay in L1:
     * 1.7-2x faster than taking the blocks inside each image tile, measured). */
    int *taps = (int *)(zero + Ci + Co + 8);
    (void)G;
    for (int q = 0; q < OH * OW; q++) {
      const int oh = q / OW, ow = q - oh * OW;
      int nT = 0;
      for (int kh = 0; kh < KH; kh++) {
        const int ih = oh * sh + kh - pt;
        if (ih < 0 || ih >= H) continue;
        for (int kw = 0; kw < KW; kw++) {
          const int iw = ow * sw + kw - pl;
          if (iw < 0 || iw >= W) continue;
          taps[2 * nT] = kh * KW + kw;
          taps[2 * nT + 1] = (ih * W + iw) * Ci;
          nT++;
        }
      }
      for (int nb = 0; nb < NB; nb++) {
        for (int i = 0; i < nT; i++) bptr[i] = Bp + (nb * T + taps[2 * i]) * Ci * 8;
        for (int n0 = 0; n0 < N; n0 += MR) {
          for (int i = 0; i < nT; i++)
            for (int r = 0; r < MR; r++) rows[MR * i + r] = n0 + r < N ? x + (n0 + r) * H * W * Ci + taps[2 * i + 1] : zero;
          for (int r = 0; r < MR; r++) outs[r] = n0 + r < N ? y + ((n0 + r) * OH * OW + q) * Co + nb * 8 : dummy;
          micro(nT, rows, bptr, Ci, 1, 8, outs, 0);
        }
      }
    }
  }
}

/*
 * dx = conv2d_backprop_input(dy, w) for the forward above; Ci % 8 == 0.
 * dx pixels are taken one stride phase at a time (ih % sh, iw % sw), so that every pixel of a
 * 4-row tile reads the same taps: dx[n,ih,iw,:] = sum over taps with (ih + pt - kh) % sh == 0 and
 * (iw + pl - kw) % sw == 0 of dy[n,oh,ow,:] . w[kh,kw]^T. Pixels of no tap are zero.
 */
EXPORT("conv_bwd_input")
void conv_bwd_input(const float *dy, const float *w, float *dx, int N, int H, int W, int Ci, int OH, int OW, int Co,
                    int KH, int KW, int sh, int sw, int pt, int pl, char *scratch) {
  const int path = conv_path(1, H, W, Ci, OH, OW, Co, KH, KW, sh, sw, pt, pl);
  if (path == 0) {
    /* dx = conv3x3(dy, w flipped in both taps, ci and co swapped), stride 1, pad 1. */
    conv_wino4(dy, w + 8 * Ci * Co, dx, N, H, W, Co, Ci, -3 * Ci * Co, -Ci * Co, 1, Co, scratch);
    return;
  }
  const int T = KH * KW, NB = Ci / 8;
  if (NB == 0) return; /* Ci % 8 != 0: not a shape this kernel takes */
  /* Bp[nb][t][co][8] = w[t][nb*8 + j][co] */
  const Layout L = layout(scratch, w, T, Ci, Co, NB, Co, 1, Co);
  float *Bp = L.Bp, *dummy = L.dummy, *zero = L.zero;
  const float **rows = L.rows, **bptr = L.bptr;
  float **outs = L.outs;
  const int G = group_blocks(T * Co, NB);
  if (path == 2) {
    /* Tiny maps: one dx position at a time, live taps only, each 8-column block over all
     * images (as the forward's tiny maps). */
    int *taps = (int *)(zero + Ci + Co + 8);
    (void)G;
    for (int q = 0; q < H * W; q++) {
      const int ih = q / W, iw = q - ih * W;
      int nT = 0;
      for (int kh = 0; kh < KH; kh++) {
        const int a = ih + pt - kh;
        if (a < 0 || a % sh || a / sh >= OH) continue;
        for (int kw = 0; kw < KW; kw++) {
          const int b = iw + pl - kw;
          if (b < 0 || b % sw || b / sw >= OW) continue;
          taps[2 * nT] = kh * KW + kw;
          taps[2 * nT + 1] = (a / sh * OW + b / sw) * Co;
          nT++;
        }
      }
      for (int nb = 0; nb < NB; nb++) {
        for (int i = 0; i < nT; i++) bptr[i] = Bp + (nb * T + taps[2 * i]) * Co * 8;
        for (int n0 = 0; n0 < N; n0 += MR) {
          for (int i = 0; i < nT; i++)
            for (int r = 0; r < MR; r++) rows[MR * i + r] = n0 + r < N ? dy + (n0 + r) * OH * OW * Co + taps[2 * i + 1] : zero;
          for (int r = 0; r < MR; r++) outs[r] = n0 + r < N ? dx + ((n0 + r) * H * W + q) * Ci + nb * 8 : dummy;
          micro(nT, rows, bptr, Co, 1, 8, outs, 0);
        }
      }
    }
    return;
  }
  /* Tap list of a phase: tap index and the dy row/col offsets (oh = i + dh, ow = j + dw); then
   * the chunk's dx pixel addresses, the phase's filter panel and the gathered rows. */
  int *tl = (int *)(zero + Ci + Co + 8);
  float **obase = (float **)(tl + 3 * T);
  float *Bph = (float *)(((unsigned)(obase + CHUNK) + 15) & ~15u);
  float *A = (float *)(((unsigned)(Bph + T * Ci * Co) + 15) & ~15u);
  for (int ph = 0; ph < sh && ph < H; ph++) {
    for (int pw = 0; pw < sw && pw < W; pw++) {
      const int PH = (H - ph + sh - 1) / sh, PW = (W - pw + sw - 1) / sw, P = N * PH * PW;
      /* Taps of this phase: (ph + pt - kh) and (pw + pl - kw) divisible by the strides. */
      int nT = 0;
      for (int kh = 0; kh < KH; kh++) {
        const int a = ph + pt - kh;
        if (((a % sh) + sh) % sh) continue;
        for (int kw = 0; kw < KW; kw++) {
          const int b = pw + pl - kw;
          if (((b % sw) + sw) % sw) continue;
          tl[3 * nT] = kh * KW + kw;
          tl[3 * nT + 1] = a >= 0 ? a / sh : -((-a) / sh); /* exact division */
          tl[3 * nT + 2] = b >= 0 ? b / sw : -((-b) / sw);
          nT++;
        }
      }
      if (nT == 0) {
        for (int n = 0; n < N; n++)
          for (int i = 0; i < PH; i++)
            for (int j = 0; j < PW; j++) {
              float *o = dx + ((n * H + ph + i * sh) * W + pw + j * sw) * Ci;
              for (int c = 0; c < Ci; c++) o[c] = 0.f;
            }
        continue;
      }
      /* This phase's filter panel, Bph[nb][i][co][8] = Bp[nb][tap i][co][8], then chunks of its
       * dx pixels: gathered dy rows A[pi][i*Co + co] (zero where the tap falls outside dy), one
       * GEMM of K = nT*Co per 4 pixels and 8 columns. */
      const int K = nT * Co, Kp = (K + 3) & ~3;
      for (int nb = 0; nb < NB; nb++)
        for (int t = 0; t < nT; t++) {
          const float *src = Bp + (nb * T + tl[3 * t]) * Co * 8;
          float *dst = Bph + (nb * nT + t) * Co * 8;
          for (int c = 0; c < Co * 8; c++) dst[c] = src[c];
        }
      int n = 0, i = 0, j = 0; /* the chunk's first pixel, stepped along without divisions */
      for (int p0 = 0; p0 < P; p0 += CHUNK) {
        const int pc = P - p0 < CHUNK ? P - p0 : CHUNK, pcr = (pc + MR - 1) / MR * MR;
        for (int pi = 0; pi < pcr; pi++) {
          float *a = A + pi * Kp;
          if (pi >= pc) {
            for (int c = 0; c < Kp; c++) a[c] = 0.f;
            obase[pi] = dummy;
            continue;
          }
          for (int t = 0; t < nT; t++) {
            const int oh = i + tl[3 * t + 1], ow = j + tl[3 * t + 2];
            float *dst = a + t * Co;
            if (oh >= 0 && oh < OH && ow >= 0 && ow < OW) {
              const float *src = dy + ((n * OH + oh) * OW + ow) * Co;
              for (int c = 0; c < Co; c++) dst[c] = src[c];
            } else {
              for (int c = 0; c < Co; c++) dst[c] = 0.f;
            }
          }
          for (int c = K; c < Kp; c++) a[c] = 0.f;
          obase[pi] = dx + ((n * H + ph + i * sh) * W + pw + j * sw) * Ci;
          if (++j == PW) {
            j = 0;
            if (++i == PH) {
              i = 0;
              n++;
            }
          }
        }
        for (int nb = 0; nb < NB; nb++)
          for (int r0 = 0; r0 < pcr; r0 += MR) {
            for (int r = 0; r < MR; r++) outs[r] = obase[r0 + r] == dummy ? dummy : obase[r0 + r] + nb * 8;
            micro_p(A + r0 * Kp, Kp, Bph + nb * nT * Co * 8, K, outs);
          }
      }
    }
  }
}

/*
 * S[r][0..8) += sum_k A[k*as + r] * B[k*bs + 0..8) for r < MR: the filter gradient's GEMM, whose
 * MR rows are adjacent floats of each k-row of A (one pointer and immediate offsets for A, one
 * for B: fewer instructions per multiply-add than per-row pointers).
 */
static inline __attribute__((always_inline)) void micro_t(const float *A, int as, const float *B, int bs, int K, float *C,
                                                          int cs) {
  V c[MR][2];
#pragma clang loop unroll(full)
  for (int r = 0; r < MR; r++) c[r][0] = c[r][1] = wasm_f32x4_splat(0.f);
  for (int k = 0; k < K; k++) {
    const V b0 = wasm_v128_load(B), b1 = wasm_v128_load(B + 4);
#pragma clang loop unroll(full)
    for (int r = 0; r < MR; r++) {
      const V x = wasm_v128_load32_splat(A + r);
      c[r][0] = MADD(c[r][0], x, b0);
      c[r][1] = MADD(c[r][1], x, b1);
    }
    A += as;
    B += bs;
  }
#pragma clang loop unroll(full)
  for (int r = 0; r < MR; r++) {
    wasm_v128_store(C + r * cs, wasm_f32x4_add(c[r][0], wasm_v128_load(C + r * cs)));
    wasm_v128_store(C + r * cs + 4, wasm_f32x4_add(c[r][1], wasm_v128_load(C + r * cs + 4)));
  }
}

/* (r0, r1, r2) = G^T s (6 -> 3 values), 4 lanes at a time. */
static inline __attribute__((always_inline)) void gt6(const V s[6], V *r0, V *r1, V *r2) {
  const V six = wasm_f32x4_splat(SIXTH), twelve = wasm_f32x4_splat(TWELFTH), tf = wasm_f32x4_splat(TWENTYFOURTH);
  *r0 = wasm_f32x4_add(wasm_f32x4_sub(wasm_f32x4_mul(s[0], wasm_f32x4_splat(0.25f)), wasm_f32x4_mul(wasm_f32x4_add(s[1], s[2]), six)),
                       wasm_f32x4_mul(wasm_f32x4_add(s[3], s[4]), tf));
  *r1 = wasm_f32x4_add(wasm_f32x4_mul(wasm_f32x4_sub(s[2], s[1]), six), wasm_f32x4_mul(wasm_f32x4_sub(s[3], s[4]), twelve));
  *r2 = wasm_f32x4_add(wasm_f32x4_mul(wasm_f32x4_sub(wasm_f32x4_sub(wasm_f32x4_add(s[3], s[4]), s[1]), s[2]), six), s[5]);
}

/*
 * Filter gradient of the Winograd-shaped convs (conv_wino4's geometry), as the exact gradient of
 * that forward: with V = B^T d B per input tile (the forward's transform) and D = A dy A^T per
 * 4x4 tile of dy (zero beyond the map), S[e] = sum over tiles of V[e]^T D[e] (a GEMM whose long
 * dimension is the tiles), then dw = G^T S G once at the end. Only dw's 8-column blocks
 * [nb0, nb1) are computed.
 */
static void conv_wino4_filter(const float *x, const float *dy, float *dw, int N, int H, int W, int Ci, int Co, int nb0,
                              int nb1, char *scratch) {
  const int TB = wino4_tb_dw(Ci, Co), TH = (H + 3) / 4, TW = (W + 3) / 4, TT = N * TH * TW;
  float *S = (float *)(((unsigned)scratch + 15) & ~15u);
  const int VS = TB * Ci + WINO_PAD, MS = TB * Co + WINO_PAD;
  float *Vb = S + 36 * Ci * Co, *Db = Vb + 36 * VS, *zero = Db + 36 * MS;
  for (int c = 0; c < (Ci > Co ? Ci : Co); c++) zero[c] = 0.f;
  for (int i = 0; i < 36 * Ci * Co; i++) S[i] = 0.f;
  const V two = wasm_f32x4_splat(2.f), four = wasm_f32x4_splat(4.f), eight = wasm_f32x4_splat(8.f);
  int n = 0, ty = 0, tx = 0;
  for (int t0 = 0; t0 < TT; t0 += TB) {
    const int tb = TT - t0 < TB ? TT - t0 : TB;
    for (int t = 0; t < tb; t++) {
      float *v = Vb + t * Ci, *dd = Db + t * Co;
      wino4_in(x, n, ty, tx, H, W, Ci, zero, v, VS);
      const int oh = 4 * ty, ow = 4 * tx;
      const float *q[16];
      for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++)
          q[i * 4 + j] = oh + i < H && ow + j < W ? dy + ((n * H + oh + i) * W + ow + j) * Co : zero;
      for (int c = nb0 * 8; c < nb1 * 8; c += 4) {
        /* rows: u[a][j] = sum_i A[a][i] q[i][j]; then the same on columns. A = (A^T)^T. */
        V u[6][4];
#pragma clang loop unroll(full)
        for (int j = 0; j < 4; j++) {
          const V q0 = wasm_v128_load(q[j] + c), q1 = wasm_v128_load(q[4 + j] + c), q2 = wasm_v128_load(q[8 + j] + c),
                  q3 = wasm_v128_load(q[12 + j] + c);
          const V s02 = wasm_f32x4_add(q0, q2), s13 = wasm_f32x4_add(q1, q3);
          const V f02 = MADD(q0, four, q2), f13 = MADD(wasm_f32x4_mul(two, q1), eight, q3);
          u[0][j] = q0;
          u[1][j] = wasm_f32x4_add(s02, s13);
          u[2][j] = wasm_f32x4_sub(s02, s13);
          u[3][j] = wasm_f32x4_add(f02, f13);
          u[4][j] = wasm_f32x4_sub(f02, f13);
          u[5][j] = q3;
        }
#pragma clang loop unroll(full)
        for (int a = 0; a < 6; a++) {
          const V s02 = wasm_f32x4_add(u[a][0], u[a][2]), s13 = wasm_f32x4_add(u[a][1], u[a][3]);
          const V f02 = MADD(u[a][0], four, u[a][2]);
          const V f13 = MADD(wasm_f32x4_mul(two, u[a][1]), eight, u[a][3]);
          wasm_v128_store(dd + (a * 6 + 0) * MS + c, u[a][0]);
          wasm_v128_store(dd + (a * 6 + 1) * MS + c, wasm_f32x4_add(s02, s13));
          wasm_v128_store(dd + (a * 6 + 2) * MS + c, wasm_f32x4_sub(s02, s13));
          wasm_v128_store(dd + (a * 6 + 3) * MS + c, wasm_f32x4_add(f02, f13));
          wasm_v128_store(dd + (a * 6 + 4) * MS + c, wasm_f32x4_sub(f02, f13));
          wasm_v128_store(dd + (a * 6 + 5) * MS + c, u[a][3]);
        }
      }
      if (++tx == TW) {
        tx = 0;
        if (++ty == TH) {
          ty = 0;
          n++;
        }
      }
    }
    for (int e = 0; e < 36; e++)
      for (int ci0 = 0; ci0 < Ci; ci0 += MR)
        for (int nb = nb0; nb < nb1; nb++)
          micro_t(Vb + e * VS + ci0, Ci, Db + e * MS + nb * 8, Co, tb, S + (e * Ci + ci0) * Co + nb * 8, Co);
  }
  /* dw[i][j] = sum_ab G[a][i] S[a*6+b] G[b][j]: G^T = [1/4 -1/6 -1/6 1/24 1/24 0;
   * 0 -1/6 1/6 1/12 -1/12 0; 0 -1/6 -1/6 1/6 1/6 1]; 4 output channels at a time. */
  for (int ci = 0; ci < Ci; ci++)
    for (int co = nb0 * 8; co < nb1 * 8; co += 4) {
      V t[3][6];
#pragma clang loop unroll(full)
      for (int b = 0; b < 6; b++) {
        V c6[6];
#pragma clang loop unroll(full)
        for (int a = 0; a < 6; a++) c6[a] = wasm_v128_load(S + ((a * 6 + b) * Ci + ci) * Co + co);
        gt6(c6, &t[0][b], &t[1][b], &t[2][b]);
      }
#pragma clang loop unroll(full)
      for (int i = 0; i < 3; i++) {
        V o0, o1, o2;
        gt6(t[i], &o0, &o1, &o2);
        float *o = dw + (i * 3) * Ci * Co + ci * Co + co;
        wasm_v128_store(o, o0);
        wasm_v128_store(o + Ci * Co, o1);
        wasm_v128_store(o + 2 * Ci * Co, o2);
      }
    }
}

/* Pixels per im2col chunk of conv_bwd_filter, and the scratch it needs. */
static int chunk_pixels(int R) {
#ifndef DW_CHUNK_BYTES
#define DW_CHUNK_BYTES (64 * 1024) /* A chunk in L1/L2: 1.1-1.3x faster than 256 KB, measured */
#endif
  int pc = DW_CHUNK_BYTES / (R * 4);
  if (pc < 32) pc = 32;
  if (pc > 512) pc = 512;
  return pc;
}

/* Images per chunk of the tiny-map filter gradient. */
#define TINY_IMAGES 128

EXPORT("filter_scratch") int filter_scratch(int T, int Ci, int Co) {
  const int R = T * Ci, Rp = (R + MR - 1) / MR * MR;
  const int im2col = chunk_pixels(R) * Rp, tiny = TINY_IMAGES * (Ci + 4 + Co + 8);
  const int most = im2col > tiny ? im2col : tiny, wino = T == 9 ? wino4_floats(Ci, Co) + (Ci > Co ? Ci : Co) : 0;
  return 4 * ((most > wino ? most : wino) + MR + 8 + MR + 1) + 64;
}

/*
 * dw = conv2d_backprop_filter(x, dy); Co % 8 == 0. For each chunk of output pixels, the im2col
 * rows A[p][t*Ci + ci] (zero where the tap reads padding; R padded to a multiple of MR with
 * zeros) are built in scratch, then dw[r][co] += sum_p A[p][r] * dy[p][co]. Only the 8-column
 * blocks [nb0, nb1) of dw are computed (threads split dw by columns, so that every element is
 * summed in the same order whatever the thread count).
 */
EXPORT("conv_bwd_filter")
void conv_bwd_filter(const float *x, const float *dy, float *dw, int N, int H, int W, int Ci, int OH, int OW, int Co,
                     int KH, int KW, int sh, int sw, int pt, int pl, char *scratch, int nb0, int nb1) {
  const int path = conv_path(2, H, W, Ci, OH, OW, Co, KH, KW, sh, sw, pt, pl);
  if (path == 0) {
    conv_wino4_filter(x, dy, dw, N, H, W, Ci, Co, nb0, nb1, scratch);
    return;
  }
  const int T = KH * KW, R = T * Ci, Rp = (R + MR - 1) / MR * MR, P = N * OH * OW, PC = chunk_pixels(R);
  float *A = (float *)(((unsigned)scratch + 15) & ~15u);
  const int tinyFloats = TINY_IMAGES * (Ci + 4 + Co + 8);
  const float **rows = (const float **)(A + (PC * Rp > tinyFloats ? PC * Rp : tinyFloats));
  const float **bptr = rows + MR;
  float **outs = (float **)(bptr + 1);
  float *dummy = (float *)(outs + MR);
  for (int r = 0; r < R; r++)
    for (int c = nb0 * 8; c < nb1 * 8; c++) dw[r * Co + c] = 0.f;
  if (path == 2) {
    /* Tiny maps: per chunk of images, output position q and live tap t,
     * dw[t] += X^T . D with X = x[images, tap input position, :] and D = dy[images, q, :], both
     * first copied to rows of a padded stride (an image's stride in x or dy is often a multiple
     * of 4 KB, which would put every row of a tile in the same cache set). */
    const int XS = Ci + 4, DS = Co + 8;
    float *X = A, *D = A + TINY_IMAGES * XS;
    for (int n0 = 0; n0 < N; n0 += TINY_IMAGES) {
      const int nc = N - n0 < TINY_IMAGES ? N - n0 : TINY_IMAGES;
      for (int q = 0; q < OH * OW; q++) {
        const int oh = q / OW, ow = q - oh * OW;
        for (int i = 0; i < nc; i++) {
          const float *src = dy + ((n0 + i) * OH * OW + q) * Co;
          for (int c = nb0 * 8; c < nb1 * 8; c++) D[i * DS + c] = src[c];
        }
        for (int kh = 0; kh < KH; kh++) {
          const int ih = oh * sh + kh - pt;
          if (ih < 0 || ih >= H) continue;
          for (int kw = 0; kw < KW; kw++) {
            const int iw = ow * sw + kw - pl;
            if (iw < 0 || iw >= W) continue;
            const int t = kh * KW + kw;
            for (int i = 0; i < nc; i++) {
              const float *src = x + (((n0 + i) * H + ih) * W + iw) * Ci;
              for (int c = 0; c < Ci; c++) X[i * XS + c] = src[c];
            }
            for (int ci0 = 0; ci0 < Ci; ci0 += MR)
              for (int nb = nb0; nb < nb1; nb++)
                micro_t(X + ci0, XS, D + nb * 8, DS, nc, dw + (t * Ci + ci0) * Co + nb * 8, Co);
          }
        }
      }
    }
    return;
  }
  for (int p0 = 0; p0 < P; p0 += PC) {
    const int pc = P - p0 < PC ? P - p0 : PC;
    im2col(x, A, Rp, p0, pc, H, W, Ci, OH, OW, KH, KW, sh, sw, pt, pl);
    const float *dy0 = dy + p0 * Co;
    for (int r0 = 0; r0 < Rp; r0 += MR) {
      if (r0 + MR <= R) {
        for (int nb = nb0; nb < nb1; nb++) micro_t(A + r0, Rp, dy0 + nb * 8, Co, pc, dw + r0 * Co + nb * 8, Co);
        continue;
      }
      for (int r = 0; r < MR; r++) rows[r] = A + r0 + r;
      for (int nb = nb0; nb < nb1; nb++) {
        bptr[0] = dy0 + nb * 8;
        for (int r = 0; r < MR; r++) outs[r] = r0 + r < R ? dw + (r0 + r) * Co + nb * 8 : dummy;
        micro(1, rows, bptr, pc, Rp, Co, outs, 1);
      }
    }
  }
}

/* dst[i] += src[i] for i < n (float32 adds, in order of i: the same result as scalar code). */
EXPORT("add_into") void add_into(float *dst, const float *src, int n) {
  int i = 0;
  for (; i + 4 <= n; i += 4) wasm_v128_store(dst + i, wasm_f32x4_add(wasm_v128_load(dst + i), wasm_v128_load(src + i)));
  for (; i < n; i++) dst[i] += src[i];
}

/*
 * Activation statistics for the dead-units instrument, in one pass over x ([n / C rows][C]):
 * mx[c] = max over the rows (NaN if any is NaN: f32x4.max propagates it, as tf.max does); returns
 * how many elements are <= 0 (NaN is not).
 */
EXPORT("act_stats") int act_stats(const float *x, int n, int C, float *mx) {
  for (int c = 0; c < C; c++) mx[c] = -__builtin_inff();
  int count = 0;
  if (C % 4 == 0) {
    const V zero = wasm_f32x4_splat(0.f);
    v128_t cnt = wasm_i32x4_splat(0);
    for (int i = 0; i < n; i += C)
      for (int c = 0; c < C; c += 4) {
        const V v = wasm_v128_load(x + i + c);
        wasm_v128_store(mx + c, wasm_f32x4_max(wasm_v128_load(mx + c), v));
        cnt = wasm_i32x4_sub(cnt, wasm_f32x4_le(v, zero)); /* true lanes are -1 */
      }
    count = wasm_i32x4_extract_lane(cnt, 0) + wasm_i32x4_extract_lane(cnt, 1) + wasm_i32x4_extract_lane(cnt, 2) +
            wasm_i32x4_extract_lane(cnt, 3);
  } else {
    for (int i = 0; i < n; i += C)
      for (int c = 0; c < C; c++) {
        const float v = x[i + c], m = mx[c];
        if (m == m && (v != v || v > m)) mx[c] = v; /* a NaN, once there, stays */
        if (v <= 0.f) count++;
      }
  }
  return count;
}

/*
 * ReLU's gradient in one pass: out = dy * step(x), step(x) = 1 where x > 0, NaN where x is NaN,
 * else 0 (tfjs' Relu gradient, mul(dy, step(x)), to the bit).
 */
EXPORT("relu_grad") void relu_grad(const float *dy, const float *x, float *out, int n) {
  int i = 0;
  const V one = wasm_f32x4_splat(1.f);
  for (; i + 4 <= n; i += 4) {
    const V xv = wasm_v128_load(x + i);
    V st = wasm_v128_and(wasm_f32x4_gt(xv, wasm_f32x4_splat(0.f)), one);
    st = wasm_v128_bitselect(xv, st, wasm_f32x4_ne(xv, xv)); /* NaN lanes: x itself */
    wasm_v128_store(out + i, wasm_f32x4_mul(wasm_v128_load(dy + i), st));
  }
  for (; i < n; i++) {
    const float v = x[i];
    out[i] = dy[i] * (v != v ? v : (v > 0.f ? 1.f : 0.f));
  }
}

/*
 * MaxPool gradient (NHWC, the ResNet stem's 3x3/2 pool): each output's gradient goes to the first
 * maximum of its window in row-major scan order ('>' comparisons, as tfjs' cpu kernel). dx is
 * zeroed first; scratch holds C floats and C ints.
 */
EXPORT("maxpool_grad")
void maxpool_grad(const float *dy, const float *x, float *dx, int B, int H, int W, int C, int OH, int OW, int sh, int sw,
                  int fh, int fw, int top, int left, char *scratch) {
  float *best = (float *)(((unsigned)scratch + 15) & ~15u);
  int *pos = (int *)(best + C);
  for (int i = 0; i < B * H * W * C; i++) dx[i] = 0.f;
  const float *o = dy;
  for (int b = 0; b < B; b++)
    for (int yr = 0; yr < OH; yr++) {
      const int r0 = yr * sh - top, rMin = r0 > 0 ? r0 : 0, rMax = r0 + fh < H ? r0 + fh : H;
      for (int yc = 0; yc < OW; yc++, o += C) {
        const int c0 = yc * sw - left, cMin = c0 > 0 ? c0 : 0, cMax = c0 + fw < W ? c0 + fw : W;
        if (C % 4 == 0) {
          /* 4 channels at a time: the same scan and '>' per channel, the same sums. */
          for (int d = 0; d < C; d += 4) {
            V bv = wasm_f32x4_splat(-__builtin_inff());
            v128_t pv = wasm_i32x4_splat(-1);
            for (int r = rMin; r < rMax; r++)
              for (int cc = cMin; cc < cMax; cc++) {
                const int at = ((b * H + r) * W + cc) * C + d;
                const V xv = wasm_v128_load(x + at);
                const v128_t gt = wasm_f32x4_gt(xv, bv);
                bv = wasm_v128_bitselect(xv, bv, gt);
                pv = wasm_v128_bitselect(wasm_i32x4_add(wasm_i32x4_splat(at), wasm_i32x4_make(0, 1, 2, 3)), pv, gt);
              }
            const int p0 = wasm_i32x4_extract_lane(pv, 0), p1 = wasm_i32x4_extract_lane(pv, 1),
                      p2 = wasm_i32x4_extract_lane(pv, 2), p3 = wasm_i32x4_extract_lane(pv, 3);
            if (p0 >= 0) dx[p0] += o[d];
            if (p1 >= 0) dx[p1] += o[d + 1];
            if (p2 >= 0) dx[p2] += o[d + 2];
            if (p3 >= 0) dx[p3] += o[d + 3];
          }
          continue;
        }
        for (int d = 0; d < C; d++) {
          best[d] = -__builtin_inff();
          pos[d] = -1;
        }
        for (int r = rMin; r < rMax; r++)
          for (int cc = cMin; cc < cMax; cc++) {
            const int base = ((b * H + r) * W + cc) * C;
            for (int d = 0; d < C; d++)
              if (x[base + d] > best[d]) {
                best[d] = x[base + d];
                pos[d] = base + d;
              }
          }
        for (int d = 0; d < C; d++)
          if (pos[d] >= 0) dx[pos[d]] += o[d];
      }
    }
}

/*
 * One torch.optim.SGD step for one parameter, as the project's tfjs ops compute it, fused:
 *   d = g + p * wd (g where wd = 0);  buf' = first ? d : buf * m + d;  p' = p - buf' * lr
 * (each product and sum rounded to float32 separately: the module is built with
 * -ffp-contract=off, so the result is bit-identical to the unfused ops).
 */
EXPORT("sgd_step")
void sgd_step(const float *p, const float *buf, const float *g, float *pOut, float *bufOut, int n, float lr, float m,
              float wd, int first) {
  int i = 0;
  const int decay = wd != 0.f; /* without decay d is g itself, as the ops skip the add */
  const V vlr = wasm_f32x4_splat(lr), vm = wasm_f32x4_splat(m), vwd = wasm_f32x4_splat(wd);
  for (; i + 4 <= n; i += 4) {
    const V pv = wasm_v128_load(p + i);
    const V d = decay ? wasm_f32x4_add(wasm_v128_load(g + i), wasm_f32x4_mul(pv, vwd)) : wasm_v128_load(g + i);
    const V b = first ? d : wasm_f32x4_add(wasm_f32x4_mul(wasm_v128_load(buf + i), vm), d);
    wasm_v128_store(bufOut + i, b);
    wasm_v128_store(pOut + i, wasm_f32x4_sub(pv, wasm_f32x4_mul(b, vlr)));
  }
  for (; i < n; i++) {
    const float d = decay ? g[i] + p[i] * wd : g[i];
    const float b = first ? d : buf[i] * m + d;
    bufOut[i] = b;
    pOut[i] = p[i] - b * lr;
  }
}

/* sgd_step with lr, m and wd read from params[0..3) and first from ((int *)params)[3] (the conv
 * pool passes integers only). */
EXPORT("sgd_step_p")
void sgd_step_p(const float *p, const float *buf, const float *g, float *pOut, float *bufOut, int n, const float *params) {
  sgd_step(p, buf, g, pOut, bufOut, n, params[0], params[1], params[2], ((const int *)params)[3]);
}

/*
 * Training-mode BatchNorm over channels-last rows ([rows][C], C % 4 == 0), the passes of
 * src/backend/added-kernels.ts: per-channel sums in float64 (PyTorch's CPU accumulation type),
 * everything element-wise in float32 in the order the unfused tfjs ops take. Each call covers a
 * range of rows (the caller splits the rows in fixed parts over the thread pool and adds the
 * parts' sums in order, so results do not depend on the thread count). Optional pointers are 0.
 */
static inline __attribute__((always_inline)) V lo64(V v) { return wasm_f64x2_promote_low_f32x4(v); }
static inline __attribute__((always_inline)) V hi64(V v) {
  return wasm_f64x2_promote_low_f32x4(wasm_i32x4_shuffle(v, v, 2, 3, 2, 3));
}
static inline __attribute__((always_inline)) void acc2(double *acc, V lo, V hi) {
  wasm_v128_store(acc, wasm_f64x2_add(wasm_v128_load(acc), lo));
  wasm_v128_store(acc + 2, wasm_f64x2_add(wasm_v128_load(acc + 2), hi));
}

/*
 * Rows are taken in pairs: the pair's two values are added in float64 (exact for float32 inputs
 * of similar size), then added to the accumulator, which halves the accumulator traffic.
 */

/* acc[c] = sum over the rows of x[., c]. */
EXPORT("bn_sum") void bn_sum(const float *x, int rows, int C, double *acc) {
  for (int c = 0; c < C; c++) acc[c] = 0.0;
  int i = 0;
  for (; i + 2 <= rows; i += 2, x += 2 * C)
    for (int c = 0; c < C; c += 4) {
      const V v = wasm_v128_load(x + c), w = wasm_v128_load(x + C + c);
      acc2(acc + c, wasm_f64x2_add(lo64(v), lo64(w)), wasm_f64x2_add(hi64(v), hi64(w)));
    }
  if (i < rows)
    for (int c = 0; c < C; c += 4) {
      const V v = wasm_v128_load(x + c);
      acc2(acc + c, lo64(v), hi64(v));
    }
}

/* (x - mean)^2 of 4 channels in float64: the difference in float32, squared in float64. */
static inline __attribute__((always_inline)) void sq64(const float *x, const float *mean, V *l, V *h) {
  const V d = wasm_f32x4_sub(wasm_v128_load(x), wasm_v128_load(mean));
  *l = lo64(d);
  *h = hi64(d);
  *l = wasm_f64x2_mul(*l, *l);
  *h = wasm_f64x2_mul(*h, *h);
}

/* acc[c] = sum over the rows of (x[., c] - mean[c])^2. */
EXPORT("bn_sumsq") void bn_sumsq(const float *x, int rows, int C, const float *mean, double *acc) {
  for (int c = 0; c < C; c++) acc[c] = 0.0;
  int i = 0;
  for (; i + 2 <= rows; i += 2, x += 2 * C)
    for (int c = 0; c < C; c += 4) {
      V l0, h0, l1, h1;
      sq64(x + c, mean + c, &l0, &h0);
      sq64(x + C + c, mean + c, &l1, &h1);
      acc2(acc + c, wasm_f64x2_add(l0, l1), wasm_f64x2_add(h0, h1));
    }
  if (i < rows)
    for (int c = 0; c < C; c += 4) {
      V l0, h0;
      sq64(x + c, mean + c, &l0, &h0);
      acc2(acc + c, l0, h0);
    }
}

/*
 * y = x * a[c] + b[c], then + r (the residual, if r), then max(y, 0) (if relu: tfjs' Relu on wasm,
 * NaN kept, -0 to 0).
 */
EXPORT("bn_apply")
void bn_apply(const float *x, const float *r, float *y, int rows, int C, const float *a, const float *b, int relu) {
  const V zero = wasm_f32x4_splat(0.f);
  for (int i = 0; i < rows; i++, x += C, y += C, r = r ? r + C : r)
    for (int c = 0; c < C; c += 4) {
      V v = wasm_f32x4_add(wasm_f32x4_mul(wasm_v128_load(x + c), wasm_v128_load(a + c)), wasm_v128_load(b + c));
      if (r) v = wasm_f32x4_add(v, wasm_v128_load(r + c));
      if (relu) v = wasm_f32x4_max(v, zero);
      wasm_v128_store(y + c, v);
    }
}

/* The upstream gradient through the ReLU whose output is y (relu_grad's values), or dy itself. */
static inline __attribute__((always_inline)) V masked(const float *dy, const float *y, int i) {
  const V g = wasm_v128_load(dy + i);
  if (!y) return g;
  const V yv = wasm_v128_load(y + i);
  V st = wasm_v128_and(wasm_f32x4_gt(yv, wasm_f32x4_splat(0.f)), wasm_f32x4_splat(1.f));
  st = wasm_v128_bitselect(yv, st, wasm_f32x4_ne(yv, yv));
  return wasm_f32x4_mul(g, st);
}

/* g = masked(dy, y) of 4 channels (into gout if gout) and (x - mean) * g, both float32. */
static inline __attribute__((always_inline)) void gterms(const float *dy, const float *y, const float *x, float *gout,
                                                         const float *mean, int o, V *g, V *p) {
  *g = masked(dy, y, o);
  if (gout) wasm_v128_store(gout + o, *g);
  *p = wasm_f32x4_mul(wasm_f32x4_sub(wasm_v128_load(x + o), wasm_v128_load(mean)), *g);
}

/* With g = masked(dy, y): s[c] = sum g, d[c] = sum (x - mean) * g; g itself into gout (if gout). */
EXPORT("bn_gsums")
void bn_gsums(const float *dy, const float *y, const float *x, float *gout, int rows, int C, const float *mean, double *s,
              double *d) {
  for (int c = 0; c < C; c++) s[c] = d[c] = 0.0;
  int i = 0;
  for (; i + 2 <= rows; i += 2)
    for (int c = 0; c < C; c += 4) {
      V g0, p0, g1, p1;
      gterms(dy, y, x, gout, mean + c, i * C + c, &g0, &p0);
      gterms(dy, y, x, gout, mean + c, (i + 1) * C + c, &g1, &p1);
      acc2(s + c, wasm_f64x2_add(lo64(g0), lo64(g1)), wasm_f64x2_add(hi64(g0), hi64(g1)));
      acc2(d + c, wasm_f64x2_add(lo64(p0), lo64(p1)), wasm_f64x2_add(hi64(p0), hi64(p1)));
    }
  if (i < rows)
    for (int c = 0; c < C; c += 4) {
      V g0, p0;
      gterms(dy, y, x, gout, mean + c, i * C + c, &g0, &p0);
      acc2(s + c, lo64(g0), hi64(g0));
      acc2(d + c, lo64(p0), hi64(p0));
    }
}

/* dx = (g - gm[c] - (x - mean[c]) * k[c]) * sc[c]; g may be dx itself (read before written). */
EXPORT("bn_gdx")
void bn_gdx(const float *g, const float *x, float *dx, int rows, int C, const float *mean, const float *gm, const float *k,
            const float *sc) {
  for (int i = 0, o = 0; i < rows; i++)
    for (int c = 0; c < C; c += 4, o += 4) {
      const V t = wasm_f32x4_mul(wasm_f32x4_sub(wasm_v128_load(x + o), wasm_v128_load(mean + c)), wasm_v128_load(k + c));
      wasm_v128_store(dx + o, wasm_f32x4_mul(wasm_f32x4_sub(wasm_f32x4_sub(wasm_v128_load(g + o), wasm_v128_load(gm + c)), t),
                                             wasm_v128_load(sc + c)));
    }
}
