/* gemm_bf16.c — C (M, N) = A (M, K) · Wᵀ + bias with W held in bf16 (lowp.h).
 *
 * Activations are rounded to bf16 (nearest even) a block of MC rows at a time into the
 * thread's scratch; every output element is then one fp32 accumulator summed over k pairs
 * in order, odd k before even k of each pair — exactly what vdpbf16ps does (checked
 * bit-for-bit on this machine class). The bf16·bf16 products are exact in fp32, so the
 * fallbacks (fp32 FMA on widened bf16 at AVX-512 / AVX2, and plain C) give the same sums,
 * except that vdpbf16ps flushes fp32 denormals.
 *
 * Levels: avx512bf16: 12x32 register tiles of vdpbf16ps (24 zmm accumulators; 4x32 for
 * tiles of at most 4 rows, e.g. one query against an item matrix);
 * avx512 / avx512vnni: 6x32 tiles of widened FMAs; avx2: 4x16 tiles; scalar: plain loops.
 * Blocking: A block (MC x K bf16) stays in L2 while the 32-column weight panels stream.
 */
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "kernels/lowp.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define HAVE_X86 1
#endif

#define NR ER_LOWP_NR
#define MC 96 /* rows per converted A block (a multiple of every level's tile height) */

int er_bf16_pack(er_lowp_mat *m, const float *W, int N, int K, int ldw) {
    m->dtype = ER_LOWP_BF16;
    m->N = N;
    m->K = K;
    m->Kp = (K + 1) & ~1;
    m->panels = (N + NR - 1) / NR;
    size_t kp2 = (size_t)m->Kp / 2;
    uint16_t *d = er_malloc_big((size_t)m->panels * NR * kp2, 2 * sizeof(uint16_t));
    if (!d) return EASYREC_ERR_NOMEM;
    for (int p = 0; p < m->panels; p++)
        for (size_t kk = 0; kk < kp2; kk++)
            for (int c = 0; c < NR; c++)
                for (int h = 0; h < 2; h++) {
                    int n = p * NR + c;
                    size_t k = 2 * kk + (size_t)h;
                    d[(((size_t)p * kp2 + kk) * NR + c) * 2 + h] =
                        n < N && k < (size_t)K ? er_f32_to_bf16_bits(W[(size_t)n * ldw + k]) : 0;
                }
    m->data = d;
    return EASYREC_OK;
}

/* rows [0, m) of A -> bf16 rows of Kp (zero past K), rows [m, mr) zero */
static void convert_rows(uint16_t *dst, const float *A, int lda, int m, int mr, int K, int Kp) {
    for (int r = 0; r < mr; r++) {
        uint16_t *d = dst + (size_t)r * Kp;
        if (r >= m) {
            memset(d, 0, (size_t)Kp * sizeof(uint16_t));
            continue;
        }
        const float *a = A + (size_t)r * lda;
        for (int k = 0; k < K; k++) d[k] = er_f32_to_bf16_bits(a[k]);
        for (int k = K; k < Kp; k++) d[k] = 0;
    }
}

#ifdef HAVE_X86
/* convert_rows with 16 lanes at a time: the same bits as er_f32_to_bf16_bits */
__attribute__((target("avx512f,avx512bw"))) static void convert_rows_avx512(uint16_t *dst, const float *A, int lda,
                                                                             int m, int mr, int K, int Kp) {
    const __m512i expm = _mm512_set1_epi32(0x7f800000), absm = _mm512_set1_epi32(0x7fffffff),
                  sgn = _mm512_set1_epi32(0x8000), one = _mm512_set1_epi32(1), rnd = _mm512_set1_epi32(0x7fff),
                  qnan = _mm512_set1_epi32(0x40);
    for (int r = 0; r < mr; r++) {
        uint16_t *d = dst + (size_t)r * Kp;
        if (r >= m) {
            memset(d, 0, (size_t)Kp * sizeof(uint16_t));
            continue;
        }
        const float *a = A + (size_t)r * lda;
        for (int k = 0; k < K; k += 16) {
            __mmask16 lm = K - k >= 16 ? 0xFFFF : (__mmask16)((1u << (K - k)) - 1);
            __m512i u = _mm512_maskz_loadu_epi32(lm, a + k);
            __m512i hi = _mm512_srli_epi32(u, 16);
            __m512i v = _mm512_srli_epi32(_mm512_add_epi32(_mm512_add_epi32(u, rnd), _mm512_and_si512(hi, one)), 16);
            __mmask16 z = _mm512_cmpeq_epi32_mask(_mm512_and_si512(u, expm), _mm512_setzero_si512());
            __mmask16 nan = _mm512_cmpgt_epu32_mask(_mm512_and_si512(u, absm), expm);
            v = _mm512_mask_mov_epi32(v, z, _mm512_and_si512(hi, sgn));
            v = _mm512_mask_mov_epi32(v, nan, _mm512_or_si512(hi, qnan));
            _mm512_mask_cvtepi32_storeu_epi16(d + k, lm, v);
        }
        for (int k = K; k < Kp; k++) d[k] = 0;
    }
}
#endif

static inline float lo_f(uint32_t w) { return er_bf16_bits_to_f32((uint16_t)(w & 0xffffu)); }
static inline float hi_f(uint32_t w) { return er_bf16_bits_to_f32((uint16_t)(w >> 16)); }

/* one tile: rows a (stride kp2 dwords), m rows, panel bp, n columns */
static void kernel_scalar(const uint32_t *a, size_t kp2, const uint32_t *bp, const float *bias, float *C, int ldc,
                          int m, int n) {
    for (int r = 0; r < m; r++)
        for (int c = 0; c < n; c++) {
            float acc = 0.0f;
            const uint32_t *ar = a + (size_t)r * kp2;
            for (size_t kk = 0; kk < kp2; kk++) {
                uint32_t x = ar[kk], w = bp[kk * NR + c];
                float p1 = hi_f(x) * hi_f(w), p0 = lo_f(x) * lo_f(w); /* exact products */
                acc += p1;
                acc += p0;
            }
            C[(size_t)r * ldc + c] = acc + (bias ? bias[c] : 0.0f);
        }
}

#ifdef HAVE_X86
#define HI_MASK 0xffff0000u

__attribute__((target("avx2,fma"))) static void kernel_avx2(const uint32_t *a, size_t kp2, const uint32_t *bp,
                                                             const float *bias, float *C, int ldc, int m, int n) {
    /* 4 rows x 16 columns (one half of the panel); n <= 16 */
    __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00, c31 = c00;
    const __m256i hm = _mm256_set1_epi32((int)HI_MASK);
    for (size_t kk = 0; kk < kp2; kk++) {
        __m256i w0 = _mm256_loadu_si256((const __m256i *)(bp + kk * NR));
        __m256i w1 = _mm256_loadu_si256((const __m256i *)(bp + kk * NR + 8));
        __m256 o0 = _mm256_castsi256_ps(_mm256_and_si256(w0, hm)), e0 = _mm256_castsi256_ps(_mm256_slli_epi32(w0, 16));
        __m256 o1 = _mm256_castsi256_ps(_mm256_and_si256(w1, hm)), e1 = _mm256_castsi256_ps(_mm256_slli_epi32(w1, 16));
#define ROW(r, x0, x1)                                                                                         \
    {                                                                                                          \
        uint32_t v = a[(size_t)(r)*kp2 + kk];                                                                  \
        __m256 ao = _mm256_set1_ps(hi_f(v)), ae = _mm256_set1_ps(lo_f(v));                                     \
        x0 = _mm256_fmadd_ps(ao, o0, x0);                                                                      \
        x1 = _mm256_fmadd_ps(ao, o1, x1);                                                                      \
        x0 = _mm256_fmadd_ps(ae, e0, x0);                                                                      \
        x1 = _mm256_fmadd_ps(ae, e1, x1);                                                                      \
    }
        ROW(0, c00, c01) ROW(1, c10, c11) ROW(2, c20, c21) ROW(3, c30, c31)
#undef ROW
    }
    __m256 acc[4][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}};
    float b[16] = {0};
    if (bias) memcpy(b, bias, (size_t)n * sizeof(float));
    __m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8);
    for (int r = 0; r < m; r++) {
        float t[16];
        _mm256_storeu_ps(t, _mm256_add_ps(acc[r][0], b0));
        _mm256_storeu_ps(t + 8, _mm256_add_ps(acc[r][1], b1));
        memcpy(C + (size_t)r * ldc, t, (size_t)n * sizeof(float));
    }
}

static inline __mmask16 mask_lo(int n) { return n >= 16 ? 0xFFFF : n <= 0 ? 0 : (__mmask16)((1u << n) - 1); }

/* store MR rows of 2-zmm accumulators + bias with column masks */
#define STORE_512(acc, m)                                                                                      \
    do {                                                                                                       \
        __mmask16 m0 = mask_lo(n), m1 = mask_lo(n - 16);                                                       \
        __m512 b0 = _mm512_setzero_ps(), b1 = b0;                                                              \
        if (bias) {                                                                                            \
            b0 = _mm512_maskz_loadu_ps(m0, bias);                                                              \
            b1 = _mm512_maskz_loadu_ps(m1, bias + 16);                                                         \
        }                                                                                                      \
        for (int r = 0; r < (m); r++) {                                                                        \
            _mm512_mask_storeu_ps(C + (size_t)r * ldc, m0, _mm512_add_ps(acc[r][0], b0));                      \
            _mm512_mask_storeu_ps(C + (size_t)r * ldc + 16, m1, _mm512_add_ps(acc[r][1], b1));                 \
        }                                                                                                      \
    } while (0)

__attribute__((target("avx512f,avx512bw"))) static void kernel_avx512(const uint32_t *a, size_t kp2,
                                                                       const uint32_t *bp, const float *bias,
                                                                       float *C, int ldc, int m, int n) {
    /* 6 rows x 32 columns */
    __m512 c00 = _mm512_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00, c31 = c00,
           c40 = c00, c41 = c00, c50 = c00, c51 = c00;
    const __m512i hm = _mm512_set1_epi32((int)HI_MASK);
    for (size_t kk = 0; kk < kp2; kk++) {
        __m512i w0 = _mm512_loadu_si512(bp + kk * NR), w1 = _mm512_loadu_si512(bp + kk * NR + 16);
        __m512 o0 = _mm512_castsi512_ps(_mm512_and_si512(w0, hm)), e0 = _mm512_castsi512_ps(_mm512_slli_epi32(w0, 16));
        __m512 o1 = _mm512_castsi512_ps(_mm512_and_si512(w1, hm)), e1 = _mm512_castsi512_ps(_mm512_slli_epi32(w1, 16));
#define ROW(r, x0, x1)                                                                                         \
    {                                                                                                          \
        uint32_t v = a[(size_t)(r)*kp2 + kk];                                                                  \
        __m512 ao = _mm512_set1_ps(hi_f(v)), ae = _mm512_set1_ps(lo_f(v));                                     \
        x0 = _mm512_fmadd_ps(ao, o0, x0);                                                                      \
        x1 = _mm512_fmadd_ps(ao, o1, x1);                                                                      \
        x0 = _mm512_fmadd_ps(ae, e0, x0);                                                                      \
        x1 = _mm512_fmadd_ps(ae, e1, x1);                                                                      \
    }
        ROW(0, c00, c01) ROW(1, c10, c11) ROW(2, c20, c21) ROW(3, c30, c31) ROW(4, c40, c41) ROW(5, c50, c51)
#undef ROW
    }
    __m512 acc[6][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}, {c40, c41}, {c50, c51}};
    STORE_512(acc, m);
}

__attribute__((target("avx512f,avx512bw,avx512bf16"))) static void kernel_dpbf16(const uint32_t *a, size_t kp2,
                                                                                  const uint32_t *bp,
                                                                                  const float *bias, float *C,
                                                                                  int ldc, int m, int n) {
    /* 12 rows x 32 columns, 24 accumulators */
    __m512 c00 = _mm512_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00, c31 = c00,
           c40 = c00, c41 = c00, c50 = c00, c51 = c00, c60 = c00, c61 = c00, c70 = c00, c71 = c00, c80 = c00,
           c81 = c00, c90 = c00, c91 = c00, ca0 = c00, ca1 = c00, cb0 = c00, cb1 = c00;
    for (size_t kk = 0; kk < kp2; kk++) {
        __m512bh w0 = (__m512bh)_mm512_loadu_si512(bp + kk * NR), w1 = (__m512bh)_mm512_loadu_si512(bp + kk * NR + 16);
#define ROW(r, x0, x1)                                                                                         \
    {                                                                                                          \
        __m512bh av = (__m512bh)_mm512_set1_epi32((int)a[(size_t)(r)*kp2 + kk]);                               \
        x0 = _mm512_dpbf16_ps(x0, av, w0);                                                                     \
        x1 = _mm512_dpbf16_ps(x1, av, w1);                                                                     \
    }
        ROW(0, c00, c01) ROW(1, c10, c11) ROW(2, c20, c21) ROW(3, c30, c31) ROW(4, c40, c41) ROW(5, c50, c51)
        ROW(6, c60, c61) ROW(7, c70, c71) ROW(8, c80, c81) ROW(9, c90, c91) ROW(10, ca0, ca1) ROW(11, cb0, cb1)
#undef ROW
    }
    __m512 acc[12][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}, {c40, c41}, {c50, c51},
                         {c60, c61}, {c70, c71}, {c80, c81}, {c90, c91}, {ca0, ca1}, {cb0, cb1}};
    STORE_512(acc, m);
}

/* the same for tiles of at most 4 rows (a few queries against an item matrix): the 12-row
 * tile would spend 12 rows of work on them; the same per-element order, the same bits */
__attribute__((target("avx512f,avx512bw,avx512bf16"))) static void kernel_dpbf16_4(const uint32_t *a, size_t kp2,
                                                                                    const uint32_t *bp,
                                                                                    const float *bias, float *C,
                                                                                    int ldc, int m, int n) {
    __m512 c00 = _mm512_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00, c31 = c00;
    for (size_t kk = 0; kk < kp2; kk++) {
        __m512bh w0 = (__m512bh)_mm512_loadu_si512(bp + kk * NR), w1 = (__m512bh)_mm512_loadu_si512(bp + kk * NR + 16);
#define ROW(r, x0, x1)                                                                                         \
    {                                                                                                          \
        __m512bh av = (__m512bh)_mm512_set1_epi32((int)a[(size_t)(r)*kp2 + kk]);                               \
        x0 = _mm512_dpbf16_ps(x0, av, w0);                                                                     \
        x1 = _mm512_dpbf16_ps(x1, av, w1);                                                                     \
    }
        ROW(0, c00, c01)
        if (m > 1) ROW(1, c10, c11)
        if (m > 2) ROW(2, c20, c21)
        if (m > 3) ROW(3, c30, c31)
#undef ROW
    }
    __m512 acc[4][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}};
    STORE_512(acc, m);
}
#endif

void er_gemm_bf16(er_isa isa, const er_lowp_mat *w, int M, const float *A, int lda, const float *bias, float *C,
                  int ldc) {
    ER_ASSERT(w->dtype == ER_LOWP_BF16);
    int Kp = w->Kp, N = w->N;
    size_t kp2 = (size_t)Kp / 2;
    int mr = 1;
#ifdef HAVE_X86
    mr = isa >= ER_ISA_AVX512BF16 ? 12 : isa >= ER_ISA_AVX512 ? 6 : isa >= ER_ISA_AVX2 ? 4 : 1;
#else
    isa = ER_ISA_SCALAR;
#endif
    uint16_t *ab = er_lowp_scratch((size_t)MC * Kp * sizeof(uint16_t));
    ER_ASSERT(ab != NULL); /* MC x K bf16: a few hundred KiB per thread, once */
    const uint32_t *panels = w->data;
    for (int ic = 0; ic < M; ic += MC) {
        int mc = M - ic < MC ? M - ic : MC;
        int mcr = (mc + mr - 1) / mr * mr;
#ifdef HAVE_X86
        if (isa >= ER_ISA_AVX512)
            convert_rows_avx512(ab, A + (size_t)ic * lda, lda, mc, mcr, w->K, Kp);
        else
#endif
            convert_rows(ab, A + (size_t)ic * lda, lda, mc, mcr, w->K, Kp);
        const uint32_t *a32 = (const uint32_t *)ab;
        for (int p = 0; p < w->panels; p++) {
            const uint32_t *bp = panels + (size_t)p * kp2 * NR;
            int n = N - p * NR < NR ? N - p * NR : NR;
            const float *bb = bias ? bias + p * NR : NULL;
            for (int ir = 0; ir < mc; ir += mr) {
                int m = mc - ir < mr ? mc - ir : mr;
                const uint32_t *ar = a32 + (size_t)ir * kp2;
                float *c = C + (size_t)(ic + ir) * ldc + (size_t)p * NR;
#ifdef HAVE_X86
                if (isa >= ER_ISA_AVX512BF16) {
                    if (m <= 4) kernel_dpbf16_4(ar, kp2, bp, bb, c, ldc, m, n);
                    else kernel_dpbf16(ar, kp2, bp, bb, c, ldc, m, n);
                    continue;
                }
                if (isa >= ER_ISA_AVX512) {
                    kernel_avx512(ar, kp2, bp, bb, c, ldc, m, n);
                    continue;
                }
                if (isa >= ER_ISA_AVX2) {
                    kernel_avx2(ar, kp2, bp, bb, c, ldc, m, n < 16 ? n : 16);
                    if (n > 16) kernel_avx2(ar, kp2, bp + 16, bb ? bb + 16 : NULL, c + 16, ldc, m, n - 16);
                    continue;
                }
#endif
                kernel_scalar(ar, kp2, bp, bb, c, ldc, m, n);
            }
        }
    }
}
