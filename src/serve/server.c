/* server.c — start-up and state of the service (server.h): catalog source + durable state
 * merged, missing embeddings computed once (and stored), batchers started. Request handling
 * is in routes.c. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/err.h"
#include "serve/server_impl.h"

void er_server_opts_init(er_server_opts *o) {
    memset(o, 0, sizeof(*o));
    o->threads = 1;
    o->score_threads = 1;
    o->max_batch_tokens = 8192;
    o->max_client_batch = 64;
    o->max_concurrent = 64;
    o->max_input_tokens = 512;
    o->max_k = 1000;
    o->payload_limit = (size_t)4 << 20;
}

const char *er_server_check_opts(const er_server_opts *o, const easyrec_model *m) {
    static _Thread_local char msg[256];
    const easyrec_config *c = easyrec_model_config(m);
    int limit = c->is_roberta ? c->max_positions - c->pad_id - 1 : c->max_positions;
    if (o->max_input_tokens < 2 || o->max_input_tokens > limit)
        snprintf(msg, sizeof msg, "--max-input-tokens %d: this model takes 2..%d tokens per input", o->max_input_tokens, limit);
    else if (o->max_batch_tokens < o->max_input_tokens)
        snprintf(msg, sizeof msg, "--max-batch-tokens %d is below --max-input-tokens %d: a long input would fit no batch",
                 o->max_batch_tokens, o->max_input_tokens);
    else if (o->max_client_batch < 1 || o->max_concurrent < 1 || o->threads < 1 || o->max_k < 1)
        snprintf(msg, sizeof msg, "--max-client-batch, --max-concurrent, --threads and max k must be >= 1");
    else if (o->payload_limit < 1024)
        snprintf(msg, sizeof msg, "--payload-limit %zu is below 1024 bytes", o->payload_limit);
    else if ((size_t)o->max_client_batch > o->payload_limit / 4)
        snprintf(msg, sizeof msg, "--max-client-batch %d cannot be reached within --payload-limit %zu",
                 o->max_client_batch, o->payload_limit);
    else
        return NULL;
    return msg;
}

/* A fingerprint of the model files and of the precision the model runs at: embeddings made
 * under another one are recomputed (docs/serve.md, "Precision"). fp32 keeps the form it had before
 * precisions existed ("easyrec1-<hash>"), so stored fp32 state stays valid; bf16 and int8 add
 * "-bf16" / "-int8": their embeddings differ from fp32 ones by up to ~1e-3 in cosine and must
 * never be ranked against each other. The kernels' ISA level is not part of it (int8 is
 * bit-identical at every level, bf16 up to denormals; docs/model.md). */
static void fingerprint(const char *dir, easyrec_precision p, char *out, size_t cap) {
    static const char *files[] = {"config.json", "model.safetensors", "pytorch_model.bin", "vocab.json", "merges.txt",
                                  "vocab.txt", "tokenizer.json"};
    uint64_t h = 0x9E3779B97F4A7C15ull;
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char *p = er_path_join(dir, files[i]);
        struct stat st;
        if (p && stat(p, &st) == 0) {
            uint64_t v[3] = {(uint64_t)st.st_size, (uint64_t)st.st_mtim.tv_sec, (uint64_t)st.st_mtim.tv_nsec};
            h = hm_mix(h ^ hm_hash(v, sizeof v) ^ hm_hash(files[i], strlen(files[i])));
        }
        free(p);
    }
    snprintf(out, cap, "easyrec1-%016" PRIx64 "%s%s", h, p == EASYREC_PRECISION_FP32 ? "" : "-",
             p == EASYREC_PRECISION_FP32 ? "" : easyrec_precision_name(p));
}

/* ---- users ------------------------------------------------------------------------------ */

int32_t er_server_user(er_server *s, const char *id, int id_int, int create) {
    size_t n = strlen(id);
    int32_t u = er_strmap_find(&s->user_keys, id, n);
    if (u >= 0 || !create) return u;
    if (s->n_users == s->cap_users) {
        int32_t nc = s->cap_users ? s->cap_users * 2 : 256;
        er_user *nu = er_reallocarray(s->users, (size_t)nc, sizeof(*nu));
        if (!nu) return EASYREC_ERR_NOMEM;
        s->users = nu;
        s->cap_users = nc;
    }
    int added;
    u = er_strmap_intern(&s->user_keys, id, n, 0, &added);
    if (u < 0) return u;
    ER_ASSERT(added && u == s->n_users);
    memset(&s->users[u], 0, sizeof(er_user));
    s->users[u].id_int = id_int;
    s->n_users++;
    return u;
}

int er_user_set_profile(er_server *s, int32_t u, const char *text, size_t len, const float *emb) {
    er_user *x = &s->users[u];
    char *t = er_mallocarray(len + 1, 1);
    float *e = x->emb ? x->emb : er_mallocarray((size_t)s->D, sizeof(float));
    if (!t || !e) {
        free(t);
        if (!x->emb) free(e);
        return EASYREC_ERR_NOMEM;
    }
    memcpy(t, text, len);
    t[len] = 0;
    memcpy(e, emb, (size_t)s->D * sizeof(float));
    free(x->profile);
    x->profile = t;
    x->len = len;
    x->emb = e;
    return EASYREC_OK;
}

int er_user_add_seen(er_server *s, int32_t u, const char *item, size_t len) {
    er_user *x = &s->users[u];
    int added;
    int32_t k = er_strmap_find(&s->cat.keys, item, len);
    if (k < 0) k = er_strmap_intern(&s->cat.keys, item, len, -1, &added);
    if (k < 0) return k;
    for (int i = 0; i < x->nseen; i++)
        if (x->seen[i] == k) return EASYREC_OK;
    if (x->nseen == x->capseen) {
        int nc = x->capseen ? x->capseen * 2 : 8;
        int32_t *p = er_reallocarray(x->seen, (size_t)nc, sizeof(*p));
        if (!p) return EASYREC_ERR_NOMEM;
        x->seen = p;
        x->capseen = nc;
    }
    x->seen[x->nseen++] = k;
    return EASYREC_OK;
}

/* ---- writing an item ------------------------------------------------------------------- */

/* The store took row but the catalog did not (er_catalog_put changed nothing then): write
 * the item back as the catalog serves it, so that a restart loads what is served — its
 * current row (from then on as written through the API), or a tombstone when it is new. */
static int undo_item_write(er_server *s, const er_store_row *row) {
    int32_t old = er_catalog_find(&s->cat, row->id, strlen(row->id));
    er_store_row r = {row->id, row->id_int, "", 0, "{}", NULL, NULL, 1, 1};
    if (old >= 0)
        r = (er_store_row){row->id, s->cat.id_int[old], s->cat.text[old], s->cat.len[old], s->cat.meta[old],
                           s->cat.emb + (size_t)old * s->D, s->fingerprint, 1, 0};
    return s->store->ops->put_items(s->store, &r, 1);
}

int er_server_put_item(er_server *s, const er_store_row *row, int *created) {
    ER_ASSERT(row->emb && !row->deleted);
    size_t idlen = strlen(row->id);
    int idl = (int)(idlen > 200 ? 200 : idlen);
    /* refused before anything is written: a row the catalog refuses must not reach the
     * store, where it would make the next start fail (er_catalog_index) */
    if (er_bf16_check_vector(row->emb, s->D, "its embedding"))
        return er_error_prefix(EASYREC_ERR_ARG, "item '%.*s'", idl, row->id);
    pthread_mutex_lock(&s->wmu); /* writers are serialised: the catalog changes only here */
    int rc = s->store ? s->store->ops->put_items(s->store, row, 1) : EASYREC_OK;
    if (!rc) {
        pthread_rwlock_wrlock(&s->lock);
        *created = er_catalog_find(&s->cat, row->id, idlen) < 0;
        int32_t r = er_catalog_put(&s->cat, row->id, row->id_int, row->text, row->len, row->meta, row->emb);
        pthread_rwlock_unlock(&s->lock);
        if (r < 0) {
            char why[512];
            snprintf(why, sizeof why, "%s", easyrec_last_error());
            rc = r;
            if (s->store && undo_item_write(s, row))
                er_error(rc, "item '%.*s': stored but not served (%s), and restoring its stored row failed (%s)", idl,
                         row->id, why, easyrec_last_error());
            else
                er_error(rc, "item '%.*s': %s", idl, row->id, why);
        }
    }
    pthread_mutex_unlock(&s->wmu);
    return rc;
}

/* ---- loading the state ------------------------------------------------------------------ */

typedef struct {
    er_server *s;
    strmap ids;           /* store item id -> index into rows */
    char **text, **fp;    /* (n) stored text and fingerprint */
    float *emb;           /* (n, D) */
    uint8_t *has_emb, *from_api;
    int32_t n, cap;
    int32_t *need;        /* users needing encoding */
    int nneed, capneed;
} loader;

static int load_item(const er_store_row *r, void *user) {
    loader *L = user;
    er_server *s = L->s;
    if (r->from_api) {
        if (r->deleted) {
            if (er_catalog_find(&s->cat, r->id, strlen(r->id)) >= 0) er_catalog_remove(&s->cat, r->id, strlen(r->id));
            return EASYREC_OK;
        }
        int32_t row = er_catalog_put(&s->cat, r->id, r->id_int, r->text ? r->text : "", r->text ? r->len : 0, r->meta, NULL);
        if (row < 0) return row;
    }
    if (L->n == L->cap) {
        int32_t nc = L->cap ? L->cap * 2 : 1024;
        void *p;
        if (!(p = er_reallocarray(L->text, (size_t)nc, sizeof(char *)))) return EASYREC_ERR_NOMEM;
        L->text = p;
        if (!(p = er_reallocarray(L->fp, (size_t)nc, sizeof(char *)))) return EASYREC_ERR_NOMEM;
        L->fp = p;
        if (!(p = er_reallocarray(L->emb, (size_t)nc, (size_t)s->D * sizeof(float)))) return EASYREC_ERR_NOMEM;
        L->emb = p;
        if (!(p = er_reallocarray(L->has_emb, (size_t)nc, 1))) return EASYREC_ERR_NOMEM;
        L->has_emb = p;
        if (!(p = er_reallocarray(L->from_api, (size_t)nc, 1))) return EASYREC_ERR_NOMEM;
        L->from_api = p;
        L->cap = nc;
    }
    int added;
    int32_t k = er_strmap_intern(&L->ids, r->id, strlen(r->id), L->n, &added);
    if (k < 0) return k;
    int32_t i = added ? L->n++ : L->ids.e[k].val;
    if (!added) {
        free(L->text[i]);
        free(L->fp[i]);
    }
    L->text[i] = er_strdup(r->text ? r->text : "");
    L->fp[i] = er_strdup(r->fingerprint ? r->fingerprint : "");
    if (!L->text[i] || !L->fp[i]) return EASYREC_ERR_NOMEM;
    L->has_emb[i] = r->emb != NULL;
    L->from_api[i] = (uint8_t)r->from_api;
    if (r->emb) memcpy(L->emb + (size_t)i * s->D, r->emb, (size_t)s->D * sizeof(float));
    return EASYREC_OK;
}

static int load_user(const er_store_row *r, void *user) {
    loader *L = user;
    er_server *s = L->s;
    int32_t u = er_server_user(s, r->id, r->id_int, 1);
    if (u < 0) return u;
    if (!r->text) return EASYREC_OK;
    static const float zero[1] = {0};
    int ok = r->emb && r->fingerprint && !strcmp(r->fingerprint, s->fingerprint);
    float *tmp = ok ? NULL : er_calloc((size_t)s->D, sizeof(float));
    int rc = er_user_set_profile(s, u, r->text, r->len, ok ? r->emb : tmp ? tmp : zero);
    free(tmp);
    if (rc || ok) return rc;
    if (L->nneed == L->capneed) {
        int nc = L->capneed ? L->capneed * 2 : 64;
        int32_t *p = er_reallocarray(L->need, (size_t)nc, sizeof(*p));
        if (!p) return EASYREC_ERR_NOMEM;
        L->need = p;
        L->capneed = nc;
    }
    L->need[L->nneed++] = u;
    return EASYREC_OK;
}

static int load_interaction(const char *user, int user_int, const char *item, int item_int, void *ud) {
    loader *L = ud;
    (void)item_int;
    int32_t u = er_server_user(L->s, user, user_int, 1);
    return u < 0 ? u : er_user_add_seen(L->s, u, item, strlen(item));
}

typedef struct {
    er_server *s;
    const char *what;
} prog;

static void on_progress(void *user, size_t done, size_t total) {
    prog *p = user;
    p->s->o.progress(p->s->o.progress_user, p->what, done, total);
}

/* merge the catalog source with the stored items, compute what is missing, store it */
static int load_state(er_server *s, easyrec_ctx *ctx, const easyrec_encode_opts *eo0) {
    loader L = {.s = s};
    int rc = er_strmap_init(&L.ids, 1024);
    if (!rc && s->store) rc = s->store->ops->each_item(s->store, load_item, &L);
    int32_t *need = NULL, nn = 0;
    uint8_t *api = NULL;
    if (!rc) {
        need = er_mallocarray((size_t)s->cat.n + 1, sizeof(*need));
        api = er_calloc((size_t)s->cat.n + 1, 1);
        if (!need || !api) rc = EASYREC_ERR_NOMEM;
    }
    for (int32_t r = 0; !rc && r < s->cat.n; r++) {
        int32_t k = er_strmap_find(&L.ids, s->cat.id[r], strlen(s->cat.id[r]));
        int32_t i = k >= 0 ? L.ids.e[k].val : -1;
        if (i >= 0) api[r] = L.from_api[i];
        if (i >= 0 && L.has_emb[i] && !strcmp(L.fp[i], s->fingerprint) && !strcmp(L.text[i], s->cat.text[r]))
            memcpy(s->cat.emb + (size_t)r * s->D, L.emb + (size_t)i * s->D, (size_t)s->D * sizeof(float));
        else
            need[nn++] = r;
    }
    easyrec_encode_opts eo = *eo0;
    prog pg = {s, "catalog"};
    if (s->o.progress) {
        eo.progress = on_progress;
        eo.progress_user = &pg;
    }
    if (!rc && nn) rc = er_catalog_encode(&s->cat, ctx, &eo, need, nn);
    /* store what was computed, in transactions of 4096 rows */
    er_store_row *rows = !rc && s->store && nn ? er_calloc(4096, sizeof(*rows)) : NULL;
    for (int32_t b = 0; rows && !rc && b < nn; b += 4096) {
        int m = nn - b < 4096 ? nn - b : 4096;
        for (int j = 0; j < m; j++) {
            int32_t r = need[b + j];
            rows[j] = (er_store_row){s->cat.id[r], s->cat.id_int[r], s->cat.text[r], s->cat.len[r], s->cat.meta[r],
                                     s->cat.emb + (size_t)r * s->D, s->fingerprint, api[r], 0};
        }
        rc = s->store->ops->put_items(s->store, rows, m);
    }
    free(rows);
    free(need);
    free(api);
    /* users and their interactions */
    if (!rc && s->store) rc = s->store->ops->each_user(s->store, load_user, &L);
    if (!rc && s->store) rc = s->store->ops->each_interaction(s->store, load_interaction, &L);
    if (!rc && L.nneed) {
        const char **t = er_mallocarray((size_t)L.nneed, sizeof(*t));
        size_t *l = er_mallocarray((size_t)L.nneed, sizeof(*l));
        float *e = er_mallocarray((size_t)L.nneed, (size_t)s->D * sizeof(float));
        rc = t && l && e ? EASYREC_OK : EASYREC_ERR_NOMEM;
        for (int i = 0; !rc && i < L.nneed; i++) {
            t[i] = s->users[L.need[i]].profile;
            l[i] = s->users[L.need[i]].len;
        }
        pg.what = "users";
        if (!rc) rc = easyrec_encode(ctx, t, l, (size_t)L.nneed, &eo, e);
        for (int i = 0; !rc && i < L.nneed; i++) {
            er_user *x = &s->users[L.need[i]];
            memcpy(x->emb, e + (size_t)i * s->D, (size_t)s->D * sizeof(float));
            er_store_row r = {strmap_key(&s->user_keys, L.need[i]), x->id_int, x->profile, x->len, NULL,
                              x->emb, s->fingerprint, 0, 0};
            rc = s->store->ops->put_user(s->store, &r);
        }
        free(t);
        free(l);
        free(e);
    }
    for (int32_t i = 0; i < L.n; i++) {
        free(L.text[i]);
        free(L.fp[i]);
    }
    free(L.text);
    free(L.fp);
    free(L.emb);
    free(L.has_emb);
    free(L.from_api);
    free(L.need);
    er_strmap_free(&L.ids);
    return rc;
}

int er_server_open(const er_server_opts *o, const easyrec_model *m, er_server **out) {
    const char *bad = er_server_check_opts(o, m);
    if (bad) return er_error(EASYREC_ERR_ARG, "%s", bad);
    er_server *s = er_calloc(1, sizeof(*s));
    if (!s) return EASYREC_ERR_NOMEM;
    s->o = *o;
    s->m = m;
    s->tok = easyrec_model_tokenizer(m);
    s->D = easyrec_model_dim(m);
    er_metrics_init(&s->metrics);
    pthread_rwlockattr_t ra;
    pthread_rwlockattr_init(&ra);
    pthread_rwlockattr_setkind_np(&ra, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&s->lock, &ra);
    pthread_rwlockattr_destroy(&ra);
    pthread_mutex_init(&s->wmu, NULL);
    fingerprint(o->model_dir ? o->model_dir : ".", easyrec_model_precision(m), s->fingerprint, sizeof s->fingerprint);
    const char *base = o->model_dir ? strrchr(o->model_dir, '/') : NULL;
    snprintf(s->model_name, sizeof s->model_name, "%s", base && base[1] ? base + 1 : o->model_dir ? o->model_dir : "easyrec");
    int rc = er_catalog_init(&s->cat);
    if (!rc) rc = er_strmap_init(&s->user_keys, 1024);
    if (!rc && o->catalog) rc = er_catalog_load(o->catalog, &s->cat);
    if (!rc) rc = er_catalog_set_dim(&s->cat, s->D);
    if (!rc && o->state) rc = er_store_open_sqlite(o->state, s->D, &s->store);
    easyrec_ctx *ctx = rc ? NULL : easyrec_ctx_new(m);
    if (!rc && !ctx) rc = EASYREC_ERR_NOMEM;
    easyrec_encode_opts eo;
    easyrec_encode_opts_init(&eo);
    eo.threads = o->threads;
    eo.max_length = o->max_input_tokens;
    eo.batch_tokens = o->max_batch_tokens;
    if (!rc) rc = load_state(s, ctx, &eo);
    easyrec_ctx_free(ctx);
    er_pool_opts po = {o->threads, o->max_batch_tokens, o->max_input_tokens, EASYREC_POOL_DEFAULT};
    if (!rc) rc = er_pool_start(m, &po, &s->pool);
    if (!rc) rc = er_catalog_index(&s->cat);
    if (!rc) rc = er_scorer_q_start(&s->cat.scan, o->score_threads, &s->scorer);
    if (rc) {
        er_server_close(s);
        return rc;
    }
    *out = s;
    return EASYREC_OK;
}

void er_server_close(er_server *s) {
    if (!s) return;
    er_scorer_q_stop(s->scorer);
    er_pool_stop(s->pool);
    if (s->store) s->store->ops->close(s->store);
    for (int32_t u = 0; u < s->n_users; u++) {
        free(s->users[u].profile);
        free(s->users[u].emb);
        free(s->users[u].seen);
    }
    free(s->users);
    er_strmap_free(&s->user_keys);
    er_catalog_free(&s->cat);
    er_metrics_destroy(&s->metrics);
    pthread_rwlock_destroy(&s->lock);
    pthread_mutex_destroy(&s->wmu);
    free(s);
}

void er_server_sizes(er_server *s, int *items, int *users) {
    pthread_rwlock_rdlock(&s->lock);
    *items = s->cat.n;
    *users = s->n_users;
    pthread_rwlock_unlock(&s->lock);
}
