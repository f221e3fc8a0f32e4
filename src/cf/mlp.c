/* mlp.c — the alignment MLP of RLMRec-Con / -Gen: Linear -> LeakyReLU(0.01) -> Linear.
 * Products over rows go in fixed 144-row chunks (one thread each) and weight gradients split
 * by columns (er_gemm_mt), so any thread count gives the same bits. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cf/cf.h"
#include "kernels/kernels.h"

#define ROWS 144 /* 12 register tiles: no edge tile in a whole chunk */
#define SLOPE 0.01f

/* LeakyReLU and its derivative by the sign bit: a float compare makes GCC keep a branch per
 * element (-ftrapping-math: the select's multiply may not be speculated): a scalar loop of
 * branches mispredicted on random signs, ~3 % of a con epoch's perf samples. These vectorise. leaky is p + SLOPE·n
 * with p, n the positive and negative parts (one of them ±0): x or SLOPE·x exactly (−0 gives
 * +0). slope: 1 for x > 0, else SLOPE (x = ±0 included, as the reference's x > 0 test). */
static inline float leaky(float x) {
    int32_t b, neg;
    memcpy(&b, &x, sizeof b);
    neg = b >> 31; /* all ones where the sign bit is set */
    int32_t pb = b & ~neg, nb = b & neg;
    float p, n;
    memcpy(&p, &pb, sizeof p);
    memcpy(&n, &nb, sizeof n);
    return p + SLOPE * n;
}
static inline float slope(float x) {
    int32_t b;
    memcpy(&b, &x, sizeof b);
    return b > 0 ? 1.0f : SLOPE;
}

/* rows [r0, r0 + m) of chunk c of n rows */
static int chunk_rows(int c, int n, int *m) {
    int r0 = c * ROWS;
    *m = n - r0 < ROWS ? n - r0 : ROWS;
    return r0;
}

typedef struct {
    int tb, n, N, K, accumulate;
    const float *A, *B, *bias;
    int ldb;
    float *C;
} rows_job;

static void rows_task(void *p, int c) {
    const rows_job *j = p;
    int m, r0 = chunk_rows(c, j->n, &m);
    er_gemm(0, j->tb, m, j->N, j->K, j->A + (size_t)r0 * j->K, j->K, j->B, j->ldb, j->bias, j->C + (size_t)r0 * j->N,
            j->N, j->accumulate);
}

/* C (n, N) [+]= A (n, K) · op(B) + bias, rows in fixed chunks: tb as in er_gemm. */
static void rows_gemm(int tb, int n, int N, int K, const float *A, const float *B, int ldb, const float *bias,
                      float *C, int accumulate, int threads) {
    rows_job j = {tb, n, N, K, accumulate, A, B, bias, ldb, C};
    er_gemm_tasks((n + ROWS - 1) / ROWS, threads, rows_task, &j);
}

/* g[j] += Σ_r D[r, j] over n rows of width w, rows summed in order (float accumulators in
 * blocks of 64 rows, blocks summed in double). Columns go to threads in groups of 16 (a cache
 * line of a row); a column's sum is the same whatever thread makes it. */
static void colsum_add(const float *D, int n, int w, float *g, int threads) {
    int groups = (w + 15) / 16;
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int q = 0; q < groups; q++) {
        int j0 = q * 16, wj = w - j0 < 16 ? w - j0 : 16;
        double acc[16] = {0};
        for (int r0 = 0; r0 < n; r0 += 64) {
            float blk[16] = {0};
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

/* A weight as the B of every chunk's product, packed once per call where the own kernel runs
 * (er_gemm_packed: the same bits as er_gemm); NULL elsewhere or without memory, and the
 * chunks then pack it themselves. kn: W (K, N) row-major, else W (N, K) (the Linear's). */
static float *pack_weight(const float *W, int N, int K, int kn) {
    if (!er_gemm_packs()) return NULL;
    float *p = malloc(sizeof(float) * er_gemm_packed_floats(N, K));
    if (p && kn) er_gemm_pack_kn(W, K, N, (size_t)N, p);
    else if (p) er_gemm_pack_rows(W, NULL, N, K, (size_t)K, p);
    return p;
}

/* One chunk of rows of the forward or of dh, while it is in cache. p1, p2: the weights packed
 * (pack_weight) or NULL. */
typedef struct {
    const er_cf_mlp *w;
    int n;
    const float *X, *dY, *pre, *p1, *p2; /* pre: the forward's hpre, for dh */
    float *hpre, *hact, *Y, *dh;
} chunk_job;

/* hpre (m, hid) = X (m, in) · w1ᵀ + b1;  hact = leaky(hpre);  Y (m, out) = hact · w2ᵀ + b2 */
static void forward_task(void *p, int c) {
    const chunk_job *j = p;
    const er_cf_mlp *w = j->w;
    int m, r0 = chunk_rows(c, j->n, &m);
    const float *x = j->X + (size_t)r0 * w->in;
    float *hp = j->hpre + (size_t)r0 * w->hid, *ha = j->hact + (size_t)r0 * w->hid, *y = j->Y + (size_t)r0 * w->out;
    if (j->p2)
        er_gemm_packed(m, x, w->in, j->p1, (size_t)ER_GEMM_PANEL * w->in, w->hid, w->in, w->b1, hp, w->hid, 0);
    else
        er_gemm(0, 1, m, w->hid, w->in, x, w->in, w->w1, w->in, w->b1, hp, w->hid, 0);
    size_t nh = (size_t)m * w->hid;
#pragma omp simd
    for (size_t k = 0; k < nh; k++) ha[k] = leaky(hp[k]);
    if (j->p2)
        er_gemm_packed(m, ha, w->hid, j->p2, (size_t)ER_GEMM_PANEL * w->hid, w->out, w->hid, w->b2, y, w->out, 0);
    else
        er_gemm(0, 1, m, w->out, w->hid, ha, w->hid, w->w2, w->hid, w->b2, y, w->out, 0);
}

/* dh (m, hid) = (dY (m, out) · w2 (out, hid)) ⊙ leaky'(hpre) */
static void dh_task(void *p, int c) {
    const chunk_job *j = p;
    const er_cf_mlp *w = j->w;
    int m, r0 = chunk_rows(c, j->n, &m);
    float *d = j->dh + (size_t)r0 * w->hid;
    const float *hp = j->pre + (size_t)r0 * w->hid, *dy = j->dY + (size_t)r0 * w->out;
    if (j->p2)
        er_gemm_packed(m, dy, w->out, j->p2, (size_t)ER_GEMM_PANEL * w->out, w->hid, w->out, NULL, d, w->hid, 0);
    else
        er_gemm(0, 0, m, w->hid, w->out, dy, w->out, w->w2, w->hid, NULL, d, w->hid, 0);
    size_t nh = (size_t)m * w->hid;
#pragma omp simd
    for (size_t k = 0; k < nh; k++) d[k] *= slope(hp[k]);
}

void er_cf_mlp_forward(const er_cf_mlp *w, const float *X, int n, float *hpre, float *hact, float *Y, int threads) {
    if (threads < 1) threads = 1;
    float *p1 = pack_weight(w->w1, w->hid, w->in, 0), *p2 = p1 ? pack_weight(w->w2, w->out, w->hid, 0) : NULL;
    chunk_job j = {.w = w, .n = n, .X = X, .p1 = p1, .p2 = p2, .hpre = hpre, .hact = hact, .Y = Y};
    er_gemm_tasks((n + ROWS - 1) / ROWS, threads, forward_task, &j);
    free(p1), free(p2);
}

void er_cf_mlp_backward(const er_cf_mlp *w, const er_cf_mlp *g, const float *X, int n, const float *hpre,
                        const float *hact, const float *dY, float *dh, float *dX, int threads) {
    if (threads < 1) threads = 1;
    if (n <= 0) return;
    /* dw2 (out, hid) += dYᵀ (out, n) · hact (n, hid);  db2 += Σ_r dY */
    er_gemm_mt(1, 0, w->out, w->hid, n, dY, w->out, hact, w->hid, NULL, g->w2, w->hid, 1, threads);
    colsum_add(dY, n, w->out, g->b2, threads);
    float *p2 = pack_weight(w->w2, w->hid, w->out, 1);
    chunk_job j = {.w = w, .n = n, .dY = dY, .p2 = p2, .pre = hpre, .dh = dh};
    er_gemm_tasks((n + ROWS - 1) / ROWS, threads, dh_task, &j);
    free(p2);
    /* dw1 (hid, in) += dhᵀ (hid, n) · X (n, in);  db1 += Σ_r dh */
    er_gemm_mt(1, 0, w->hid, w->in, n, dh, w->hid, X, w->in, NULL, g->w1, w->in, 1, threads);
    colsum_add(dh, n, w->hid, g->b1, threads);
    /* dX (n, in) = dh (n, hid) · w1 (hid, in) */
    if (dX) rows_gemm(0, n, w->in, w->hid, dh, w->w1, w->in, NULL, dX, 0, threads);
}
