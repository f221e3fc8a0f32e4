/* runner.c — one evaluation of a dataset as the paper reports it: one run per profile set
 * (model, bm25, tfidf: the original set and the diverse sets present, each with its own
 * users' and items' texts) or a single run (given embeddings, popularity, random), and the
 * mean over the runs (the original's 1+3 average when all four sets are there).
 *
 * What the command line (`easyrec eval`), the trainer's validation and a server share:
 * nothing here prints; results come back in an er_eval_report, and embedding progress /
 * cache use through the request's notify callback.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/err.h"
#include "eval/eval.h"
#include "io/tensors.h"
#include "model/model.h"

void er_eval_request_init(er_eval_request *rq) {
    memset(rq, 0, sizeof(*rq));
    easyrec_encode_opts_init(&rq->encode);
    rq->setup.split = ER_SPLIT_TST;
    rq->setup.nk = 2;
    rq->setup.ks[0] = 10;
    rq->setup.ks[1] = 20;
    rq->setup.threads = 1;
}

const char *er_eval_scorer_name(er_eval_scorer s) {
    static const char *const names[] = {"", "model", "embeddings", "bm25", "tfidf", "popularity", "random"};
    return s >= ER_EVAL_MODEL && s <= ER_EVAL_RANDOM ? names[s] : "?";
}

/* whether x[0..n) holds a non-finite value: all-ones exponent, tested on the bits
 * (vectorised, no branch per value) */
__attribute__((target_clones("avx512f", "avx2", "default"))) static int any_nonfinite(const float *x, size_t n) {
    uint32_t bad = 0;
#pragma omp simd reduction(| : bad)
    for (size_t k = 0; k < n; k++) {
        uint32_t u;
        memcpy(&u, x + k, sizeof u);
        bad |= (u & 0x7f800000u) == 0x7f800000u;
    }
    return bad != 0;
}

/* index of the first non-finite value of x[0..n), or n; chunks spread over threads */
static size_t first_nonfinite(const float *x, size_t n, int threads) {
    enum { CHUNK = 1 << 16 };
    size_t chunks = (n + CHUNK - 1) / CHUNK, first = n;
#pragma omp parallel for num_threads(threads > 0 ? threads : 1) schedule(static) reduction(min : first)
    for (size_t c = 0; c < chunks; c++) {
        size_t a = c * CHUNK, e = n - a < CHUNK ? n - a : CHUNK;
        if (!any_nonfinite(x + a, e)) continue;
        for (size_t k = a; k < a + e; k++)
            if (!isfinite(x[k])) {
                first = k < first ? k : first;
                break;
            }
    }
    return first;
}

int er_eval_read_embeddings(const char *path, int threads, er_npy_view *out, int64_t *rows, int *dim) {
    int rc = er_npy_open_f32(path, out);
    if (rc) return rc;
    const int64_t *sh = out->shape;
    if (out->ndim != 2 || sh[0] > INT32_MAX || sh[1] < 1 || sh[1] > 1 << 20) {
        rc = er_error(EASYREC_ERR_FORMAT, "%s: a %d-D array%s; expected a matrix (rows, D), one row per id", path,
                      out->ndim, out->ndim == 2 ? " of unsupported size" : "");
    } else {
        size_t bad = first_nonfinite(out->data, out->numel, threads);
        if (bad < out->numel)
            rc = er_error(EASYREC_ERR_FORMAT, "%s: row %zu has a non-finite value", path, bad / (size_t)sh[1]);
    }
    if (rc) {
        er_npy_close(out);
        return rc;
    }
    *rows = sh[0];
    *dim = (int)sh[1];
    return EASYREC_OK;
}

static const char *where_of(const er_eval_request *rq) { return rq->where ? rq->where : "dataset"; }

/* Under MPI every rank passes its status here before the next collective (er_embed_texts,
 * er_eval_run), so a rank that failed on its own (a file on one host only) fails them all
 * instead of leaving the others waiting. */
static int agree(const er_eval_setup *st, int rc) { return er_comm_agree(st->comm ? st->comm : er_comm_serial(), rc); }

/* ---- single runs ---------------------------------------------------------------------- */

/* the given embeddings' shapes against the dataset's */
static int check_embeddings(const er_eval_request *rq, er_dataset *ds) {
    const char *un = rq->user_emb_name ? rq->user_emb_name : "user embeddings";
    const char *in = rq->item_emb_name ? rq->item_emb_name : "item embeddings";
    int64_t nu = rq->user_rows, ni = rq->item_rows;
    int rc;
    if (!rq->user_emb || !rq->item_emb) return er_error(EASYREC_ERR_ARG, "embeddings scorer without embeddings");
    /* text inputs with numeric ids: rows past the largest id are users/items without interactions */
    if (ds->from_text && (nu > INT32_MAX || ni > INT32_MAX))
        return er_error(EASYREC_ERR_ARG, "more than %d embedding rows", INT32_MAX);
    if (ds->from_text && (rc = er_dataset_grow(ds, (int32_t)nu, (int32_t)ni))) return rc;
    if (nu != ds->n_users || ni != ds->n_items) {
        int users = nu != ds->n_users;
        return er_error(EASYREC_ERR_FORMAT, "%s has %lld rows, but the dataset has %d %s (one row per id 0..%d)",
                        users ? un : in, (long long)(users ? nu : ni), users ? ds->n_users : ds->n_items,
                        users ? "users" : "items", (users ? ds->n_users : ds->n_items) - 1);
    }
    if (rq->user_dim != rq->item_dim)
        return er_error(EASYREC_ERR_FORMAT, "%s has D = %d but %s has D = %d", un, rq->user_dim, in, rq->item_dim);
    return EASYREC_OK;
}

static int run_embeddings(const er_eval_request *rq, er_dataset *ds, const er_eval_setup *st, er_eval_report *out) {
    int rc = agree(st, check_embeddings(rq, ds));
    if (rc) return rc;
    er_dense_scorer d = {rq->user_emb, rq->item_emb, ds->n_items, rq->user_dim};
    er_scorer sc;
    er_dense_scorer_bind(&d, &sc);
    snprintf(out->sets[0].name, sizeof out->sets[0].name, "embeddings");
    snprintf(out->user_text[0], sizeof out->user_text[0], "given");
    double t0 = er_now();
    rc = er_eval_run(st, &sc, &out->sets[0]);
    out->seconds += er_now() - t0;
    out->n = rc ? 0 : 1;
    return rc;
}

static int run_single_baseline(const er_eval_request *rq, const er_dataset *ds, const er_eval_setup *st,
                               er_eval_report *out) {
    er_popularity pop = {0};
    er_random_scorer rnd = {rq->seed, ds->n_items};
    er_scorer sc;
    int rc = EASYREC_OK;
    if (rq->scorer == ER_EVAL_POPULARITY) {
        if ((rc = agree(st, er_popularity_init(&pop, &ds->split[ER_SPLIT_TRN])))) {
            er_popularity_free(&pop);
            return rc;
        }
        er_popularity_scorer_bind(&pop, &sc);
    } else {
        er_random_scorer_bind(&rnd, &sc);
    }
    snprintf(out->sets[0].name, sizeof out->sets[0].name, "%s", er_eval_scorer_name(rq->scorer));
    snprintf(out->user_text[0], sizeof out->user_text[0], "-");
    double t0 = er_now();
    rc = er_eval_run(st, &sc, &out->sets[0]);
    out->seconds += er_now() - t0;
    out->n = rc ? 0 : 1;
    er_popularity_free(&pop);
    return rc;
}

/* ---- per profile set ------------------------------------------------------------------ */

/* model / bm25 / tfidf on one profile set */
static int run_set(const er_eval_request *rq, const er_dataset *ds, const er_eval_setup *st, int set,
                   er_eval_report *out) {
    er_texts items, users;
    char rule[32];
    int rc = agree(st, er_eval_set_texts(ds, set, rq->ut, &items, &users, rule, sizeof rule));
    if (rc) { /* a peer failed: this rank's texts go too (where they failed they are freed and zeroed) */
        er_texts_free(&items);
        er_texts_free(&users);
        return rc;
    }
    er_set_result *r = &out->sets[out->n];
    memset(r, 0, sizeof(*r));
    snprintf(r->name, sizeof r->name, "%s", ds->sets[set].name);
    snprintf(out->user_text[out->n], sizeof out->user_text[out->n], "%s", rule);
    er_scorer sc;
    er_lexical *lx = NULL;
    float *U = NULL, *I = NULL;
    if (rq->scorer == ER_EVAL_MODEL) {
        er_embedder e = {(easyrec_model *)rq->model, rq->model_dir ? rq->model_dir : rq->model->dir, rq->encode,
                         rq->cache_dir, rq->notify, rq->notify_user, st->comm};
        const er_profile_set *ps = &ds->sets[set];
        char il[64], ul[64], urule[96];
        int from_items = strcmp(rule, "profiles") != 0;
        snprintf(il, sizeof il, "items-%s", ps->name);
        snprintf(ul, sizeof ul, "users-%s-%s", ps->name, rule);
        for (char *p = ul; *p; p++)
            if (*p == ':') *p = '_';
        snprintf(urule, sizeof urule, "%s%s", rule, from_items ? " (first K training items, ascending id, joined by ' ')" : "");
        const char *isrc[1] = {ps->item_path};
        const char *usrc[2] = {from_items ? ps->item_path : ps->user_path, ds->split_path[ER_SPLIT_TRN]};
        int du = 0, di = 0;
        rc = er_embed_texts(&e, il, isrc, 1, "profiles", &items, &I, &di);
        if (!rc) rc = er_embed_texts(&e, ul, usrc, from_items ? 2 : 1, urule, &users, &U, &du);
        er_texts_free(&items);
        er_texts_free(&users);
        if (rc) goto out_free;
        er_dense_scorer d = {U, I, ds->n_items, di};
        er_dense_scorer_bind(&d, &sc);
        double t0 = er_now();
        rc = er_eval_run(st, &sc, r);
        out->seconds += er_now() - t0;
    } else {
        double t0 = er_now();
        rc = agree(st, er_lexical_build(rq->scorer == ER_EVAL_BM25 ? ER_LEX_BM25 : ER_LEX_TFIDF, &items, &users, &lx));
        er_texts_free(&items);
        er_texts_free(&users);
        if (rc) goto out_free;
        er_lexical_scorer_bind(lx, &sc);
        rc = er_eval_run(st, &sc, r);
        out->seconds += er_now() - t0;
    }
    if (!rc) out->n++;
out_free:
    er_lexical_free(lx);
    free(U);
    free(I);
    return rc;
}

/* text inputs with numeric ids: profiles may cover users/items without interactions */
static int grow_to_profiles(er_dataset *ds) {
    int32_t n[2] = {0, 0};
    for (int side = 0; side < 2; side++) {
        const char *p = side ? ds->sets[0].user_path : ds->sets[0].item_path;
        er_texts t;
        if (!p || er_profiles_read_jsonl(p, &t)) continue; /* errors resurface when the set is read */
        n[side] = t.n > INT32_MAX ? INT32_MAX : (int32_t)t.n;
        er_texts_free(&t);
    }
    er_clear_error();
    return er_dataset_grow(ds, n[1], n[0]);
}

static int set_selected(const er_dataset *ds, const er_eval_request *rq, int set) {
    if (rq->max_sets > 0 && set >= rq->max_sets) return 0;
    int orig = !strcmp(ds->sets[set].name, "original");
    return rq->profiles == ER_PROFILES_ALL || (rq->profiles == ER_PROFILES_ORIGINAL) == orig;
}

/* which of ds's profile sets rq evaluates (use[s] = 1), or why it cannot */
static int select_sets(const er_eval_request *rq, er_dataset *ds, int *use) {
    int any = 0;
    for (int s = 0; s < ds->n_sets; s++) {
        if (!set_selected(ds, rq, s)) continue;
        const char *why = er_eval_set_unusable(ds, s, rq->ut);
        if (why && rq->skip_unusable) continue;
        if (why)
            return er_error(EASYREC_ERR_ARG, "%s: profile set '%s' has %s%s", where_of(rq), ds->sets[s].name, why,
                            !strcmp(why, "no user profiles")
                                ? "; pass --user-text items:K (or auto:K) to describe users by their training items"
                                : "; choose other sets with --profiles");
        use[s] = any = 1;
    }
    if (!any)
        return er_error(EASYREC_ERR_ARG, "%s: no %sprofile set to evaluate (%s)", where_of(rq),
                        rq->profiles == ER_PROFILES_ORIGINAL  ? "original "
                        : rq->profiles == ER_PROFILES_DIVERSE ? "diverse "
                                                              : "",
                        ds->from_text                           ? "give --item-profiles"
                        : rq->profiles == ER_PROFILES_ORIGINAL  ? "item_profile.json absent"
                        : rq->profiles == ER_PROFILES_DIVERSE   ? "diverse_profile/diverse_item_profile_K.json absent"
                                                                : "item_profile.json and diverse_profile/ absent");
    if (rq->scorer == ER_EVAL_MODEL && !rq->model) return er_error(EASYREC_ERR_ARG, "model scorer without a model");
    return ds->from_text ? grow_to_profiles(ds) : EASYREC_OK;
}

/* Under MPI: every rank evaluates the sets rank 0 evaluates (the same names in the same
 * order), or all fail — profile files present on some hosts only would otherwise make the
 * ranks run different numbers of collectives. */
static int same_sets(const er_eval_setup *st, const er_dataset *ds, const int *use) {
    er_comm *c = st->comm ? st->comm : er_comm_serial();
    if (c->size == 1) return EASYREC_OK;
    char mine[ER_MAX_PROFILE_SETS][sizeof ds->sets[0].name], root[ER_MAX_PROFILE_SETS][sizeof ds->sets[0].name];
    memset(mine, 0, sizeof mine);
    for (int s = 0, n = 0; s < ds->n_sets; s++)
        if (use[s]) snprintf(mine[n++], sizeof mine[0], "%s", ds->sets[s].name);
    memcpy(root, mine, sizeof root);
    int rc = c->bcast(c, root, sizeof root, 0);
    for (int n = 0; n < ER_MAX_PROFILE_SETS && !rc; n++)
        if (strcmp(root[n], mine[n]))
            rc = er_error(EASYREC_ERR_ARG, "MPI rank %d's profile set %d is '%s', rank 0's '%s': the dataset's files "
                          "differ between the hosts", c->rank, n + 1, mine[n][0] ? mine[n] : "(none)",
                          root[n][0] ? root[n] : "(none)");
    return er_comm_agree(c, rc);
}

static int run_sets(const er_eval_request *rq, er_dataset *ds, const er_eval_setup *st, er_eval_report *out) {
    int use[ER_MAX_PROFILE_SETS] = {0};
    int rc = agree(st, select_sets(rq, ds, use));
    if (!rc) rc = same_sets(st, ds, use);
    for (int s = 0; s < ds->n_sets && !rc; s++)
        if (use[s]) rc = run_set(rq, ds, st, s, out);
    return rc;
}

void er_eval_mean(const er_set_result *runs, int n, int nk, er_set_result *mean) {
    memset(mean, 0, sizeof(*mean));
    snprintf(mean->name, sizeof mean->name, n == 4 ? "mean (1+3)" : "mean");
    if (n <= 0) return;
    for (int q = 0; q < nk; q++) {
        for (int r = 0; r < n; r++) {
            mean->recall[q] += runs[r].recall[q];
            mean->ndcg[q] += runs[r].ndcg[q];
        }
        mean->recall[q] /= n;
        mean->ndcg[q] /= n;
    }
}

int er_eval_check(const er_dataset *ds, const er_eval_request *rq) {
    const er_eval_setup st = rq->setup;
    const char *where = where_of(rq);
    if (st.split != ER_SPLIT_TST && st.split != ER_SPLIT_VAL)
        return er_error(EASYREC_ERR_ARG, "split %d cannot be evaluated (tst or val)", st.split);
    if (st.nk < 1 || st.nk > ER_MAX_KS) return er_error(EASYREC_ERR_ARG, "1 to %d cutoffs, got %d", ER_MAX_KS, st.nk);
    for (int q = 0; q < st.nk; q++)
        if (st.ks[q] < 1) return er_error(EASYREC_ERR_ARG, "cutoff %d is not >= 1", st.ks[q]);
    if (!ds->has_split[st.split])
        return er_error(EASYREC_ERR_ARG, "%s: no %s split to evaluate%s", where, er_dataset_split_name(st.split),
                        ds->from_text ? " (give --val)" : "");
    if (!ds->has_split[ER_SPLIT_TRN])
        return er_error(EASYREC_ERR_ARG, "%s: no trn_mat.pkl: training items cannot be excluded from the ranking", where);
    return EASYREC_OK;
}

int er_eval_dataset(er_dataset *ds, const er_eval_request *rq, er_eval_report *out) {
    memset(out, 0, sizeof(*out));
    er_eval_setup st = rq->setup;
    st.ds = ds;
    int rc = er_eval_check(ds, rq);
    if (rc) return rc;
    switch (rq->scorer) {
    case ER_EVAL_EMBEDDINGS: rc = run_embeddings(rq, ds, &st, out); break;
    case ER_EVAL_POPULARITY:
    case ER_EVAL_RANDOM: rc = run_single_baseline(rq, ds, &st, out); break;
    case ER_EVAL_MODEL:
    case ER_EVAL_BM25:
    case ER_EVAL_TFIDF: rc = run_sets(rq, ds, &st, out); break;
    default: return er_error(EASYREC_ERR_ARG, "unknown scorer %d", (int)rq->scorer);
    }
    if (rc) return rc;
    int32_t *users = NULL;
    if ((rc = er_eval_users(&st, &users, &out->n_users))) return rc;
    free(users);
    out->n_items = ds->n_items;
    er_eval_mean(out->sets, out->n, st.nk, &out->mean);
    return EASYREC_OK;
}
