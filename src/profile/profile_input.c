/* profile_input.c — what `easyrec profile` asks: prompt templates, the per-id inputs
 * (item metadata; a user's training items with titles, item profiles and reviews; profiles
 * to rewrite) and the checks of the answers (profile.h). */
#include <ctype.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/err.h"
#include "core/rng.h"
#include "data/interactions.h"
#include "data/profiles.h"
#include "io/sparse_pickle.h"
#include "profile/profile.h"
#include "tokenizer/hmap.h"

/* ---- templates ------------------------------------------------------------------------ */
static int read_tmpl(const char *dir, const char *name, char **out) {
    char *p = er_path_join(dir, name);
    if (!p) return EASYREC_ERR_NOMEM;
    size_t len;
    int rc = er_read_file(p, out, &len);
    if (rc) er_error_prefix(rc, "prompt template (see --prompts)");
    free(p);
    return rc;
}

int er_prof_load_prompts(const char *dir, er_profile_task t, er_prof_prompts *p) {
    memset(p, 0, sizeof(*p));
    static const char *names[3][2][2] = {
        {{"item_system.txt", "item_user.txt"}, {NULL, NULL}},
        {{NULL, NULL}, {"user_system.txt", "user_user.txt"}},
        {{"diverse_item_system.txt", "diverse_item.txt"}, {"diverse_user_system.txt", "diverse_user.txt"}},
    };
    int rc = EASYREC_OK;
    for (int s = 0; s < 2 && !rc; s++) {
        if (!names[t][s][0]) continue;
        if (!(rc = read_tmpl(dir, names[t][s][0], &p->system[s]))) rc = read_tmpl(dir, names[t][s][1], &p->user_tmpl[s]);
        if (!rc && !strstr(p->user_tmpl[s], "{{input}}"))
            rc = er_error(EASYREC_ERR_FORMAT, "%s/%s: has no {{input}}", dir, names[t][s][1]);
    }
    if (!rc) rc = read_tmpl(dir, "repair.txt", &p->repair);
    if (rc) er_prof_free_prompts(p);
    return rc;
}

void er_prof_free_prompts(er_prof_prompts *p) {
    for (int s = 0; s < 2; s++) free(p->system[s]), free(p->user_tmpl[s]);
    free(p->repair);
    memset(p, 0, sizeof(*p));
}

char *er_prof_fill(const char *tmpl, const char *name, const char *value) {
    char pat[64];
    snprintf(pat, sizeof pat, "{{%s}}", name);
    size_t pl = strlen(pat), vl = strlen(value), n = 0;
    for (const char *q = tmpl; (q = strstr(q, pat)); q += pl) n++;
    size_t tl = strlen(tmpl), len;
    if (er_mul_size(n, vl, &len) || er_add_size(len, tl + 1, &len)) return NULL;
    char *out = malloc(len), *w = out;
    if (!out) return NULL;
    for (const char *q = tmpl;;) {
        const char *h = strstr(q, pat);
        size_t seg = h ? (size_t)(h - q) : strlen(q);
        memcpy(w, q, seg);
        w += seg;
        if (!h) break;
        memcpy(w, value, vl);
        w += vl;
        q = h + pl;
    }
    *w = 0;
    return out;
}

/* ---- inputs --------------------------------------------------------------------------- */
typedef struct {
    json_t **meta; /* (n) item metadata objects, NULL when absent */
    int32_t n;
} meta_t;

static int read_meta(const char *path, meta_t *m, int32_t n_items) {
    char *buf;
    size_t len;
    int rc = er_read_file(path, &buf, &len);
    if (rc) return rc;
    m->n = n_items;
    if (!(m->meta = er_calloc(n_items ? (size_t)n_items : 1, sizeof(json_t *)))) {
        free(buf);
        return EASYREC_ERR_NOMEM;
    }
    int line = 0;
    for (char *p = buf, *end = buf + len; p < end && !rc;) {
        char *e = memchr(p, '\n', (size_t)(end - p));
        if (!e) e = end;
        line++;
        char *q = p;
        while (q < e && isspace((unsigned char)*q)) q++;
        if (q < e) {
            json_error_t je;
            json_t *o = json_loadb(p, (size_t)(e - p), 0, &je);
            json_t *id = json_object_get(o, "item_id");
            if (!json_is_object(o) || !json_is_integer(id))
                rc = er_error(EASYREC_ERR_FORMAT, "%s:%d: expected {\"item_id\": <dense int id>, \"title\": ...}", path, line);
            else if (json_integer_value(id) < 0 || json_integer_value(id) >= n_items)
                rc = er_error(EASYREC_ERR_FORMAT, "%s:%d: item_id %lld outside 0..%d", path, line,
                              (long long)json_integer_value(id), n_items - 1);
            else if (!m->meta[json_integer_value(id)]) {
                m->meta[json_integer_value(id)] = o;
                o = NULL;
            }
            json_decref(o);
        }
        p = e < end ? e + 1 : end;
    }
    free(buf);
    return rc;
}

static void free_meta(meta_t *m) {
    for (int32_t k = 0; m->meta && k < m->n; k++) json_decref(m->meta[k]);
    free(m->meta);
}

/* max item_id + 1 of a metadata file (when there is no trn_mat.pkl to give the count) */
static int32_t meta_count(const char *path) {
    char *buf;
    size_t len;
    if (er_read_file(path, &buf, &len)) return -1;
    int32_t n = 0;
    for (char *p = buf; p && *p;) {
        json_error_t je;
        char *e = strchr(p, '\n');
        json_t *o = json_loadb(p, e ? (size_t)(e - p) : strlen(p), 0, &je);
        json_t *id = json_object_get(o, "item_id");
        if (json_is_integer(id) && json_integer_value(id) >= n && json_integer_value(id) < ER_CSR_MAX_DIM)
            n = (int32_t)json_integer_value(id) + 1;
        json_decref(o);
        p = e ? e + 1 : NULL;
    }
    free(buf);
    return n;
}

/* reviews: (user << 32 | item) -> review text */
typedef struct {
    u64map map;
    char **text;
    int32_t n, cap;
} reviews_t;

static int read_reviews(const char *path, reviews_t *r) {
    char *buf;
    size_t len;
    int rc = er_read_file(path, &buf, &len);
    if (rc) return rc;
    if ((rc = er_u64map_init(&r->map, 1024))) {
        free(buf);
        return rc;
    }
    int line = 0;
    for (char *p = buf, *end = buf + len; p < end && !rc;) {
        char *e = memchr(p, '\n', (size_t)(end - p));
        if (!e) e = end;
        line++;
        char *q = p;
        while (q < e && isspace((unsigned char)*q)) q++;
        if (q < e) {
            json_error_t je;
            json_t *o = json_loadb(p, (size_t)(e - p), 0, &je);
            json_t *u = json_object_get(o, "user_id"), *i = json_object_get(o, "item_id"), *t = json_object_get(o, "review");
            if (!json_is_integer(u) || !json_is_integer(i) || !json_is_string(t) || json_integer_value(u) < 0 ||
                json_integer_value(i) < 0 || json_integer_value(u) > INT32_MAX || json_integer_value(i) > INT32_MAX)
                rc = er_error(EASYREC_ERR_FORMAT, "%s:%d: expected {\"user_id\": int, \"item_id\": int, \"review\": str}",
                              path, line);
            else {
                if (r->n == r->cap) {
                    int32_t c = r->cap ? r->cap * 2 : 256;
                    char **nt = er_reallocarray(r->text, (size_t)c, sizeof(*nt));
                    if (!nt) rc = EASYREC_ERR_NOMEM;
                    else r->text = nt, r->cap = c;
                }
                if (!rc && !(r->text[r->n] = er_strdup(json_string_value(t)))) rc = EASYREC_ERR_NOMEM;
                if (!rc) {
                    uint64_t key = (uint64_t)json_integer_value(u) << 32 | (uint64_t)json_integer_value(i);
                    if (!u64map_get(&r->map, key)) rc = er_u64map_put(&r->map, key, r->n);
                    r->n++;
                }
            }
            json_decref(o);
        }
        p = e < end ? e + 1 : end;
    }
    free(buf);
    return rc;
}

static void free_reviews(reviews_t *r) {
    if (r->map.keys) er_u64map_free(&r->map);
    for (int32_t k = 0; k < r->n; k++) free(r->text[k]);
    free(r->text);
}

/* JSON text of an item's metadata without its ids */
static char *item_input(json_t *meta, int32_t id) {
    json_t *o = meta ? json_deep_copy(meta) : json_object();
    json_object_del(o, "item_id");
    json_object_del(o, "original_id");
    if (!json_object_size(o)) json_object_set_new(o, "title", json_sprintf("item %d", id));
    char *s = json_dumps(o, JSON_PRESERVE_ORDER);
    json_decref(o);
    return s;
}

static int push_unit(er_prof_unit **u, size_t *n, size_t *cap, er_prof_unit x) {
    if (!x.input) return er_error(EASYREC_ERR_NOMEM, "out of memory");
    if (*n == *cap) {
        size_t c = *cap ? *cap * 2 : 1024;
        er_prof_unit *nu = er_reallocarray(*u, c, sizeof(*nu));
        if (!nu) {
            free(x.input);
            return EASYREC_ERR_NOMEM;
        }
        *u = nu;
        *cap = c;
    }
    (*u)[(*n)++] = x;
    return EASYREC_OK;
}

static int cmp_i32(const void *a, const void *b) {
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return x < y ? -1 : x > y;
}

static int user_units(const er_profile_opts *o, const er_csr *trn, const meta_t *meta, const er_texts *iprof,
                      const reviews_t *rev, er_prof_unit **u, size_t *n, size_t *cap) {
    int32_t *pick = er_mallocarray((size_t)trn->ncols + 1, sizeof(*pick));
    if (!pick) return EASYREC_ERR_NOMEM;
    int rc = EASYREC_OK;
    for (int32_t uid = 0; uid < trn->nrows && !rc; uid++) {
        int64_t len = csr_row_len(trn, uid);
        const int32_t *items = trn->indices + trn->indptr[uid];
        memcpy(pick, items, (size_t)len * sizeof(*pick));
        int64_t m = len;
        if (o->max_items_per_user > 0 && len > o->max_items_per_user) { /* seeded sample, then id order */
            er_rng g;
            er_rng_seed(&g, o->seed ^ (0xD1B54A32D192ED03ull * (uint64_t)(uid + 1)));
            m = o->max_items_per_user;
            for (int64_t k = 0; k < m; k++) {
                int64_t j = k + (int64_t)er_rng_below(&g, (uint64_t)(len - k));
                int32_t t = pick[k];
                pick[k] = pick[j];
                pick[j] = t;
            }
            qsort(pick, (size_t)m, sizeof(*pick), cmp_i32);
        }
        char *buf = NULL;
        size_t blen = 0;
        FILE *f = open_memstream(&buf, &blen);
        if (!f) return EASYREC_ERR_NOMEM;
        fputs("[", f);
        for (int64_t k = 0; k < m; k++) {
            int32_t it = pick[k];
            json_t *x = json_object();
            json_t *title = meta && meta->meta && meta->meta[it] ? json_object_get(meta->meta[it], "title") : NULL;
            json_object_set_new(x, "title", json_is_string(title) ? json_copy(title) : json_sprintf("item %d", it));
            if (iprof && it < (int32_t)iprof->n) json_object_set_new(x, "description", json_string(iprof->text[it]));
            int32_t *ri = rev && rev->map.keys ? u64map_get(&rev->map, (uint64_t)uid << 32 | (uint64_t)it) : NULL;
            if (ri) json_object_set_new(x, "review", json_string(rev->text[*ri]));
            char *s = json_dumps(x, JSON_PRESERVE_ORDER);
            json_decref(x);
            fprintf(f, "%s\n  %s", k ? "," : "", s ? s : "{}");
            free(s);
        }
        fputs("\n]", f);
        fclose(f);
        er_prof_unit x = {.id = uid, .side = 1, .input = buf};
        snprintf(x.key, sizeof x.key, "user:%d", uid);
        rc = push_unit(u, n, cap, x);
    }
    free(pick);
    return rc;
}

int er_prof_build_units(const er_profile_opts *o, er_prof_unit **units, size_t *n) {
    *units = NULL;
    *n = 0;
    size_t cap = 0;
    int rc = EASYREC_OK;
    char *trn_path = er_path_join(o->data_dir, "trn_mat.pkl"), *meta_path = NULL;
    char *ip = er_path_join(o->data_dir, "item_profile.json"), *up = er_path_join(o->data_dir, "user_profile.json");
    meta_path = o->meta_path ? er_strdup(o->meta_path) : er_path_join(o->data_dir, "item_meta.json");
    er_sparse sp = {0};
    er_csr trn = {0};
    meta_t meta = {0};
    reviews_t rev = {0};
    er_texts iprof = {0}, uprof = {0};
    if (!trn_path || !meta_path || !ip || !up) {
        rc = EASYREC_ERR_NOMEM;
        goto out;
    }
    int have_trn = er_file_exists(trn_path);
    if (have_trn && ((rc = er_sparse_pickle_load(trn_path, &sp)) || (rc = er_csr_from_sparse(&sp, &trn)))) goto out;
    if (o->task == ER_PROFILE_ITEMS) {
        if (!er_file_exists(meta_path)) {
            rc = er_error(EASYREC_ERR_IO, "%s: no item metadata (import with --items, or give --meta)", meta_path);
            goto out;
        }
        int32_t ni = have_trn ? trn.ncols : meta_count(meta_path);
        if ((rc = read_meta(meta_path, &meta, ni))) goto out;
        for (int32_t i = 0; i < ni && !rc; i++) {
            er_prof_unit x = {.id = i, .side = 0, .input = item_input(meta.meta[i], i)};
            snprintf(x.key, sizeof x.key, "item:%d", i);
            rc = push_unit(units, n, &cap, x);
        }
    } else if (o->task == ER_PROFILE_USERS) {
        if (!have_trn) {
            rc = er_error(EASYREC_ERR_IO, "%s: missing (users are described from training interactions)", trn_path);
            goto out;
        }
        if (er_file_exists(meta_path) && (rc = read_meta(meta_path, &meta, trn.ncols))) goto out;
        if (er_file_exists(ip)) {
            if ((rc = er_profiles_read_jsonl(ip, &iprof))) goto out;
            if ((int64_t)iprof.n != trn.ncols) {
                rc = er_error(EASYREC_ERR_FORMAT, "%s: %zu profiles for %d items", ip, iprof.n, trn.ncols);
                goto out;
            }
        }
        if (o->reviews_path && (rc = read_reviews(o->reviews_path, &rev))) goto out;
        rc = user_units(o, &trn, &meta, iprof.text ? &iprof : NULL, &rev, units, n, &cap);
    } else {
        int any = 0;
        for (int side = 0; side < 2 && !rc; side++) {
            const char *path = side ? up : ip;
            er_texts *t = side ? &uprof : &iprof;
            if (!er_file_exists(path)) continue;
            if ((rc = er_profiles_read_jsonl(path, t))) break;
            any = 1;
            for (int k = 0; k < o->n_diverse && !rc; k++)
                for (size_t id = 0; id < t->n && !rc; id++) {
                    er_prof_unit x = {.id = (int32_t)id, .side = side, .k = k, .input = er_strdup(t->text[id])};
                    snprintf(x.key, sizeof x.key, "%s:%d:%zu", side ? "user" : "item", k, id);
                    rc = push_unit(units, n, &cap, x);
                }
        }
        if (!rc && !any)
            rc = er_error(EASYREC_ERR_IO, "%s: no item_profile.json or user_profile.json to rewrite", o->data_dir);
    }
out:
    if (rc) {
        er_prof_free_units(*units, *n);
        *units = NULL;
        *n = 0;
    }
    er_sparse_free(&sp);
    er_csr_free(&trn);
    free_meta(&meta);
    free_reviews(&rev);
    er_texts_free(&iprof);
    er_texts_free(&uprof);
    free(trn_path);
    free(meta_path);
    free(ip);
    free(up);
    return rc;
}

void er_prof_free_units(er_prof_unit *u, size_t n) {
    for (size_t k = 0; u && k < n; k++) free(u[k].input);
    free(u);
}

/* ---- answers -------------------------------------------------------------------------- */
/* s[0..n) without surrounding white space (and, decor = 1, markdown '*' and quotes) */
static char *trimmed(const char *s, size_t n, int decor) {
    while (n && (isspace((unsigned char)*s) || (decor && (*s == '*' || *s == '"')))) s++, n--;
    while (n && (isspace((unsigned char)s[n - 1]) || (decor && (s[n - 1] == '*' || s[n - 1] == '"')))) n--;
    char *o = malloc(n + 1);
    if (o) memcpy(o, s, n), o[n] = 0;
    return o;
}

const char *er_prof_validate(er_profile_task t, const char *text, size_t len, char **a, char **b) {
    *a = *b = NULL;
    if (t == ER_PROFILE_DIVERSE) {
        static const char pre[] = "REVISED PROFILE:";
        size_t k = 0;
        while (k < len && (isspace((unsigned char)text[k]) || text[k] == '*' || text[k] == '"')) k++;
        if (len - k < sizeof pre - 1 || strncasecmp(text + k, pre, sizeof pre - 1))
            return "the answer does not start with \"REVISED PROFILE:\"";
        k += sizeof pre - 1;
        if (!(*a = trimmed(text + k, len - k, 1))) return "out of memory";
        if (!**a) {
            free(*a);
            *a = NULL;
            return "the revised profile is empty";
        }
        return NULL;
    }
    const char *l = memchr(text, '{', len), *r = NULL;
    for (size_t k = len; k > 0; k--)
        if (text[k - 1] == '}') {
            r = text + k;
            break;
        }
    if (!l || !r || r <= l) return "the answer holds no JSON object";
    json_error_t je;
    json_t *o = json_loadb(l, (size_t)(r - l), 0, &je);
    json_t *s = json_object_get(o, "summarization"), *re = json_object_get(o, "reasoning");
    const char *why = NULL;
    if (!o) why = "the answer is not valid JSON";
    else if (!json_is_object(o)) why = "the answer is not a JSON object";
    else if (!json_is_string(s) || !json_string_length(s)) why = "no non-empty \"summarization\" string";
    else if (!json_is_string(re)) why = "no \"reasoning\" string";
    else {
        *a = trimmed(json_string_value(s), json_string_length(s), 0);
        *b = trimmed(json_string_value(re), json_string_length(re), 0);
        if (!*a || !*b || !**a) {
            free(*a);
            free(*b);
            *a = *b = NULL;
            why = "no non-empty \"summarization\" string";
        }
    }
    json_decref(o);
    return why;
}
