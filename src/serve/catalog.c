/* catalog.c — items, metadata, embeddings and the id map of a recommender (catalog.h). */
#include "serve/catalog.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/err.h"

int er_catalog_init(er_catalog *c) {
    memset(c, 0, sizeof(*c));
    return er_strmap_init(&c->keys, 1024);
}

void er_catalog_free(er_catalog *c) {
    if (!c) return;
    for (int32_t r = 0; r < c->n; r++) {
        free(c->id[r]);
        free(c->text[r]);
        free(c->meta[r]);
    }
    free(c->id);
    free(c->id_int);
    free(c->text);
    free(c->len);
    free(c->meta);
    free(c->emb);
    er_bf16_items_free(&c->scan);
    free(c->key);
    er_strmap_free(&c->keys);
    memset(c, 0, sizeof(*c));
}

int er_id_is_int(const char *s, size_t len) {
    size_t i = 0;
    if (len && s[0] == '-') i = 1;
    if (i >= len || len - i > 18) return 0; /* at most 18 digits: fits int64 */
    if (s[i] == '0' && len - i > 1) return 0;
    if (s[i] == '0' && i) return 0; /* "-0" */
    for (; i < len; i++)
        if (s[i] < '0' || s[i] > '9') return 0;
    return 1;
}

static int grow(er_catalog *c, int32_t need) {
    if (need <= c->cap) return EASYREC_OK;
    if (need > (1 << 28)) return er_error(EASYREC_ERR_NOMEM, "catalog: more than 2^28 items");
    int32_t nc = c->cap ? c->cap : 1024;
    while (nc < need) nc *= 2;
    void *p;
#define GROW(field)                                                                       \
    if (!(p = er_reallocarray(c->field, (size_t)nc, sizeof(*c->field)))) return EASYREC_ERR_NOMEM; \
    c->field = p;
    GROW(id) GROW(id_int) GROW(text) GROW(len) GROW(meta) GROW(key)
#undef GROW
    if (c->dim) {
        if (!(p = er_reallocarray(c->emb, (size_t)nc, (size_t)c->dim * sizeof(float)))) return EASYREC_ERR_NOMEM;
        c->emb = p;
        memset(c->emb + (size_t)c->cap * c->dim, 0, (size_t)(nc - c->cap) * c->dim * sizeof(float));
    }
    c->cap = nc;
    return EASYREC_OK;
}

int er_catalog_set_dim(er_catalog *c, int dim) {
    ER_ASSERT(dim > 0 && !c->dim);
    size_t rows = c->cap ? (size_t)c->cap : 1;
    c->emb = er_calloc(rows, (size_t)dim * sizeof(float));
    if (!c->emb) return EASYREC_ERR_NOMEM;
    c->dim = dim;
    return EASYREC_OK;
}

int er_catalog_index(er_catalog *c) {
    ER_ASSERT(c->dim > 0 && !c->indexed);
    int rc = er_bf16_items_init(&c->scan, c->emb, c->n, c->dim);
    if (rc) {
        er_bf16_items_free(&c->scan);
        return er_error_prefix(rc, "catalog");
    }
    c->indexed = 1;
    return EASYREC_OK;
}

int32_t er_catalog_find(const er_catalog *c, const char *id, size_t len) {
    int32_t k = er_strmap_find(&c->keys, id, len);
    return k < 0 ? -1 : c->keys.e[k].val;
}

static char *dup_bytes(const char *s, size_t n) {
    char *d = er_mallocarray(n + 1, 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = 0;
    }
    return d;
}

int32_t er_catalog_put(er_catalog *c, const char *id, int id_int, const char *text, size_t len, const char *meta,
                       const float *emb) {
    size_t idlen = strlen(id);
    if (c->indexed && emb && er_bf16_check_vector(emb, c->dim, "the embedding"))
        return er_error_prefix(EASYREC_ERR_ARG, "item '%.*s'", (int)(idlen > 200 ? 200 : idlen), id);
    if (c->indexed && er_bf16_items_reserve(&c->scan, c->n + 1)) return EASYREC_ERR_NOMEM; /* a row the scan copy can take */
    char *t = dup_bytes(text, len), *m = er_strdup(meta ? meta : "{}");
    if (!t || !m) {
        free(t);
        free(m);
        return EASYREC_ERR_NOMEM;
    }
    int32_t row = er_catalog_find(c, id, idlen);
    if (row >= 0) {
        free(c->text[row]);
        free(c->meta[row]);
    } else {
        char *d = dup_bytes(id, idlen);
        int rc = d ? grow(c, c->n + 1) : EASYREC_ERR_NOMEM, added;
        int32_t k = rc ? rc : er_strmap_intern(&c->keys, id, idlen, -1, &added);
        if (rc || k < 0) {
            free(d);
            free(t);
            free(m);
            return rc ? rc : k;
        }
        row = c->n++;
        c->id[row] = d;
        c->key[row] = k;
        c->keys.e[k].val = row;
    }
    c->id_int[row] = (uint8_t)(id_int != 0);
    c->text[row] = t;
    c->len[row] = len;
    c->meta[row] = m;
    if (c->dim) {
        float *dst = c->emb + (size_t)row * c->dim;
        if (emb) memcpy(dst, emb, (size_t)c->dim * sizeof(float));
        else memset(dst, 0, (size_t)c->dim * sizeof(float));
    }
    if (c->indexed) { /* checked and reserved above: cannot fail */
        int ok = row == c->scan.n ? er_bf16_items_resize(&c->scan, c->emb, c->n) : er_bf16_items_update(&c->scan, row);
        ER_ASSERT(ok == EASYREC_OK);
    }
    return row;
}

int er_catalog_remove(er_catalog *c, const char *id, size_t len) {
    int32_t row = er_catalog_find(c, id, len);
    if (row < 0) return er_error(EASYREC_ERR_ARG, "no item '%.*s'", (int)(len > 200 ? 200 : len), id);
    int32_t last = c->n - 1;
    c->keys.e[c->key[row]].val = -1;
    free(c->id[row]);
    free(c->text[row]);
    free(c->meta[row]);
    if (row != last) {
        c->id[row] = c->id[last];
        c->id_int[row] = c->id_int[last];
        c->text[row] = c->text[last];
        c->len[row] = c->len[last];
        c->meta[row] = c->meta[last];
        c->key[row] = c->key[last];
        c->keys.e[c->key[row]].val = row;
        if (c->dim) memcpy(c->emb + (size_t)row * c->dim, c->emb + (size_t)last * c->dim, (size_t)c->dim * sizeof(float));
    }
    c->n--;
    if (c->indexed) { /* rows it held already, then shrinking: cannot fail */
        int ok = row != last ? er_bf16_items_update(&c->scan, row) : EASYREC_OK;
        if (!ok) ok = er_bf16_items_resize(&c->scan, c->emb, c->n);
        ER_ASSERT(ok == EASYREC_OK);
    }
    return EASYREC_OK;
}

/* ---- reading ---------------------------------------------------------------------------- */

int er_jsonl_each(const char *path, int (*fn)(json_t *obj, size_t lineno, void *user), void *user) {
    char *buf;
    size_t len, pos = 0, lineno = 0;
    int rc = er_read_file(path, &buf, &len);
    if (rc) return rc;
    while (pos < len && !rc) {
        const char *s = buf + pos, *nl = memchr(s, '\n', len - pos);
        size_t ll = nl ? (size_t)(nl - s) : len - pos;
        pos += ll + (nl ? 1 : 0);
        lineno++;
        size_t k = 0;
        while (k < ll && (s[k] == ' ' || s[k] == '\t' || s[k] == '\r')) k++;
        if (k == ll) continue;
        json_error_t e;
        json_t *o = json_loadb(s, ll, 0, &e);
        if (!o || !json_is_object(o)) rc = er_error(EASYREC_ERR_FORMAT, "%s:%zu: %s", path, lineno, o ? "not a JSON object" : e.text);
        else rc = fn(o, lineno, user);
        json_decref(o);
    }
    free(buf);
    return rc;
}

typedef struct {
    er_catalog *c;
    const char *path;
} load_ctx;

static int load_line(json_t *o, size_t lineno, void *user) {
    load_ctx *lc = user;
    json_t *id = json_object_get(o, "item_id"), *p = json_object_get(o, "profile");
    char idbuf[32];
    const char *ids;
    int id_int;
    if (json_is_integer(id)) {
        snprintf(idbuf, sizeof idbuf, "%" PRId64, (int64_t)json_integer_value(id));
        ids = idbuf;
        id_int = 1;
    } else if (json_is_string(id) && json_string_length(id) > 0 && !memchr(json_string_value(id), 0, json_string_length(id))) {
        ids = json_string_value(id);
        id_int = 0;
    } else {
        return er_error(EASYREC_ERR_FORMAT, "%s:%zu: \"item_id\" must be an integer or a non-empty string", lc->path, lineno);
    }
    if (!json_is_string(p)) return er_error(EASYREC_ERR_FORMAT, "%s:%zu: missing string field \"profile\"", lc->path, lineno);
    if (er_catalog_find(lc->c, ids, strlen(ids)) >= 0)
        return er_error(EASYREC_ERR_FORMAT, "%s:%zu: item_id %s appears twice", lc->path, lineno, ids);
    char *idcopy = er_strdup(ids);
    if (!idcopy) return EASYREC_ERR_NOMEM;
    json_incref(p); /* keep the profile alive while it leaves the object */
    json_object_del(o, "item_id");
    json_object_del(o, "profile");
    char *meta = json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII);
    int32_t r = meta ? er_catalog_put(lc->c, idcopy, id_int, json_string_value(p), json_string_length(p), meta, NULL)
                     : er_error(EASYREC_ERR_NOMEM, "out of memory");
    json_decref(p);
    free(idcopy);
    free(meta);
    return r < 0 ? r : EASYREC_OK;
}

int er_catalog_load(const char *src, er_catalog *c) {
    struct stat st;
    if (stat(src, &st) != 0) return er_error(EASYREC_ERR_IO, "%s: no such file or directory", src);
    char *path = S_ISDIR(st.st_mode) ? er_path_join(src, "item_profile.json") : er_strdup(src);
    if (!path) return EASYREC_ERR_NOMEM;
    load_ctx lc = {c, path};
    int rc = er_jsonl_each(path, load_line, &lc);
    free(path);
    return rc;
}

/* ---- encoding --------------------------------------------------------------------------- */

#define CHUNK 4096

typedef struct {
    const easyrec_encode_opts *user;
    size_t base, total;
} prog_ctx;

static void chunk_progress(void *u, size_t done, size_t total) {
    prog_ctx *p = u;
    (void)total;
    p->user->progress(p->user->progress_user, p->base + done, p->total);
}

int er_catalog_encode(er_catalog *c, easyrec_ctx *ctx, const easyrec_encode_opts *opts, const int32_t *rows, int32_t nr) {
    ER_ASSERT(c->dim > 0);
    size_t total = rows ? (size_t)nr : (size_t)c->n;
    const char **t = er_mallocarray(CHUNK, sizeof(*t));
    size_t *l = er_mallocarray(CHUNK, sizeof(*l));
    float *out = er_mallocarray(CHUNK, (size_t)c->dim * sizeof(float));
    int rc = t && l && out ? EASYREC_OK : EASYREC_ERR_NOMEM;
    easyrec_encode_opts o = *opts;
    prog_ctx pc = {opts, 0, total};
    if (opts->progress) {
        o.progress = chunk_progress;
        o.progress_user = &pc;
    }
    for (size_t s = 0; s < total && !rc; s += CHUNK) {
        size_t k = total - s < CHUNK ? total - s : CHUNK;
        for (size_t j = 0; j < k; j++) {
            int32_t r = rows ? rows[s + j] : (int32_t)(s + j);
            t[j] = c->text[r];
            l[j] = c->len[r];
        }
        pc.base = s;
        rc = easyrec_encode(ctx, t, l, k, &o, out);
        for (size_t j = 0; j < k && !rc; j++) {
            int32_t r = rows ? rows[s + j] : (int32_t)(s + j);
            memcpy(c->emb + (size_t)r * c->dim, out + j * c->dim, (size_t)c->dim * sizeof(float));
        }
    }
    free(t);
    free(l);
    free(out);
    return rc;
}

/* ---- JSON views of ids and rows ------------------------------------------------------------ */

json_t *er_id_json(const char *id, int is_int) {
    return is_int ? json_integer(strtoll(id, NULL, 10)) : json_string(id);
}

json_t *er_catalog_item_json(const er_catalog *c, int32_t r, const float *score) {
    json_t *o = json_object();
    json_object_set_new(o, "item_id", er_id_json(c->id[r], c->id_int[r]));
    if (score) json_object_set_new(o, "score", json_real(*score));
    json_object_set_new(o, "profile", json_stringn(c->text[r], c->len[r]));
    json_t *m = json_loads(c->meta[r], 0, NULL);
    const char *key;
    json_t *v;
    json_object_foreach(m, key, v) if (!json_object_get(o, key)) json_object_set(o, key, v);
    json_decref(m);
    return o;
}
