/* recommender.c — batched exact top-K (recommender.h).
 *
 * Queries are taken in blocks of QB; each block is one bf16 product S (qb, I) of the queries
 * against the packed item panels, the panels split into T contiguous ranges, one per thread
 * (er_bf16_scan). Then each query, queries spread over the threads, goes through
 * er_bf16_refine with its exclusions: the items whose bf16 score cannot be told from the
 * k-th best within the proven error bound are rescored from the fp32 matrix and ranked.
 * A single query reads the bf16 copy once (half the bytes of the fp32 matrix), split over T
 * threads, plus the few fp32 rows it rescores.
 */
#include "serve/recommender.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "core/err.h"

#define QB 64 /* queries per product */

void er_rec_scratch_free(er_rec_scratch *s) {
    if (!s) return;
    free(s->scores);
    for (int t = 0; t < s->threads_cap; t++) er_bf16_refine_scratch_free(&s->refine[t]);
    free(s->refine);
    free(s->ids);
    free(s->best);
    memset(s, 0, sizeof(*s));
}

static int reserve(er_rec_scratch *s, size_t scores, int threads, int k) {
    if (scores > s->scores_cap) {
        free(s->scores);
        s->scores = er_mallocarray(scores, sizeof(float));
        s->scores_cap = s->scores ? scores : 0;
        if (!s->scores) return EASYREC_ERR_NOMEM;
    }
    if (threads > s->threads_cap) {
        er_bf16_refine_scratch *r = er_reallocarray(s->refine, (size_t)threads, sizeof(*r));
        if (!r) return EASYREC_ERR_NOMEM;
        memset(r + s->threads_cap, 0, (size_t)(threads - s->threads_cap) * sizeof(*r));
        s->refine = r;
        s->threads_cap = threads;
        s->k_cap = 0; /* ids / best are per thread: size them again */
    }
    if (k > s->k_cap) {
        free(s->ids);
        free(s->best);
        s->ids = er_mallocarray((size_t)s->threads_cap, (size_t)k * sizeof(int32_t));
        s->best = er_mallocarray((size_t)s->threads_cap, (size_t)k * sizeof(float));
        s->k_cap = s->ids && s->best ? k : 0;
        if (!s->k_cap) return EASYREC_ERR_NOMEM;
    }
    return EASYREC_OK;
}

int er_recommend(const er_bf16_items *items, const float *q, int Q, int k, const er_exclude *excl, int threads,
                 er_rec_scratch *scratch, er_hit *hits, int *n_hits) {
    ER_ASSERT(k >= 1 && Q >= 0);
    int32_t I = items->n;
    int D = items->dim;
    if (I == 0 || Q == 0) {
        for (int i = 0; i < Q; i++) n_hits[i] = 0;
        return EASYREC_OK;
    }
    int T = threads > 0 ? threads : 1;
    er_rec_scratch local = {0};
    er_rec_scratch *s = scratch ? scratch : &local;
    int qb = Q < QB ? Q : QB;
    size_t ns;
    if (er_mul_size((size_t)qb, (size_t)I, &ns)) return er_error(EASYREC_ERR_NOMEM, "recommend: size overflow");
    int rc = EASYREC_OK;
    for (int i = 0; i < Q && !rc; i++) /* here, so that the message is this thread's */
        if ((rc = er_bf16_check_vector(q + (size_t)i * D, D, "query"))) er_error_prefix(rc, "recommend: query %d", i);
    if (!rc) rc = reserve(s, ns, T, k);
    const int panels = items->m.panels, tp = T < panels ? T : panels;
    for (int q0 = 0; q0 < Q && !rc; q0 += qb) {
        int nb = Q - q0 < qb ? Q - q0 : qb;
        const float *qb0 = q + (size_t)q0 * D;
        /* One iteration per panel range, not one range per thread number: a team may start
         * with fewer than tp threads (OMP_DYNAMIC, OMP_THREAD_LIMIT, a caller's parallel
         * region), and every range must still be scanned. */
#pragma omp parallel for num_threads(tp) schedule(static)
        for (int t = 0; t < tp; t++) {
            int p0 = (int)((int64_t)panels * t / tp), p1 = (int)((int64_t)panels * (t + 1) / tp);
            er_bf16_scan(items, items->m.isa, qb0, nb, p0, p1, s->scores, (size_t)I);
        }
        /* the first failing query (lowest index) with its message: er_error's text is per
         * thread, so a worker's message is copied out and raised again on this thread */
        int tq = T < nb ? T : nb, bad = EASYREC_OK, bad_r = nb;
        char why[512] = "";
#pragma omp parallel for num_threads(tq) schedule(dynamic, 1)
        for (int r = 0; r < nb; r++) {
            int t = 0;
#ifdef _OPENMP
            t = omp_get_thread_num();
#endif
            const er_exclude *ex = excl ? &excl[q0 + r] : NULL;
            int32_t *ids = s->ids + (size_t)t * k;
            float *best = s->best + (size_t)t * k;
            int n = er_bf16_refine(items, qb0 + (size_t)r * D, s->scores + (size_t)r * I, k, ex ? ex->rows : NULL,
                                   ex ? ex->n : 0, &s->refine[t], ids, best, NULL);
            if (n < 0) {
#pragma omp critical(er_recommend_error)
                if (r < bad_r) {
                    bad = n;
                    bad_r = r;
                    snprintf(why, sizeof why, "%s", easyrec_last_error());
                }
                n = 0;
            }
            er_hit *h = hits + (size_t)(q0 + r) * k;
            for (int j = 0; j < n; j++) h[j] = (er_hit){ids[j], best[j]};
            n_hits[q0 + r] = n;
        }
        if (bad) rc = er_error(bad, "recommend: query %d: %s", q0 + bad_r, why);
    }
    er_rec_scratch_free(&local);
    return rc;
}
