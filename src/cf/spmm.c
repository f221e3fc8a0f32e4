/* spmm.c — sparse × dense products over the normalised adjacency, forward (Â X) and backward
 * (Âᵀ X through the transposed positions). Each output row is one thread's, summed in CSR
 * order, so results are bit-identical for any thread count. */
#include "cf/cf.h"

void er_cf_spmm(const er_cf_graph *g, const float *val, int transpose, const float *X, int ldx, float *Y, int ldy,
                const float *add, int ldadd, int d, int threads) {
    if (threads < 1) threads = 1;
    const int64_t *indptr = g->indptr, *tpos = g->tpos;
    const int32_t *idx = g->indices;
#pragma omp parallel for num_threads(threads) schedule(dynamic, 256)
    for (int32_t i = 0; i < g->n; i++) {
        float *y = Y + (size_t)i * ldy;
        if (add) {
            const float *a = add + (size_t)i * ldadd;
            for (int k = 0; k < d; k++) y[k] = a[k];
        } else {
            for (int k = 0; k < d; k++) y[k] = 0.0f;
        }
        for (int64_t e = indptr[i]; e < indptr[i + 1]; e++) {
            float v = transpose ? val[tpos[e]] : val[e];
            if (v == 0.0f) continue;
            const float *x = X + (size_t)idx[e] * ldx;
#pragma omp simd
            for (int k = 0; k < d; k++) y[k] += v * x[k];
        }
    }
}
