/* metrics.c — Recall@K and NDCG@K of one ranked list, exactly as the original's
 * eval_text_emb.py (LightGCN-style utility functions) computes them:
 *
 *   r_j      = 1 if the item at rank j (1-based) is a ground-truth item of the user
 *   Recall@K = sum_{j<=K} r_j / |G|                 (denominator |G|, not min(K, |G|))
 *   DCG@K    = sum_{j<=K} r_j / log2(j + 1)
 *   IDCG@K   = sum_{j<=min(K,|G|)} 1 / log2(j + 1)  (IDCG = 0 -> 1; NaN -> 0)
 *   NDCG@K   = DCG@K / IDCG@K
 *
 * in double precision (the original uses float64 numpy). The dataset value is the plain
 * mean over evaluated users (eval.c). Not here: ranking itself (topk.c).
 */
#include <math.h>

#include "eval/eval.h"

static int is_pos(const int32_t *pos, int64_t npos, int32_t item) {
    int64_t lo = 0, hi = npos;
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        if (pos[mid] < item) lo = mid + 1;
        else hi = mid;
    }
    return lo < npos && pos[lo] == item;
}

/* 1 / log2(j + 1) for rank j >= 1, the discount numpy computes as 1./np.log2(j + 1) */
static double discount(int j) { return 1.0 / log2((double)j + 1.0); }

double er_metrics_recall_at_k(const int32_t *ranked, int n, const int32_t *pos, int64_t npos, int k) {
    if (npos <= 0) return 0.0;
    int64_t hits = 0;
    for (int j = 0; j < k && j < n; j++) hits += is_pos(pos, npos, ranked[j]);
    return (double)hits / (double)npos;
}

double er_metrics_ndcg_at_k(const int32_t *ranked, int n, const int32_t *pos, int64_t npos, int k) {
    double dcg = 0.0, idcg = 0.0;
    for (int j = 0; j < k && j < n; j++)
        if (is_pos(pos, npos, ranked[j])) dcg += discount(j + 1);
    for (int64_t j = 0; j < k && j < npos; j++) idcg += discount((int)j + 1);
    if (idcg == 0.0) idcg = 1.0;
    double v = dcg / idcg;
    return isnan(v) ? 0.0 : v;
}

void er_metrics_user(const int32_t *ranked, int n, const int32_t *pos, int64_t npos, const int *ks, int nk,
                  double *recall, double *ndcg) {
    for (int q = 0; q < nk; q++) {
        recall[q] = er_metrics_recall_at_k(ranked, n, pos, npos, ks[q]);
        ndcg[q] = er_metrics_ndcg_at_k(ranked, n, pos, npos, ks[q]);
    }
}
