/* scorers.c — the score sources of er_topk_rank besides the lexical ones: dot products of
 * embeddings (what EasyRec and any other encoder are judged by), item popularity and a
 * seeded random ranking.
 *
 * The dense scorer gathers the block's user rows (scratch) and scores them with
 * er_topk_dense_scores in the calling thread (the item matrix read in place, never packed): the project's AVX-512 kernel where the CPU has it, else CBLAS
 * (which the program should run single-threaded, see the runtime rules in easyrec.h; the
 * library does not change the BLAS thread count).
 */
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/rng.h"
#include "eval/eval.h"
#include "model/model.h"

/* ---- dense ---------------------------------------------------------------------------- */

/* S[r * ldc + i] = q_r . items_i for i < n, r < nq (nq <= ER_DENSE_SMALL_Q) */
__attribute__((target_clones("avx512f", "avx2", "default"))) static void dots(const float *items, int32_t n, int D,
                                                                              const float *q, int nq, float *S,
                                                                              size_t ldc) {
    for (int32_t i = 0; i < n; i++) {
        const float *x = items + (size_t)i * D;
        for (int r = 0; r < nq; r++) {
            const float *y = q + (size_t)r * D;
            float acc = 0;
#pragma omp simd reduction(+ : acc)
            for (int d = 0; d < D; d++) acc += x[d] * y[d];
            S[(size_t)r * ldc + i] = acc;
        }
    }
}

void er_topk_dense_scores(const float *items, int32_t n, int D, const float *q, int nq, float *S, size_t ldc,
                       float *panel) {
    if (nq <= ER_DENSE_SMALL_Q) {
        dots(items, n, D, q, nq, S, ldc);
        return;
    }
    for (int32_t i0 = 0; i0 < n; i0 += ER_DENSE_PANEL) {
        int32_t ni = n - i0 < ER_DENSE_PANEL ? n - i0 : ER_DENSE_PANEL;
        /* panel (ni, nq) = items[i0 .. i0+ni) . q^T: the GEMM packs its B operand, the few queries */
        er_gemm_nt(ni, nq, D, items + (size_t)i0 * D, D, q, D, NULL, panel, nq, 0);
        for (int r = 0; r < nq; r++) {
            float *dst = S + (size_t)r * ldc + i0;
            const float *src = panel + r;
            for (int32_t i = 0; i < ni; i++) dst[i] = src[(size_t)i * nq];
        }
    }
}

/* scratch: (nu, D) gathered user rows, then (ER_DENSE_PANEL, nu) for er_topk_dense_scores */
static void dense_score(const void *ctx, const int32_t *users, int nu, float *out, float *scratch) {
    const er_dense_scorer *d = ctx;
    size_t D = (size_t)d->dim;
    for (int r = 0; r < nu; r++) memcpy(scratch + r * D, d->user + (size_t)users[r] * D, D * sizeof(float));
    er_topk_dense_scores(d->item, d->n_items, d->dim, scratch, nu, out, (size_t)d->n_items, scratch + (size_t)nu * D);
}

void er_dense_scorer_bind(const er_dense_scorer *d, er_scorer *out) {
    out->score = dense_score;
    out->ctx = d;
    out->scratch_per_user = (size_t)d->dim + ER_DENSE_PANEL;
}

/* ---- popularity ----------------------------------------------------------------------- */

int er_popularity_init(er_popularity *p, const er_csr *trn) {
    p->n_items = trn->ncols;
    p->count = er_calloc(trn->ncols ? (size_t)trn->ncols : 1, sizeof(*p->count));
    if (!p->count) return EASYREC_ERR_NOMEM;
    for (size_t k = 0; k < trn->nnz; k++) p->count[trn->indices[k]] += 1.0f;
    return EASYREC_OK;
}

void er_popularity_free(er_popularity *p) {
    if (!p) return;
    free(p->count);
    memset(p, 0, sizeof(*p));
}

static void popularity_score(const void *ctx, const int32_t *users, int nu, float *out, float *scratch) {
    const er_popularity *p = ctx;
    for (int r = 0; r < nu; r++) memcpy(out + (size_t)r * p->n_items, p->count, (size_t)p->n_items * sizeof(float));
}

void er_popularity_scorer_bind(const er_popularity *p, er_scorer *out) {
    out->score = popularity_score;
    out->ctx = p;
    out->scratch_per_user = 0;
}

/* ---- random --------------------------------------------------------------------------- */

static void random_score(const void *ctx, const int32_t *users, int nu, float *out, float *scratch) {
    const er_random_scorer *rs = ctx;
    for (int r = 0; r < nu; r++) {
        er_rng g;
        er_rng_seed(&g, rs->seed ^ ((uint64_t)(uint32_t)users[r] * 0x9E3779B97F4A7C15ull));
        float *row = out + (size_t)r * rs->n_items;
        for (int32_t i = 0; i < rs->n_items; i++) row[i] = (float)(er_rng_next(&g) >> 40) * (1.0f / 16777216.0f);
    }
}

void er_random_scorer_bind(const er_random_scorer *r, er_scorer *out) {
    out->score = random_score;
    out->ctx = r;
    out->scratch_per_user = 0;
}
