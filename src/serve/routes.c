/* routes.c — request handling of the service (server.h): routing, authentication, limits,
 * and one handler per route. Bodies are parsed by request.c; texts go through the encoder
 * pool and recommend queries through the scoring queue (batcher.h). */
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/err.h"
#include "serve/request.h"
#include "serve/server_impl.h"

typedef struct {
    er_server *s;
    const er_http_req *rq;
    er_http_resp *rs;
    er_http_err err;
} call;

static int fail(call *c, int status, const char *type, const char *code, const char *msg) {
    return er_http_error(&c->err, status, type, code, "%s", msg);
}

static int nomem(call *c) { return fail(c, 500, "server_error", "out_of_memory", "out of memory"); }

/* set the response to the JSON value j (stolen) */
static int reply(call *c, int status, json_t *j) {
    char *b = j ? json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(9)) : NULL;
    json_decref(j);
    if (!b) return nomem(c);
    c->rs->status = status;
    c->rs->body = b;
    c->rs->len = strlen(b);
    c->rs->content_type = "application/json";
    return 0;
}

/* ---- encoding texts ----------------------------------------------------------------------- */

/* Tokenize n texts (truncating to max_input_tokens when truncate, else refusing longer ones
 * with too_long_status) and encode them through the pool into out (n, D), normalised unless
 * raw. *tokens: total ids. */
static int encode_texts(call *c, const char *const *texts, const size_t *lens, int n, int truncate, int too_long_status,
                        int raw, float *out, long *tokens) {
    er_server *s = c->s;
    int L = s->o.max_input_tokens, st = 0;
    int32_t *buf = er_mallocarray((size_t)n, (size_t)L * sizeof(int32_t));
    const int32_t **ids = er_mallocarray((size_t)n, sizeof(*ids));
    int *nids = er_mallocarray((size_t)n, sizeof(int));
    if (!buf || !ids || !nids) {
        st = nomem(c);
        goto done;
    }
    *tokens = 0;
    for (int i = 0; i < n && !st; i++) {
        int32_t *b = buf + (size_t)i * L;
        int k = easyrec_tokenize(s->tok, texts[i], lens[i], truncate ? L : 0, b, L);
        if (k < 0) st = fail(c, 400, "invalid_request_error", "invalid_input", easyrec_last_error());
        else if (k > L)
            st = er_http_error(&c->err, too_long_status, "invalid_request_error", "input_too_long",
                               "input %d has %d tokens; at most %d (--max-input-tokens; ask for truncation to cut it)", i, k,
                               L);
        ids[i] = b;
        nids[i] = k;
        *tokens += k;
    }
    if (!st && er_pool_encode(s->pool, ids, nids, n, out))
        st = fail(c, 500, "server_error", "encode_failed", easyrec_last_error());
    if (!st) er_metrics_add_tokens(&s->metrics, (uint64_t)*tokens);
    for (int i = 0; i < n && !st && !raw; i++) er_l2_normalize(out + (size_t)i * s->D, s->D);
done:
    free(buf);
    free(ids);
    free(nids);
    return st;
}

static int route_embeddings(call *c, int tei) {
    er_server *s = c->s;
    er_req r;
    int st = tei ? er_parse_tei(c->rq->body, c->rq->len, s->o.max_client_batch, &r, &c->err)
                 : er_parse_embeddings(c->rq->body, c->rq->len, s->o.max_client_batch, s->D, &r, &c->err);
    float *e = st ? NULL : er_mallocarray((size_t)r.n, (size_t)s->D * sizeof(float));
    long tokens = 0;
    if (!st && !e) st = nomem(c);
    if (!st) st = encode_texts(c, r.texts, r.lens, r.n, tei && r.truncate, tei ? 413 : 400, tei && !r.normalize, e, &tokens);
    if (!st) {
        json_t *data = json_array();
        char *b64 = r.base64 ? er_mallocarray(((size_t)s->D * 4 + 2) / 3 * 4 + 1, 1) : NULL;
        for (int i = 0; i < r.n; i++) {
            const float *v = e + (size_t)i * s->D;
            json_t *vec;
            if (b64) {
                er_base64((const unsigned char *)v, (size_t)s->D * sizeof(float), b64); /* little-endian float32 */
                vec = json_string(b64);
            } else {
                vec = json_array();
                for (int d = 0; d < s->D; d++) json_array_append_new(vec, json_real(v[d]));
            }
            if (tei) json_array_append_new(data, vec);
            else json_array_append_new(data, json_pack("{s:s,s:i,s:o}", "object", "embedding", "index", i, "embedding", vec));
        }
        free(b64);
        if (tei) st = reply(c, 200, data);
        else
            st = reply(c, 200, json_pack("{s:s,s:o,s:s,s:{s:I,s:I}}", "object", "list", "data", data, "model",
                                         r.model ? r.model : s->model_name, "usage", "prompt_tokens", (json_int_t)tokens,
                                         "total_tokens", (json_int_t)tokens));
    }
    free(e);
    er_req_free(&r);
    return st;
}

/* ---- recommend ---------------------------------------------------------------------------- */

static int route_recommend(call *c) {
    er_server *s = c->s;
    er_req r;
    int st = er_parse_recommend(c->rq->body, c->rq->len, s->o.max_k, s->o.max_k + 100000, &r, &c->err);
    float *q = st ? NULL : er_mallocarray((size_t)s->D, sizeof(float));
    er_hit *hits = st ? NULL : er_mallocarray((size_t)r.k, sizeof(er_hit));
    int32_t *ex = NULL;
    long tokens;
    if (!st && (!q || !hits)) st = nomem(c);
    if (!st && r.profile) st = encode_texts(c, &r.profile, &r.profile_len, 1, 1, 400, 0, q, &tokens);
    if (st) goto done;
    pthread_rwlock_rdlock(&s->lock);
    int32_t u = -1;
    int nex = 0;
    if (r.has_user) {
        u = er_server_user(s, r.user.text, r.user.is_int, 0);
        if (u < 0 || !s->users[u].profile) {
            pthread_rwlock_unlock(&s->lock);
            st = er_http_error(&c->err, 404, "invalid_request_error", "user_not_found",
                               u < 0 ? "no user '%s'" : "user '%s' has no profile yet", r.user.text);
            goto done;
        }
        memcpy(q, s->users[u].emb, (size_t)s->D * sizeof(float));
    }
    int seen = u >= 0 && r.exclude_seen ? s->users[u].nseen : 0;
    ex = er_mallocarray((size_t)(seen + r.n_ids) + 1, sizeof(int32_t));
    if (!ex) {
        pthread_rwlock_unlock(&s->lock);
        st = nomem(c);
        goto done;
    }
    for (int i = 0; i < seen; i++) ex[nex++] = s->cat.keys.e[s->users[u].seen[i]].val;
    for (int i = 0; i < r.n_ids; i++) ex[nex++] = er_catalog_find(&s->cat, r.ids[i].text, strlen(r.ids[i].text));
    int nh = 0;
    if (er_scorer_q_run(s->scorer, q, r.k, ex, nex, hits, &nh)) {
        pthread_rwlock_unlock(&s->lock);
        st = fail(c, 500, "server_error", "score_failed", easyrec_last_error());
        goto done;
    }
    json_t *arr = json_array();
    for (int j = 0; j < nh; j++) json_array_append_new(arr, er_catalog_item_json(&s->cat, hits[j].row, &hits[j].score));
    pthread_rwlock_unlock(&s->lock);
    st = reply(c, 200, arr);
done:
    free(q);
    free(hits);
    free(ex);
    er_req_free(&r);
    return st;
}

/* ---- users -------------------------------------------------------------------------------- */

static int route_user_profile(call *c, const er_json_id *id) {
    er_server *s = c->s;
    er_req r;
    int st = er_parse_profile(c->rq->body, c->rq->len, &r, &c->err);
    float *e = st ? NULL : er_mallocarray((size_t)s->D, sizeof(float));
    long tokens;
    if (!st && !e) st = nomem(c);
    if (!st) st = encode_texts(c, &r.profile, &r.profile_len, 1, 1, 400, 0, e, &tokens);
    if (!st) {
        pthread_mutex_lock(&s->wmu);
        er_store_row row = {id->text, id->is_int, r.profile, r.profile_len, NULL, e, s->fingerprint, 0, 0};
        if (s->store && s->store->ops->put_user(s->store, &row)) {
            st = fail(c, 500, "server_error", "store_failed", easyrec_last_error());
        } else {
            pthread_rwlock_wrlock(&s->lock);
            int32_t u = er_server_user(s, id->text, id->is_int, 1);
            if (u < 0 || er_user_set_profile(s, u, r.profile, r.profile_len, e)) st = nomem(c);
            pthread_rwlock_unlock(&s->lock);
        }
        pthread_mutex_unlock(&s->wmu);
    }
    if (!st) st = reply(c, 200, json_pack("{s:o,s:b}", "user_id", er_id_json(id->text, id->is_int), "updated", 1));
    free(e);
    er_req_free(&r);
    return st;
}

static int route_user_interactions(call *c, const er_json_id *id) {
    er_server *s = c->s;
    er_req r;
    int st = er_parse_interactions(c->rq->body, c->rq->len, 100000, &r, &c->err);
    if (st) goto done;
    const char **items = er_mallocarray((size_t)r.n_ids, sizeof(*items));
    int *ints = er_mallocarray((size_t)r.n_ids, sizeof(int));
    if (!items || !ints) st = nomem(c);
    for (int i = 0; !st && i < r.n_ids; i++) {
        items[i] = r.ids[i].text;
        ints[i] = r.ids[i].is_int;
    }
    int total = 0;
    if (!st) {
        pthread_mutex_lock(&s->wmu);
        if (s->store && s->store->ops->add_interactions(s->store, id->text, id->is_int, items, ints, r.n_ids)) {
            st = fail(c, 500, "server_error", "store_failed", easyrec_last_error());
        } else {
            pthread_rwlock_wrlock(&s->lock);
            int32_t u = er_server_user(s, id->text, id->is_int, 1);
            for (int i = 0; u >= 0 && i < r.n_ids; i++)
                if (er_user_add_seen(s, u, r.ids[i].text, strlen(r.ids[i].text))) u = -1;
            if (u < 0) st = nomem(c);
            else total = s->users[u].nseen;
            pthread_rwlock_unlock(&s->lock);
        }
        pthread_mutex_unlock(&s->wmu);
    }
    free(items);
    free(ints);
    if (!st) st = reply(c, 200, json_pack("{s:o,s:i}", "user_id", er_id_json(id->text, id->is_int), "interactions", total));
done:
    er_req_free(&r);
    return st;
}

static int route_user_get(call *c, const er_json_id *id) {
    er_server *s = c->s;
    pthread_rwlock_rdlock(&s->lock);
    int32_t u = er_server_user(s, id->text, id->is_int, 0);
    if (u < 0) {
        pthread_rwlock_unlock(&s->lock);
        return er_http_error(&c->err, 404, "invalid_request_error", "user_not_found", "no user '%s'", id->text);
    }
    er_user *x = &s->users[u];
    json_t *seen = json_array();
    for (int i = 0; i < x->nseen; i++) {
        const char *k = strmap_key(&s->cat.keys, x->seen[i]);
        json_array_append_new(seen, er_id_json(k, er_id_is_int(k, strlen(k))));
    }
    json_t *o = json_pack("{s:o,s:o,s:o}", "user_id", er_id_json(id->text, x->id_int), "profile",
                          x->profile ? json_stringn(x->profile, x->len) : json_null(), "interactions", seen);
    pthread_rwlock_unlock(&s->lock);
    return reply(c, 200, o);
}

/* ---- items -------------------------------------------------------------------------------- */

static int route_item_put(call *c, const er_json_id *id) {
    er_server *s = c->s;
    er_req r;
    int st = er_parse_item(c->rq->body, c->rq->len, &r, &c->err);
    float *e = st ? NULL : er_mallocarray((size_t)s->D, sizeof(float));
    long tokens;
    int created = 0;
    if (!st && !e) st = nomem(c);
    if (!st) st = encode_texts(c, &r.profile, &r.profile_len, 1, 1, 400, 0, e, &tokens);
    if (!st) {
        er_store_row row = {id->text, id->is_int, r.profile, r.profile_len, r.meta, e, s->fingerprint, 1, 0};
        int rc = er_server_put_item(s, &row, &created);
        if (rc == EASYREC_ERR_ARG) st = fail(c, 400, "invalid_request_error", "bad_embedding", easyrec_last_error());
        else if (rc == EASYREC_ERR_NOMEM) st = fail(c, 500, "server_error", "out_of_memory", easyrec_last_error());
        else if (rc) st = fail(c, 500, "server_error", "store_failed", easyrec_last_error());
    }
    if (!st) st = reply(c, created ? 201 : 200, json_pack("{s:o,s:b}", "item_id", er_id_json(id->text, id->is_int), "created", created));
    free(e);
    er_req_free(&r);
    return st;
}

static int route_item_delete(call *c, const er_json_id *id) {
    er_server *s = c->s;
    int st = 0;
    pthread_mutex_lock(&s->wmu); /* writers are serialised: the catalog cannot change under us */
    int32_t row = er_catalog_find(&s->cat, id->text, strlen(id->text));
    if (row < 0) {
        st = er_http_error(&c->err, 404, "invalid_request_error", "item_not_found", "no item '%s'", id->text);
    } else {
        er_store_row r = {id->text, s->cat.id_int[row], "", 0, "{}", NULL, NULL, 1, 1};
        if (s->store && s->store->ops->put_items(s->store, &r, 1)) {
            st = fail(c, 500, "server_error", "store_failed", easyrec_last_error());
        } else {
            pthread_rwlock_wrlock(&s->lock);
            er_catalog_remove(&s->cat, id->text, strlen(id->text));
            pthread_rwlock_unlock(&s->lock);
        }
    }
    pthread_mutex_unlock(&s->wmu);
    return st ? st : reply(c, 200, json_pack("{s:o,s:b}", "item_id", er_id_json(id->text, id->is_int), "deleted", 1));
}

static int route_item_get(call *c, const er_json_id *id) {
    er_server *s = c->s;
    pthread_rwlock_rdlock(&s->lock);
    int32_t row = er_catalog_find(&s->cat, id->text, strlen(id->text));
    json_t *o = row >= 0 ? er_catalog_item_json(&s->cat, row, NULL) : NULL;
    pthread_rwlock_unlock(&s->lock);
    if (!o) return er_http_error(&c->err, 404, "invalid_request_error", "item_not_found", "no item '%s'", id->text);
    return reply(c, 200, o);
}

/* ---- service routes ----------------------------------------------------------------------- */

static int route_info(call *c) {
    er_server *s = c->s;
    int items, users;
    er_server_sizes(s, &items, &users);
    const easyrec_config *cfg = easyrec_model_config(s->m);
    return reply(c, 200,
                 json_pack("{s:s,s:s,s:s,s:s,s:I,s:i,s:i,s:i,s:i,s:i,s:b,s:{s:i,s:i,s:i,s:i,s:i,s:I,s:i,s:i}}", "model",
                           s->model_name, "fingerprint", s->fingerprint, "precision",
                           easyrec_precision_name(easyrec_model_precision(s->m)), "isa", easyrec_model_isa(s->m),
                           "weight_bytes", (json_int_t)easyrec_model_weight_bytes(s->m), "dim", s->D, "layers",
                           cfg->n_layers, "catalog_size", items, "users", users, "vocab_size", cfg->vocab_size,
                           "state", s->store != NULL, "limits",
                           "max_input_tokens", s->o.max_input_tokens, "max_batch_tokens", s->o.max_batch_tokens,
                           "max_client_batch", s->o.max_client_batch, "max_concurrent", s->o.max_concurrent, "max_k",
                           s->o.max_k, "payload_limit", (json_int_t)s->o.payload_limit, "threads", s->o.threads,
                           "score_threads", s->o.score_threads));
}

static int route_metrics(call *c) {
    er_server *s = c->s;
    char *b = NULL;
    size_t len = 0, cap = 0;
    er_pool_stats ps;
    er_pool_stats_get(s->pool, &ps);
    uint64_t rb, rq;
    er_scorer_q_stats(s->scorer, &rb, &rq);
    int items, users;
    er_server_sizes(s, &items, &users);
    int rc = er_metrics_render(&s->metrics, &b, &len, &cap);
    if (!rc)
        rc = er_buf_printf(&b, &len, &cap,
                           "# HELP easyrec_encoder_batches_total Encoder batches run.\n# TYPE easyrec_encoder_batches_total counter\n"
                           "easyrec_encoder_batches_total %llu\n"
                           "# HELP easyrec_encoded_sequences_total Texts encoded.\n# TYPE easyrec_encoded_sequences_total counter\n"
                           "easyrec_encoded_sequences_total %llu\n"
                           "# HELP easyrec_tokens_encoded_total Tokens encoded.\n# TYPE easyrec_tokens_encoded_total counter\n"
                           "easyrec_tokens_encoded_total %llu\n"
                           "# HELP easyrec_encoder_queue_depth Texts waiting for an encoder.\n# TYPE easyrec_encoder_queue_depth gauge\n"
                           "easyrec_encoder_queue_depth %d\n"
                           "# HELP easyrec_encoder_batch_size Texts per encoder batch.\n# TYPE easyrec_encoder_batch_size histogram\n",
                           (unsigned long long)ps.batches, (unsigned long long)ps.sequences, (unsigned long long)ps.tokens,
                           ps.queued);
    uint64_t cum = 0;
    for (int b2 = 0; !rc && b2 < ER_BATCH_HIST; b2++) {
        cum += ps.batch_hist[b2];
        if (b2 < ER_BATCH_HIST - 1)
            rc = er_buf_printf(&b, &len, &cap, "easyrec_encoder_batch_size_bucket{le=\"%d\"} %llu\n", 1 << b2,
                               (unsigned long long)cum);
    }
    if (!rc)
        rc = er_buf_printf(&b, &len, &cap,
                           "easyrec_encoder_batch_size_bucket{le=\"+Inf\"} %llu\neasyrec_encoder_batch_size_sum %llu\n"
                           "easyrec_encoder_batch_size_count %llu\n"
                           "# HELP easyrec_recommend_batches_total Recommend scoring products.\n# TYPE easyrec_recommend_batches_total counter\n"
                           "easyrec_recommend_batches_total %llu\n"
                           "# HELP easyrec_recommend_queries_total Recommend queries scored.\n# TYPE easyrec_recommend_queries_total counter\n"
                           "easyrec_recommend_queries_total %llu\n"
                           "# HELP easyrec_inflight_requests Requests being processed.\n# TYPE easyrec_inflight_requests gauge\n"
                           "easyrec_inflight_requests %d\n"
                           "# HELP easyrec_catalog_items Items in the catalog.\n# TYPE easyrec_catalog_items gauge\n"
                           "easyrec_catalog_items %d\n# HELP easyrec_users Users known.\n# TYPE easyrec_users gauge\neasyrec_users %d\n",
                           (unsigned long long)cum, (unsigned long long)ps.sequences, (unsigned long long)ps.batches,
                           (unsigned long long)rb, (unsigned long long)rq, atomic_load(&s->inflight), items, users);
    if (rc) {
        free(b);
        return nomem(c);
    }
    c->rs->status = 200;
    c->rs->body = b;
    c->rs->len = len;
    c->rs->content_type = "text/plain; version=0.0.4";
    return 0;
}

/* ---- dispatch ----------------------------------------------------------------------------- */

static int key_ok(const char *key, const char *auth) {
    static const char bearer[] = "Bearer ";
    if (!auth || strncmp(auth, bearer, sizeof bearer - 1)) return 0;
    const char *given = auth + sizeof bearer - 1;
    size_t a = strlen(key), b = strlen(given);
    unsigned char diff = (unsigned char)(a != b);
    /* constant time in the key's length: every byte of the key is compared */
    for (size_t i = 0; i < a; i++) diff |= (unsigned char)(key[i] ^ (i < b ? given[i] : 0));
    return diff == 0;
}

/* /prefix/{id}[/suffix]: the id segment, or 0 */
static int path_id(const char *path, const char *prefix, const char *suffix, const char **id, size_t *len) {
    size_t pl = strlen(prefix);
    if (strncmp(path, prefix, pl)) return 0;
    const char *p = path + pl, *slash = strchr(p, '/');
    if (!suffix) {
        if (slash) return 0;
        *id = p;
        *len = strlen(p);
        return 1;
    }
    if (!slash || strcmp(slash, suffix)) return 0;
    *id = p;
    *len = (size_t)(slash - p);
    return 1;
}

void er_server_handle(er_server *s, const er_http_req *rq, er_http_resp *rs) {
    double t0 = er_now();
    memset(rs, 0, sizeof(*rs));
    call c = {s, rq, rs, {{0}, NULL, NULL}};
    const char *m = rq->method, *p = rq->path, *id = NULL;
    size_t idlen = 0;
    int get = !strcmp(m, "GET"), post = !strcmp(m, "POST"), put = !strcmp(m, "PUT"), del = !strcmp(m, "DELETE");
    int route = ER_RT_OTHER, ok_method = 1;
    if (!strcmp(p, "/v1/embeddings")) route = ER_RT_EMBEDDINGS, ok_method = post;
    else if (!strcmp(p, "/embed")) route = ER_RT_EMBED, ok_method = post;
    else if (!strcmp(p, "/recommend")) route = ER_RT_RECOMMEND, ok_method = post;
    else if (!strcmp(p, "/health")) route = ER_RT_HEALTH, ok_method = get;
    else if (!strcmp(p, "/info")) route = ER_RT_INFO, ok_method = get;
    else if (!strcmp(p, "/metrics")) route = ER_RT_METRICS, ok_method = get;
    else if (path_id(p, "/users/", "/profile", &id, &idlen)) route = ER_RT_USER_PROFILE, ok_method = put;
    else if (path_id(p, "/users/", "/interactions", &id, &idlen)) route = ER_RT_USER_INTERACTIONS, ok_method = post;
    else if (path_id(p, "/users/", NULL, &id, &idlen)) route = ER_RT_USER_GET, ok_method = get;
    else if (path_id(p, "/items/", NULL, &id, &idlen)) {
        route = put ? ER_RT_ITEM_PUT : del ? ER_RT_ITEM_DELETE : ER_RT_ITEM_GET;
        ok_method = put || del || get;
    }
    int st = 0, counted = 0;
    er_json_id jid;
    if (route == ER_RT_OTHER) st = fail(&c, 404, "invalid_request_error", "unknown_route", "no such route");
    else if (!ok_method)
        st = er_http_error(&c.err, 405, "invalid_request_error", "method_not_allowed", "%s is not allowed on %s", m, p);
    else if (s->o.api_key && route != ER_RT_HEALTH && !key_ok(s->o.api_key, rq->authorization))
        st = fail(&c, 401, "authentication_error", "invalid_api_key",
                  "missing or wrong API key (send the header 'Authorization: Bearer <key>')");
    else if (rq->body_too_large)
        st = er_http_error(&c.err, 413, "invalid_request_error", "payload_too_large", "request body over %zu bytes (--payload-limit)",
                           s->o.payload_limit);
    else if (id && (st = er_path_id(id, idlen, &jid, &c.err))) {
    } else if (route != ER_RT_HEALTH && route != ER_RT_METRICS && (counted = 1, atomic_fetch_add(&s->inflight, 1) >= s->o.max_concurrent)) {
        st = fail(&c, 503, "server_error", "overloaded", "too many requests in progress (--max-concurrent); retry shortly");
        rs->retry_after = 1;
    } else {
        switch (route) {
        case ER_RT_EMBEDDINGS: st = route_embeddings(&c, 0); break;
        case ER_RT_EMBED: st = route_embeddings(&c, 1); break;
        case ER_RT_RECOMMEND: st = route_recommend(&c); break;
        case ER_RT_USER_PROFILE: st = route_user_profile(&c, &jid); break;
        case ER_RT_USER_INTERACTIONS: st = route_user_interactions(&c, &jid); break;
        case ER_RT_USER_GET: st = route_user_get(&c, &jid); break;
        case ER_RT_ITEM_PUT: st = route_item_put(&c, &jid); break;
        case ER_RT_ITEM_DELETE: st = route_item_delete(&c, &jid); break;
        case ER_RT_ITEM_GET: st = route_item_get(&c, &jid); break;
        case ER_RT_HEALTH: st = reply(&c, 200, json_pack("{s:s}", "status", "ok")); break;
        case ER_RT_INFO: st = route_info(&c); break;
        case ER_RT_METRICS: st = route_metrics(&c); break;
        }
    }
    if (counted) atomic_fetch_sub(&s->inflight, 1);
    if (st) {
        free(rs->body);
        rs->status = st;
        rs->body = er_http_error_body(&c.err);
        rs->len = rs->body ? strlen(rs->body) : 0;
        rs->content_type = "application/json";
    }
    er_metrics_observe(&s->metrics, route, rs->status, er_now() - t0);
}
