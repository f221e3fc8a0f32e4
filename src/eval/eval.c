/* eval.c — one evaluation run: who is evaluated, what is masked, how the ranked lists
 * become the dataset's Recall@K / NDCG@K, and where a profile set's texts come from.
 *
 * Protocol (../shared/docs/easyrec-spec.md §4.1, eval_text_emb.py):
 *   - evaluated users: every user with >= 1 interaction in the split (tst, or val);
 *   - candidates: all items; the user's training items get score -1e8 (they stay in the
 *     pool, at the bottom); validation items are NOT masked at test time (quirk #5) unless
 *     mask_val is set;
 *   - one ranked list of max(K) items per user (topk.c), metrics per user (metrics.c),
 *     dataset value = mean over evaluated users, summed in ascending user id in double.
 * The 1+3 averaging over profile sets is the caller's (cmd_eval.c): it runs this once per
 * set with the same users and masks.
 * Under MPI (s->comm) the users are split in order across ranks in whole ranking blocks (a
 * block is scored as in one process, the same bits), each ranks its share, and
 * the per-user metrics are all-gathered before the mean: the same sums in the same order.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "eval/eval.h"

int er_eval_users(const er_eval_setup *s, int32_t **users, int32_t *n) {
    ER_ASSERT(s->split == ER_SPLIT_TST || s->split == ER_SPLIT_VAL);
    return er_csr_nonempty_rows(&s->ds->split[s->split], users, n);
}

/* rank r's users [lo, hi) of E: whole ranking blocks, so each is scored as in one process */
static void user_share(const er_comm *c, int r, const er_scorer *sc, int32_t E, const er_rank_opts *o, size_t *lo,
                       size_t *hi) {
    size_t bu = er_topk_block_users(sc, E, o), nb = ((size_t)E + bu - 1) / bu, blo, bhi;
    er_comm_share(c, r, nb, &blo, &bhi);
    *lo = blo * bu < (size_t)E ? blo * bu : (size_t)E;
    *hi = bhi * bu < (size_t)E ? bhi * bu : (size_t)E;
}

int er_eval_run(const er_eval_setup *s, const er_scorer *sc, er_set_result *out) {
    const er_dataset *ds = s->ds;
    const er_csr *truth = &ds->split[s->split];
    int32_t *users = NULL, E = 0, *ranked = NULL;
    double *per = NULL;
    size_t *counts = NULL; /* (ranks) metrics per rank, for the all-gather */
    int kmax = 0, rc;
    ER_ASSERT(s->nk >= 1 && s->nk <= ER_MAX_KS);
    for (int q = 0; q < s->nk; q++) {
        ER_ASSERT(s->ks[q] >= 1);
        if (s->ks[q] > kmax) kmax = s->ks[q];
    }
    /* a failure before the all-gather reaches it, so every rank learns of it there */
    rc = ds->n_items < 1 ? er_error(EASYREC_ERR_ARG, "the dataset has no items") : er_eval_users(s, &users, &E);
    if (!rc && E == 0)
        rc = er_error(EASYREC_ERR_ARG, "no user has an interaction in the %s split", er_dataset_split_name(s->split));
    int k = kmax < ds->n_items ? kmax : ds->n_items;
    er_rank_opts ro = {.n_items = ds->n_items, .k = k, .threads = s->threads};
    ro.mask[0] = ds->has_split[ER_SPLIT_TRN] ? &ds->split[ER_SPLIT_TRN] : NULL;
    ro.mask[1] = s->mask_val && s->split == ER_SPLIT_TST && ds->has_split[ER_SPLIT_VAL] ? &ds->split[ER_SPLIT_VAL] : NULL;
    er_comm *c = s->comm ? s->comm : er_comm_serial();
    size_t lo = 0, hi = 0, M = 2 * (size_t)s->nk; /* this rank's users [lo, hi); M metrics a user */
    if (!rc) {
        user_share(c, c->rank, sc, E, &ro, &lo, &hi);
        ranked = er_mallocarray(hi > lo ? hi - lo : 1, (size_t)k * sizeof(*ranked));
        per = er_calloc((size_t)E, M * sizeof(*per));
        counts = er_calloc((size_t)c->size, sizeof(*counts));
        rc = ranked && per && counts ? EASYREC_OK : EASYREC_ERR_NOMEM;
    }
    if (!rc && hi > lo) rc = er_topk_rank(sc, users + lo, (int32_t)(hi - lo), &ro, ranked);
    if (!rc) {
#pragma omp parallel for num_threads(s->threads > 0 ? s->threads : 1) schedule(static)
        for (int32_t e = (int32_t)lo; e < (int32_t)hi; e++) {
            int32_t u = users[e];
            const int32_t *pos = truth->indices + truth->indptr[u];
            double *r = per + (size_t)e * M;
            er_metrics_user(ranked + (size_t)(e - lo) * k, k, pos, csr_row_len(truth, u), s->ks, s->nk, r, r + s->nk);
        }
    }
    if (c->size > 1 && !(rc = er_comm_agree(c, rc))) {
        for (int q = 0; q < c->size; q++) {
            size_t a, b;
            user_share(c, q, sc, E, &ro, &a, &b);
            counts[q] = (b - a) * M;
        }
        rc = c->allgatherv_f64(c, per + lo * M, (hi - lo) * M, per, counts);
    }
    if (rc) goto out_free;
    for (int q = 0; q < s->nk; q++) {
        double sr = 0, sn = 0;
        for (int32_t e = 0; e < E; e++) {
            sr += per[(size_t)e * 2 * s->nk + q];
            sn += per[(size_t)e * 2 * s->nk + s->nk + q];
        }
        out->recall[q] = sr / E;
        out->ndcg[q] = sn / E;
    }
out_free:
    free(users);
    free(ranked);
    free(per);
    free(counts);
    return rc;
}

/* ---- texts of a profile set ----------------------------------------------------------- */

int er_eval_user_text_from_items(const er_csr *trn, const er_texts *items, int k, er_texts *out) {
    memset(out, 0, sizeof(*out));
    ER_ASSERT(k >= 1 && (size_t)trn->ncols == items->n);
    size_t n = (size_t)trn->nrows;
    out->text = er_calloc(n ? n : 1, sizeof(*out->text));
    out->len = er_calloc(n ? n : 1, sizeof(*out->len));
    if (!out->text || !out->len) goto nomem;
    out->n = n;
    for (size_t u = 0; u < n; u++) {
        int64_t a = trn->indptr[u], b = trn->indptr[u + 1];
        if (b - a > k) b = a + k;
        size_t len = 0;
        for (int64_t p = a; p < b; p++) len += items->len[trn->indices[p]] + (p > a);
        char *t = er_mallocarray(len + 1, 1);
        if (!t) goto nomem;
        size_t w = 0;
        for (int64_t p = a; p < b; p++) {
            if (p > a) t[w++] = ' ';
            memcpy(t + w, items->text[trn->indices[p]], items->len[trn->indices[p]]);
            w += items->len[trn->indices[p]];
        }
        t[w] = 0;
        out->text[u] = t;
        out->len[u] = w;
    }
    return EASYREC_OK;
nomem:
    er_texts_free(out);
    return EASYREC_ERR_NOMEM;
}

static int builds_from_items(const er_dataset *ds, int set, er_utext ut) {
    return ut.mode == ER_UTEXT_ITEMS || (ut.mode == ER_UTEXT_AUTO && !ds->sets[set].user_path);
}

const char *er_eval_set_unusable(const er_dataset *ds, int set, er_utext ut) {
    ER_ASSERT(set >= 0 && set < ds->n_sets);
    if (!ds->sets[set].item_path) return "no item profiles";
    if (!builds_from_items(ds, set, ut) && !ds->sets[set].user_path) return "no user profiles";
    return NULL;
}

int er_eval_set_texts(const er_dataset *ds, int set, er_utext ut, er_texts *items, er_texts *users, char *rule,
                   size_t cap) {
    const er_profile_set *ps = &ds->sets[set];
    const char *why = er_eval_set_unusable(ds, set, ut);
    memset(items, 0, sizeof(*items));
    memset(users, 0, sizeof(*users));
    if (why) return er_error(EASYREC_ERR_ARG, "profile set '%s': %s", ps->name, why);
    int rc = er_dataset_read_profiles(ds, ps->item_path, 0, items);
    if (rc) return rc;
    if (builds_from_items(ds, set, ut)) {
        if (!ds->has_split[ER_SPLIT_TRN]) {
            er_texts_free(items);
            return er_error(EASYREC_ERR_ARG, "--user-text items:%d needs the training matrix, which is missing", ut.k);
        }
        snprintf(rule, cap, "items:%d", ut.k);
        rc = er_eval_user_text_from_items(&ds->split[ER_SPLIT_TRN], items, ut.k, users);
    } else {
        snprintf(rule, cap, "profiles");
        rc = er_dataset_read_profiles(ds, ps->user_path, 1, users);
    }
    if (rc) er_texts_free(items);
    return rc;
}
