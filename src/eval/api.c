/* api.c — the public ranking / evaluation entry points (easyrec_topk, easyrec_evaluate) over
 * given embeddings and CSR interactions: the same blocked top-K (topk.c), dense scorer
 * (scorers.c) and metrics (eval.c, metrics.c) that `easyrec eval --user-emb/--item-emb` uses,
 * for callers without a dataset directory (the Python package). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "eval/eval.h"

/* A caller's CSR (ptr n_rows+1, idx) checked and wrapped without copying. */
static int wrap_csr(const char *what, const int64_t *ptr, const int32_t *idx, int64_t n_rows, int64_t n_cols,
                    er_csr *out) {
    memset(out, 0, sizeof *out);
    if (!ptr) return er_error(EASYREC_ERR_ARG, "%s: NULL row pointer", what);
    if (ptr[0] != 0) return er_error(EASYREC_ERR_ARG, "%s: ptr[0] is %lld, expected 0", what, (long long)ptr[0]);
    for (int64_t r = 0; r < n_rows; r++) {
        if (ptr[r + 1] < ptr[r])
            return er_error(EASYREC_ERR_ARG, "%s: row pointer decreases at row %lld", what, (long long)r);
        for (int64_t p = ptr[r]; p < ptr[r + 1]; p++) {
            if (idx[p] < 0 || idx[p] >= n_cols)
                return er_error(EASYREC_ERR_ARG, "%s: row %lld has item %d outside 0..%lld", what, (long long)r,
                                idx[p], (long long)n_cols - 1);
            if (p > ptr[r] && idx[p] <= idx[p - 1])
                return er_error(EASYREC_ERR_ARG, "%s: items of row %lld are not strictly ascending", what,
                                (long long)r);
        }
    }
    out->nrows = (int32_t)n_rows;
    out->ncols = (int32_t)n_cols;
    out->nnz = (size_t)ptr[n_rows];
    out->indptr = (int64_t *)ptr;   /* read only below */
    out->indices = (int32_t *)idx;
    return EASYREC_OK;
}

static int check_shapes(const float *u, const float *it, int64_t nu, int64_t ni, int dim) {
    if (!u || !it) return er_error(EASYREC_ERR_ARG, "NULL embeddings");
    if (nu < 1 || ni < 1 || dim < 1) return er_error(EASYREC_ERR_ARG, "empty embeddings (%lld users, %lld items, dim %d)",
                                                     (long long)nu, (long long)ni, dim);
    if (nu > ER_CSR_MAX_DIM || ni > ER_CSR_MAX_DIM)
        return er_error(EASYREC_ERR_ARG, "more than %d users or items", ER_CSR_MAX_DIM);
    return EASYREC_OK;
}

static int row_has(const er_csr *m, int32_t r, int32_t item) {
    const int32_t *a = m->indices + m->indptr[r];
    int64_t lo = 0, hi = m->indptr[r + 1] - m->indptr[r];
    while (lo < hi) {
        int64_t mid = (lo + hi) / 2;
        if (a[mid] < item) lo = mid + 1;
        else hi = mid;
    }
    return lo < m->indptr[r + 1] - m->indptr[r] && a[lo] == item;
}

int easyrec_topk(const float *user_emb, int64_t n_users, const float *item_emb, int64_t n_items, int dim, int k,
                 const int64_t *excl_ptr, const int32_t *excl_idx, int threads, int32_t *out_idx, float *out_score) {
    er_clear_error();
    int rc = check_shapes(user_emb, item_emb, n_users, n_items, dim);
    if (rc) return rc;
    if (k < 1 || k > n_items) return er_error(EASYREC_ERR_ARG, "k = %d must be in 1..%lld (the items)", k, (long long)n_items);
    if (!out_idx) return er_error(EASYREC_ERR_ARG, "easyrec_topk: NULL output");
    er_csr ex;
    if (excl_ptr && (rc = wrap_csr("exclude", excl_ptr, excl_idx, n_users, n_items, &ex))) return rc;
    int32_t *users = er_mallocarray((size_t)n_users, sizeof *users);
    if (!users) return EASYREC_ERR_NOMEM;
    for (int64_t u = 0; u < n_users; u++) users[u] = (int32_t)u;
    er_dense_scorer d = {user_emb, item_emb, (int32_t)n_items, dim};
    er_scorer sc;
    er_dense_scorer_bind(&d, &sc);
    er_rank_opts ro = {.n_items = (int32_t)n_items, .k = k, .threads = threads};
    ro.mask[0] = excl_ptr ? &ex : NULL;
    rc = er_topk_rank(&sc, users, (int32_t)n_users, &ro, out_idx);
    free(users);
    if (rc || !out_score) return rc;
    for (int64_t u = 0; u < n_users; u++)
        for (int j = 0; j < k; j++) {
            int32_t i = out_idx[u * k + j];
            if (excl_ptr && row_has(&ex, (int32_t)u, i)) {
                out_score[u * k + j] = -INFINITY;
                continue;
            }
            double s = 0;
            for (int c = 0; c < dim; c++) s += (double)user_emb[u * dim + c] * item_emb[(int64_t)i * dim + c];
            out_score[u * k + j] = (float)s;
        }
    return EASYREC_OK;
}

int easyrec_evaluate(const float *user_emb, int64_t n_users, const float *item_emb, int64_t n_items, int dim,
                     const int64_t *test_ptr, const int32_t *test_idx, const int64_t *train_ptr,
                     const int32_t *train_idx, const int *ks, int nk, int threads, double *recall, double *ndcg,
                     int64_t *n_evaluated) {
    er_clear_error();
    int rc = check_shapes(user_emb, item_emb, n_users, n_items, dim);
    if (rc) return rc;
    if (!ks || nk < 1 || nk > ER_MAX_KS) return er_error(EASYREC_ERR_ARG, "1..%d cut-offs K expected, got %d", ER_MAX_KS, nk);
    for (int q = 0; q < nk; q++)
        if (ks[q] < 1) return er_error(EASYREC_ERR_ARG, "K = %d must be >= 1", ks[q]);
    if (!recall || !ndcg) return er_error(EASYREC_ERR_ARG, "easyrec_evaluate: NULL output");
    er_dataset ds;
    memset(&ds, 0, sizeof ds);
    ds.n_users = (int32_t)n_users;
    ds.n_items = (int32_t)n_items;
    if ((rc = wrap_csr("test", test_ptr, test_idx, n_users, n_items, &ds.split[ER_SPLIT_TST]))) return rc;
    ds.has_split[ER_SPLIT_TST] = 1;
    if (train_ptr) {
        if ((rc = wrap_csr("train", train_ptr, train_idx, n_users, n_items, &ds.split[ER_SPLIT_TRN]))) return rc;
        ds.has_split[ER_SPLIT_TRN] = 1;
    }
    er_eval_setup s = {.ds = &ds, .split = ER_SPLIT_TST, .nk = nk, .threads = threads};
    memcpy(s.ks, ks, (size_t)nk * sizeof *ks);
    er_dense_scorer d = {user_emb, item_emb, (int32_t)n_items, dim};
    er_scorer sc;
    er_dense_scorer_bind(&d, &sc);
    er_set_result res;
    memset(&res, 0, sizeof res);
    if ((rc = er_eval_run(&s, &sc, &res))) return rc;
    memcpy(recall, res.recall, (size_t)nk * sizeof *recall);
    memcpy(ndcg, res.ndcg, (size_t)nk * sizeof *ndcg);
    if (n_evaluated) {
        int32_t *users = NULL, E = 0;
        if (er_eval_users(&s, &users, &E) == 0) *n_evaluated = E;
        free(users);
    }
    return EASYREC_OK;
}
