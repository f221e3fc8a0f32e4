/* topk.c — exact top-K over all items for many users, in bounded memory.
 *
 * Users are taken in blocks of at most 256 (fewer when a block's scores would pass
 * block_bytes); one thread owns one block at a time: the scorer fills its (nu, I) score
 * block, training items are overwritten with -1e8 (the original's s*(1-m) - 1e8*m, so
 * they stay in the pool, below every real score), and each row goes through a K-entry
 * heap. Nothing of size U x I ever exists. A scorer that can score item ranges (the dense
 * one) is asked for ER_RANK_ITEM_CHUNK items at a time instead, and each range is masked
 * and pushed through the users' heaps while it is in cache: the block's scores are then
 * nu x 256 floats, not nu x I. The selection is the same either way (er_topk_stream).
 *
 * Order: higher score first; equal scores by ascending item id (torch.topk leaves ties in
 * an implementation-defined order; ours is fixed and documented in docs/eval.md). NaN is
 * treated as -inf. topk_select_naive (a full sort) is the reference for tests.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#endif
#ifdef _OPENMP
#include <omp.h>
#endif

#include "core/err.h"
#include "eval/eval.h"
#include "kernels/cpu.h"
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

void er_topk_stream_init(er_topk_stream *st, er_topk_entry *heap, int k) {
    ER_ASSERT(k >= 1);
    st->heap = heap;
    st->k = k;
    st->held = 0;
}

/* while the heap fills: keep item i (NaN as -inf); heapify once k are held */
static void stream_fill(er_topk_stream *st, float s, int32_t i) {
    st->heap[st->held].s = isnan(s) ? -INFINITY : s;
    st->heap[st->held].i = i;
    if (++st->held == st->k)
        for (int p = st->k / 2 - 1; p >= 0; p--) sift_down(st->heap, st->k, p);
}

/* a full heap takes item i, which ranks above its root (s > root score) */
static inline void stream_replace(er_topk_stream *st, float s, int32_t i) {
    st->heap[0].s = s;
    st->heap[0].i = i;
    sift_down(st->heap, st->k, 0);
}

/* any of x[0..n) > t (vectorised, no branch per value; NaN compares false) */
static int any_above(const float *x, int n, float t) {
    int any = 0;
#pragma omp simd reduction(| : any)
    for (int j = 0; j < n; j++) any |= x[j] > t;
    return any;
}

void er_topk_stream_push(er_topk_stream *st, const float *scores, int32_t i0, int32_t n) {
    int32_t i = 0;
    for (; i < n && st->held < st->k; i++) stream_fill(st, scores[i], i0 + i); /* the first k items */
    if (i == n) return;
    float thresh = st->heap[0].s;
    /* a later item with an equal score ranks below the root: only strictly greater scores
     * enter (NaN compares false and never does); most runs of 16 have none */
    while (i < n) {
        int32_t e = n - i < 16 ? n : i + 16;
        if (any_above(scores + i, e - i, thresh))
            for (; i < e; i++)
                if (scores[i] > thresh) {
                    stream_replace(st, scores[i], i0 + i);
                    thresh = st->heap[0].s;
                }
        i = e;
    }
}

#if defined(__x86_64__) && defined(__GNUC__)
#define HAVE_AVX512_ANY 1
/* any of x[0..16) > t[0..16): one compare into a mask (NaN compares false) */
__attribute__((target("avx512f"))) static inline int any_above16_avx512(const float *x, const float *t) {
    return _mm512_cmp_ps_mask(_mm512_loadu_ps(x), _mm512_loadu_ps(t), _CMP_GT_OQ) != 0;
}
#endif

static inline int any_above_each(const float *x, const float *t, int n) {
    int any = 0;
    for (int j = 0; j < n; j++) any |= x[j] > t[j];
    return any;
}

/* Items j0 .. j0+nj-1 into the selections of nu users at once, from S (nj, nu) item-major
 * (row stride ld): per user the same steps as er_topk_stream_push on its column. thresh (nu):
 * each full heap's root score, compared 16 users at a time. All streams hold the same
 * number of items (the ranking pushes every range to every user). avx512: a constant. */
static inline __attribute__((always_inline)) void push_columns(er_topk_stream *st, float *thresh, int nu,
                                                                const float *S, size_t ld, int32_t j0, int32_t nj,
                                                                int avx512) {
    int32_t i = 0;
    int filling = st[0].held < st[0].k;
    for (; i < nj && st[0].held < st[0].k; i++)
        for (int r = 0; r < nu; r++) stream_fill(&st[r], S[(size_t)i * ld + r], j0 + i);
    if (filling && st[0].held == st[0].k)
        for (int r = 0; r < nu; r++) thresh[r] = st[r].heap[0].s;
    for (; i < nj; i++) {
        const float *row = S + (size_t)i * ld;
        for (int r0 = 0; r0 < nu; r0 += 16) {
            int e = nu - r0 < 16 ? nu - r0 : 16, any;
#ifdef HAVE_AVX512_ANY
            if (avx512 && e == 16) any = any_above16_avx512(row + r0, thresh + r0);
            else
#endif
                any = any_above_each(row + r0, thresh + r0, e);
            if (!any) continue;
            for (int r = r0; r < r0 + e; r++)
                if (row[r] > thresh[r]) {
                    stream_replace(&st[r], row[r], j0 + i);
                    thresh[r] = st[r].heap[0].s;
                }
        }
    }
}

#ifdef HAVE_AVX512_ANY
__attribute__((target("avx512f"))) static void push_columns_avx512(er_topk_stream *st, float *thresh, int nu,
                                                                    const float *S, size_t ld, int32_t j0, int32_t nj) {
    push_columns(st, thresh, nu, S, ld, j0, nj, 1);
}
#endif

static void stream_push_columns(er_topk_stream *st, float *thresh, int nu, const float *S, size_t ld, int32_t j0,
                                int32_t nj) {
#ifdef HAVE_AVX512_ANY
    if (er_cpu_isa() >= ER_ISA_AVX512) {
        push_columns_avx512(st, thresh, nu, S, ld, j0, nj);
        return;
    }
#endif
    push_columns(st, thresh, nu, S, ld, j0, nj, 0);
}

void er_topk_stream_finish(er_topk_stream *st, int32_t *out) {
    ER_ASSERT(st->held == st->k);
    er_topk_entry *heap = st->heap;
    /* pop worst-first into out from the back */
    for (int m = st->k; m > 0; m--) {
        out[m - 1] = heap[0].i;
        heap[0] = heap[m - 1];
        sift_down(heap, m - 1, 0);
    }
}

void er_topk_select(const float *scores, int32_t n, int k, er_topk_entry *heap, int32_t *out) {
    ER_ASSERT(k >= 1 && k <= n);
    er_topk_stream st;
    er_topk_stream_init(&st, heap, k);
    er_topk_stream_push(&st, scores, 0, n);
    er_topk_stream_finish(&st, out);
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
    float *scores;          /* (bu, I), or (ER_RANK_ITEM_CHUNK, bu) with score_items */
    float *scratch;         /* (bu * scratch_per_user + scratch_extra) */
    er_topk_entry *heap;    /* (bu, k) */
    er_topk_stream *stream; /* (bu) */
    float *thresh;          /* (bu): root score of each full heap */
    int64_t *cursor;        /* (bu, 2): next mask entry of each user */
} rank_buf;

/* whole rows: score, mask, select */
static void rank_block_rows(const er_scorer *sc, const er_rank_opts *o, const int32_t *users, int nu, rank_buf *b,
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

/* item ranges: each range of the block's scores (item-major) is masked and pushed into the
 * users' selections while it is in cache (mask rows are ascending: a cursor per user and
 * mask) */
static void rank_block_ranges(const er_scorer *sc, const er_rank_opts *o, const int32_t *users, int nu, rank_buf *b,
                              int32_t *ranked) {
    const size_t ld = (size_t)nu;
    sc->begin(sc->ctx, users, nu, b->scratch);
    for (int r = 0; r < nu; r++) {
        er_topk_stream_init(&b->stream[r], b->heap + (size_t)r * o->k, o->k);
        for (int m = 0; m < 2; m++) b->cursor[2 * r + m] = o->mask[m] ? o->mask[m]->indptr[users[r]] : 0;
    }
    for (int32_t j0 = 0; j0 < o->n_items; j0 += ER_RANK_ITEM_CHUNK) {
        int32_t nj = o->n_items - j0 < ER_RANK_ITEM_CHUNK ? o->n_items - j0 : ER_RANK_ITEM_CHUNK;
        sc->score_items(sc->ctx, nu, j0, nj, b->scores, ld, b->scratch);
        for (int r = 0; r < nu; r++)
            for (int m = 0; m < 2; m++) {
                const er_csr *mk = o->mask[m];
                if (!mk) continue;
                int64_t p = b->cursor[2 * r + m], end = mk->indptr[users[r] + 1];
                for (; p < end && mk->indices[p] < j0 + nj; p++) {
                    /* rows strictly ascending (er_csr_from_pairs builds every er_csr so): an entry
                     * below the range was skipped, and would be written before the block */
                    ER_ASSERT(mk->indices[p] >= j0);
                    b->scores[(size_t)(mk->indices[p] - j0) * ld + r] = ER_MASK_SCORE;
                }
                b->cursor[2 * r + m] = p;
            }
        stream_push_columns(b->stream, b->thresh, nu, b->scores, ld, j0, nj);
    }
    for (int r = 0; r < nu; r++) er_topk_stream_finish(&b->stream[r], ranked + (size_t)r * o->k);
}

size_t er_topk_block_users(const er_scorer *sc, int32_t E, const er_rank_opts *o) {
    size_t budget = o->block_bytes ? o->block_bytes : DEFAULT_BLOCK_BYTES;
    size_t cols = sc->score_items ? ER_RANK_ITEM_CHUNK : (size_t)o->n_items, bu = budget / (cols * sizeof(float));
    if (bu > MAX_BLOCK_USERS) bu = MAX_BLOCK_USERS;
    if (bu < 1) bu = 1;
    if (bu > (size_t)E) bu = E > 0 ? (size_t)E : 1;
    return bu;
}

int er_topk_rank(const er_scorer *sc, const int32_t *users, int32_t E, const er_rank_opts *o, int32_t *ranked) {
    ER_ASSERT(o->n_items >= 1 && o->k >= 1 && o->k <= o->n_items);
    ER_ASSERT(sc->score || (sc->begin && sc->score_items));
    int T = o->threads > 0 ? o->threads : 1, rc = EASYREC_OK, ranges = sc->score_items != NULL;
    size_t cols = ranges ? ER_RANK_ITEM_CHUNK : (size_t)o->n_items, bu = er_topk_block_users(sc, E, o);
    size_t nblocks = ((size_t)E + bu - 1) / bu;
    if ((size_t)T > nblocks) T = nblocks > 0 ? (int)nblocks : 1;
    rank_buf *bufs = er_calloc((size_t)T, sizeof(*bufs));
    if (!bufs) return EASYREC_ERR_NOMEM;
    for (int t = 0; t < T && !rc; t++) {
        rank_buf *b = &bufs[t];
        /* whole rows are big and touched all over: huge pages (er_malloc_big) */
        b->scores = ranges ? er_mallocarray(bu, cols * sizeof(float)) : er_malloc_big(bu, cols * sizeof(float));
        b->scratch = er_mallocarray(bu * sc->scratch_per_user + sc->scratch_extra + 1, sizeof(float));
        b->heap = er_mallocarray(ranges ? bu : 1, (size_t)o->k * sizeof(er_topk_entry));
        b->stream = er_mallocarray(bu, sizeof(*b->stream));
        b->thresh = er_mallocarray(bu, sizeof(*b->thresh));
        b->cursor = er_mallocarray(bu, 2 * sizeof(*b->cursor));
        if (!b->scores || !b->scratch || !b->heap || !b->stream || !b->thresh || !b->cursor) rc = EASYREC_ERR_NOMEM;
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
                if (ranges) rank_block_ranges(sc, o, users + u0, nu, &bufs[tid], ranked + u0 * (size_t)o->k);
                else rank_block_rows(sc, o, users + u0, nu, &bufs[tid], ranked + u0 * (size_t)o->k);
            }
            er_gemm_set_backend(old);
        }
    }
    for (int t = 0; t < T; t++) {
        free(bufs[t].scores);
        free(bufs[t].scratch);
        free(bufs[t].heap);
        free(bufs[t].stream);
        free(bufs[t].thresh);
        free(bufs[t].cursor);
    }
    free(bufs);
    return rc;
}
