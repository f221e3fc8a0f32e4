/* scorers.c — the score sources of er_topk_rank besides the lexical ones: dot products of
 * embeddings (what EasyRec and any other encoder are judged by), item popularity and a
 * seeded random ranking.
 *
 * The dense scorer scores a block of users against one range of items at a time in the
 * calling thread: the item matrix is read in place (never copied or packed), the block's
 * user rows are packed once for the project's AVX-512 kernel where the CPU has it, else
 * gathered for CBLAS (which the program should run single-threaded, see the runtime rules
 * in easyrec.h; the library does not change the BLAS thread count).
 */
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/rng.h"
#include "eval/eval.h"
#include "model/model.h"

/* ---- dense ---------------------------------------------------------------------------- */

/* S[r * rs + i * is] = q_r . items_i for i < n, r < nq (nq <= ER_DENSE_SMALL_Q) */
__attribute__((target_clones("avx512f", "avx2", "default"))) static void dots(const float *items, int32_t n, int D,
                                                                              const float *q, int nq, float *S,
                                                                              size_t rs, size_t is) {
    for (int32_t i = 0; i < n; i++) {
        const float *x = items + (size_t)i * D;
        for (int r = 0; r < nq; r++) {
            const float *y = q + (size_t)r * D;
            float acc = 0;
#pragma omp simd reduction(+ : acc)
            for (int d = 0; d < D; d++) acc += x[d] * y[d];
            S[(size_t)r * rs + (size_t)i * is] = acc;
        }
    }
}

/* the block's users in scratch: packed once for the own GEMM kernel (reused for every item
 * range), else gathered (nu, D) for CBLAS or the dot products of a few users */
static int dense_packs(int nu) { return nu > ER_DENSE_SMALL_Q && er_gemm_packs(); }

static void dense_begin(const void *ctx, const int32_t *users, int nu, float *scratch) {
    const er_dense_scorer *d = ctx;
    size_t D = (size_t)d->dim;
    if (dense_packs(nu)) {
        er_gemm_pack_rows(d->user, users, nu, d->dim, D, scratch);
        return;
    }
    for (int r = 0; r < nu; r++) memcpy(scratch + r * D, d->user + (size_t)users[r] * D, D * sizeof(float));
}

/* out (nj, nu) item-major: items j0.. are the GEMM's A operand, read in place; the users
 * its B. A score is the same whatever the range (the same GEMM roles, K blocks and order, or
 * the same dot products). */
static void dense_items(const void *ctx, int nu, int32_t j0, int32_t nj, float *out, size_t ldo, float *scratch) {
    const er_dense_scorer *d = ctx;
    const float *items = d->item + (size_t)j0 * d->dim;
    if (dense_packs(nu)) er_gemm_packed_nt(nj, items, d->dim, scratch, nu, d->dim, out, (int)ldo);
    else if (nu <= ER_DENSE_SMALL_Q) dots(items, nj, d->dim, scratch, nu, out, 1, ldo);
    else er_gemm_nt(nj, nu, d->dim, items, d->dim, scratch, d->dim, NULL, out, (int)ldo, 0);
}

void er_dense_scorer_bind(const er_dense_scorer *d, er_scorer *out) {
    /* packed users: at most 31 columns of padding past nu * D */
    *out = (er_scorer){.begin = dense_begin, .score_items = dense_items, .ctx = d, .scratch_per_user = (size_t)d->dim,
                       .scratch_extra = (size_t)(ER_GEMM_PANEL - 1) * (size_t)d->dim};
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
    *out = (er_scorer){.score = popularity_score, .ctx = p};
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
    *out = (er_scorer){.score = random_score, .ctx = r};
}
