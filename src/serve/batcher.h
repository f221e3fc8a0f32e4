/* batcher.h — dynamic batching of the server (as TEI does):
 *
 *  - er_pool: a fixed pool of encoder threads. Callers (HTTP worker threads) hand in
 *    tokenized sequences and block; one encoder thread takes the queued sequences in arrival
 *    order, up to `threads` token budgets' worth, as a round and encodes it on the pool's
 *    `threads` OpenMP threads in at most `threads` batches of about equal tokens, each within
 *    the budget; what arrives meanwhile makes the next round. So the texts of concurrent
 *    requests are encoded together, in batches as large as the traffic allows.
 *  - er_scorer_q: one scoring thread; /recommend queries that are waiting together are
 *    scored as one matrix product against the item matrix (er_recommend).
 * Both keep counters for /metrics. Neither prints.
 */
#ifndef ER_SERVE_BATCHER_H
#define ER_SERVE_BATCHER_H

#include <stdint.h>

#include "easyrec.h"
#include "serve/recommender.h"

typedef struct er_pool er_pool;

typedef struct {
    int threads;          /* encoder threads, >= 1 */
    int max_batch_tokens; /* token budget of one batch, >= the longest sequence */
    int max_length;       /* truncation incl. specials */
    easyrec_pooling pooling;
} er_pool_opts;

#define ER_BATCH_HIST 8 /* round size buckets: 1, 2, 4, ..., 64, >64 */

typedef struct {
    uint64_t batches, sequences, tokens; /* batches: rounds (sequences encoded together) */
    uint64_t batch_hist[ER_BATCH_HIST];  /* rounds by number of sequences, bucket b <= 2^b */
    int queued;                         /* sequences waiting now */
} er_pool_stats;

int er_pool_start(const easyrec_model *m, const er_pool_opts *o, er_pool **out);
/* Finish what is queued, stop and join the threads, free. NULL: no-op. */
void er_pool_stop(er_pool *p);
/* Encode n sequences (ids[i] of n_ids[i] ids, specials included) into out (n, D): the
 * pooled embeddings NOT normalised (er_l2_normalize). Blocks until done; thread-safe. */
int er_pool_encode(er_pool *p, const int32_t *const *ids, const int *n_ids, int n, float *out);
void er_pool_stats_get(er_pool *p, er_pool_stats *s);

/* x (D) /= max(||x||, 1e-12), exactly as easyrec_encode normalises. */
void er_l2_normalize(float *x, int D);

typedef struct er_scorer_q er_scorer_q;

/* items (the catalog's scan copy) is read at each batch: the caller guarantees it does not
 * change while any er_scorer_q_run is in progress (the server holds its catalog read lock
 * around each call). threads: OpenMP threads of one product. */
int er_scorer_q_start(const er_bf16_items *items, int threads, er_scorer_q **out);
void er_scorer_q_stop(er_scorer_q *s);
/* Top k for query q (D) without the rows excl[0..nexcl): hits (k), *n_hits. Blocks; queries
 * waiting at the same time are scored in one product. */
int er_scorer_q_run(er_scorer_q *s, const float *q, int k, const int32_t *excl, int nexcl, er_hit *hits, int *n_hits);
/* batches scored and queries in them */
void er_scorer_q_stats(er_scorer_q *s, uint64_t *batches, uint64_t *queries);

#endif
