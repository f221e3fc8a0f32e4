/* fit.c — the original's training loop (spec §6.3): one sample per training interaction,
 * a fresh uniform negative per sample at the start of every epoch (rejecting the user's
 * training items), shuffled batches, Adam; validation Recall@20 every test_step epochs
 * (epochs 0, test_step, ...), strict improvement snapshots the parameters, patience counts
 * non-improving checks; the best snapshot is restored, then val and tst are evaluated
 * (training items masked, validation items not). Scoring reuses eval's blocked top-K. */
#include <stdlib.h>
#include <string.h>

#include "cf/cf.h"
#include "core/clock.h"
#include "core/err.h"
#include "eval/eval.h"

const int er_cf_ks[ER_CF_NK] = {5, 10, 20};

int er_cf_evaluate(er_cf_model *m, const er_dataset *ds, int split, double *recall, double *ndcg) {
    int32_t N = er_cf_n_users(m), M = er_cf_n_items(m);
    if (ds->n_users != N || ds->n_items != M)
        return er_error(EASYREC_ERR_ARG, "cf: dataset is %d x %d, model %d x %d", ds->n_users, ds->n_items, N, M);
    const float *F = er_cf_embeddings(m);
    int D = er_cf_out_dim(m);
    er_dense_scorer dsc = {.user = F, .item = F + (size_t)N * D, .n_items = M, .dim = D};
    er_scorer sc;
    er_dense_scorer_bind(&dsc, &sc);
    er_eval_setup st;
    memset(&st, 0, sizeof(st));
    st.ds = ds;
    st.split = split;
    st.nk = ER_CF_NK;
    for (int k = 0; k < ER_CF_NK; k++) st.ks[k] = er_cf_ks[k];
    st.threads = er_cf_model_config(m)->threads;
    er_set_result r;
    int rc = er_eval_run(&st, &sc, &r);
    if (rc) return rc;
    for (int k = 0; k < ER_CF_NK; k++) recall[k] = r.recall[k], ndcg[k] = r.ndcg[k];
    return EASYREC_OK;
}

int er_cf_fit(er_cf_model *m, const er_dataset *ds, const er_cf_fit_opts *o, er_cf_result *res) {
    memset(res, 0, sizeof(*res));
    res->resumed_from = -1;
    const er_csr *trn = &ds->split[ER_SPLIT_TRN];
    int32_t N = er_cf_n_users(m), M = er_cf_n_items(m);
    if (trn->nrows != N || trn->ncols != M) return er_error(EASYREC_ERR_ARG, "cf: dataset and model shapes differ");
    if (o->batch < 1 || o->test_step < 1 || o->patience < 1 || o->max_epochs < 0)
        return er_error(EASYREC_ERR_ARG, "cf: bad batch / test step / patience / epochs");
    size_t T = trn->nnz;
    if (T == 0) return er_error(EASYREC_ERR_FORMAT, "cf: the training split has no interaction");
    for (int32_t u = 0; u < N; u++)
        if (csr_row_len(trn, u) >= M)
            return er_error(EASYREC_ERR_FORMAT, "cf: user %d interacted with every item: no negative to sample", u);
    size_t np;
    float *p = er_cf_params(m, &np);
    int32_t *su = er_mallocarray(T, sizeof(int32_t)), *si = er_mallocarray(T, sizeof(int32_t));
    int32_t *sn = er_mallocarray(T, sizeof(int32_t)), *perm = er_mallocarray(T, sizeof(int32_t));
    int32_t *bu = er_mallocarray((size_t)o->batch * 3, sizeof(int32_t));
    er_cf_progress pr = {.epoch = 0, .best_epoch = -1, .bad_checks = 0, .best = -1.0, .best_params = NULL};
    int rc = EASYREC_OK;
    if (!su || !si || !sn || !perm || !bu) {
        rc = EASYREC_ERR_NOMEM;
        goto done;
    }
    for (int32_t u = 0; u < N; u++)
        for (int64_t k = trn->indptr[u]; k < trn->indptr[u + 1]; k++) su[k] = u, si[k] = trn->indices[k];
    er_rng_seed(&pr.rng, o->seed ^ 0x5eed5a3b1e5ULL);
    if (o->resume && o->save_dir) {
        rc = er_cf_state_load(o->save_dir, m, &pr);
        if (rc == EASYREC_ERR_IO) rc = EASYREC_OK, er_clear_error(); /* nothing saved yet: start */
        else if (rc) goto done;
        else res->resumed_from = pr.epoch;
        p = er_cf_params(m, NULL);
    }
    int has_val = ds->has_split[ER_SPLIT_VAL] && ds->split[ER_SPLIT_VAL].nnz > 0;
    double tval = 0, ttrain = 0;
    int epoch = pr.epoch;
    for (; epoch < o->max_epochs && pr.bad_checks < o->patience; epoch++) {
        double t0 = er_now();
        /* negatives, then a shuffle (both from the run's generator, in this order) */
        for (size_t k = 0; k < T; k++) {
            int32_t j;
            do j = (int32_t)er_rng_below(&pr.rng, (uint64_t)M);
            while (er_csr_has(trn, su[k], j));
            sn[k] = j;
        }
        for (size_t k = 0; k < T; k++) perm[k] = (int32_t)k;
        for (size_t k = T - 1; k > 0; k--) {
            size_t j = (size_t)er_rng_below(&pr.rng, k + 1);
            int32_t t = perm[k];
            perm[k] = perm[j];
            perm[j] = t;
        }
        er_cf_losses sum = {0}, l;
        int nb = 0;
        for (size_t b0 = 0; b0 < T; b0 += (size_t)o->batch) {
            int B = T - b0 < (size_t)o->batch ? (int)(T - b0) : o->batch;
            int32_t *bp = bu + B, *bn = bu + 2 * B;
            for (int b = 0; b < B; b++) {
                int32_t k = perm[b0 + b];
                bu[b] = su[k], bp[b] = si[k], bn[b] = sn[k];
            }
            er_cf_draw dr;
            er_cf_draw_random(m, &pr.rng, &dr);
            rc = er_cf_step(m, bu, bp, bn, B, &dr, &l);
            if (rc) goto done;
            sum.bpr += l.bpr, sum.reg += l.reg, sum.align += l.align, sum.total += l.total;
            nb++;
        }
        sum.bpr /= nb, sum.reg /= nb, sum.align /= nb, sum.total /= nb;
        double t1 = er_now();
        ttrain += t1 - t0;
        double r20 = -1.0;
        if (has_val && epoch % o->test_step == 0) {
            double rec[ER_CF_NK], nd[ER_CF_NK];
            rc = er_cf_evaluate(m, ds, ER_SPLIT_VAL, rec, nd);
            if (rc) goto done;
            r20 = rec[ER_CF_NK - 1];
            if (r20 > pr.best) {
                pr.best = r20;
                pr.best_epoch = epoch;
                pr.bad_checks = 0;
                if (!pr.best_params && !(pr.best_params = er_mallocarray(np, sizeof(float)))) {
                    rc = EASYREC_ERR_NOMEM;
                    goto done;
                }
                memcpy(pr.best_params, p, np * sizeof(float));
            } else {
                pr.bad_checks++;
            }
        }
        tval += er_now() - t1;
        pr.epoch = epoch + 1;
        if (o->save_dir && (r20 >= 0 || epoch + 1 == o->max_epochs)) {
            rc = er_cf_state_save(o->save_dir, m, &pr);
            if (rc) goto done;
        }
        if (o->on_epoch) o->on_epoch(o->user, epoch, &sum, r20, t1 - t0);
    }
    res->epochs_run = epoch;
    res->seconds_train = ttrain;
    if (o->save_dir && pr.epoch == epoch) {
        rc = er_cf_state_save(o->save_dir, m, &pr);
        if (rc) goto done;
    }
    /* best state back (without validation: the last one) */
    res->best_epoch = pr.best_params ? pr.best_epoch : epoch - 1;
    if (pr.best_params) memcpy(er_cf_params(m, NULL), pr.best_params, np * sizeof(float));
    if (has_val) {
        rc = er_cf_evaluate(m, ds, ER_SPLIT_VAL, res->val_recall, res->val_ndcg);
        if (rc) goto done;
        res->has_val = 1;
    }
    if (ds->has_split[ER_SPLIT_TST] && ds->split[ER_SPLIT_TST].nnz > 0) {
        rc = er_cf_evaluate(m, ds, ER_SPLIT_TST, res->tst_recall, res->tst_ndcg);
        if (rc) goto done;
        res->has_tst = 1;
    }
    (void)tval;
done:
    free(su), free(si), free(sn), free(perm), free(bu), free(pr.best_params);
    return rc;
}
