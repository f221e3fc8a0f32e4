/* topk.c — exact top-K over all items for many users, in bounded memory.
 *
 * Users are taken in blocks of at most 256 (fewer when a block's scores would pass
 * block_bytes); one thread owns one block at a time: the scorer fills its (nu, I) score
 * block, training items are overwritten with -1e8 (the original's s*(1-m) - 1e8*m, so
 * they stay in the pool, below every real score), and each row goes through a K-entry
 * heap. Nothing of size U x I ever exists.
 *
 * Order: higher score first; equal scores by ascending item id (torch.topk leaves ties in
 * an implementation-defined order; ours is fixed and documented in docs/eval.md). NaN is
 * treated as -inf. topk_select_naive (a full sort) is the reference for tests.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "core/err.h"
#include "eval/eval.h"
#include "kernels/kernels.h"

/* a ranks below b */
static inline int worse(er_topk_entry a, er_topk_entry b) { return a.s < b.s || (a.s == b.s && a.i > b.i); }

/* min-heap on "worse": the root is the worst kept entry */
static void sift_down(er_topk_entry *h, int n, int p) {
    er_topk_entry x = h[p];
    for (;;) {
        int c = 2 * p + 1;
        if (c >= n) break;
        if (c + 1 < n && worse(h[c + 1], h[c])) c++;
        if (!worse(h[c], x)) break;
        h[p] = h[c];
        p = c;
    }
    h[p] = x;
}

void er_topk_select(const float *scores, int32_t n, int k, er_topk_entry *heap, int32_t *out) {
    ER_ASSERT(k >= 1 && k <= n);
    for (int j = 0; j < k; j++) {
        float s = scores[j];
        heap[j].s = isnan(s) ? -INFINITY : s;
        heap[j].i = j;
    }
    for (int p = k / 2 - 1; p >= 0; p--) sift_down(heap, k, p);
    float thresh = heap[0].s;
    for (int32_t i = k; i < n; i++) {
        /* a later item with an equal score ranks below the root: only strictly greater
         * scores enter (NaN compares false and never does) */
        if (scores[i] > thresh) {
            heap[0].s = scores[i];
            heap[0].i = i;
            sift_down(heap, k, 0);
            thresh = heap[0].s;
        }
    }
    /* pop worst-first into out from the back */
    for (int m = k; m > 0; m--) {
        out[m - 1] = heap[0].i;
        heap[0] = heap[m - 1];
        sift_down(heap, m - 1, 0);
    }
}

static int cmp_entry(const void *pa, const void *pb) {
    const er_topk_entry *a = pa, *b = pb;
    return worse(*b, *a) ? -1 : worse(*a, *b) ? 1 : 0;
}

int er_topk_select_naive(const float *scores, int32_t n, int k, int32_t *out) {
    ER_ASSERT(k >= 1 && k <= n);
    er_topk_entry *e = er_mallocarray((size_t)n, sizeof(*e));
    if (!e) return EASYREC_ERR_NOMEM;
    for (int32_t i = 0; i < n; i++) {
        e[i].s = isnan(scores[i]) ? -INFINITY : scores[i];
        e[i].i = i;
    }
    qsort(e, (size_t)n, sizeof(*e), cmp_entry);
    for (int j = 0; j < k; j++) out[j] = e[j].i;
    free(e);
    return EASYREC_OK;
}

/* ---- blocked ranking ------------------------------------------------------------------ */

#define MAX_BLOCK_USERS 256
#define DEFAULT_BLOCK_BYTES ((size_t)64 << 20)

typedef struct {
    float *scores;       /* (bu, I) */
    float *scratch;      /* (bu * scratch_per_user) */
    er_topk_entry *heap; /* (k) */
} rank_buf;

static void rank_block(const er_scorer *sc, const er_rank_opts *o, const int32_t *users, int nu, rank_buf *b,
                       int32_t *ranked) {
    size_t I = (size_t)o->n_items;
    sc->score(sc->ctx, users, nu, b->scores, b->scratch);
    for (int r = 0; r < nu; r++) {
        float *row = b->scores + (size_t)r * I;
        for (int m = 0; m < 2; m++) {
            const er_csr *mk = o->mask[m];
            if (!mk) continue;
            for (int64_t p = mk->indptr[users[r]]; p < mk->indptr[users[r] + 1]; p++) row[mk->indices[p]] = ER_MASK_SCORE;
        }
        er_topk_select(row, o->n_items, o->k, b->heap, ranked + (size_t)r * o->k);
    }
}

size_t er_topk_block_users(int32_t E, const er_rank_opts *o) {
    size_t budget = o->block_bytes ? o->block_bytes : DEFAULT_BLOCK_BYTES;
    size_t bu = budget / ((size_t)o->n_items * sizeof(float));
    if (bu > MAX_BLOCK_USERS) bu = MAX_BLOCK_USERS;
    if (bu < 1) bu = 1;
    if (bu > (size_t)E) bu = E > 0 ? (size_t)E : 1;
    return bu;
}

int er_topk_rank(const er_scorer *sc, const int32_t *users, int32_t E, const er_rank_opts *o, int32_t *ranked) {
    ER_ASSERT(o->n_items >= 1 && o->k >= 1 && o->k <= o->n_items);
    int T = o->threads > 0 ? o->threads : 1, rc = EASYREC_OK;
    size_t I = (size_t)o->n_items, bu = er_topk_block_users(E, o);
    size_t nblocks = ((size_t)E + bu - 1) / bu;
    if ((size_t)T > nblocks) T = nblocks > 0 ? (int)nblocks : 1;
    rank_buf *bufs = er_calloc((size_t)T, sizeof(*bufs));
    if (!bufs) return EASYREC_ERR_NOMEM;
    for (int t = 0; t < T && !rc; t++) {
        bufs[t].scores = er_mallocarray(bu, I * sizeof(float));
        bufs[t].scratch = er_mallocarray(bu * sc->scratch_per_user + 1, sizeof(float));
        bufs[t].heap = er_mallocarray((size_t)o->k, sizeof(er_topk_entry));
        if (!bufs[t].scores || !bufs[t].scratch || !bufs[t].heap) rc = EASYREC_ERR_NOMEM;
    }
    int backend = er_gemm_get_backend(); /* the caller's GEMM choice holds in the workers */
    if (!rc) {
#pragma omp parallel num_threads(T)
        {
            int old = er_gemm_set_backend(backend);
#pragma omp for schedule(dynamic, 1)
            for (size_t b = 0; b < nblocks; b++) {
                int tid = 0;
#ifdef _OPENMP
                tid = omp_get_thread_num();
#endif
                size_t u0 = b * bu;
                int nu = (int)((size_t)E - u0 < bu ? (size_t)E - u0 : bu);
                rank_block(sc, o, users + u0, nu, &bufs[tid], ranked + u0 * (size_t)o->k);
            }
            er_gemm_set_backend(old);
        }
    }
    for (int t = 0; t < T; t++) {
        free(bufs[t].scores);
        free(bufs[t].scratch);
        free(bufs[t].heap);
    }
    free(bufs);
    return rc;
}
