/* cmd_eval.c — `easyrec eval`: zero-shot full-ranking evaluation of an encoder, of given
 * embeddings, or of a lexical / popularity / random baseline, on a dataset directory or
 * interaction text files. Protocol and choices: docs/eval.md. This file only parses the
 * options, loads what the request names and prints the report; the evaluation itself
 * (one run per profile set, the 1+3 mean) is er_eval_dataset in src/eval/runner.c.
 * Under mpirun every rank loads the same inputs, the texts are encoded and the users ranked
 * in shares (docs/distributed.md), and rank 0 prints the report.
 */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/opt.h"
#include "core/err.h"
#include "eval/eval.h"
#include "kernels/kernels.h"

typedef struct {
    const char *model, *uemb, *iemb, *data, *trn, *val, *tst, *iprof, *uprof, *cache, *id_maps, *ks, *utext, *isa;
    int baseline, split, profiles, json, quiet, mask_val, pooling, precision;
    int64_t seed;
    er_eval_request rq;
} eval_args;

enum { BASE_NONE = -1 };
static const er_eval_scorer baseline_scorers[] = {ER_EVAL_BM25, ER_EVAL_TFIDF, ER_EVAL_POPULARITY, ER_EVAL_RANDOM};

static int parse_ks(cli_cmd *cmd, const char *s, er_eval_setup *st) {
    st->nk = 0;
    const char *p = s;
    for (;;) {
        char *end;
        errno = 0;
        long v = strtol(p, &end, 10);
        if (end == p || errno || v < 1 || v > 1 << 30 || (*end && *end != ',') || st->nk == ER_MAX_KS)
            return opt_usage_error(cmd, "--k must be 1 to %d comma-separated integers >= 1, got '%s'", ER_MAX_KS, s);
        st->ks[st->nk++] = (int)v;
        if (!*end) return 0;
        p = end + 1;
    }
}

static int parse_utext(cli_cmd *cmd, const char *s, er_utext *ut) {
    if (!strcmp(s, "profiles")) {
        ut->mode = ER_UTEXT_PROFILES;
        return 0;
    }
    if (!strncmp(s, "items:", 6) || !strncmp(s, "auto:", 5)) {
        const char *k = strchr(s, ':') + 1;
        char *end;
        errno = 0;
        long v = strtol(k, &end, 10);
        if (end == k || *end || errno || v < 1 || v > 1 << 20)
            return opt_usage_error(cmd, "--user-text K must be an integer in 1..%d, got '%s'", 1 << 20, k);
        ut->mode = s[0] == 'i' ? ER_UTEXT_ITEMS : ER_UTEXT_AUTO;
        ut->k = (int)v;
        return 0;
    }
    return opt_usage_error(cmd, "--user-text must be profiles, items:K or auto:K, got '%s'", s);
}

static int parse_args(int argc, char **argv, eval_args *a, cli_cmd *cmd) {
    int rc;
    if ((rc = opt_parse(cmd, argc, argv, NULL, NULL))) return rc;
    er_eval_request *rq = &a->rq;
    if (a->ks && (rc = parse_ks(cmd, a->ks, &rq->setup))) return rc;
    if (a->utext && (rc = parse_utext(cmd, a->utext, &rq->ut))) return rc;
    int nsc = !!a->model + !!(a->uemb || a->iemb) + (a->baseline != BASE_NONE);
    if (nsc != 1) return opt_usage_error(cmd, "give exactly one of --model, --user-emb/--item-emb, --baseline");
    if ((a->uemb || a->iemb) && !(a->uemb && a->iemb)) return opt_usage_error(cmd, "--user-emb and --item-emb go together");
    if (!!a->data == !!(a->trn || a->tst || a->val))
        return opt_usage_error(cmd, "give either --data DIR or --train F --test F [--val F]");
    if (!a->data && !(a->trn && a->tst)) return opt_usage_error(cmd, "--train and --test are both needed");
    if (a->data && (a->iprof || a->uprof))
        return opt_usage_error(cmd, "--item-profiles/--user-profiles go with --train/--test");
    rq->scorer = a->model ? ER_EVAL_MODEL : a->uemb ? ER_EVAL_EMBEDDINGS : baseline_scorers[a->baseline];
    rq->setup.split = a->split == 1 ? ER_SPLIT_VAL : ER_SPLIT_TST; /* tst|val|test */
    rq->setup.mask_val = a->mask_val;
    rq->setup.threads = rq->encode.threads;
    rq->profiles = (er_profiles_choice)a->profiles;
    rq->encode.pooling = cli_pooling(a->pooling);
    rq->cache_dir = a->cache;
    rq->model_dir = a->model;
    rq->seed = (uint64_t)a->seed;
    rq->where = a->data ? a->data : a->trn;
    return 0;
}

/* ---- output --------------------------------------------------------------------------- */

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

static int print_json(const eval_args *a, const er_eval_report *o) {
    const er_eval_setup *s = &a->rq.setup;
    json_t *ks = json_array(), *sets = json_array();
    for (int q = 0; q < s->nk; q++) json_array_append_new(ks, json_integer(s->ks[q]));
    for (int r = 0; r < o->n; r++)
        json_array_append_new(sets, metrics_json(s, &o->sets[r], json_pack("{s:s, s:s}", "name", o->sets[r].name,
                                                                              "user_text", o->user_text[r])));
    const easyrec_model *m = a->rq.model;
    json_t *j = json_pack("{s:s, s:s, s:s, s:s?, s:s?, s:s?, s:i, s:i, s:b, s:o, s:o, s:o, s:i, s:s, s:f}", "data",
                          a->data ? a->data : a->tst, "split", er_dataset_split_name(s->split), "scorer",
                          er_eval_scorer_name(a->rq.scorer), "model", a->model, "precision",
                          m ? easyrec_precision_name(easyrec_model_precision(m)) : NULL, "isa",
                          m ? easyrec_model_isa(m) : NULL, "n_users", o->n_users, "n_items",
                          o->n_items, "mask_val", s->mask_val, "k", ks, "sets", sets, "mean",
                          metrics_json(s, &o->mean, json_object()), "n_runs", o->n, "ties",
                          "equal scores: lower item id first", "rank_seconds", o->seconds);
    char *text = j ? json_dumps(j, JSON_REAL_PRECISION(15)) : NULL;
    json_decref(j);
    if (!text) return er_error(EASYREC_ERR_NOMEM, "out of memory");
    puts(text);
    free(text);
    return EASYREC_OK;
}

static void print_table(const eval_args *a, const er_eval_report *o) {
    const er_eval_setup *s = &a->rq.setup;
    printf("%s: %s split, %d users with %s interactions, %d items; training items excluded, %s\n",
           a->data ? a->data : a->tst, er_dataset_split_name(s->split), o->n_users, er_dataset_split_name(s->split),
           o->n_items,
           s->split == ER_SPLIT_TST ? (s->mask_val ? "validation items excluded" : "validation items kept (as the original)")
                                    : "test items kept");
    printf("scorer: %s%s%s", er_eval_scorer_name(a->rq.scorer), a->model ? " " : "", a->model ? a->model : "");
    if (a->rq.model)
        printf(" (%s, %s)", easyrec_precision_name(easyrec_model_precision(a->rq.model)), easyrec_model_isa(a->rq.model));
    printf("\n\n");
    printf("%-12s %-10s", "set", "user text");
    for (int q = 0; q < s->nk; q++) {
        char h[2][24];
        snprintf(h[0], sizeof h[0], "Recall@%d", s->ks[q]);
        snprintf(h[1], sizeof h[1], "NDCG@%d", s->ks[q]);
        printf("  %10s  %8s", h[0], h[1]);
    }
    printf("\n");
    for (int r = 0; r < o->n + (o->n > 1); r++) {
        const er_set_result *x = r < o->n ? &o->sets[r] : &o->mean;
        printf("%-12s %-10s", x->name, r < o->n ? o->user_text[r] : "");
        for (int q = 0; q < s->nk; q++) printf("  %10.4f  %8.4f", x->recall[q], x->ndcg[q]);
        printf("\n");
    }
    printf("\nranking and metrics: %.2f s\n", o->seconds);
}

static int write_id_maps(const char *dir, const er_dataset *ds) {
    if (mkdir(dir, 0777) && errno != EEXIST) return er_error(EASYREC_ERR_IO, "--id-maps %s: %s", dir, strerror(errno));
    char *u = er_path_join(dir, "users.tsv"), *i = er_path_join(dir, "items.tsv");
    int rc = !u || !i ? EASYREC_ERR_NOMEM : er_idmap_write(&ds->users, "user\toriginal", u);
    if (!rc) rc = er_idmap_write(&ds->items, "item\toriginal", i);
    free(u);
    free(i);
    return rc;
}

/* embedding progress and cache use, on stderr (progress only on a terminal) */
static void notify(void *user, er_embed_event ev, const char *label, size_t done, size_t total, double seconds,
                   const char *path) {
    const eval_args *a = user;
    if (a->quiet) return;
    if (ev == ER_EMBED_PROGRESS) {
        if (isatty(2)) fprintf(stderr, "\r  encoding %s: %zu/%zu ", label, done, total);
    } else if (ev == ER_EMBED_ENCODED) {
        if (isatty(2)) fputc('\r', stderr);
        fprintf(stderr, "  encoded %s: %zu texts in %.1f s\n", label, total, seconds);
    } else if (ev == ER_EMBED_CACHED) {
        fprintf(stderr, "  cached %s: %s\n", label, path);
    }
}

int cmd_eval(int argc, char **argv) {
    eval_args a;
    memset(&a, 0, sizeof a);
    er_eval_request_init(&a.rq);
    a.rq.encode.threads = cli_default_threads();
    a.baseline = BASE_NONE;
    cli_opt opts[] = {
        OPT_S("model", &a.model, "DIR", "scorer: encode user and item profiles with this model"),
        OPT_S("user-emb", &a.uemb, "U.npy", "scorer: given float32 user embeddings [n_users, D] (with --item-emb)"),
        OPT_S("item-emb", &a.iemb, "I.npy", "scorer: given float32 item embeddings [n_items, D]"),
        OPT_C("baseline", &a.baseline, "bm25|tfidf|popularity|random", "scorer: a baseline (default none)"),
        OPT_S("data", &a.data, "DIR", "EasyRec layout: trn/val/tst_mat.pkl, item_profile.json, user_profile.json, "
                                      "diverse_profile/"),
        OPT_S("train", &a.trn, "F", "training interactions, TSV (user<TAB>item) or RecBole .inter"),
        OPT_S("test", &a.tst, "F", "test interactions (with --train)"),
        OPT_S("val", &a.val, "F", "validation interactions (with --train)"),
        OPT_S("item-profiles", &a.iprof, "F", "item profiles (JSON lines) for --train/--test"),
        OPT_S("user-profiles", &a.uprof, "F", "user profiles (JSON lines) for --train/--test"),
        OPT_C("split", &a.split, "tst|val|test", "split to evaluate (test = tst)"),
        OPT_C("profiles", &a.profiles, "all|original|diverse",
              "profile sets; all: the original's 1+3 average over the sets present"),
        OPT_S("k", &a.ks, "LIST", "cutoffs, comma-separated (default 10,20)"),
        OPT_S("user-text", &a.utext, "RULE",
              "profiles | items:K (the user's first K training items' profiles) | auto:K (profiles when the set "
              "has them, else items:K) (default profiles)"),
        OPT_F("mask-val", &a.mask_val, "also exclude validation items when evaluating tst (the original does not)"),
        OPT_S("cache", &a.cache, "DIR", "reuse/store text embeddings per model, profile set and options"),
        OPT_F("json", &a.json, "print one JSON object instead of the table"),
        OPT_I("threads", &a.rq.encode.threads, "N", "threads (default: all cores)", 1, CLI_MAX_THREADS,
              .env = "EASYREC_THREADS"),
        OPT_I("max-length", &a.rq.encode.max_length, "N",
              "encoder truncation incl. specials, at most the model's position limit", 2, CLI_MAX_LENGTH),
        OPT_I("batch-tokens", &a.rq.encode.batch_tokens, "N", "tokens per encoder batch", 1, 1 << 30),
        OPT_C("pooling", &a.pooling, CLI_POOLING_CHOICES, CLI_POOLING_HELP),
        CLI_PRECISION_OPT(&a.precision),
        CLI_ISA_OPT(&a.isa),
        OPT_L("seed", &a.seed, "N", "seed of the random baseline", 0, 2147483647.0),
        OPT_S("id-maps", &a.id_maps, "DIR", "text inputs: write DIR/users.tsv and DIR/items.tsv (dense id -> original)"),
        OPT_F("quiet", &a.quiet, "no progress on stderr"),
        CLI_GEMM_OPT(&a.rq.encode.gemm),
        {0}};
    cli_cmd cmd = {"eval", "SCORER DATA [options]",
                   "Zero-shot full-ranking Recall/NDCG@K as the paper (docs/eval.md).\n"
                   "SCORER: --model DIR | --user-emb U.npy --item-emb I.npy | --baseline NAME\n"
                   "DATA:   --data DIR | --train F --test F [--val F] [--item-profiles F] [--user-profiles F]",
                   opts, 0, 0, NULL};
    int rc = parse_args(argc, argv, &a, &cmd);
    if (rc == OPT_HELP) return 0;
    if (rc) return rc;
    er_comm *comm = NULL;
    if (cli_comm(&comm)) return cli_fail(NULL);
    if (comm->rank) a.quiet = 1;
    a.rq.setup.comm = comm;
    int agreed = comm->size == 1; /* until every rank has its inputs, a failure is agreed on at out: */
    er_dataset ds;
    er_npy_view U = {0}, I = {0};
    easyrec_model *m = NULL;
    rc = a.data ? er_dataset_open_dir(a.data, &ds) : er_dataset_open_text(a.trn, a.val, a.tst, a.iprof, a.uprof, &ds);
    if (rc) {
        rc = cli_fail(NULL);
        if (!agreed) er_comm_agree(comm, rc);
        return rc;
    }
    er_eval_report rep;
    if ((rc = er_eval_check(&ds, &a.rq)) || (a.id_maps && ds.from_text && !comm->rank && (rc = write_id_maps(a.id_maps, &ds))))
        goto fail;
    if (a.uemb) {
        if ((rc = er_eval_read_embeddings(a.uemb, a.rq.setup.threads, &U, &a.rq.user_rows, &a.rq.user_dim)) ||
            (rc = er_eval_read_embeddings(a.iemb, a.rq.setup.threads, &I, &a.rq.item_rows, &a.rq.item_dim)))
            goto fail;
        a.rq.user_emb = U.data, a.rq.item_emb = I.data;
        a.rq.user_emb_name = a.uemb, a.rq.item_emb_name = a.iemb;
    }
    if (a.model && cli_load_model(a.model, a.precision, a.isa, !a.quiet && !a.json, &m)) {
        rc = 1;
        goto out;
    }
    if (m && opt_find(&cmd, "max-length")->seen && a.rq.encode.max_length > easyrec_model_max_length(m)) {
        rc = opt_usage_error(&cmd, "--max-length %d exceeds this model's limit of %d tokens (its position table)",
                             a.rq.encode.max_length, easyrec_model_max_length(m));
        goto out;
    }
    a.rq.model = m;
    a.rq.notify = notify;
    a.rq.notify_user = &a;
    er_gemm_set_backend(a.rq.encode.gemm); /* the dense scorer's products run on this thread's workers */
    agreed = 1;
    if ((rc = er_comm_agree(comm, EASYREC_OK)) || (rc = er_eval_dataset(&ds, &a.rq, &rep))) goto fail;
    if (comm->rank) goto out;
    if (a.json) rc = print_json(&a, &rep) ? cli_fail(NULL) : 0;
    else print_table(&a, &rep);
    goto out;
fail:
    rc = cli_fail(NULL);
out:
    if (!agreed) er_comm_agree(comm, rc ? EASYREC_ERR_ARG : EASYREC_OK);
    easyrec_model_free(m);
    er_npy_close(&U);
    er_npy_close(&I);
    er_dataset_free(&ds);
    return rc;
}
