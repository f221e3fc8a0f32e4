/* cmd_eval.c — `easyrec eval`: zero-shot full-ranking evaluation of an encoder, of given
 * embeddings, or of a lexical / popularity / random baseline, on a dataset directory or
 * interaction text files. Protocol and choices: docs/eval.md; the work is in src/eval/.
 *
 * One "run" per profile set (model, bm25, tfidf: original and diverse 0..2 as present and
 * selected, each with its own users' and items' texts) or a single run (embeddings,
 * popularity, random); with several runs the mean is the original's 1+3 average.
 */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "core/err.h"
#include "eval/eval.h"
#include "io/tensors.h"

static const char eval_usage[] =
    "usage: easyrec eval SCORER DATA [options]\n"
    "SCORER (one of):\n"
    "  --model DIR            encode user and item profiles with this model\n"
    "  --user-emb U.npy --item-emb I.npy\n"
    "                         score given float32 embeddings [n_users, D] and [n_items, D]\n"
    "  --baseline NAME        bm25 | tfidf | popularity | random\n"
    "DATA (one of):\n"
    "  --data DIR             EasyRec layout: trn/val/tst_mat.pkl, item_profile.json,\n"
    "                         user_profile.json, diverse_profile/diverse_{user,item}_profile_{0,1,2}.json\n"
    "  --train F --test F [--val F] [--item-profiles F] [--user-profiles F]\n"
    "                         interactions as TSV (user<TAB>item) or RecBole .inter files\n"
    "options:\n"
    "  --split tst|val        split to evaluate (default tst)\n"
    "  --profiles SET         original | diverse | all (default all: the original's 1+3 average\n"
    "                         over the sets present)\n"
    "  --k LIST               cutoffs, comma-separated (default 10,20)\n"
    "  --user-text RULE       profiles (default) | items:K (profiles of the user's first K\n"
    "                         training items) | auto:K (profiles when the set has them, else items:K)\n"
    "  --mask-val             also exclude validation items when evaluating tst (the original does not)\n"
    "  --cache DIR            reuse/store text embeddings per model, profile set and options\n"
    "  --json                 print one JSON object instead of the table\n"
    "  --threads N            threads (default: all cores)\n"
    "  --max-length N         encoder truncation incl. specials (default 512)\n"
    "  --batch-tokens N       tokens per encoder batch (default 2048)\n"
    "  --pooling P            easyrec | cls | mean (default: easyrec when the model has it)\n"
    "  --seed N               seed of the random baseline (default 0)\n"
    "  --id-maps DIR          text inputs: write DIR/users.tsv and DIR/items.tsv (dense id -> original)\n"
    "  --quiet                no progress on stderr\n";

enum { SC_MODEL = 1, SC_EMB, SC_BM25, SC_TFIDF, SC_POP, SC_RANDOM };
static const char *const scorer_names[] = {"", "model", "embeddings", "bm25", "tfidf", "popularity", "random"};

typedef struct {
    const char *model, *uemb, *iemb, *baseline, *data, *trn, *val, *tst, *iprof, *uprof, *cache, *id_maps;
    int scorer, split, profiles, json, quiet, mask_val;
    uint64_t seed;
    er_utext ut;
    er_eval_setup setup;
    easyrec_encode_opts o;
} eval_args;

enum { PROF_ALL = 0, PROF_ORIGINAL, PROF_DIVERSE };

static int usage_error(const char *fmt, const char *arg) {
    fprintf(stderr, "easyrec: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n(easyrec eval --help for usage)\n");
    return 2;
}

static int parse_int(const char *s, const char *what, long lo, long hi, long *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (*s == 0 || *end != 0 || errno || v < lo || v > hi) {
        fprintf(stderr, "easyrec: %s must be an integer in [%ld, %ld], got '%s'\n", what, lo, hi, s);
        return 2;
    }
    *out = v;
    return 0;
}

static int parse_ks(const char *s, er_eval_setup *st) {
    char buf[256];
    snprintf(buf, sizeof buf, "%s", s);
    st->nk = 0;
    for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        long v;
        if (st->nk == ER_MAX_KS) return usage_error("--k: at most 8 cutoffs, got '%s'", s);
        if (parse_int(t, "--k", 1, 1 << 30, &v)) return 2;
        st->ks[st->nk++] = (int)v;
    }
    return st->nk ? 0 : usage_error("--k: no cutoff in '%s'", s);
}

static int parse_utext(const char *s, er_utext *ut) {
    long k = 0;
    if (!strcmp(s, "profiles")) {
        ut->mode = ER_UTEXT_PROFILES;
        return 0;
    }
    if (!strncmp(s, "items:", 6) || !strncmp(s, "auto:", 5)) {
        ut->mode = s[0] == 'i' ? ER_UTEXT_ITEMS : ER_UTEXT_AUTO;
        if (parse_int(strchr(s, ':') + 1, "--user-text K", 1, 1 << 20, &k)) return 2;
        ut->k = (int)k;
        return 0;
    }
    return usage_error("--user-text must be profiles, items:K or auto:K, got '%s'", s);
}

static int parse_args(int argc, char **argv, eval_args *a) {
    static const struct option lo[] = {
        {"model", 1, 0, 'm'},       {"user-emb", 1, 0, 'U'},  {"item-emb", 1, 0, 'I'},     {"baseline", 1, 0, 'b'},
        {"data", 1, 0, 'd'},        {"train", 1, 0, 'r'},     {"val", 1, 0, 'v'},          {"test", 1, 0, 'e'},
        {"item-profiles", 1, 0, 'P'}, {"user-profiles", 1, 0, 'Q'}, {"split", 1, 0, 's'}, {"profiles", 1, 0, 'p'},
        {"k", 1, 0, 'k'},           {"user-text", 1, 0, 'u'}, {"mask-val", 0, 0, 'M'},     {"cache", 1, 0, 'c'},
        {"json", 0, 0, 'j'},        {"threads", 1, 0, 't'},   {"max-length", 1, 0, 'L'},   {"batch-tokens", 1, 0, 'B'},
        {"pooling", 1, 0, 'o'},     {"seed", 1, 0, 'S'},      {"id-maps", 1, 0, 'D'},      {"quiet", 0, 0, 'q'},
        {"help", 0, 0, 'h'},        {0, 0, 0, 0}};
    memset(a, 0, sizeof(*a));
    easyrec_encode_opts_init(&a->o);
    long nproc = sysconf(_SC_NPROCESSORS_ONLN), v;
    a->o.threads = nproc > 0 ? (int)nproc : 1;
    a->split = ER_SPLIT_TST;
    a->setup.nk = 2;
    a->setup.ks[0] = 10;
    a->setup.ks[1] = 20;
    int c, rc = 0;
    optind = 1;
    while (!rc && (c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (c) {
        case 'm': a->model = optarg; break;
        case 'U': a->uemb = optarg; break;
        case 'I': a->iemb = optarg; break;
        case 'b': a->baseline = optarg; break;
        case 'd': a->data = optarg; break;
        case 'r': a->trn = optarg; break;
        case 'v': a->val = optarg; break;
        case 'e': a->tst = optarg; break;
        case 'P': a->iprof = optarg; break;
        case 'Q': a->uprof = optarg; break;
        case 's':
            if (!strcmp(optarg, "tst") || !strcmp(optarg, "test")) a->split = ER_SPLIT_TST;
            else if (!strcmp(optarg, "val")) a->split = ER_SPLIT_VAL;
            else rc = usage_error("--split must be tst or val, got '%s'", optarg);
            break;
        case 'p':
            if (!strcmp(optarg, "all")) a->profiles = PROF_ALL;
            else if (!strcmp(optarg, "original")) a->profiles = PROF_ORIGINAL;
            else if (!strcmp(optarg, "diverse")) a->profiles = PROF_DIVERSE;
            else rc = usage_error("--profiles must be original, diverse or all, got '%s'", optarg);
            break;
        case 'k': rc = parse_ks(optarg, &a->setup); break;
        case 'u': rc = parse_utext(optarg, &a->ut); break;
        case 'M': a->mask_val = 1; break;
        case 'c': a->cache = optarg; break;
        case 'j': a->json = 1; break;
        case 't': if (!(rc = parse_int(optarg, "--threads", 1, 4096, &v))) a->o.threads = (int)v; break;
        case 'L': if (!(rc = parse_int(optarg, "--max-length", 2, 1 << 20, &v))) a->o.max_length = (int)v; break;
        case 'B': if (!(rc = parse_int(optarg, "--batch-tokens", 1, 1 << 30, &v))) a->o.batch_tokens = (int)v; break;
        case 'S': if (!(rc = parse_int(optarg, "--seed", 0, 0x7fffffffL, &v))) a->seed = (uint64_t)v; break;
        case 'o':
            if (!strcmp(optarg, "easyrec")) a->o.pooling = EASYREC_POOL_EASYREC;
            else if (!strcmp(optarg, "cls")) a->o.pooling = EASYREC_POOL_CLS;
            else if (!strcmp(optarg, "mean")) a->o.pooling = EASYREC_POOL_MEAN;
            else rc = usage_error("--pooling must be easyrec, cls or mean, got '%s'", optarg);
            break;
        case 'D': a->id_maps = optarg; break;
        case 'q': a->quiet = 1; break;
        case 'h': return -1;
        default: return 2;
        }
    }
    if (rc) return rc;
    if (optind != argc) return usage_error("unexpected argument '%s'", argv[optind]);
    int nsc = !!a->model + !!(a->uemb || a->iemb) + !!a->baseline;
    if (nsc != 1) return usage_error("%sgive exactly one of --model, --user-emb/--item-emb, --baseline", "");
    if ((a->uemb || a->iemb) && !(a->uemb && a->iemb)) return usage_error("%s--user-emb and --item-emb go together", "");
    if (!!a->data == !!(a->trn || a->tst || a->val))
        return usage_error("%sgive either --data DIR or --train F --test F [--val F]", "");
    if (!a->data && !(a->trn && a->tst)) return usage_error("%s--train and --test are both needed", "");
    if (a->data && (a->iprof || a->uprof)) return usage_error("%s--item-profiles/--user-profiles go with --train/--test", "");
    if (a->model) a->scorer = SC_MODEL;
    else if (a->uemb) a->scorer = SC_EMB;
    else if (!strcmp(a->baseline, "bm25")) a->scorer = SC_BM25;
    else if (!strcmp(a->baseline, "tfidf")) a->scorer = SC_TFIDF;
    else if (!strcmp(a->baseline, "popularity")) a->scorer = SC_POP;
    else if (!strcmp(a->baseline, "random")) a->scorer = SC_RANDOM;
    else return usage_error("--baseline must be bm25, tfidf, popularity or random, got '%s'", a->baseline);
    a->setup.split = a->split;
    a->setup.mask_val = a->mask_val;
    a->setup.threads = a->o.threads;
    return 0;
}

/* ---- runs ----------------------------------------------------------------------------- */

#define MAX_RUNS ER_MAX_PROFILE_SETS

typedef struct {
    er_set_result res[MAX_RUNS];
    char rule[MAX_RUNS][32];
    int n;
    double seconds;
} eval_out;

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* a float32 .npy (rows, D) with finite values; *rows from the file */
static int read_emb(const char *path, float **out, int64_t *rows, int *dim) {
    int nd = 0;
    int64_t sh[ER_MAX_DIMS];
    int rc = npy_read_f32(path, out, &nd, sh);
    if (rc) return rc;
    if (nd != 2 || sh[0] > INT32_MAX || sh[1] < 1 || sh[1] > 1 << 20)
        rc = er_error(EASYREC_ERR_FORMAT, "%s: a %d-D array%s; expected a matrix (rows, D), one row per id", path, nd,
                      nd == 2 ? " of unsupported size" : "");
    size_t n = rc ? 0 : (size_t)sh[0] * (size_t)sh[1];
    for (size_t k = 0; k < n && !rc; k++)
        if (!isfinite((*out)[k]))
            rc = er_error(EASYREC_ERR_FORMAT, "%s: row %zu has a non-finite value", path, k / (size_t)sh[1]);
    if (!rc) {
        *rows = sh[0];
        *dim = (int)sh[1];
    } else {
        free(*out);
        *out = NULL;
    }
    return rc;
}

static int run_embeddings(const eval_args *a, er_dataset *ds, eval_out *out) {
    float *U = NULL, *I = NULL;
    int64_t nu = 0, ni = 0;
    int du = 0, di = 0, rc;
    if ((rc = read_emb(a->uemb, &U, &nu, &du)) || (rc = read_emb(a->iemb, &I, &ni, &di))) goto out_free;
    /* text inputs with numeric ids: rows past the largest id are users/items without interactions */
    if (ds->from_text && (rc = dataset_grow(ds, (int32_t)nu, (int32_t)ni))) goto out_free;
    if (nu != ds->n_users || ni != ds->n_items) {
        int users = nu != ds->n_users;
        rc = er_error(EASYREC_ERR_FORMAT, "%s has %lld rows, but the dataset has %d %s (one row per id 0..%d)",
                      users ? a->uemb : a->iemb, (long long)(users ? nu : ni), users ? ds->n_users : ds->n_items,
                      users ? "users" : "items", (users ? ds->n_users : ds->n_items) - 1);
        goto out_free;
    }
    if (du != di) {
        rc = er_error(EASYREC_ERR_FORMAT, "%s has D = %d but %s has D = %d", a->uemb, du, a->iemb, di);
        goto out_free;
    }
    er_dense_scorer d = {U, I, ds->n_items, du};
    er_scorer sc;
    dense_scorer(&d, &sc);
    snprintf(out->res[0].name, sizeof out->res[0].name, "embeddings");
    snprintf(out->rule[0], sizeof out->rule[0], "given");
    double t0 = now();
    rc = eval_run(&a->setup, &sc, &out->res[0]);
    out->seconds += now() - t0;
    out->n = 1;
out_free:
    free(U);
    free(I);
    return rc;
}

static int run_single_baseline(const eval_args *a, const er_dataset *ds, eval_out *out) {
    er_popularity pop = {0};
    er_random_scorer rnd = {a->seed, ds->n_items};
    er_scorer sc;
    int rc = EASYREC_OK;
    if (a->scorer == SC_POP) {
        if ((rc = popularity_init(&pop, &ds->split[ER_SPLIT_TRN]))) return rc;
        popularity_scorer(&pop, &sc);
    } else {
        random_scorer(&rnd, &sc);
    }
    snprintf(out->res[0].name, sizeof out->res[0].name, "%s", scorer_names[a->scorer]);
    snprintf(out->rule[0], sizeof out->rule[0], "-");
    double t0 = now();
    rc = eval_run(&a->setup, &sc, &out->res[0]);
    out->seconds += now() - t0;
    out->n = 1;
    popularity_free(&pop);
    return rc;
}

/* model / bm25 / tfidf on one profile set */
static int run_set(const eval_args *a, const er_dataset *ds, int set, const easyrec_model *m, eval_out *out) {
    er_texts items, users;
    char rule[32];
    int rc = eval_set_texts(ds, set, a->ut, &items, &users, rule, sizeof rule);
    if (rc) return rc;
    er_set_result *r = &out->res[out->n];
    snprintf(r->name, sizeof r->name, "%s", ds->sets[set].name);
    snprintf(out->rule[out->n], sizeof out->rule[out->n], "%s", rule);
    er_scorer sc;
    er_lexical *lx = NULL;
    float *U = NULL, *I = NULL;
    if (a->scorer == SC_MODEL) {
        er_embedder e = {(easyrec_model *)m, a->model, a->o, a->cache, a->quiet};
        const er_profile_set *ps = &ds->sets[set];
        char il[64], ul[64], urule[96];
        snprintf(il, sizeof il, "items-%s", ps->name);
        snprintf(ul, sizeof ul, "users-%s-%s", ps->name, rule);
        for (char *p = ul; *p; p++) if (*p == ':') *p = '_';
        snprintf(urule, sizeof urule, "%s%s", rule, strcmp(rule, "profiles") ? " (first K training items, ascending id, joined by ' ')" : "");
        const char *isrc[1] = {ps->item_path};
        const char *usrc[2] = {strcmp(rule, "profiles") ? ps->item_path : ps->user_path, ds->split_path[ER_SPLIT_TRN]};
        int du = 0, di = 0;
        rc = embed_texts(&e, il, isrc, 1, "profiles", &items, &I, &di);
        if (!rc) rc = embed_texts(&e, ul, usrc, strcmp(rule, "profiles") ? 2 : 1, urule, &users, &U, &du);
        texts_free(&items);
        texts_free(&users);
        if (rc) goto out_free;
        er_dense_scorer d = {U, I, ds->n_items, di};
        dense_scorer(&d, &sc);
        double t0 = now();
        rc = eval_run(&a->setup, &sc, r);
        out->seconds += now() - t0;
    } else {
        double t0 = now();
        rc = lexical_build(a->scorer == SC_BM25 ? ER_LEX_BM25 : ER_LEX_TFIDF, &items, &users, &lx);
        texts_free(&items);
        texts_free(&users);
        if (rc) goto out_free;
        lexical_scorer(lx, &sc);
        rc = eval_run(&a->setup, &sc, r);
        out->seconds += now() - t0;
    }
    if (!rc) out->n++;
out_free:
    lexical_free(lx);
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
        if (!p || profiles_read_jsonl(p, &t)) continue; /* errors resurface when the set is read */
        n[side] = t.n > INT32_MAX ? INT32_MAX : (int32_t)t.n;
        texts_free(&t);
    }
    er_clear_error();
    return dataset_grow(ds, n[1], n[0]);
}

static int set_selected(const er_dataset *ds, int set, int profiles) {
    int orig = !strcmp(ds->sets[set].name, "original");
    return profiles == PROF_ALL || (profiles == PROF_ORIGINAL) == orig;
}

static int run_sets(const eval_args *a, er_dataset *ds, eval_out *out) {
    easyrec_model *m = NULL;
    int rc = EASYREC_OK, any = 0;
    for (int s = 0; s < ds->n_sets; s++) {
        if (!set_selected(ds, s, a->profiles)) continue;
        const char *why = eval_set_unusable(ds, s, a->ut);
        if (why)
            return er_error(EASYREC_ERR_ARG, "%s: profile set '%s' has %s%s", a->data ? a->data : a->trn, ds->sets[s].name,
                            why,
                            !strcmp(why, "no user profiles")
                                ? "; pass --user-text items:K (or auto:K) to describe users by their training items"
                                : "; choose other sets with --profiles");
        any = 1;
    }
    if (!any)
        return er_error(EASYREC_ERR_ARG, "%s: no %sprofile set to evaluate (%s)", a->data ? a->data : a->trn,
                        a->profiles == PROF_ORIGINAL ? "original " : a->profiles == PROF_DIVERSE ? "diverse " : "",
                        !a->data                       ? "give --item-profiles"
                        : a->profiles == PROF_ORIGINAL ? "item_profile.json absent"
                        : a->profiles == PROF_DIVERSE  ? "diverse_profile/diverse_item_profile_K.json absent"
                                                       : "item_profile.json and diverse_profile/ absent");
    if (ds->from_text && (rc = grow_to_profiles(ds))) return rc;
    if (a->scorer == SC_MODEL && (rc = easyrec_model_load(a->model, &m))) return rc;
    for (int s = 0; s < ds->n_sets && !rc; s++)
        if (set_selected(ds, s, a->profiles)) rc = run_set(a, ds, s, m, out);
    easyrec_model_free(m);
    return rc;
}

/* ---- output --------------------------------------------------------------------------- */

static void mean_of(const eval_out *o, int nk, er_set_result *mean) {
    memset(mean, 0, sizeof(*mean));
    snprintf(mean->name, sizeof mean->name, o->n == 4 ? "mean (1+3)" : "mean");
    for (int q = 0; q < nk; q++) {
        for (int r = 0; r < o->n; r++) {
            mean->recall[q] += o->res[r].recall[q];
            mean->ndcg[q] += o->res[r].ndcg[q];
        }
        mean->recall[q] /= o->n;
        mean->ndcg[q] /= o->n;
    }
}

static json_t *metrics_json(const er_eval_setup *s, const er_set_result *x, json_t *o) {
    char key[32];
    for (int q = 0; q < s->nk; q++) {
        snprintf(key, sizeof key, "recall@%d", s->ks[q]);
        json_object_set_new(o, key, json_real(x->recall[q]));
        snprintf(key, sizeof key, "ndcg@%d", s->ks[q]);
        json_object_set_new(o, key, json_real(x->ndcg[q]));
    }
    return o;
}

static int print_json(const eval_args *a, const er_dataset *ds, int32_t E, const eval_out *o) {
    const er_eval_setup *s = &a->setup;
    er_set_result mean;
    mean_of(o, s->nk, &mean);
    json_t *ks = json_array(), *sets = json_array();
    for (int q = 0; q < s->nk; q++) json_array_append_new(ks, json_integer(s->ks[q]));
    for (int r = 0; r < o->n; r++)
        json_array_append_new(sets, metrics_json(s, &o->res[r], json_pack("{s:s, s:s}", "name", o->res[r].name,
                                                                             "user_text", o->rule[r])));
    json_t *j = json_pack("{s:s, s:s, s:s, s:s?, s:i, s:i, s:b, s:o, s:o, s:o, s:i, s:s, s:f}", "data",
                          a->data ? a->data : a->tst, "split", dataset_split_name(a->split), "scorer",
                          scorer_names[a->scorer], "model", a->model, "n_users", E, "n_items", ds->n_items, "mask_val",
                          a->mask_val, "k", ks, "sets", sets, "mean", metrics_json(s, &mean, json_object()), "n_runs",
                          o->n, "ties", "equal scores: lower item id first", "rank_seconds", o->seconds);
    char *text = j ? json_dumps(j, JSON_REAL_PRECISION(15)) : NULL;
    json_decref(j);
    if (!text) return er_error(EASYREC_ERR_NOMEM, "out of memory");
    puts(text);
    free(text);
    return EASYREC_OK;
}

static void print_table(const eval_args *a, const er_dataset *ds, int32_t E, const eval_out *o) {
    const er_eval_setup *s = &a->setup;
    er_set_result mean;
    mean_of(o, s->nk, &mean);
    printf("%s: %s split, %d users with %s interactions, %d items; training items excluded, %s\n",
           a->data ? a->data : a->tst, dataset_split_name(a->split), E, dataset_split_name(a->split), ds->n_items,
           a->split == ER_SPLIT_TST ? (a->mask_val ? "validation items excluded" : "validation items kept (as the original)")
                                    : "test items kept");
    printf("scorer: %s%s%s\n\n", scorer_names[a->scorer], a->model ? " " : "", a->model ? a->model : "");
    printf("%-12s %-10s", "set", "user text");
    for (int q = 0; q < s->nk; q++) {
        char h[2][24];
        snprintf(h[0], sizeof h[0], "Recall@%d", s->ks[q]);
        snprintf(h[1], sizeof h[1], "NDCG@%d", s->ks[q]);
        printf("  %10s  %8s", h[0], h[1]);
    }
    printf("\n");
    for (int r = 0; r < o->n + (o->n > 1); r++) {
        const er_set_result *x = r < o->n ? &o->res[r] : &mean;
        printf("%-12s %-10s", x->name, r < o->n ? o->rule[r] : "");
        for (int q = 0; q < s->nk; q++) printf("  %10.4f  %8.4f", x->recall[q], x->ndcg[q]);
        printf("\n");
    }
    printf("\nranking and metrics: %.2f s\n", o->seconds);
}

static int write_id_maps(const char *dir, const er_dataset *ds) {
    if (mkdir(dir, 0777) && errno != EEXIST) return er_error(EASYREC_ERR_IO, "--id-maps %s: %s", dir, strerror(errno));
    char *u = er_path_join(dir, "users.tsv"), *i = er_path_join(dir, "items.tsv");
    int rc = !u || !i ? EASYREC_ERR_NOMEM : idmap_write(&ds->users, "user\toriginal", u);
    if (!rc) rc = idmap_write(&ds->items, "item\toriginal", i);
    free(u);
    free(i);
    return rc;
}

int cmd_eval(int argc, char **argv) {
    eval_args a;
    int rc = parse_args(argc, argv, &a);
    if (rc == -1) {
        fputs(eval_usage, stdout);
        return 0;
    }
    if (rc) return rc;
    er_dataset ds;
    rc = a.data ? dataset_open_dir(a.data, &ds) : dataset_open_text(a.trn, a.val, a.tst, a.iprof, a.uprof, &ds);
    if (rc) return cli_fail(NULL);
    a.setup.ds = &ds;
    eval_out out = {0};
    int32_t *users = NULL, E = 0;
    const char *where = a.data ? a.data : a.trn;
    if (!ds.has_split[a.split]) {
        er_error(EASYREC_ERR_ARG, "%s: no %s split to evaluate%s", where, dataset_split_name(a.split),
                 a.data ? "" : " (give --val)");
        rc = cli_fail(NULL);
        goto out_free;
    }
    if (!ds.has_split[ER_SPLIT_TRN]) {
        er_error(EASYREC_ERR_ARG, "%s: no trn_mat.pkl: training items cannot be excluded from the ranking", where);
        rc = cli_fail(NULL);
        goto out_free;
    }
    if (a.id_maps && ds.from_text && write_id_maps(a.id_maps, &ds)) {
        rc = cli_fail(NULL);
        goto out_free;
    }
    if (a.scorer == SC_EMB) rc = run_embeddings(&a, &ds, &out);
    else if (a.scorer == SC_POP || a.scorer == SC_RANDOM) rc = run_single_baseline(&a, &ds, &out);
    else rc = run_sets(&a, &ds, &out);
    if (rc || (rc = eval_users(&a.setup, &users, &E))) {
        rc = cli_fail(NULL);
        goto out_free;
    }
    if (a.json && print_json(&a, &ds, E, &out)) rc = cli_fail(NULL);
    else if (!a.json) print_table(&a, &ds, E, &out);
out_free:
    free(users);
    dataset_free(&ds);
    return rc;
}
