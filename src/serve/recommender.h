/* recommender.h — exact top-K of a batch of queries against an item matrix: one bf16 matrix
 * product for the whole batch (item panels split over threads, so one query is as parallel
 * as a batch), then per query the candidates that the product's proven error bound cannot
 * rule out are rescored exactly and ranked (er_bf16_refine, src/eval/topk_bf16.h). Used by
 * `easyrec recommend` and by the server, which scores concurrent /recommend queries
 * together through it.
 *
 * Scores are the exact dot products (double accumulation rounded to float); order: higher
 * score first, equal scores by ascending row. The result is what a full fp32 scan with those
 * scores would give, for any batch and thread count. Excluded rows never appear; a query gets
 * fewer than k hits only when fewer rows remain.
 * Shapes: I items, D width, Q queries, K list length.
 */
#ifndef ER_SERVE_RECOMMENDER_H
#define ER_SERVE_RECOMMENDER_H

#include <stddef.h>
#include <stdint.h>

#include "eval/topk_bf16.h"

typedef struct {
    int32_t row;
    float score;
} er_hit;

typedef struct {
    const int32_t *rows; /* rows to leave out (any order, repeats and out-of-range ignored) */
    int n;
} er_exclude;

/* Scratch of er_recommend (grows to the largest call; reuse it across calls). */
typedef struct {
    float *scores;                  /* (qb, I) approximate scores of a block of queries */
    size_t scores_cap;
    er_bf16_refine_scratch *refine; /* (threads) */
    int32_t *ids;                   /* (threads, K) */
    float *best;                    /* (threads, K) */
    int threads_cap, k_cap;
} er_rec_scratch;

void er_rec_scratch_free(er_rec_scratch *s);

/* Top k (>= 1) rows of items (the packed copy of an (I, D) matrix, er_bf16_items_init) for
 * each query q (Q, D) by exact dot product: hits (Q, k) caller-owned, n_hits[q] <= k filled
 * per query. excl: NULL or Q entries. threads: OpenMP threads asked for (<= 0: 1; the same
 * answer when OpenMP grants fewer: nested regions, OMP_DYNAMIC). scratch: NULL
 * (allocated per call) or reused. EASYREC_ERR_ARG for a query that is not finite or has a
 * norm above 2^60. */
int er_recommend(const er_bf16_items *items, const float *q, int Q, int k, const er_exclude *excl, int threads,
                 er_rec_scratch *scratch, er_hit *hits, int *n_hits);

#endif
