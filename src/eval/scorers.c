/* scorers.c — the score sources of topk_rank besides the lexical ones: dot products of
 * embeddings (what EasyRec and any other encoder are judged by), item popularity and a
 * seeded random ranking.
 *
 * The dense scorer gathers the block's user rows (scratch) and runs one gemm_nt per block
 * in the calling thread: the project's AVX-512 kernel where the CPU has it, else CBLAS
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

static void dense_score(const void *ctx, const int32_t *users, int nu, float *out, float *scratch) {
    const er_dense_scorer *d = ctx;
    size_t D = (size_t)d->dim;
    for (int r = 0; r < nu; r++) memcpy(scratch + r * D, d->user + (size_t)users[r] * D, D * sizeof(float));
    gemm_nt(nu, d->n_items, d->dim, scratch, d->dim, d->item, d->dim, NULL, out, d->n_items, 0);
}

void dense_scorer(const er_dense_scorer *d, er_scorer *out) {
    out->score = dense_score;
    out->ctx = d;
    out->scratch_per_user = (size_t)d->dim;
}

/* ---- popularity ----------------------------------------------------------------------- */

int popularity_init(er_popularity *p, const er_csr *trn) {
    p->n_items = trn->ncols;
    p->count = er_calloc(trn->ncols ? (size_t)trn->ncols : 1, sizeof(*p->count));
    if (!p->count) return EASYREC_ERR_NOMEM;
    for (size_t k = 0; k < trn->nnz; k++) p->count[trn->indices[k]] += 1.0f;
    return EASYREC_OK;
}

void popularity_free(er_popularity *p) {
    if (!p) return;
    free(p->count);
    memset(p, 0, sizeof(*p));
}

static void popularity_score(const void *ctx, const int32_t *users, int nu, float *out, float *scratch) {
    const er_popularity *p = ctx;
    for (int r = 0; r < nu; r++) memcpy(out + (size_t)r * p->n_items, p->count, (size_t)p->n_items * sizeof(float));
}

void popularity_scorer(const er_popularity *p, er_scorer *out) {
    out->score = popularity_score;
    out->ctx = p;
    out->scratch_per_user = 0;
}

/* ---- random --------------------------------------------------------------------------- */

static void random_score(const void *ctx, const int32_t *users, int nu, float *out, float *scratch) {
    const er_random_scorer *rs = ctx;
    for (int r = 0; r < nu; r++) {
        er_rng g;
        rng_seed(&g, rs->seed ^ ((uint64_t)(uint32_t)users[r] * 0x9E3779B97F4A7C15ull));
        float *row = out + (size_t)r * rs->n_items;
        for (int32_t i = 0; i < rs->n_items; i++) row[i] = (float)(rng_next(&g) >> 40) * (1.0f / 16777216.0f);
    }
}

void random_scorer(const er_random_scorer *r, er_scorer *out) {
    out->score = random_score;
    out->ctx = r;
    out->scratch_per_user = 0;
}
