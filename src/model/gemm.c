/* gemm.c — C (M, N) [+]= A (M, K) · B^T with B (N, K): every nn.Linear of the encoder.
 *
 * On CPUs with AVX-512 a GotoBLAS-style blocked kernel of our own (packed 12x32 register
 * tiles, 24 zmm accumulators) runs single-threaded in the caller's thread; elsewhere, or
 * with EASYREC_GEMM=blas in the environment, the call goes to CBLAS. Why our own: Debian's
 * OpenBLAS 0.3.21 runs AVX2 kernels on this machine class (OPENBLAS_CORETYPE=Haswell is
 * forced where its newer kernels were unreliable), leaving half of the FMA width unused.
 * The bias of the Linear is added when the tile is stored (no separate pass).
 * Not a general BLAS: no transposes other than B^T, no alpha, no threading (easyrec
 * parallelises over batches). tests/test_gemm.c checks it against a plain triple loop.
 */
#include <cblas.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "model/model.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define HAVE_AVX512_KERNEL 1
#endif

#define MR 12   /* rows of C per register tile */
#define NR 32   /* columns of C per register tile (2 zmm) */
#ifndef KC
#define KC 256  /* K block: a B micro-panel (KC x NR) stays in L1 */
#endif
#ifndef MC
#define MC 96   /* M block: the packed A block (MC x KC) stays in L2 */
#endif
#ifndef NC
#define NC 768 /* N block: the packed B block (NC x KC) stays in L2 */
#endif

static void gemm_blas(int M, int N, int K, const float *A, int lda, const float *B, int ldb, const float *bias,
                      float *C, int ldc, int accumulate) {
    if (bias) {
        for (int i = 0; i < M; i++) {
            float *c = C + (size_t)i * ldc;
            if (accumulate)
                for (int j = 0; j < N; j++) c[j] += bias[j];
            else
                memcpy(c, bias, (size_t)N * sizeof(float));
        }
        accumulate = 1;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, N, K, 1.0f, A, lda, B, ldb,
                accumulate ? 1.0f : 0.0f, C, ldc);
}

#ifdef HAVE_AVX512_KERNEL
/* A is read in place (12 rows of one K block stay in L1); only B is packed:
 * Bp: NR-column panels, element (n, k) at k*NR + n, zero columns past n. */

static void pack_b(float *Bp, const float *B, int ldb, int n, int kc) {
    for (int j0 = 0; j0 < n; j0 += NR) {
        int nr = n - j0 < NR ? n - j0 : NR;
        for (int c = 0; c < nr; c++) {
            const float *src = B + (size_t)(j0 + c) * ldb;
            for (int k = 0; k < kc; k++) Bp[k * NR + c] = src[k];
        }
        for (int c = nr; c < NR; c++)
            for (int k = 0; k < kc; k++) Bp[k * NR + c] = 0.0f;
        Bp += (size_t)NR * kc;
    }
}

/* C tile (m <= MR rows, n <= NR cols) [+]= A rows (MR x kc, row stride lda) · Bp panel
 * (+ bias (n) when bias != NULL) */
__attribute__((target("avx512f"))) static void kernel_12x32(const float *A, int lda, const float *Bp, int kc,
                                                              const float *bias, float *C, int ldc, int m, int n,
                                                              int accumulate) {
    __m512 c00 = _mm512_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00,
           c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00, c60 = c00, c61 = c00, c70 = c00, c71 = c00,
           c80 = c00, c81 = c00, c90 = c00, c91 = c00, ca0 = c00, ca1 = c00, cb0 = c00, cb1 = c00;
    for (int k = 0; k < kc; k++) {
        __m512 b0 = _mm512_loadu_ps(Bp), b1 = _mm512_loadu_ps(Bp + 16);
        __m512 a;
#define ROW(r, x0, x1)                                                                                         \
    a = _mm512_set1_ps(A[(r) * (size_t)lda]);                                                                              \
    x0 = _mm512_fmadd_ps(a, b0, x0);                                                                           \
    x1 = _mm512_fmadd_ps(a, b1, x1);
        ROW(0, c00, c01) ROW(1, c10, c11) ROW(2, c20, c21) ROW(3, c30, c31) ROW(4, c40, c41) ROW(5, c50, c51)
        ROW(6, c60, c61) ROW(7, c70, c71) ROW(8, c80, c81) ROW(9, c90, c91) ROW(10, ca0, ca1) ROW(11, cb0, cb1)
#undef ROW
        A++;
        Bp += NR;
    }
    __m512 acc[MR][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}, {c40, c41}, {c50, c51},
                         {c60, c61}, {c70, c71}, {c80, c81}, {c90, c91}, {ca0, ca1}, {cb0, cb1}};
    __mmask16 m0 = n >= 16 ? 0xFFFF : (__mmask16)((1u << n) - 1);
    __mmask16 m1 = n >= 32 ? 0xFFFF : n <= 16 ? 0 : (__mmask16)((1u << (n - 16)) - 1);
    __m512 bias0 = _mm512_setzero_ps(), bias1 = bias0;
    if (bias) {
        bias0 = _mm512_maskz_loadu_ps(m0, bias);
        bias1 = _mm512_maskz_loadu_ps(m1, bias + 16);
    }
    for (int r = 0; r < m; r++) {
        float *c = C + (size_t)r * ldc;
        __m512 x0 = _mm512_add_ps(acc[r][0], bias0), x1 = _mm512_add_ps(acc[r][1], bias1);
        if (accumulate) {
            x0 = _mm512_add_ps(x0, _mm512_maskz_loadu_ps(m0, c));
            x1 = _mm512_add_ps(x1, _mm512_maskz_loadu_ps(m1, c + 16));
        }
        _mm512_mask_storeu_ps(c, m0, x0);
        _mm512_mask_storeu_ps(c + 16, m1, x1);
    }
}

static _Thread_local float *tl_ap, *tl_bp; /* per-thread edge-tile and packing buffers */

static int gemm_avx512(int M, int N, int K, const float *A, int lda, const float *B, int ldb, const float *bias,
                       float *C, int ldc, int accumulate) {
    if (!tl_ap) {
        tl_ap = aligned_alloc(64, sizeof(float) * MR * KC);
        tl_bp = aligned_alloc(64, sizeof(float) * ((NC + NR - 1) / NR * NR) * KC);
        if (!tl_ap || !tl_bp) {
            free(tl_ap);
            free(tl_bp);
            tl_ap = tl_bp = NULL;
            return -1;
        }
    }
    for (int jc = 0; jc < N; jc += NC) {
        int nc = N - jc < NC ? N - jc : NC;
        for (int pc = 0; pc < K; pc += KC) {
            int kc = K - pc < KC ? K - pc : KC;
            int acc = accumulate || pc > 0;
            pack_b(tl_bp, B + (size_t)jc * ldb + pc, ldb, nc, kc);
            for (int ic = 0; ic < M; ic += MC) {
                int mc = M - ic < MC ? M - ic : MC;
                for (int jr = 0; jr < nc; jr += NR) {
                    const float *bp = tl_bp + (size_t)jr * kc;
                    int n = nc - jr < NR ? nc - jr : NR;
                    for (int ir = 0; ir < mc; ir += MR) {
                        int m = mc - ir < MR ? mc - ir : MR;
                        const float *a = A + (size_t)(ic + ir) * lda + pc;
                        int la = lda;
                        if (m < MR) { /* edge tile: zero-padded copy so the kernel never reads past A */
                            memset(tl_ap, 0, sizeof(float) * MR * kc);
                            for (int r = 0; r < m; r++) memcpy(tl_ap + (size_t)r * kc, a + (size_t)r * lda, sizeof(float) * kc);
                            a = tl_ap;
                            la = kc;
                        }
                        kernel_12x32(a, la, bp, kc, bias && pc == 0 ? bias + jc + jr : NULL,
                                     C + (size_t)(ic + ir) * ldc + jc + jr, ldc, m, n, acc);
                    }
                }
            }
        }
    }
    return 0;
}
#endif

static int cached = -1; /* -1 unknown, 0 cblas, 1 own kernel */

void gemm_force_backend(int own) { __atomic_store_n(&cached, own, __ATOMIC_RELAXED); }

static int use_own_kernel(void) {
    int v = __atomic_load_n(&cached, __ATOMIC_RELAXED);
    if (v < 0) {
        const char *e = getenv("EASYREC_GEMM");
        v = 0;
#ifdef HAVE_AVX512_KERNEL
        __builtin_cpu_init();
        v = __builtin_cpu_supports("avx512f") && !(e && !strcmp(e, "blas"));
#endif
        __atomic_store_n(&cached, v, __ATOMIC_RELAXED);
    }
    return v;
}

const char *gemm_backend(void) { return use_own_kernel() ? "easyrec-avx512" : "cblas"; }

int gemm_has_own_kernel(void) {
#ifdef HAVE_AVX512_KERNEL
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f");
#else
    return 0;
#endif
}

void gemm_nt(int M, int N, int K, const float *A, int lda, const float *B, int ldb, const float *bias, float *C,
             int ldc, int accumulate) {
    if (M <= 0 || N <= 0) return;
    if (K <= 0) {
        for (int i = 0; i < M; i++)
            for (int j = 0; j < N; j++) {
                float *c = C + (size_t)i * ldc + j;
                *c = (accumulate ? *c : 0.0f) + (bias ? bias[j] : 0.0f);
            }
        return;
    }
#ifdef HAVE_AVX512_KERNEL
    if (use_own_kernel() && gemm_avx512(M, N, K, A, lda, B, ldb, bias, C, ldc, accumulate) == 0) return;
#endif
    gemm_blas(M, N, K, A, lda, B, ldb, bias, C, ldc, accumulate);
}
