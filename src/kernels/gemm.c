/* er_gemm.c — C (M, N) [+]= op(A) (M, K) · op(B) (K, N) (+ bias): every nn.Linear of the
 * encoder (A · W^T) and its backward (dout · W, dout^T · inp).
 *
 * On CPUs with AVX-512 a GotoBLAS-style blocked kernel of our own (packed 12x32 register
 * tiles, 24 zmm accumulators) runs single-threaded in the caller's thread; elsewhere, or
 * when the calling thread chose ER_GEMM_BLAS (er_gemm_set_backend; easyrec_encode_opts.gemm,
 * the command line's --er_gemm / EASYREC_GEMM), the call goes to CBLAS. The library reads no
 * environment variable and keeps no process-wide switch: the choice is the calling
 * thread's, and gemm_mt hands it to its workers. Why our own: Debian's
 * OpenBLAS 0.3.21 runs AVX2 kernels on this machine class (OPENBLAS_CORETYPE=Haswell is
 * forced where its newer kernels were unreliable), leaving half of the FMA width unused.
 * The bias of the Linear is added when the tile is stored (no separate pass).
 * Not a general BLAS: no alpha. gemm_nt/er_gemm run in the calling thread (inference
 * parallelises over batches); er_gemm_mt splits the columns of C over threads, so every
 * element is computed exactly as single-threaded (results independent of thread count).
 * tests/test_gemm.c checks every form against a plain loop.
 */
#include <cblas.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "kernels/kernels.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define HAVE_AVX512_KERNEL 1
#endif

#define MR 12   /* rows of C per register tile */
#define NR 32   /* columns of C per register tile (2 zmm) */
_Static_assert(NR == ER_GEMM_PANEL, "packed B panels are NR columns wide");
#ifndef KC
#define KC 256  /* K block: a B micro-panel (KC x NR) stays in L1 */
#endif
#ifndef MC
#define MC 96   /* M block: the packed A block (MC x KC) stays in L2 */
#endif
#ifndef NC
#define NC 768 /* N block: the packed B block (NC x KC) stays in L2 */
#endif

static void gemm_blas(int ta, int tb, int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                      const float *bias, float *C, int ldc, int accumulate) {
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
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, M, N, K, 1.0f, A,
                lda, B, ldb, accumulate ? 1.0f : 0.0f, C, ldc);
}

#ifdef HAVE_AVX512_KERNEL
/* A is read in place (12 rows of one K block stay in L1): element (r, k) at A[r*rsa + k*csa].
 * Only B is packed: op(B) element (k, n) at B[n*sn + k*sk] goes to NR-column panels,
 * (n, k) at k*NR + n, zero columns past n. */
/* dst rows 0..15 (stride ldd) = columns 0..15 of the 16 x 16 block at src (row stride ld) */
__attribute__((target("avx512f"))) static void transpose16(const float *src, size_t ld, float *dst, size_t ldd) {
    __m512 r[16], t[16];
    for (int i = 0; i < 16; i++) r[i] = _mm512_loadu_ps(src + (size_t)i * ld);
    for (int i = 0; i < 8; i++) { /* pairs of rows interleaved by element */
        t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    for (int i = 0; i < 4; i++) { /* quads of rows by element pairs */
        r[4 * i] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], 0x44);
        r[4 * i + 1] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], 0xEE);
        r[4 * i + 2] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0x44);
        r[4 * i + 3] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0xEE);
    }
    for (int h = 0; h < 2; h++) /* then 128-bit lanes, twice */
        for (int i = 0; i < 4; i++) {
            t[8 * h + i] = _mm512_shuffle_f32x4(r[8 * h + i], r[8 * h + 4 + i], 0x88);
            t[8 * h + 4 + i] = _mm512_shuffle_f32x4(r[8 * h + i], r[8 * h + 4 + i], 0xdd);
        }
    for (int i = 0; i < 8; i++) {
        r[i] = _mm512_shuffle_f32x4(t[i], t[8 + i], 0x88);
        r[8 + i] = _mm512_shuffle_f32x4(t[i], t[8 + i], 0xdd);
    }
    for (int i = 0; i < 16; i++) _mm512_storeu_ps(dst + (size_t)i * ldd, r[i]);
}

/* the packing copies of 32 and 12 floats, two / one zmm (GCC made `rep movsq` of a memcpy,
 * slow to start, and will not vectorise a plain loop that may alias at -O2) */
__attribute__((target("avx512f"))) static inline void copy_row32(const float *src, float *dst) {
    _mm512_storeu_ps(dst, _mm512_loadu_ps(src));
    _mm512_storeu_ps(dst + 16, _mm512_loadu_ps(src + 16));
}
__attribute__((target("avx512f"))) static inline void copy_row12(const float *src, float *dst) {
    _mm512_mask_storeu_ps(dst, 0x0FFF, _mm512_maskz_loadu_ps(0x0FFF, src));
}

static void pack_b(float *Bp, const float *B, size_t sn, size_t sk, int n, int kc) {
    for (int j0 = 0; j0 < n; j0 += NR) {
        int nr = n - j0 < NR ? n - j0 : NR;
        if (sk == 1 && nr == NR && kc % 16 == 0) {
            /* the Linear case (W rows contiguous in k): 16 x 16 blocks transposed in registers,
             * a plain copy like the loop below, several times faster (it dominated small
             * batches: every call packs the whole weight) */
            for (int cb = 0; cb < NR; cb += 16)
                for (int k = 0; k < kc; k += 16) transpose16(B + (size_t)(j0 + cb) * sn + k, sn, Bp + (size_t)k * NR + cb, NR);
        } else if (sk == 1) {
            for (int c = 0; c < nr; c++) {
                const float *src = B + (size_t)(j0 + c) * sn;
                for (int k = 0; k < kc; k++) Bp[k * NR + c] = src[k];
            }
        } else if (sn == 1 && nr == NR) { /* B (K, N) row-major (tb = 0): rows of the panel are contiguous */
            for (int k = 0; k < kc; k++) copy_row32(B + (size_t)k * sk + j0, Bp + (size_t)k * NR);
        } else {
            for (int k = 0; k < kc; k++) {
                const float *src = B + (size_t)k * sk + (size_t)j0 * sn;
                for (int c = 0; c < nr; c++) Bp[k * NR + c] = src[(size_t)c * sn];
            }
        }
        for (int c = nr; c < NR; c++)
            for (int k = 0; k < kc; k++) Bp[k * NR + c] = 0.0f;
        Bp += (size_t)NR * kc;
    }
}

/* C tile (m <= MR rows, n <= NR cols) [+]= A (MR x kc, element (r, k) at r*rsa + k*csa) ·
 * Bp panel (+ bias (n) when bias != NULL) */
__attribute__((target("avx512f"))) static void kernel_12x32(const float *A, size_t rsa, size_t csa, const float *Bp,
                                                              int kc, const float *bias, float *C, int ldc, int m,
                                                              int n, int accumulate) {
    __m512 c00 = _mm512_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00,
           c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00, c60 = c00, c61 = c00, c70 = c00, c71 = c00,
           c80 = c00, c81 = c00, c90 = c00, c91 = c00, ca0 = c00, ca1 = c00, cb0 = c00, cb1 = c00;
    for (int k = 0; k < kc; k++) {
        __m512 b0 = _mm512_loadu_ps(Bp), b1 = _mm512_loadu_ps(Bp + 16);
        __m512 a;
#define ROW(r, x0, x1)                                                                                         \
    a = _mm512_set1_ps(A[(r)*rsa]);                                                                                        \
    x0 = _mm512_fmadd_ps(a, b0, x0);                                                                           \
    x1 = _mm512_fmadd_ps(a, b1, x1);
        ROW(0, c00, c01) ROW(1, c10, c11) ROW(2, c20, c21) ROW(3, c30, c31) ROW(4, c40, c41) ROW(5, c50, c51)
        ROW(6, c60, c61) ROW(7, c70, c71) ROW(8, c80, c81) ROW(9, c90, c91) ROW(10, ca0, ca1) ROW(11, cb0, cb1)
#undef ROW
        A += csa;
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

/* Per-thread edge-tile and packing buffers (one allocation, ~0.8 MB), made on a thread's
 * first GEMM and freed when the thread exits (pthread key destructor) or when it calls
 * er_gemm_thread_cleanup(): a thread-per-connection server does not accumulate them. */
static _Thread_local float *tl_ap, *tl_bp;
static pthread_key_t buf_key;
static pthread_once_t buf_once = PTHREAD_ONCE_INIT;
static int buf_key_ok;

static void buf_free(void *p) { free(p); }
static void buf_key_init(void) { buf_key_ok = pthread_key_create(&buf_key, buf_free) == 0; }

void er_gemm_thread_cleanup(void) {
    free(tl_ap); /* tl_bp lives in the same allocation */
    tl_ap = tl_bp = NULL;
    pthread_once(&buf_once, buf_key_init);
    if (buf_key_ok) pthread_setspecific(buf_key, NULL);
}

static int alloc_buffers(void) {
    size_t na = (size_t)MC * KC, nb = (size_t)((NC + NR - 1) / NR * NR) * KC; /* na * 4 bytes is a multiple of 64 */
    pthread_once(&buf_once, buf_key_init);
    float *p = buf_key_ok ? aligned_alloc(64, sizeof(float) * (na + nb)) : NULL;
    if (!p) return -1;
    tl_ap = p;
    tl_bp = p + na;
    pthread_setspecific(buf_key, p);
    return 0;
}

static int gemm_avx512(int ta, int tb, int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                       const float *bias, float *C, int ldc, int accumulate) {
    size_t rsa = ta ? 1 : (size_t)lda, csa = ta ? (size_t)lda : 1; /* op(A) (r, k) */
    size_t sn = tb ? (size_t)ldb : 1, sk = tb ? 1 : (size_t)ldb;   /* op(B) (k, n) at n*sn + k*sk */
    if (!tl_ap && alloc_buffers()) return -1;
    for (int jc = 0; jc < N; jc += NC) {
        int nc = N - jc < NC ? N - jc : NC;
        for (int pc = 0; pc < K; pc += KC) {
            int kc = K - pc < KC ? K - pc : KC;
            int acc = accumulate || pc > 0;
            pack_b(tl_bp, B + (size_t)jc * sn + (size_t)pc * sk, sn, sk, nc, kc);
            for (int ic = 0; ic < M; ic += MC) {
                int mc = M - ic < MC ? M - ic : MC;
                /* op(A) = Aᵀ (ta) read in place takes 12 floats from each of kc cache lines per
                 * tile, which with the B panel overflows L1: pack the block once into k-major
                 * tiles (MR floats per k, rows past mc zero), reused by every panel of B */
                int packed = csa != 1;
                if (packed)
                    for (int ir = 0; ir < mc; ir += MR) {
                        int m = mc - ir < MR ? mc - ir : MR;
                        float *t = tl_ap + (size_t)ir * kc;
                        const float *a = A + (size_t)(ic + ir) * rsa + (size_t)pc * csa;
                        for (int k = 0; k < kc; k++) {
                            const float *src = a + (size_t)k * csa;
                            float *dst = t + (size_t)k * MR;
                            if (rsa == 1 && m == MR) copy_row12(src, dst);
                            else {
                                for (int r = 0; r < m; r++) dst[r] = src[(size_t)r * rsa];
                                for (int r = m; r < MR; r++) dst[r] = 0.0f;
                            }
                        }
                    }
                for (int jr = 0; jr < nc; jr += NR) {
                    const float *bp = tl_bp + (size_t)jr * kc;
                    int n = nc - jr < NR ? nc - jr : NR;
                    for (int ir = 0; ir < mc; ir += MR) {
                        int m = mc - ir < MR ? mc - ir : MR;
                        const float *a = A + (size_t)(ic + ir) * rsa + (size_t)pc * csa;
                        size_t r_s = rsa, c_s = csa;
                        if (packed) {
                            a = tl_ap + (size_t)ir * kc;
                            r_s = 1;
                            c_s = MR;
                        } else if (m < MR) { /* edge tile: zero-padded copy so the kernel never reads past A */
                            memset(tl_ap, 0, sizeof(float) * MR * kc);
                            for (int r = 0; r < m; r++)
                                for (int k = 0; k < kc; k++) tl_ap[(size_t)r * kc + k] = a[r * rsa + k * csa];
                            a = tl_ap;
                            r_s = (size_t)kc;
                            c_s = 1;
                        }
                        kernel_12x32(a, r_s, c_s, bp, kc, bias && pc == 0 ? bias + jc + jr : NULL,
                                     C + (size_t)(ic + ir) * ldc + jc + jr, ldc, m, n, acc);
                    }
                }
            }
        }
    }
    return 0;
}

/* C (M, N) [+]= A (M, K) · B^T from B packed (er_gemm_pack_rows / _kn): the loops and K blocks
 * of gemm_avx512, with the B panels read where they lie (one every `panel` floats) instead of
 * packed per call. */
static void gemm_packed_avx512(int M, const float *A, int lda, const float *Bp, size_t panel, int N, int K,
                               const float *bias, float *C, int ldc, int accumulate) {
    float ap[MR * KC] __attribute__((aligned(64))); /* zero-padded edge tile */
    for (int jc = 0; jc < N; jc += NC) {
        int nc = N - jc < NC ? N - jc : NC;
        for (int pc = 0; pc < K; pc += KC) {
            int kc = K - pc < KC ? K - pc : KC;
            for (int ic = 0; ic < M; ic += MC) {
                int mc = M - ic < MC ? M - ic : MC;
                for (int jr = 0; jr < nc; jr += NR) {
                    const float *bp = Bp + (size_t)(jc + jr) / NR * panel + (size_t)pc * NR;
                    int n = nc - jr < NR ? nc - jr : NR;
                    for (int ir = 0; ir < mc; ir += MR) {
                        int m = mc - ir < MR ? mc - ir : MR;
                        const float *a = A + (size_t)(ic + ir) * lda + pc;
                        size_t r_s = (size_t)lda;
                        if (m < MR) {
                            memset(ap, 0, sizeof(float) * MR * kc);
                            for (int r = 0; r < m; r++) memcpy(ap + (size_t)r * kc, a + (size_t)r * lda, sizeof(float) * kc);
                            a = ap;
                            r_s = (size_t)kc;
                        }
                        kernel_12x32(a, r_s, 1, bp, kc, bias && pc == 0 ? bias + jc + jr : NULL,
                                     C + (size_t)(ic + ir) * ldc + jc + jr, ldc, m, n, accumulate || pc > 0);
                    }
                }
            }
        }
    }
}
#endif

static _Thread_local int tl_backend = ER_GEMM_AUTO; /* the calling thread's choice */

int er_gemm_set_backend(int backend) {
    int old = tl_backend;
    tl_backend = backend == ER_GEMM_OWN || backend == ER_GEMM_BLAS ? backend : ER_GEMM_AUTO;
    return old;
}

int er_gemm_get_backend(void) { return tl_backend; }

void er_gemm_force_backend(int own) { er_gemm_set_backend(own ? ER_GEMM_OWN : ER_GEMM_BLAS); }

int er_gemm_has_own_kernel(void) {
#ifdef HAVE_AVX512_KERNEL
    static int have = -1; /* a fact about the CPU, detected once */
    int v = __atomic_load_n(&have, __ATOMIC_RELAXED);
    if (v < 0) {
        __builtin_cpu_init();
        v = __builtin_cpu_supports("avx512f") ? 1 : 0;
        __atomic_store_n(&have, v, __ATOMIC_RELAXED);
    }
    return v;
#else
    return 0;
#endif
}

static int use_own_kernel(void) { return tl_backend != ER_GEMM_BLAS && er_gemm_has_own_kernel(); }

const char *er_gemm_backend(void) { return use_own_kernel() ? "easyrec-avx512" : "cblas"; }

void er_gemm(int ta, int tb, int M, int N, int K, const float *A, int lda, const float *B, int ldb, const float *bias,
          float *C, int ldc, int accumulate) {
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
    if (use_own_kernel() && gemm_avx512(ta, tb, M, N, K, A, lda, B, ldb, bias, C, ldc, accumulate) == 0) return;
#endif
    gemm_blas(ta, tb, M, N, K, A, lda, B, ldb, bias, C, ldc, accumulate);
}

void er_gemm_nt(int M, int N, int K, const float *A, int lda, const float *B, int ldb, const float *bias, float *C,
             int ldc, int accumulate) {
    er_gemm(0, 1, M, N, K, A, lda, B, ldb, bias, C, ldc, accumulate);
}

/* ---- one B, many products ------------------------------------------------------------ */

int er_gemm_packs(void) { return use_own_kernel(); }

size_t er_gemm_packed_floats(int N, int K) { return ((size_t)N + NR - 1) / NR * NR * (size_t)K; }

void er_gemm_pack_rows(const float *B, const int32_t *rows, int N, int K, size_t ldb, float *buf) {
    ER_ASSERT(N >= 1 && K >= 1 && ldb >= (size_t)K);
    /* panel q: (K, NR) row-major, columns past N zero: pack_b's layout for all of K at once */
    for (int j0 = 0; j0 < N; j0 += NR, buf += (size_t)NR * K) {
        int nr = N - j0 < NR ? N - j0 : NR;
        for (int c = 0; c < nr; c++) {
            const float *src = B + (size_t)(rows ? rows[j0 + c] : j0 + c) * ldb;
            for (int k = 0; k < K; k++) buf[(size_t)k * NR + c] = src[k];
        }
        for (int c = nr; c < NR; c++)
            for (int k = 0; k < K; k++) buf[(size_t)k * NR + c] = 0.0f;
    }
}

void er_gemm_pack_kn(const float *B, int K, int N, size_t ldb, float *buf) {
    ER_ASSERT(N >= 1 && K >= 1 && ldb >= (size_t)N);
    for (int j0 = 0; j0 < N; j0 += NR, buf += (size_t)NR * K) {
        int nr = N - j0 < NR ? N - j0 : NR;
        for (int k = 0; k < K; k++) {
            float *dst = buf + (size_t)k * NR;
            memcpy(dst, B + (size_t)k * ldb + j0, (size_t)nr * sizeof(float));
            for (int c = nr; c < NR; c++) dst[c] = 0.0f;
        }
    }
}

void er_gemm_packed_nt(int M, const float *A, int lda, const float *Bp, int N, int K, float *C, int ldc) {
    er_gemm_packed(M, A, lda, Bp, (size_t)NR * (size_t)(K > 0 ? K : 1), N, K, NULL, C, ldc, 0);
}

void er_gemm_packed(int M, const float *A, int lda, const float *Bp, size_t panel, int N, int K, const float *bias,
                    float *C, int ldc, int accumulate) {
    ER_ASSERT(use_own_kernel() && lda >= K && ldc >= N && K >= 1 && panel >= (size_t)NR * K);
    if (M <= 0 || N <= 0) return;
#ifdef HAVE_AVX512_KERNEL
    gemm_packed_avx512(M, A, lda, Bp, panel, N, K, bias, C, ldc, accumulate);
#endif
}

void er_gemm_tasks(int n, int threads, void (*task)(void *ctx, int t), void *ctx) {
    if (threads < 1) threads = 1;
    int backend = tl_backend; /* the caller's choice holds in the workers too */
#pragma omp parallel num_threads(threads)
    {
        int old = er_gemm_set_backend(backend);
#pragma omp for schedule(dynamic, 1)
        for (int t = 0; t < n; t++) task(ctx, t);
        er_gemm_set_backend(old);
    }
}

/* Results are bit-identical for 1 or many threads. With CBLAS the columns go out in fixed
 * chunks whatever the thread count, so each chunk is the same call with the same blocking.
 * With the own kernel an element's arithmetic does not depend on how the columns are split
 * (the same K blocks in the same order), so they are split evenly, in whole NR-wide panels,
 * over the threads: fixed chunks of 256 columns left one of two threads idle for a third of
 * a 768-column product. */
#define MT_CHUNK (8 * NR)

void er_gemm_mt(int ta, int tb, int M, int N, int K, const float *A, int lda, const float *B, int ldb,
             const float *bias, float *C, int ldc, int accumulate, int nthreads) {
    if (nthreads < 1) nthreads = 1;
    int width = MT_CHUNK;
    if (use_own_kernel()) {
        int panels = (N + NR - 1) / NR, per = (panels + nthreads - 1) / nthreads;
        width = (per > 0 ? per : 1) * NR;
    }
    int chunks = (N + width - 1) / width;
    if (nthreads > chunks) nthreads = chunks;
    if (nthreads < 1) nthreads = 1;
    int backend = tl_backend; /* the caller's choice holds in the workers too */
#pragma omp parallel num_threads(nthreads)
    {
        int old = er_gemm_set_backend(backend);
#pragma omp for schedule(static, 1)
        for (int c = 0; c < chunks; c++) {
            int j0 = c * width, n = N - j0 < width ? N - j0 : width;
            const float *b = B + (tb ? (size_t)j0 * ldb : (size_t)j0);
            er_gemm(ta, tb, M, n, K, A, lda, b, ldb, bias ? bias + j0 : NULL, C + j0, ldc, accumulate);
        }
        er_gemm_set_backend(old);
    }
}
