/* gemm_q8.c — C (M, N) = A (M, K) · Wᵀ + bias with W quantised to int8 (lowp.h).
 *
 * Weights: per output channel symmetric, s_n = max_k |W[n][k]| / 127, q = round(W / s_n)
 * in [-127, 127]. Activations: per row (token) symmetric and dynamic, s_r = max|A[r]| / 127,
 * q in [-127, 127] stored as u8 = q + 128. Integer sums are exact at every level:
 *   avx512vnni / avx512bf16: vpdpbusd on u8 x s8 (12x32 tiles), minus comp_n = 128 Σ q_w;
 *   avx512 / avx2: vpmaddubsw on |w| x sign(a, w) (|products| <= 127·127, pairs never
 *   saturate) + vpmaddwd, which is Σ q_a q_w directly; scalar: plain loops.
 * so every level returns the same bits: y = ((float)Σ q_a q_w · s_r) · s_n + bias.
 * Rows whose max |a| is not finite give NaN outputs.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "kernels/lowp.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define HAVE_X86 1
#endif

#define NR ER_LOWP_NR
#define MC 96

static inline int q_round(float x) {
    float r = nearbyintf(x);
    return r > 127.0f ? 127 : r < -127.0f ? -127 : (int)r;
}

int er_q8_pack(er_lowp_mat *m, const float *W, int N, int K, int ldw) {
    m->dtype = ER_LOWP_INT8;
    m->N = N;
    m->K = K;
    m->Kp = (K + 3) & ~3;
    m->panels = (N + NR - 1) / NR;
    size_t kq4 = (size_t)m->Kp / 4;
    int8_t *d = er_calloc_big((size_t)m->panels * NR * kq4, 4);
    m->scale = er_mallocarray((size_t)N, sizeof(float));
    m->comp = er_mallocarray((size_t)N, sizeof(int32_t));
    m->data = d;
    if (!d || !m->scale || !m->comp) return EASYREC_ERR_NOMEM; /* caller frees */
    for (int n = 0; n < N; n++) {
        const float *w = W + (size_t)n * ldw;
        float amax = 0.0f;
        for (int k = 0; k < K; k++) amax = fmaxf(amax, fabsf(w[k]));
        float inv = amax > 0.0f && isfinite(amax) ? 127.0f / amax : 0.0f;
        m->scale[n] = amax / 127.0f;
        int32_t sum = 0;
        int p = n / NR, c = n % NR;
        for (int k = 0; k < K; k++) {
            int q = q_round(w[k] * inv);
            d[(((size_t)p * kq4 + (size_t)k / 4) * NR + c) * 4 + k % 4] = (int8_t)q;
            sum += q;
        }
        m->comp[n] = 128 * sum;
    }
    return EASYREC_OK;
}

/* rows [0, m) of A -> u8 rows of Kq (q + 128; 128 past K) and scales; rows [m, mr) zero */
static void quantize_rows(uint8_t *dst, float *sa, const float *A, int lda, int m, int mr, int K, int Kq) {
    for (int r = 0; r < mr; r++) {
        uint8_t *d = dst + (size_t)r * Kq;
        if (r >= m) {
            memset(d, 128, (size_t)Kq);
            sa[r] = 0.0f;
            continue;
        }
        const float *a = A + (size_t)r * lda;
        float amax = 0.0f;
        int bad = 0;
        for (int k = 0; k < K; k++) {
            float v = fabsf(a[k]);
            bad |= v != v;
            amax = v > amax ? v : amax;
        }
        if (bad || isinf(amax) || amax == 0.0f) {
            memset(d, 128, (size_t)Kq);
            sa[r] = amax == 0.0f && !bad ? 0.0f : NAN;
            continue;
        }
        float inv = 127.0f / amax;
        sa[r] = amax / 127.0f;
        for (int k = 0; k < K; k++) d[k] = (uint8_t)(q_round(a[k] * inv) + 128);
        for (int k = K; k < Kq; k++) d[k] = 128;
    }
}

#ifdef HAVE_X86
/* quantize_rows with 16 lanes at a time: the same bits (roundscale is round-to-nearest-even
 * like nearbyintf in the default rounding mode) */
__attribute__((target("avx512f,avx512bw"))) static void quantize_rows_avx512(uint8_t *dst, float *sa, const float *A,
                                                                              int lda, int m, int mr, int K, int Kq) {
    const __m512i absm = _mm512_set1_epi32(0x7fffffff);
    const __m512 lo = _mm512_set1_ps(-127.0f), hi = _mm512_set1_ps(127.0f);
    const __m512i off = _mm512_set1_epi32(128);
    for (int r = 0; r < mr; r++) {
        uint8_t *d = dst + (size_t)r * Kq;
        const float *a = A + (size_t)r * lda;
        float amax = 0.0f;
        int bad = 0;
        if (r < m) {
            __m512 mx = _mm512_setzero_ps();
            __mmask16 nan = 0;
            for (int k = 0; k < K; k += 16) {
                __mmask16 lm = K - k >= 16 ? 0xFFFF : (__mmask16)((1u << (K - k)) - 1);
                __m512 v = _mm512_castsi512_ps(_mm512_and_si512(_mm512_maskz_loadu_epi32(lm, a + k), absm));
                nan |= _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
                mx = _mm512_max_ps(mx, v);
            }
            amax = _mm512_reduce_max_ps(mx);
            bad = nan != 0;
        }
        if (r >= m || bad || isinf(amax) || amax == 0.0f) {
            memset(d, 128, (size_t)Kq);
            sa[r] = r >= m || (amax == 0.0f && !bad) ? 0.0f : NAN;
            continue;
        }
        float inv = 127.0f / amax;
        sa[r] = amax / 127.0f;
        __m512 vi = _mm512_set1_ps(inv);
        for (int k = 0; k < K; k += 16) {
            __mmask16 lm = K - k >= 16 ? 0xFFFF : (__mmask16)((1u << (K - k)) - 1);
            __m512 x = _mm512_mul_ps(_mm512_maskz_loadu_ps(lm, a + k), vi);
            x = _mm512_roundscale_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
            x = _mm512_min_ps(_mm512_max_ps(x, lo), hi);
            _mm512_mask_cvtepi32_storeu_epi8(d + k, lm, _mm512_add_epi32(_mm512_cvtps_epi32(x), off));
        }
        for (int k = K; k < Kq; k++) d[k] = 128;
    }
}
#endif

static void kernel_scalar(const uint8_t *a, size_t Kq, const float *sa, const int8_t *bp, const er_lowp_mat *w,
                          int n0, const float *bias, float *C, int ldc, int m, int n) {
    for (int r = 0; r < m; r++)
        for (int c = 0; c < n; c++) {
            int32_t acc = 0;
            const uint8_t *ar = a + (size_t)r * Kq;
            for (size_t k = 0; k < Kq; k++) acc += ((int32_t)ar[k] - 128) * bp[((k / 4) * NR + c) * 4 + k % 4];
            float y = (float)acc * sa[r];
            y = y * w->scale[n0 + c];
            C[(size_t)r * ldc + c] = y + (bias ? bias[c] : 0.0f);
        }
}

#ifdef HAVE_X86
static inline __mmask16 mask_lo(int n) { return n >= 16 ? 0xFFFF : n <= 0 ? 0 : (__mmask16)((1u << n) - 1); }

/* epilogue of 512-bit tiles: acc (int32) minus comp (when sub_comp) -> float, scaled */
#define STORE_512(acc, m, sub_comp)                                                                            \
    do {                                                                                                       \
        __mmask16 m0 = mask_lo(n), m1 = mask_lo(n - 16);                                                       \
        __m512 b0 = _mm512_setzero_ps(), b1 = b0;                                                              \
        if (bias) {                                                                                            \
            b0 = _mm512_maskz_loadu_ps(m0, bias);                                                              \
            b1 = _mm512_maskz_loadu_ps(m1, bias + 16);                                                         \
        }                                                                                                      \
        __m512 s0 = _mm512_maskz_loadu_ps(m0, w->scale + n0), s1 = _mm512_maskz_loadu_ps(m1, w->scale + n0 + 16); \
        __m512i k0 = _mm512_setzero_si512(), k1 = k0;                                                          \
        if (sub_comp) {                                                                                        \
            k0 = _mm512_maskz_loadu_epi32(m0, w->comp + n0);                                                   \
            k1 = _mm512_maskz_loadu_epi32(m1, w->comp + n0 + 16);                                              \
        }                                                                                                      \
        for (int r = 0; r < (m); r++) {                                                                        \
            __m512 sr = _mm512_set1_ps(sa[r]);                                                                 \
            __m512 y0 = _mm512_cvtepi32_ps(_mm512_sub_epi32(acc[r][0], k0));                                   \
            __m512 y1 = _mm512_cvtepi32_ps(_mm512_sub_epi32(acc[r][1], k1));                                   \
            y0 = _mm512_add_ps(_mm512_mul_ps(_mm512_mul_ps(y0, sr), s0), b0);                                  \
            y1 = _mm512_add_ps(_mm512_mul_ps(_mm512_mul_ps(y1, sr), s1), b1);                                  \
            _mm512_mask_storeu_ps(C + (size_t)r * ldc, m0, y0);                                                \
            _mm512_mask_storeu_ps(C + (size_t)r * ldc + 16, m1, y1);                                           \
        }                                                                                                      \
    } while (0)

__attribute__((target("avx512f,avx512bw,avx512vnni"))) static void
kernel_vnni(const uint8_t *a, size_t Kq, const float *sa, const int8_t *bp, const er_lowp_mat *w, int n0,
            const float *bias, float *C, int ldc, int m, int n) {
    /* 12 rows x 32 columns, 24 int32 accumulators */
    __m512i c00 = _mm512_setzero_si512(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00,
            c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00, c60 = c00, c61 = c00, c70 = c00, c71 = c00,
            c80 = c00, c81 = c00, c90 = c00, c91 = c00, ca0 = c00, ca1 = c00, cb0 = c00, cb1 = c00;
    const uint32_t *a32 = (const uint32_t *)a;
    size_t kq4 = Kq / 4;
    for (size_t kq = 0; kq < kq4; kq++) {
        __m512i w0 = _mm512_loadu_si512(bp + kq * NR * 4), w1 = _mm512_loadu_si512(bp + kq * NR * 4 + 64);
#define ROW(r, x0, x1)                                                                                         \
    {                                                                                                          \
        __m512i av = _mm512_set1_epi32((int)a32[(size_t)(r)*kq4 + kq]);                                        \
        x0 = _mm512_dpbusd_epi32(x0, av, w0);                                                                  \
        x1 = _mm512_dpbusd_epi32(x1, av, w1);                                                                  \
    }
        ROW(0, c00, c01) ROW(1, c10, c11) ROW(2, c20, c21) ROW(3, c30, c31) ROW(4, c40, c41) ROW(5, c50, c51)
        ROW(6, c60, c61) ROW(7, c70, c71) ROW(8, c80, c81) ROW(9, c90, c91) ROW(10, ca0, ca1) ROW(11, cb0, cb1)
#undef ROW
    }
    __m512i acc[12][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}, {c40, c41}, {c50, c51},
                          {c60, c61}, {c70, c71}, {c80, c81}, {c90, c91}, {ca0, ca1}, {cb0, cb1}};
    STORE_512(acc, m, 1);
}

__attribute__((target("avx512f,avx512bw"))) static void kernel_avx512(const uint8_t *a, size_t Kq, const float *sa,
                                                                       const int8_t *bp, const er_lowp_mat *w,
                                                                       int n0, const float *bias, float *C,
                                                                       int ldc, int m, int n) {
    /* 6 rows x 32 columns; activations back to s8 (xor 0x80) */
    __m512i c00 = _mm512_setzero_si512(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00,
            c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
    const __m512i ones = _mm512_set1_epi16(1), zero = _mm512_setzero_si512();
    const uint32_t *a32 = (const uint32_t *)a;
    size_t kq4 = Kq / 4;
    for (size_t kq = 0; kq < kq4; kq++) {
        __m512i w0 = _mm512_loadu_si512(bp + kq * NR * 4), w1 = _mm512_loadu_si512(bp + kq * NR * 4 + 64);
        __mmask64 n0m = _mm512_movepi8_mask(w0), n1m = _mm512_movepi8_mask(w1);
        __m512i u0 = _mm512_abs_epi8(w0), u1 = _mm512_abs_epi8(w1);
#define ROW(r, x0, x1)                                                                                         \
    {                                                                                                          \
        __m512i av = _mm512_set1_epi32((int)(a32[(size_t)(r)*kq4 + kq] ^ 0x80808080u));                        \
        __m512i s0 = _mm512_mask_sub_epi8(av, n0m, zero, av), s1 = _mm512_mask_sub_epi8(av, n1m, zero, av);    \
        x0 = _mm512_add_epi32(x0, _mm512_madd_epi16(_mm512_maddubs_epi16(u0, s0), ones));                      \
        x1 = _mm512_add_epi32(x1, _mm512_madd_epi16(_mm512_maddubs_epi16(u1, s1), ones));                      \
    }
        ROW(0, c00, c01) ROW(1, c10, c11) ROW(2, c20, c21) ROW(3, c30, c31) ROW(4, c40, c41) ROW(5, c50, c51)
#undef ROW
    }
    __m512i acc[6][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}, {c40, c41}, {c50, c51}};
    STORE_512(acc, m, 0);
}

__attribute__((target("avx2,fma"))) static void kernel_avx2(const uint8_t *a, size_t Kq, const float *sa,
                                                             const int8_t *bp, const er_lowp_mat *w, int n0,
                                                             const float *bias, float *C, int ldc, int m, int n) {
    /* 4 rows x 16 columns (half a panel: bp and n0 already offset); n <= 16 */
    __m256i c00 = _mm256_setzero_si256(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00, c31 = c00;
    const __m256i ones = _mm256_set1_epi16(1);
    const uint32_t *a32 = (const uint32_t *)a;
    size_t kq4 = Kq / 4;
    for (size_t kq = 0; kq < kq4; kq++) {
        __m256i w0 = _mm256_loadu_si256((const __m256i *)(bp + kq * NR * 4));
        __m256i w1 = _mm256_loadu_si256((const __m256i *)(bp + kq * NR * 4 + 32));
        __m256i u0 = _mm256_abs_epi8(w0), u1 = _mm256_abs_epi8(w1);
#define ROW(r, x0, x1)                                                                                         \
    {                                                                                                          \
        __m256i av = _mm256_set1_epi32((int)(a32[(size_t)(r)*kq4 + kq] ^ 0x80808080u));                        \
        x0 = _mm256_add_epi32(x0, _mm256_madd_epi16(_mm256_maddubs_epi16(u0, _mm256_sign_epi8(av, w0)), ones)); \
        x1 = _mm256_add_epi32(x1, _mm256_madd_epi16(_mm256_maddubs_epi16(u1, _mm256_sign_epi8(av, w1)), ones)); \
    }
        ROW(0, c00, c01) ROW(1, c10, c11) ROW(2, c20, c21) ROW(3, c30, c31)
#undef ROW
    }
    __m256i acc[4][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}};
    float b[16] = {0}, s[16] = {0};
    if (bias) memcpy(b, bias, (size_t)n * sizeof(float));
    memcpy(s, w->scale + n0, (size_t)n * sizeof(float));
    __m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8), s0 = _mm256_loadu_ps(s), s1 = _mm256_loadu_ps(s + 8);
    for (int r = 0; r < m; r++) {
        __m256 sr = _mm256_set1_ps(sa[r]);
        float t[16];
        _mm256_storeu_ps(t, _mm256_add_ps(_mm256_mul_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(acc[r][0]), sr), s0), b0));
        _mm256_storeu_ps(t + 8, _mm256_add_ps(_mm256_mul_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(acc[r][1]), sr), s1), b1));
        memcpy(C + (size_t)r * ldc, t, (size_t)n * sizeof(float));
    }
}
#endif

void er_gemm_q8(er_isa isa, const er_lowp_mat *w, int M, const float *A, int lda, const float *bias, float *C,
                int ldc) {
    ER_ASSERT(w->dtype == ER_LOWP_INT8);
    int Kq = w->Kp, N = w->N;
    size_t kq4 = (size_t)Kq / 4;
    int mr = 1;
#ifdef HAVE_X86
    mr = isa >= ER_ISA_AVX512VNNI ? 12 : isa >= ER_ISA_AVX512 ? 6 : isa >= ER_ISA_AVX2 ? 4 : 1;
#else
    isa = ER_ISA_SCALAR;
#endif
    float *sa = er_lowp_scratch((size_t)MC * sizeof(float) + (size_t)MC * Kq);
    ER_ASSERT(sa != NULL); /* MC x K bytes per thread, once */
    uint8_t *aq = (uint8_t *)(sa + MC);
    const int8_t *panels = w->data;
    for (int ic = 0; ic < M; ic += MC) {
        int mc = M - ic < MC ? M - ic : MC;
        int mcr = (mc + mr - 1) / mr * mr;
#ifdef HAVE_X86
        if (isa >= ER_ISA_AVX512)
            quantize_rows_avx512(aq, sa, A + (size_t)ic * lda, lda, mc, mcr, w->K, Kq);
        else
#endif
            quantize_rows(aq, sa, A + (size_t)ic * lda, lda, mc, mcr, w->K, Kq);
        for (int p = 0; p < w->panels; p++) {
            const int8_t *bp = panels + (size_t)p * kq4 * NR * 4;
            int n0 = p * NR, n = N - n0 < NR ? N - n0 : NR;
            const float *bb = bias ? bias + n0 : NULL;
            for (int ir = 0; ir < mc; ir += mr) {
                int m = mc - ir < mr ? mc - ir : mr;
                const uint8_t *ar = aq + (size_t)ir * Kq;
                const float *sr = sa + ir;
                float *c = C + (size_t)(ic + ir) * ldc + n0;
#ifdef HAVE_X86
                if (isa >= ER_ISA_AVX512VNNI) {
                    kernel_vnni(ar, Kq, sr, bp, w, n0, bb, c, ldc, m, n);
                    continue;
                }
                if (isa >= ER_ISA_AVX512) {
                    kernel_avx512(ar, Kq, sr, bp, w, n0, bb, c, ldc, m, n);
                    continue;
                }
                if (isa >= ER_ISA_AVX2) {
                    kernel_avx2(ar, Kq, sr, bp, w, n0, bb, c, ldc, m, n < 16 ? n : 16);
                    if (n > 16)
                        kernel_avx2(ar, Kq, sr, bp + 64, w, n0 + 16, bb ? bb + 16 : NULL, c + 16, ldc, m, n - 16);
                    continue;
                }
#endif
                kernel_scalar(ar, (size_t)Kq, sr, bp, w, n0, bb, c, ldc, m, n);
            }
        }
    }
}
