/* spmm.c — sparse × dense products over the normalised adjacency, forward (Â X) and backward
 * (Âᵀ X through the transposed positions). Each output row is one thread's, summed in CSR
 * order, so results are bit-identical for any thread count. Width 32 (the original's d) has
 * AVX2/AVX-512 rows with the accumulator in registers, chosen once from the CPU's level. */
#include "cf/cf.h"
#include "kernels/cpu.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define HAVE_X86_ROWS 1

__attribute__((target("avx2,fma"))) static void row32_avx2(const int64_t *ip, const int32_t *idx, const float *val,
                                                           const int64_t *tpos, int tr, const float *X, int ldx,
                                                           const float *a, float *y) {
    __m256 c0, c1, c2, c3;
    if (a) c0 = _mm256_loadu_ps(a), c1 = _mm256_loadu_ps(a + 8), c2 = _mm256_loadu_ps(a + 16), c3 = _mm256_loadu_ps(a + 24);
    else c0 = c1 = c2 = c3 = _mm256_setzero_ps();
    for (int64_t e = ip[0]; e < ip[1]; e++) {
        __m256 v = _mm256_set1_ps(tr ? val[tpos[e]] : val[e]);
        const float *x = X + (size_t)idx[e] * ldx;
        c0 = _mm256_fmadd_ps(v, _mm256_loadu_ps(x), c0);
        c1 = _mm256_fmadd_ps(v, _mm256_loadu_ps(x + 8), c1);
        c2 = _mm256_fmadd_ps(v, _mm256_loadu_ps(x + 16), c2);
        c3 = _mm256_fmadd_ps(v, _mm256_loadu_ps(x + 24), c3);
    }
    _mm256_storeu_ps(y, c0), _mm256_storeu_ps(y + 8, c1), _mm256_storeu_ps(y + 16, c2), _mm256_storeu_ps(y + 24, c3);
}

__attribute__((target("avx512f"))) static void row32_avx512(const int64_t *ip, const int32_t *idx, const float *val,
                                                            const int64_t *tpos, int tr, const float *X, int ldx,
                                                            const float *a, float *y) {
    __m512 c0 = a ? _mm512_loadu_ps(a) : _mm512_setzero_ps(), c1 = a ? _mm512_loadu_ps(a + 16) : _mm512_setzero_ps();
    for (int64_t e = ip[0]; e < ip[1]; e++) {
        __m512 v = _mm512_set1_ps(tr ? val[tpos[e]] : val[e]);
        const float *x = X + (size_t)idx[e] * ldx;
        c0 = _mm512_fmadd_ps(v, _mm512_loadu_ps(x), c0);
        c1 = _mm512_fmadd_ps(v, _mm512_loadu_ps(x + 16), c1);
    }
    _mm512_storeu_ps(y, c0), _mm512_storeu_ps(y + 16, c1);
}
#endif

void er_cf_spmm(const er_cf_graph *g, const float *val, int transpose, const float *X, int ldx, float *Y, int ldy,
                const float *add, int ldadd, int d, int threads) {
    if (threads < 1) threads = 1;
    const int64_t *indptr = g->indptr, *tpos = g->tpos;
    const int32_t *idx = g->indices;
    int isa = 0;
#ifdef HAVE_X86_ROWS
    if (d == 32) isa = er_cpu_isa() >= ER_ISA_AVX512 ? 2 : er_cpu_isa() >= ER_ISA_AVX2 ? 1 : 0;
#endif
#pragma omp parallel for num_threads(threads) schedule(dynamic, 512)
    for (int32_t i = 0; i < g->n; i++) {
        float *y = Y + (size_t)i * ldy;
        const float *a = add ? add + (size_t)i * ldadd : NULL;
#ifdef HAVE_X86_ROWS
        if (isa == 2) {
            row32_avx512(indptr + i, idx, val, tpos, transpose, X, ldx, a, y);
            continue;
        }
        if (isa == 1) {
            row32_avx2(indptr + i, idx, val, tpos, transpose, X, ldx, a, y);
            continue;
        }
#endif
        if (a)
            for (int k = 0; k < d; k++) y[k] = a[k];
        else
            for (int k = 0; k < d; k++) y[k] = 0.0f;
        for (int64_t e = indptr[i]; e < indptr[i + 1]; e++) {
            float v = transpose ? val[tpos[e]] : val[e];
            const float *x = X + (size_t)idx[e] * ldx;
#pragma omp simd
            for (int k = 0; k < d; k++) y[k] += v * x[k];
        }
    }
}
