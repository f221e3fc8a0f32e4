/* mlp.c — the alignment MLP of RLMRec-Con / -Gen: Linear -> LeakyReLU(0.01) -> Linear.
 * Products over rows go in fixed 128-row chunks (one thread each) and weight gradients split
 * by columns (er_gemm_mt), so any thread count gives the same bits. */
#include <string.h>

#include "cf/cf.h"
#include "kernels/kernels.h"

#define ROWS 128
#define SLOPE 0.01f

/* C (n, N) [+]= A (n, K) · op(B) + bias, rows in fixed chunks: tb as in er_gemm. */
static void rows_gemm(int tb, int n, int N, int K, const float *A, const float *B, int ldb, const float *bias,
                      float *C, int accumulate, int threads) {
    int chunks = (n + ROWS - 1) / ROWS;
#pragma omp parallel for num_threads(threads) schedule(dynamic, 1)
    for (int c = 0; c < chunks; c++) {
        int r0 = c * ROWS, m = n - r0 < ROWS ? n - r0 : ROWS;
        er_gemm(0, tb, m, N, K, A + (size_t)r0 * K, K, B, ldb, bias, C + (size_t)r0 * N, N, accumulate);
    }
}

/* g[j] += Σ_r D[r, j] over n rows of width w, rows summed in order (float accumulators in
 * blocks of 64 rows, blocks summed in double). */
static void colsum_add(const float *D, int n, int w, float *g) {
    double acc[512];
    for (int j0 = 0; j0 < w; j0 += 512) {
        int wj = w - j0 < 512 ? w - j0 : 512;
        for (int j = 0; j < wj; j++) acc[j] = 0;
        for (int r0 = 0; r0 < n; r0 += 64) {
            float blk[512] = {0};
            int r1 = n - r0 < 64 ? n : r0 + 64;
            for (int r = r0; r < r1; r++) {
                const float *d = D + (size_t)r * w + j0;
#pragma omp simd
                for (int j = 0; j < wj; j++) blk[j] += d[j];
            }
            for (int j = 0; j < wj; j++) acc[j] += blk[j];
        }
        for (int j = 0; j < wj; j++) g[j0 + j] += (float)acc[j];
    }
}

void er_cf_mlp_forward(const er_cf_mlp *w, const float *X, int n, float *hpre, float *hact, float *Y, int threads) {
    if (threads < 1) threads = 1;
    /* hpre (n, hid) = X (n, in) · w1ᵀ + b1;  hact = leaky(hpre);  Y (n, out) = hact · w2ᵀ + b2 */
    rows_gemm(1, n, w->hid, w->in, X, w->w1, w->in, w->b1, hpre, 0, threads);
    size_t nh = (size_t)n * w->hid;
#pragma omp parallel for simd num_threads(threads) schedule(static)
    for (size_t k = 0; k < nh; k++) hact[k] = hpre[k] > 0.0f ? hpre[k] : SLOPE * hpre[k];
    rows_gemm(1, n, w->out, w->hid, hact, w->w2, w->hid, w->b2, Y, 0, threads);
}

void er_cf_mlp_backward(const er_cf_mlp *w, const er_cf_mlp *g, const float *X, int n, const float *hpre,
                        const float *hact, const float *dY, float *dh, float *dX, int threads) {
    if (threads < 1) threads = 1;
    if (n <= 0) return;
    /* dw2 (out, hid) += dYᵀ (out, n) · hact (n, hid);  db2 += Σ_r dY */
    er_gemm_mt(1, 0, w->out, w->hid, n, dY, w->out, hact, w->hid, NULL, g->w2, w->hid, 1, threads);
    colsum_add(dY, n, w->out, g->b2);
    /* dh (n, hid) = (dY (n, out) · w2 (out, hid)) ⊙ leaky'(hpre) */
    rows_gemm(0, n, w->hid, w->out, dY, w->w2, w->hid, NULL, dh, 0, threads);
    size_t nh = (size_t)n * w->hid;
#pragma omp parallel for simd num_threads(threads) schedule(static)
    for (size_t k = 0; k < nh; k++) dh[k] = hpre[k] > 0.0f ? dh[k] : SLOPE * dh[k];
    /* dw1 (hid, in) += dhᵀ (hid, n) · X (n, in);  db1 += Σ_r dh */
    er_gemm_mt(1, 0, w->hid, w->in, n, dh, w->hid, X, w->in, NULL, g->w1, w->in, 1, threads);
    colsum_add(dh, n, w->hid, g->b1);
    /* dX (n, in) = dh (n, hid) · w1 (hid, in) */
    if (dX) rows_gemm(0, n, w->in, w->hid, dh, w->w1, w->in, NULL, dX, 0, threads);
}
