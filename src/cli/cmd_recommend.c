/* cmd_recommend.c — `easyrec recommend`: offline, batched recommendations. Encodes a
 * catalog (src/serve/catalog.h) and a set of queries (user profiles from JSON lines, one
 * --text, or the users of a dataset split), ranks the catalog for every query with the
 * exact batched top-K of src/serve/recommender.h and prints JSON lines (a table on a
 * terminal): per query the ranked item ids, scores, profiles and the items' metadata. */
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/opt.h"
#include "core/clock.h"
#include "core/err.h"
#include "data/dataset.h"
#include "eval/eval.h"
#include "serve/catalog.h"
#include "serve/recommender.h"

typedef struct {
    size_t n, cap;
    char **uid;       /* (n) user id text, NULL for --text */
    uint8_t *uid_int; /* (n) */
    char **text;      /* (n) query text (owned) */
    size_t *len;
    int32_t **excl;   /* (n) catalog rows to leave out (owned, may be NULL) */
    int *nexcl;
} queries;

static void queries_free(queries *q) {
    for (size_t i = 0; i < q->n; i++) {
        free(q->uid[i]);
        free(q->text[i]);
        free(q->excl[i]);
    }
    free(q->uid);
    free(q->uid_int);
    free(q->text);
    free(q->len);
    free(q->excl);
    free(q->nexcl);
    memset(q, 0, sizeof(*q));
}

/* append one query (takes ownership of uid and text) */
static int queries_push(queries *q, char *uid, int uid_int, char *text, size_t len) {
    if (q->n == q->cap) {
        size_t nc = q->cap ? q->cap * 2 : 256;
        void *p;
#define G(f)                                                              \
    if (!(p = er_reallocarray(q->f, nc, sizeof(*q->f)))) goto nomem; \
    q->f = p;
        G(uid) G(uid_int) G(text) G(len) G(excl) G(nexcl)
#undef G
        q->cap = nc;
    }
    q->uid[q->n] = uid;
    q->uid_int[q->n] = (uint8_t)uid_int;
    q->text[q->n] = text;
    q->len[q->n] = len;
    q->excl[q->n] = NULL;
    q->nexcl[q->n] = 0;
    q->n++;
    return EASYREC_OK;
nomem:
    free(uid);
    free(text);
    return EASYREC_ERR_NOMEM;
}

static int add_excl(queries *q, size_t i, int32_t row) {
    if (row < 0) return EASYREC_OK;
    int32_t *p = er_reallocarray(q->excl[i], (size_t)q->nexcl[i] + 1, sizeof(int32_t));
    if (!p) return EASYREC_ERR_NOMEM;
    q->excl[i] = p;
    p[q->nexcl[i]++] = row;
    return EASYREC_OK;
}

/* id text of a JSON integer or non-empty string; NULL otherwise */
static char *id_text(json_t *id, int *is_int) {
    char buf[32];
    if (json_is_integer(id)) {
        snprintf(buf, sizeof buf, "%" PRId64, (int64_t)json_integer_value(id));
        *is_int = 1;
        return er_strdup(buf);
    }
    if (json_is_string(id) && json_string_length(id) > 0 && !memchr(json_string_value(id), 0, json_string_length(id))) {
        *is_int = 0;
        return er_strdup(json_string_value(id));
    }
    return NULL;
}

typedef struct {
    queries *q;
    const er_catalog *cat;
    const char *path;
} profiles_ctx;

static int profile_line(json_t *o, size_t lineno, void *user) {
    profiles_ctx *pc = user;
    json_t *id = json_object_get(o, "user_id"), *p = json_object_get(o, "profile"), *ex = json_object_get(o, "exclude");
    int is_int = 0;
    char *uid = NULL;
    if (id && !json_is_null(id) && !(uid = id_text(id, &is_int)))
        return er_error(EASYREC_ERR_FORMAT, "%s:%zu: \"user_id\" must be an integer or a non-empty string", pc->path, lineno);
    if (!json_is_string(p)) {
        free(uid);
        return er_error(EASYREC_ERR_FORMAT, "%s:%zu: missing string field \"profile\"", pc->path, lineno);
    }
    if (ex && !json_is_array(ex)) {
        free(uid);
        return er_error(EASYREC_ERR_FORMAT, "%s:%zu: \"exclude\" must be an array of item ids", pc->path, lineno);
    }
    char *t = er_strdup(json_string_value(p));
    int rc = t ? queries_push(pc->q, uid, is_int, t, json_string_length(p)) : (free(uid), EASYREC_ERR_NOMEM);
    size_t i;
    json_t *v;
    json_array_foreach(ex, i, v) {
        if (rc) break;
        int vi;
        char *s = id_text(v, &vi);
        if (!s) return er_error(EASYREC_ERR_FORMAT, "%s:%zu: \"exclude\"[%zu] is not an item id", pc->path, lineno, i);
        rc = add_excl(pc->q, pc->q->n - 1, er_catalog_find(pc->cat, s, strlen(s)));
        free(s);
    }
    return rc;
}

/* the users of ds's split with their text (profiles, or their first training items) */
static int dataset_queries(const er_dataset *ds, int split, int user_items, queries *q) {
    const char *why = er_eval_set_unusable(ds, 0, (er_utext){ER_UTEXT_AUTO, user_items});
    if (why) return er_error(EASYREC_ERR_ARG, "dataset: profile set 'original': %s", why);
    if (!ds->has_split[split]) return er_error(EASYREC_ERR_ARG, "dataset: no %s split", er_dataset_split_name(split));
    er_texts items, users;
    char rule[32];
    int rc = er_eval_set_texts(ds, 0, (er_utext){ER_UTEXT_AUTO, user_items}, &items, &users, rule, sizeof rule);
    if (rc) return rc;
    int32_t *rows = NULL, nr = 0;
    rc = er_csr_nonempty_rows(&ds->split[split], &rows, &nr);
    for (int32_t i = 0; i < nr && !rc; i++) {
        char buf[16];
        snprintf(buf, sizeof buf, "%d", rows[i]);
        char *uid = er_strdup(buf), *t = er_strdup(users.text[rows[i]]);
        rc = uid && t ? queries_push(q, uid, 1, t, users.len[rows[i]]) : (free(uid), free(t), EASYREC_ERR_NOMEM);
    }
    free(rows);
    er_texts_free(&items);
    er_texts_free(&users);
    return rc;
}

/* leave each query's training items (its user_id as a row of trn) out */
static int exclude_train(const er_csr *trn, const er_catalog *cat, queries *q) {
    for (size_t i = 0; i < q->n; i++) {
        char *end;
        long long u = q->uid[i] && q->uid_int[i] ? strtoll(q->uid[i], &end, 10) : -1;
        if (u < 0 || u >= trn->nrows)
            return er_error(EASYREC_ERR_ARG, "--exclude-train: user_id %s is not a row of the training matrix (0..%d)",
                            q->uid[i] ? q->uid[i] : "(none)", trn->nrows - 1);
        for (int64_t p = trn->indptr[u]; p < trn->indptr[u + 1]; p++) {
            char buf[16];
            snprintf(buf, sizeof buf, "%d", trn->indices[p]);
            int rc = add_excl(q, i, er_catalog_find(cat, buf, strlen(buf)));
            if (rc) return rc;
        }
    }
    return EASYREC_OK;
}

static void progress(void *user, size_t done, size_t total) {
    fprintf(stderr, "\reasyrec: encoding %s %zu/%zu ", (const char *)user, done, total);
}

static void print_table(FILE *f, const er_catalog *cat, const queries *q, size_t i, const er_hit *h, int n) {
    if (q->uid[i]) fprintf(f, "user %s\n", q->uid[i]);
    else fprintf(f, "query \"%.60s%s\"\n", q->text[i], q->len[i] > 60 ? "..." : "");
    fprintf(f, "  %4s  %-8s  %-16s  %s\n", "rank", "score", "item_id", "profile");
    for (int j = 0; j < n; j++) {
        int32_t r = h[j].row;
        fprintf(f, "  %4d  %8.4f  %-16.16s  %.70s%s\n", j + 1, h[j].score, cat->id[r], cat->text[r],
                cat->len[r] > 70 ? "..." : "");
    }
}

int cmd_recommend(int argc, char **argv) {
    const char *model = NULL, *catalog = NULL, *profiles = NULL, *text = NULL, *data = NULL, *output = NULL;
    const char *isa = NULL;
    int k = 20, excl_train = 0, split = 1, user_items = 10, max_length = 512, batch_tokens = 2048, quiet = 0;
    int precision = EASYREC_PRECISION_FP32;
    long nproc = sysconf(_SC_NPROCESSORS_ONLN);
    int threads = nproc > 0 ? (int)nproc : 1;
    cli_opt opts[] = {
        {.name = "model", .type = OPT_STR, .dst = &model, .meta = "DIR",
         .help = "model directory (config.json + weights + tokenizer)", .required = 1},
        {.name = "catalog", .type = OPT_STR, .dst = &catalog, .meta = "SRC",
         .help = "items: a dataset dir (its item_profile.json) or JSON lines {\"item_id\", \"profile\", metadata...}",
         .required = 1},
        {.name = "profiles", .type = OPT_STR, .dst = &profiles, .meta = "USERS.jsonl",
         .help = "queries: JSON lines {\"user_id\", \"profile\"[, \"exclude\": [item ids]]}"},
        {.name = "text", .type = OPT_STR, .dst = &text, .meta = "TEXT", .help = "query: one profile text"},
        {.name = "data", .type = OPT_STR, .dst = &data, .meta = "DIR",
         .help = "queries: the users of a dataset split (EasyRec layout)"},
        {.name = "split", .type = OPT_CHOICE, .dst = &split, .help = "split of --data whose users are recommended for",
         .choices = "val|tst"},
        {.name = "user-items", .type = OPT_INT, .dst = &user_items, .meta = "N",
         .help = "--data without user profiles: a user's text is the profiles of their first N training items",
         .min = 1, .max = 1000},
        {.name = "k", .type = OPT_INT, .dst = &k, .meta = "N", .help = "items per query", .min = 1, .max = 100000},
        {.name = "exclude-train", .type = OPT_FLAG, .dst = &excl_train,
         .help = "leave out each user's training items (trn_mat.pkl of --data, or of the --catalog dataset dir)"},
        {.name = "output", .type = OPT_STR, .dst = &output, .meta = "FILE",
         .help = "write JSON lines here, atomically (default stdout: a table on a terminal)"},
        {.name = "threads", .type = OPT_INT, .dst = &threads, .meta = "N", .help = "threads (default: all cores)",
         .min = 1, .max = 1024, .env = "EASYREC_THREADS"},
        {.name = "max-length", .type = OPT_INT, .dst = &max_length, .meta = "N",
         .help = "encoder truncation incl. specials", .min = 2, .max = 1 << 20},
        {.name = "batch-tokens", .type = OPT_INT, .dst = &batch_tokens, .meta = "N", .help = "tokens per encoder batch",
         .min = 1, .max = 1 << 24},
        {.name = "quiet", .type = OPT_FLAG, .dst = &quiet, .help = "no progress on stderr"},
        CLI_PRECISION_OPT(&precision),
        CLI_ISA_OPT(&isa),
        {0}};
    cli_cmd cmd = {"recommend", "--model DIR --catalog SRC (--profiles F | --text TEXT | --data DIR) [options]",
                   "Rank the catalog for each query by cosine of EasyRec embeddings; JSON lines\n"
                   "{\"user_id\", \"items\": [{\"item_id\", \"score\", \"profile\", metadata...}]}.",
                   opts, 0, 0, NULL};
    int rc = opt_parse(&cmd, argc, argv, NULL, NULL);
    if (rc) return rc == OPT_HELP ? 0 : rc;
    split = split == 0 ? ER_SPLIT_VAL : ER_SPLIT_TST;
    if (!!profiles + !!text + !!data != 1) return opt_usage_error(&cmd, "give exactly one of --profiles, --text, --data");

    double t0 = er_now();
    int status = 1;
    er_catalog cat;
    queries q = {0};
    er_dataset ds = {0}, cds = {0};
    int have_ds = 0, have_cds = 0;
    easyrec_model *m = NULL;
    easyrec_ctx *ctx = NULL;
    float *qe = NULL;
    er_hit *hits = NULL;
    int *nh = NULL;
    FILE *out = NULL;
    if (er_catalog_init(&cat) || er_catalog_load(catalog, &cat)) goto fail;
    if (cat.n == 0) {
        er_error(EASYREC_ERR_ARG, "%s: the catalog has no items", catalog);
        goto fail;
    }
    if (data) {
        if (er_dataset_open_dir(data, &ds)) goto fail;
        have_ds = 1;
        if (dataset_queries(&ds, split, user_items, &q)) goto fail;
    } else if (text) {
        char *t = er_strdup(text);
        if (!t || queries_push(&q, NULL, 0, t, strlen(text))) goto fail;
    } else {
        profiles_ctx pc = {&q, &cat, profiles};
        if (er_jsonl_each(profiles, profile_line, &pc)) goto fail;
    }
    if (excl_train) {
        const er_dataset *src = NULL;
        struct stat st;
        if (have_ds) src = &ds;
        else if (stat(catalog, &st) == 0 && S_ISDIR(st.st_mode)) {
            if (er_dataset_open_dir(catalog, &cds)) goto fail;
            have_cds = 1;
            src = &cds;
        }
        if (!src || !src->has_split[ER_SPLIT_TRN]) {
            er_error(EASYREC_ERR_ARG, "--exclude-train needs a training matrix: --data DIR, or a --catalog dataset dir with trn_mat.pkl");
            goto fail;
        }
        if (exclude_train(&src->split[ER_SPLIT_TRN], &cat, &q)) goto fail;
    }
    if (cli_load_model(model, precision, isa, !quiet, &m)) goto done; /* it printed the error */
    if (!(ctx = easyrec_ctx_new(m))) goto fail;
    int D = easyrec_model_dim(m);
    easyrec_encode_opts eo;
    easyrec_encode_opts_init(&eo);
    eo.threads = threads;
    eo.max_length = max_length;
    eo.batch_tokens = batch_tokens;
    int show = !quiet && isatty(2);
    if (er_catalog_set_dim(&cat, D)) goto fail;
    if (show) {
        eo.progress = progress;
        eo.progress_user = "catalog";
    }
    if (er_catalog_encode(&cat, ctx, &eo, NULL, 0)) goto fail;
    if (show) fputc('\n', stderr);
    if (!quiet) fprintf(stderr, "easyrec: encoded %d catalog items (%.2f s)\n", cat.n, er_now() - t0);
    size_t nq = q.n;
    qe = er_mallocarray(nq ? nq : 1, (size_t)D * sizeof(float));
    hits = er_mallocarray(nq ? nq : 1, (size_t)k * sizeof(er_hit));
    nh = er_calloc(nq ? nq : 1, sizeof(int));
    er_exclude *ex = er_calloc(nq ? nq : 1, sizeof(er_exclude));
    if (!qe || !hits || !nh || !ex) {
        free(ex);
        goto fail;
    }
    for (size_t i = 0; i < nq; i++) ex[i] = (er_exclude){q.excl[i], q.nexcl[i]};
    if (show) eo.progress_user = "queries";
    rc = easyrec_encode(ctx, (const char *const *)q.text, q.len, nq, &eo, qe);
    if (show) fputc('\n', stderr);
    if (!rc) rc = er_catalog_index(&cat);
    if (!rc) rc = er_recommend(&cat.scan, qe, (int)nq, k, ex, threads, NULL, hits, nh);
    free(ex);
    if (rc) goto fail;
    int table = !output && isatty(1);
    if (output) {
        char *tmp = NULL;
        if (asprintf(&tmp, "%s.tmp.%d", output, (int)getpid()) < 0) goto fail;
        out = fopen(tmp, "wb");
        if (!out) {
            er_error(EASYREC_ERR_IO, "%s: cannot write", tmp);
            free(tmp);
            goto fail;
        }
        free(tmp);
    } else {
        out = stdout;
    }
    for (size_t i = 0; i < nq; i++) {
        const er_hit *h = hits + i * (size_t)k;
        if (table) {
            print_table(out, &cat, &q, i, h, nh[i]);
            continue;
        }
        json_t *o = json_object(), *arr = json_array();
        if (q.uid[i]) json_object_set_new(o, "user_id", er_id_json(q.uid[i], q.uid_int[i]));
        else json_object_set_new(o, "text", json_stringn(q.text[i], q.len[i]));
        for (int j = 0; j < nh[i]; j++) json_array_append_new(arr, er_catalog_item_json(&cat, h[j].row, &h[j].score));
        json_object_set_new(o, "items", arr);
        json_dumpf(o, out, JSON_COMPACT | JSON_REAL_PRECISION(9));
        fputc('\n', out);
        json_decref(o);
    }
    if (output) {
        char tmp[4096];
        snprintf(tmp, sizeof tmp, "%s.tmp.%d", output, (int)getpid());
        int bad = fflush(out) != 0 || fsync(fileno(out)) != 0;
        bad |= fclose(out) != 0;
        out = NULL;
        if (bad || rename(tmp, output) != 0) {
            unlink(tmp);
            er_error(EASYREC_ERR_IO, "%s: write failed", output);
            goto fail;
        }
    }
    if (!quiet) fprintf(stderr, "easyrec: %zu queries x top %d of %d items (%.2f s)\n", nq, k, cat.n, er_now() - t0);
    status = 0;
fail:
    if (status) cli_fail(NULL);
done:
    if (out && out != stdout) fclose(out);
    free(qe);
    free(hits);
    free(nh);
    easyrec_ctx_free(ctx);
    easyrec_model_free(m);
    if (have_ds) er_dataset_free(&ds);
    if (have_cds) er_dataset_free(&cds);
    queries_free(&q);
    er_catalog_free(&cat);
    return status;
}
