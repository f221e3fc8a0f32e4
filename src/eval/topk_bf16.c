/* topk_bf16.c — exact top-K from a bf16 scan plus fp32 rescoring (topk_bf16.h).
 *
 * Per query q: a_i = bf16 score of every item (er_gemm_bf16: q and v_i rounded to bf16,
 * products summed in fp32). Its distance to the exact score s_i is at most
 *   e_i = delta ||q|| ||v_i|| + D 2^-126,  delta = 2^-8 + 2^-16 + (D + 6) 2^-24
 * (each operand rounded to 8 significant bits: 2^-8 + 2^-18 per product, relative to
 * Σ|q_k v_k| <= ||q|| ||v_i||; fp32 accumulation of D terms: D 2^-24; rounding of s_i, of
 * a_i -/+ e_i and of the norms: the rest; the last term covers products vdpbf16ps flushes
 * to zero as denormals). Let T be the k-th largest lower bound a_i - e_i.
 * Every item with a_i + e_i < T has an exact score below k others' exact scores, so it
 * cannot be in the top k whatever the tie rule: the candidates {i : a_i + e_i >= T} hold
 * the whole exact top k. They are rescored exactly and ranked with er_topk_select (candidate
 * positions are in id order, so its "lower index first" tie rule is "lower id first").
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "eval/eval.h"
#include "eval/topk_bf16.h"

#define QB 32 /* queries per scan block */

float er_exact_dot(const float *a, const float *b, int D) {
    double s = 0.0;
    for (int k = 0; k < D; k++) s += (double)a[k] * b[k];
    return (float)s;
}

static double norm_of(const float *v, int D) {
    double s = 0.0;
    for (int k = 0; k < D; k++) s += (double)v[k] * v[k];
    return sqrt(s);
}

int er_bf16_items_init(er_bf16_items *b, const float *items, int32_t n, int dim) {
    memset(b, 0, sizeof(*b));
    if (n < 1 || dim < 1) return er_error(EASYREC_ERR_ARG, "item matrix of %d x %d", (int)n, dim);
    for (size_t i = 0; i < (size_t)n * dim; i++)
        if (!isfinite(items[i]))
            return er_error(EASYREC_ERR_ARG, "item %zu, component %zu is not finite", i / dim, i % dim);
    b->norm = er_mallocarray((size_t)n, sizeof(float));
    if (!b->norm) return EASYREC_ERR_NOMEM;
    for (int32_t i = 0; i < n; i++) b->norm[i] = (float)(norm_of(items + (size_t)i * dim, dim) * (1.0 + 0x1p-20));
    int rc = er_lowp_pack(&b->m, ER_LOWP_BF16, items, n, dim, dim);
    if (rc) {
        er_bf16_items_free(b);
        return rc;
    }
    b->n = n;
    b->dim = dim;
    b->f32 = items;
    return EASYREC_OK;
}

void er_bf16_items_free(er_bf16_items *b) {
    er_lowp_free(&b->m);
    free(b->norm);
    memset(b, 0, sizeof(*b));
}

int er_bf16_topk(const er_bf16_items *b, er_isa isa, const float *Q, int nq, int k, int32_t *out,
                 er_bf16_topk_stats *stats) {
    int32_t n = b->n;
    int D = b->dim;
    ER_ASSERT(k >= 1 && k <= n);
    for (size_t i = 0; i < (size_t)nq * D; i++)
        if (!isfinite(Q[i])) return er_error(EASYREC_ERR_ARG, "query %zu, component %zu is not finite", i / D, i % D);
    float *approx = er_mallocarray((size_t)QB * n, sizeof(float));
    float *lower = er_mallocarray((size_t)n, sizeof(float));
    float *cs = er_mallocarray((size_t)n, sizeof(float));
    int32_t *ci = er_mallocarray((size_t)n, sizeof(int32_t));
    int32_t *sel = er_mallocarray((size_t)k, sizeof(int32_t));
    er_topk_entry *heap = er_mallocarray((size_t)k, sizeof(er_topk_entry));
    int rc = EASYREC_OK;
    if (!approx || !lower || !cs || !ci || !sel || !heap) {
        rc = EASYREC_ERR_NOMEM;
        goto out;
    }
    const double delta = 0x1p-8 + 0x1p-16 + (D + 6) * 0x1p-24;
    for (int q0 = 0; q0 < nq; q0 += QB) {
        int bq = nq - q0 < QB ? nq - q0 : QB;
        er_gemm_bf16(isa, &b->m, bq, Q + (size_t)q0 * D, D, NULL, approx, n);
        for (int r = 0; r < bq; r++) {
            const float *q = Q + (size_t)(q0 + r) * D, *a = approx + (size_t)r * n;
            float qe = (float)(delta * norm_of(q, D) * (1.0 + 0x1p-20));
            const float ea = (float)(D * 0x1p-126);
            for (int32_t i = 0; i < n; i++) lower[i] = a[i] - (qe * b->norm[i] + ea);
            er_topk_select(lower, n, k, heap, sel);
            float T = lower[sel[k - 1]];
            int32_t nc = 0;
            for (int32_t i = 0; i < n; i++)
                if (a[i] + (qe * b->norm[i] + ea) >= T) {
                    ci[nc] = i;
                    cs[nc++] = er_exact_dot(q, b->f32 + (size_t)i * D, D);
                }
            ER_ASSERT(nc >= k); /* the k items that define T are candidates themselves */
            er_topk_select(cs, nc, k, heap, sel);
            for (int j = 0; j < k; j++) out[(size_t)(q0 + r) * k + j] = ci[sel[j]];
            if (stats) stats->candidates += nc;
        }
    }
out:
    free(approx), free(lower), free(cs), free(ci), free(sel), free(heap);
    return rc;
}
