/* recommender.c — batched exact top-K (recommender.h).
 *
 * Queries are taken in blocks of QB; each block is one product S (qb, I) = Q_b · items^T,
 * computed by T threads over item panels (so a single query is as parallel as a batch),
 * then excluded rows are set to -inf and each row goes through er_topk_select (eval's heap),
 * queries spread over the threads.
 *
 * The product is eval's er_topk_dense_scores (the same engine ranks for `easyrec eval`): the
 * item matrix is streamed once per block and never copied (items_panel x Q_b^T through
 * er_gemm_nt into a per-thread buffer, transposed; dot products for up to SMALL_Q queries).
 */
#include "serve/recommender.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "core/err.h"
#include "eval/eval.h"

#define QB 64          /* queries per product */
#define PANEL ER_DENSE_PANEL /* items per thread task */
#define SMALL_Q ER_DENSE_SMALL_Q

void er_rec_scratch_free(er_rec_scratch *s) {
    if (!s) return;
    free(s->scores);
    free(s->heap);
    free(s->panel);
    memset(s, 0, sizeof(*s));
}

static int reserve(er_rec_scratch *s, size_t scores, size_t heap) {
    if (scores > s->scores_cap) {
        free(s->scores);
        s->scores = er_mallocarray(scores, sizeof(float));
        s->scores_cap = s->scores ? scores : 0;
        if (!s->scores) return EASYREC_ERR_NOMEM;
    }
    if (heap > s->heap_cap) {
        free(s->heap);
        s->heap = er_mallocarray(heap, sizeof(er_topk_entry));
        s->heap_cap = s->heap ? heap : 0;
        if (!s->heap) return EASYREC_ERR_NOMEM;
    }
    return EASYREC_OK;
}

int er_recommend(const float *items, int32_t I, int D, const float *q, int Q, int k, const er_exclude *excl,
                 int threads, er_rec_scratch *scratch, er_hit *hits, int *n_hits) {
    ER_ASSERT(k >= 1 && D >= 1 && I >= 0 && Q >= 0);
    if (I == 0 || Q == 0) {
        for (int i = 0; i < Q; i++) n_hits[i] = 0;
        return EASYREC_OK;
    }
    int T = threads > 0 ? threads : 1;
    int kk = k < I ? k : I;
    er_rec_scratch local = {0};
    er_rec_scratch *s = scratch ? scratch : &local;
    int qb = Q < QB ? Q : QB;
    size_t ns, nh;
    if (er_mul_size((size_t)qb, (size_t)I, &ns) || er_mul_size((size_t)qb, (size_t)kk, &nh))
        return er_error(EASYREC_ERR_NOMEM, "recommend: size overflow");
    int rc = reserve(s, ns, nh);
    if (rc) goto done;
    er_topk_entry *heap = s->heap;
    int32_t *idx = er_mallocarray((size_t)qb * kk, sizeof(int32_t));
    if (!idx) {
        rc = EASYREC_ERR_NOMEM;
        goto done;
    }
    for (int q0 = 0; q0 < Q; q0 += qb) {
        int nb = Q - q0 < qb ? Q - q0 : qb;
        float *S = s->scores;
        int panels = (I + PANEL - 1) / PANEL;
        int tp = T < panels ? T : panels;
        const float *qb0 = q + (size_t)q0 * D;
        if (nb > SMALL_Q && s->panel_cap < (size_t)tp * PANEL * nb) {
            free(s->panel);
            s->panel = er_mallocarray((size_t)tp * PANEL, (size_t)nb * sizeof(float));
            s->panel_cap = s->panel ? (size_t)tp * PANEL * nb : 0;
            if (!s->panel) {
                rc = EASYREC_ERR_NOMEM;
                break;
            }
        }
#pragma omp parallel for num_threads(tp) schedule(static)
        for (int p = 0; p < panels; p++) {
            int32_t i0 = p * PANEL, ni = I - i0 < PANEL ? I - i0 : PANEL;
            int tid = 0;
#ifdef _OPENMP
            tid = omp_get_thread_num();
#endif
            er_topk_dense_scores(items + (size_t)i0 * D, ni, D, qb0, nb, S + i0, (size_t)I,
                              s->panel ? s->panel + (size_t)tid * PANEL * nb : NULL);
        }
        int tq = T < nb ? T : nb;
#pragma omp parallel for num_threads(tq) schedule(dynamic, 1)
        for (int r = 0; r < nb; r++) {
            float *row = S + (size_t)r * I;
            const er_exclude *ex = excl ? &excl[q0 + r] : NULL;
            if (ex)
                for (int e = 0; e < ex->n; e++)
                    if (ex->rows[e] >= 0 && ex->rows[e] < I) row[ex->rows[e]] = -INFINITY;
            int32_t *ix = idx + (size_t)r * kk;
            er_topk_select(row, I, kk, heap + (size_t)r * kk, ix);
            er_hit *h = hits + (size_t)(q0 + r) * k;
            int n = 0;
            for (int j = 0; j < kk; j++) {
                float v = row[ix[j]];
                if (!(v > -INFINITY)) break; /* excluded (or NaN): everything after is too */
                h[n].row = ix[j];
                h[n].score = v;
                n++;
            }
            n_hits[q0 + r] = n;
        }
    }
    free(idx);
done:
    er_rec_scratch_free(&local);
    return rc;
}
