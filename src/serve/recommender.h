/* recommender.h — exact top-K of a batch of queries against an item matrix: one matrix
 * product for the whole batch (items split over threads), per-query exclusions, then eval's
 * K-entry heap (er_topk_select) per query. Used by `easyrec recommend` and by the server,
 * which scores concurrent /recommend queries together through it.
 *
 * Order: higher score first, equal scores by ascending row (er_topk_select's rule). Excluded
 * rows never appear; a query gets fewer than k hits only when fewer rows remain.
 * Shapes: I items, D width, Q queries, K list length.
 */
#ifndef ER_SERVE_RECOMMENDER_H
#define ER_SERVE_RECOMMENDER_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    int32_t row;
    float score;
} er_hit;

typedef struct {
    const int32_t *rows; /* rows to leave out (any order, repeats and out-of-range ignored) */
    int n;
} er_exclude;

/* Scratch of er_recommend for up to max_q queries per product against I items (grows). */
typedef struct {
    float *scores;  /* (qb, I) */
    void *heap;     /* (qb, K) heap entries */
    float *panel;   /* (threads, panel, qb) transposed products */
    size_t scores_cap, heap_cap, panel_cap;
} er_rec_scratch;

void er_rec_scratch_free(er_rec_scratch *s);

/* Top k (>= 1) rows of items (I, D) for each query q (Q, D) by dot product:
 * hits (Q, k) caller-owned, n_hits[q] <= k filled per query. excl: NULL or Q entries.
 * threads: OpenMP threads (<= 0: 1). scratch: NULL (allocated per call) or reused. */
int er_recommend(const float *items, int32_t I, int D, const float *q, int Q, int k, const er_exclude *excl,
                 int threads, er_rec_scratch *scratch, er_hit *hits, int *n_hits);

#endif
