/*
 * spikeprobe's compiled kernels for the tfjs wasm backend (loaded by src/backend/wasm-conv.ts):
 *  - conv_fwd, conv_bwd_input, conv_bwd_filter: forward, input gradient and filter gradient of a
 *    2-D convolution in NHWC with explicit padding, on one register-blocked GEMM micro-kernel
 *    (MR = 4 rows x 8 columns of float32, f32x4 vectors; 5 and 6 rows spill registers in V8 and
 *    run slower, measured);
 *  - add_into (summing the filter gradient's partials), maxpool_grad, sgd_step (fused SGD).
 * scripts/build-wasm.mjs compiles it with relaxed SIMD (f32x4.relaxed_madd: a fused multiply-add
 * where the CPU has one) and with plain SIMD128 (multiply, then add), each for the backend's own
 * memory and for a shared memory (the conv thread pool). The module imports that memory and uses
 * no stack, no data segment and no libc: every buffer is a byte offset the caller allocated.
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
    for (int k = 0; k < K; k++) {
      V b0 = wasm_v128_load(b), b1 = wasm_v128_load(b + 4);
      b += bs;
#pragma clang loop unroll(full)
      for (int r = 0; r < MR; r++) {
        V x = wasm_v128_load32_splat(a[r]);
        c[r][0] = MADD(c[r][0], x, b0);
        c[r][1] = MADD(c[r][1], x, b1);
        a[r] += as;
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

/* Bytes of scratch conv_fwd / conv_bwd_input need (the caller allocates them). */
EXPORT("fwd_scratch") int fwd_scratch(int T, int Ci, int Co) {
  /* packed weights + row pointers (MR*T) + B pointers (T) + MR output pointers + 8-float dummy row
   * + zero row + tap list (3*T) + MR output base pointers */
  return 4 * (T * Ci * Co + MR * T + T + MR + 8 + Ci + Co + 8 + 3 * T + MR) + 64;
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
  const int T = KH * KW, NB = Co / 8;
  /* Bp[nb][t][ci][8] = w[t][ci][nb*8 + j] */
  const Layout L = layout(scratch, w, T, Ci, Co, NB, Ci, Co, 1);
  float *Bp = L.Bp, *dummy = L.dummy, *zero = L.zero;
  const float **rows = L.rows, **bptr = L.bptr;
  float **outs = L.outs;
  const int P = N * OH * OW, G = group_blocks(T * Ci, NB);
  if (OH * OW <= TINY) {
    /* Tiny maps: one output position at a time, MR images per tile, live taps only. */
    int *taps = (int *)(zero + Ci + Co + 8);
    for (int g0 = 0; g0 < NB; g0 += G) {
      const int g1 = g0 + G < NB ? g0 + G : NB;
      for (int q = 0; q < OH * OW; q++) {
        const int oh = q / OW, ow = q - oh * OW;
        for (int n0 = 0; n0 < N; n0 += MR) {
          int nT = 0;
          for (int kh = 0; kh < KH; kh++) {
            const int ih = oh * sh + kh - pt;
            if (ih < 0 || ih >= H) continue;
            for (int kw = 0; kw < KW; kw++) {
              const int iw = ow * sw + kw - pl;
              if (iw < 0 || iw >= W) continue;
              for (int r = 0; r < MR; r++) rows[MR * nT + r] = n0 + r < N ? x + (((n0 + r) * H + ih) * W + iw) * Ci : zero;
              taps[nT++] = kh * KW + kw;
            }
          }
          for (int nb = g0; nb < g1; nb++) {
            for (int i = 0; i < nT; i++) bptr[i] = Bp + (nb * T + taps[i]) * Ci * 8;
            for (int r = 0; r < MR; r++) outs[r] = n0 + r < N ? y + ((n0 + r) * OH * OW + q) * Co + nb * 8 : dummy;
            micro(nT, rows, bptr, Ci, 1, 8, outs, 0);
          }
        }
      }
    }
    return;
  }
  for (int g0 = 0; g0 < NB; g0 += G) {
    const int g1 = g0 + G < NB ? g0 + G : NB;
    int n = 0, oh = 0, ow = 0; /* the next tile's first pixel, stepped along without divisions */
    for (int p0 = 0; p0 < P; p0 += MR) {
      for (int r = 0; r < MR; r++) {
        if (p0 + r >= P) {
          for (int t = 0; t < T; t++) rows[MR * t + r] = zero;
          continue;
        }
        for (int kh = 0; kh < KH; kh++) {
          const int ih = oh * sh + kh - pt;
          for (int kw = 0; kw < KW; kw++) {
            const int iw = ow * sw + kw - pl;
            rows[MR * (kh * KW + kw) + r] =
                (ih >= 0 && ih < H && iw >= 0 && iw < W) ? x + ((n * H + ih) * W + iw) * Ci : zero;
          }
        }
        if (++ow == OW) {
          ow = 0;
          if (++oh == OH) {
            oh = 0;
            n++;
          }
        }
      }
      for (int nb = g0; nb < g1; nb++) {
        for (int t = 0; t < T; t++) bptr[t] = Bp + (nb * T + t) * Ci * 8;
        for (int r = 0; r < MR; r++) outs[r] = p0 + r < P ? y + (p0 + r) * Co + nb * 8 : dummy;
        micro(T, rows, bptr, Ci, 1, 8, outs, 0);
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
  const int T = KH * KW, NB = Ci / 8;
  /* Bp[nb][t][co][8] = w[t][nb*8 + j][co] */
  const Layout L = layout(scratch, w, T, Ci, Co, NB, Co, 1, Co);
  float *Bp = L.Bp, *dummy = L.dummy, *zero = L.zero;
  const float **rows = L.rows, **bptr = L.bptr;
  float **outs = L.outs;
  const int G = group_blocks(T * Co, NB);
  if (H * W <= TINY) {
    /* Tiny maps: one dx position at a time, MR images per tile, live taps only. */
    int *taps = (int *)(zero + Ci + Co + 8);
    for (int g0 = 0; g0 < NB; g0 += G) {
      const int g1 = g0 + G < NB ? g0 + G : NB;
      for (int q = 0; q < H * W; q++) {
        const int ih = q / W, iw = q - ih * W;
        for (int n0 = 0; n0 < N; n0 += MR) {
          int nT = 0;
          for (int kh = 0; kh < KH; kh++) {
            const int a = ih + pt - kh;
            if (a < 0 || a % sh || a / sh >= OH) continue;
            for (int kw = 0; kw < KW; kw++) {
              const int b = iw + pl - kw;
              if (b < 0 || b % sw || b / sw >= OW) continue;
              for (int r = 0; r < MR; r++)
                rows[MR * nT + r] = n0 + r < N ? dy + (((n0 + r) * OH + a / sh) * OW + b / sw) * Co : zero;
              taps[nT++] = kh * KW + kw;
            }
          }
          for (int nb = g0; nb < g1; nb++) {
            for (int i = 0; i < nT; i++) bptr[i] = Bp + (nb * T + taps[i]) * Co * 8;
            for (int r = 0; r < MR; r++) outs[r] = n0 + r < N ? dx + ((n0 + r) * H * W + q) * Ci + nb * 8 : dummy;
            micro(nT, rows, bptr, Co, 1, 8, outs, 0);
          }
        }
      }
    }
    return;
  }
  /* Tap list of a phase: tap index and the dy row/col offsets (oh = i + dh, ow = j + dw). */
  int *tl = (int *)(zero + Ci + Co + 8);
  float **obase = (float **)(tl + 3 * T);
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
      for (int g0 = 0; g0 < NB; g0 += G) {
        const int g1 = g0 + G < NB ? g0 + G : NB;
        /* (n, i, j) of the tile's first pixel, stepped along without divisions. */
        int n = 0, i = 0, j = 0;
        for (int p0 = 0; p0 < P; p0 += MR) {
          int rn = n, ri = i, rj = j;
          for (int r = 0; r < MR; r++) {
            if (p0 + r >= P) {
              for (int t = 0; t < nT; t++) rows[MR * t + r] = zero;
              obase[r] = 0;
              continue;
            }
            for (int t = 0; t < nT; t++) {
              const int oh = ri + tl[3 * t + 1], ow = rj + tl[3 * t + 2];
              rows[MR * t + r] = (oh >= 0 && oh < OH && ow >= 0 && ow < OW) ? dy + ((rn * OH + oh) * OW + ow) * Co : zero;
            }
            obase[r] = dx + ((rn * H + ph + ri * sh) * W + pw + rj * sw) * Ci;
            if (++rj == PW) {
              rj = 0;
              if (++ri == PH) {
                ri = 0;
                rn++;
              }
            }
          }
          n = rn;
          i = ri;
          j = rj;
          for (int nb = g0; nb < g1; nb++) {
            for (int t = 0; t < nT; t++) bptr[t] = Bp + (nb * T + tl[3 * t]) * Co * 8;
            for (int r = 0; r < MR; r++) outs[r] = obase[r] ? obase[r] + nb * 8 : dummy;
            micro(nT, rows, bptr, Co, 1, 8, outs, 0);
          }
        }
      }
    }
  }
}

/* Pixels per im2col chunk of conv_bwd_filter, and the scratch it needs. */
static int chunk_pixels(int R) {
  int pc = (256 * 1024) / (R * 4);
  if (pc < 32) pc = 32;
  if (pc > 512) pc = 512;
  return pc;
}

/* Images per chunk of the tiny-map filter gradient. */
#define TINY_IMAGES 128

EXPORT("filter_scratch") int filter_scratch(int T, int Ci, int Co) {
  const int R = T * Ci, Rp = (R + MR - 1) / MR * MR;
  const int im2col = chunk_pixels(R) * Rp, tiny = TINY_IMAGES * (Ci + 4 + Co + 8);
  return 4 * ((im2col > tiny ? im2col : tiny) + MR + 8 + MR + 1) + 64;
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
  const int T = KH * KW, R = T * Ci, Rp = (R + MR - 1) / MR * MR, P = N * OH * OW, PC = chunk_pixels(R);
  float *A = (float *)(((unsigned)scratch + 15) & ~15u);
  const int tinyFloats = TINY_IMAGES * (Ci + 4 + Co + 8);
  const float **rows = (const float **)(A + (PC * Rp > tinyFloats ? PC * Rp : tinyFloats));
  const float **bptr = rows + MR;
  float **outs = (float **)(bptr + 1);
  float *dummy = (float *)(outs + MR);
  for (int r = 0; r < R; r++)
    for (int c = nb0 * 8; c < nb1 * 8; c++) dw[r * Co + c] = 0.f;
  if (OH * OW <= TINY && Ci % MR == 0) {
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
            for (int ci0 = 0; ci0 < Ci; ci0 += MR) {
              for (int r = 0; r < MR; r++) rows[r] = X + ci0 + r;
              for (int nb = nb0; nb < nb1; nb++) {
                bptr[0] = D + nb * 8;
                for (int r = 0; r < MR; r++) outs[r] = dw + (t * Ci + ci0 + r) * Co + nb * 8;
                micro(1, rows, bptr, nc, XS, DS, outs, 1);
              }
            }
          }
        }
      }
    }
    return;
  }
  for (int p0 = 0; p0 < P; p0 += PC) {
    const int pc = P - p0 < PC ? P - p0 : PC;
    for (int pi = 0; pi < pc; pi++) {
      const int p = p0 + pi, n = p / (OH * OW), q = p - n * (OH * OW), oh = q / OW, ow = q - oh * OW;
      float *a = A + pi * Rp;
      for (int kh = 0; kh < KH; kh++) {
        const int ih = oh * sh + kh - pt;
        for (int kw = 0; kw < KW; kw++) {
          const int iw = ow * sw + kw - pl;
          float *dst = a + (kh * KW + kw) * Ci;
          if (ih >= 0 && ih < H && iw >= 0 && iw < W) {
            const float *src = x + ((n * H + ih) * W + iw) * Ci;
            for (int c = 0; c < Ci; c++) dst[c] = src[c];
          } else {
            for (int c = 0; c < Ci; c++) dst[c] = 0.f;
          }
        }
      }
      for (int c = R; c < Rp; c++) a[c] = 0.f;
    }
    const float *dy0 = dy + p0 * Co;
    for (int r0 = 0; r0 < Rp; r0 += MR) {
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
